package router

import (
	"sync"
	"time"
)

// The watchdog bounds what a session may hold: a query past its timeout,
// and (mysql-max_transaction_time, mysql-max_transaction_idle_time) a
// transaction open or idle too long, whose session is closed as ProxySQL
// does — the server rolls the transaction back.
//
// Query timeouts (reference §4.4 "timeout", mysql-default_query_timeout):
// a query that runs past its rule's timeout is killed on its server with
// KILL QUERY, and the client gets ERR 1907 "Query execution was
// interrupted, query_timeout exceeded" instead of the server's 1317. A
// server that does not answer the KILL (frozen, unreachable) has the
// query's connection aborted after killGrace, so no query waits on a dead
// server longer than its timeout and the grace.
//
// The per-query cost is two atomic stores (the deadline, set from the
// command's start time the session already read): no timer per query.
// One watchdog goroutine looks at every session's deadline every
// watchdogTick.

// watchdogTick is how often the watchdog looks for queries past their
// deadline: timeouts fire up to this late.
const watchdogTick = 100 * time.Millisecond

// killGrace is how long the server has to stop a killed query before the
// proxy cuts the query's connection.
const killGrace = 2 * time.Second

type watchdog struct {
	r    *Router
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func (r *Router) startWatchdog() {
	w := &watchdog{r: r, stop: make(chan struct{}), done: make(chan struct{})}
	r.watchdog = w
	go w.loop()
}

func (w *watchdog) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *watchdog) loop() {
	defer close(w.done)
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	tick := 0
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			ns := now.UnixNano()
			rt := w.r.rt.Load()
			if tick++; tick%10 == 0 {
				// About once a second, as ProxySQL's purge thread: expired
				// query cache entries, and those over a lowered bound.
				w.r.qcache.SetLimit(rt.Router.QueryCacheBytes)
				w.r.qcache.Purge(now)
			}
			maxTrx, maxIdle := int64(rt.Router.MaxTrxTime), int64(rt.Router.MaxTrxIdleTime)
			w.r.sessions.Range(func(_, v any) bool {
				s := v.(*session)
				if d := s.deadline.Load(); d != 0 && ns >= d && s.timedOut.CompareAndSwap(0, d) {
					go w.expire(s, d)
				}
				if ts := s.pub.trxSince.Load(); ts != 0 && !s.killed.Load() {
					idle := s.pub.command.Load() == cmdSleep
					switch {
					case maxTrx > 0 && ns-ts >= maxTrx:
						w.closeTrx(s, "mysql-max_transaction_time", time.Duration(ns-ts))
					case maxIdle > 0 && idle && ns-s.pub.since.Load() >= maxIdle:
						w.closeTrx(s, "mysql-max_transaction_idle_time", time.Duration(ns-s.pub.since.Load()))
					}
				}
				return true
			})
		}
	}
}

// closeTrx closes the session of a transaction that ran or idled past the
// limit named by limit.
func (w *watchdog) closeTrx(s *session, limit string, took time.Duration) {
	w.r.log.Warn().Uint64("session", s.id).Str("limit", limit).Dur("for", took.Round(time.Millisecond)).
		Msg("closing a session whose transaction exceeded " + limit + ": the server rolls it back")
	s.kill()
	if run := s.running.get(); run.bc != nil {
		run.bc.Abort() // a query in flight ends now, not when it is done
	}
}

// expire stops the query of s whose deadline d passed.
func (w *watchdog) expire(s *session, d int64) {
	run := s.running.get()
	if run.server == nil || s.deadline.Load() != d {
		return // it just finished
	}
	s.sink.Interrupt.Store(errQueryTimeout)
	rt := w.r.rt.Load()
	log := w.r.log.Warn().Uint64("session", s.id).Str("backend", run.server.Addr()).Uint32("thread_id", run.threadID).
		Int("hostgroup", run.server.Key().Hostgroup)
	var err error
	if run.cred != nil {
		err = killQuery(rt, run, run.cred, min(rt.Router.ConnectTimeoutMax, killGrace))
	}
	if err == nil && run.cred != nil {
		// Give the server killGrace to stop the query and answer.
		deadline := time.Now().Add(killGrace)
		for time.Now().Before(deadline) {
			if s.deadline.Load() != d {
				log.Msg("query timed out: killed it on its server (KILL QUERY)")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s.deadline.Load() != d {
		log.Msg("query timed out: killed it on its server (KILL QUERY)")
		return
	}
	run.bc.Abort()
	log.AnErr("kill_error", err).Msg("query timed out and its server did not stop it: closed the query's backend connection")
}
