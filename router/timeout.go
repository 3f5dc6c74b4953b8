package router

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/live"
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
// command's start time the session already read) and one atomic load (is
// the deadline earlier than the watchdog's next look?): no timer per query.
// One watchdog goroutine scans the sessions when something falls due: at
// the earliest time its last scan found, or earlier when a session reports
// something due before that (due). A scan visits every session, so with
// 10 000 mostly idle clients it is not free: scanning every 100 ms cost a
// third of Sluice's CPU at 2 000 queries/s and showed in the latency tail
// (docs/benchmarks.md, "10 000 mostly idle clients"). With the default
// limits (hours) the watchdog scans every watchdogRescan.

// watchdogPurge is how often the query cache is purged, as ProxySQL's
// purge thread; a new runtime (other limits) is noticed this often too.
const watchdogPurge = time.Second

// watchdogRescan bounds the time between two scans.
const watchdogRescan = 10 * time.Second

// killGrace is how long the server has to stop a killed query before the
// proxy cuts the query's connection.
const killGrace = 2 * time.Second

type watchdog struct {
	r    *Router
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// next is when the watchdog scans next (unix ns). A session with
	// something due earlier lowers it and wakes the watchdog. While a scan
	// runs it is math.MaxInt64, so nothing set meanwhile is missed.
	next atomic.Int64
	wake chan struct{}
}

func (r *Router) startWatchdog() {
	w := &watchdog{r: r, stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	r.watchdog = w
	go w.loop()
}

func (w *watchdog) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// due tells the watchdog that something falls due at t (unix ns): a query
// deadline, the end of a transaction's allowed time. It costs one atomic
// load unless t is earlier than the watchdog's next scan.
func (w *watchdog) due(t int64) {
	if !w.lower(t) {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// lower moves the next scan to t if that is earlier, and reports whether
// it did.
func (w *watchdog) lower(t int64) bool {
	for {
		n := w.next.Load()
		if t >= n {
			return false
		}
		if w.next.CompareAndSwap(n, t) {
			return true
		}
	}
}

func (w *watchdog) loop() {
	defer close(w.done)
	t := time.NewTimer(watchdogPurge)
	defer t.Stop()
	var purged time.Time
	var scanned *live.Runtime
	for {
		now := time.Now()
		rt := w.r.rt.Load()
		if now.Sub(purged) >= watchdogPurge {
			// Expired query cache entries, and those over a lowered bound.
			w.r.qcache.SetLimit(rt.Router.QueryCacheBytes)
			w.r.qcache.Purge(now)
			purged = now
		}
		if ns := now.UnixNano(); ns >= w.next.Load() || rt != scanned {
			w.next.Store(math.MaxInt64)
			w.lower(min(w.scan(rt, ns), ns+int64(watchdogRescan)))
			scanned = rt
		}
		t.Reset(min(time.Duration(w.next.Load()-time.Now().UnixNano()), time.Until(purged.Add(watchdogPurge))))
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// scan acts on every session with something due at ns and returns the
// earliest time something else falls due (math.MaxInt64: nothing).
func (w *watchdog) scan(rt *live.Runtime, ns int64) int64 {
	maxTrx, maxIdle := int64(rt.Router.MaxTrxTime), int64(rt.Router.MaxTrxIdleTime)
	next := int64(math.MaxInt64)
	w.r.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		if d := s.deadline.Load(); d != 0 && s.timedOut.Load() == 0 {
			if ns < d {
				next = min(next, d)
			} else if s.timedOut.CompareAndSwap(0, d) {
				go w.expire(s, d)
			}
		}
		if t := w.watchGone(rt, s, ns); t != 0 {
			next = min(next, t)
		}
		if ts := s.pub.trxSince.Load(); ts != 0 && !s.killed.Load() {
			idle := s.pub.command.Load() == cmdSleep
			since := s.pub.since.Load()
			switch {
			case maxTrx > 0 && ns-ts >= maxTrx:
				w.closeTrx(s, "mysql-max_transaction_time", time.Duration(ns-ts))
			case maxIdle > 0 && idle && ns-since >= maxIdle:
				w.closeTrx(s, "mysql-max_transaction_idle_time", time.Duration(ns-since))
			default:
				if maxTrx > 0 {
					next = min(next, ts+maxTrx)
				}
				if maxIdle > 0 && idle {
					next = min(next, since+maxIdle)
				}
			}
		}
		return true
	})
	return next
}

// closeTrx closes the session of a transaction that ran or idled past the
// limit named by limit.
func (w *watchdog) closeTrx(s *session, limit string, took time.Duration) {
	w.r.log.Warn().Uint64("session", s.id).Str("limit", limit).Dur("for", took.Round(time.Millisecond)).
		Msg("closing a session whose transaction exceeded " + limit + ": the server rolls it back")
	w.r.stop(w.r.rt.Load(), s, s.running.get(), "transaction past "+limit)
}

// expire stops the query of s whose deadline d passed.
func (w *watchdog) expire(s *session, d int64) {
	run := s.running.get()
	if run.server == nil || s.deadline.Load() != d {
		return // it just finished
	}
	s.sink.Interrupt.Store(errQueryTimeout)
	if s.deadline.Load() != d {
		// It finished between the two looks, and may have cleared
		// Interrupt before the store: a later 1317 of the session (a
		// KILL QUERY) would read as this timeout's 1907.
		s.sink.Interrupt.CompareAndSwap(errQueryTimeout, nil)
		return
	}
	rt := w.r.rt.Load()
	log := w.r.log.Warn().Uint64("session", s.id).Str("backend", run.server.Addr()).Uint32("thread_id", run.threadID).
		Int("hostgroup", run.server.Key().Hostgroup)
	var err error
	if run.cred != nil {
		err = w.r.killQuery(rt, s, run, run.cred, min(rt.Router.ConnectTimeoutMax, killGrace))
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
	if run.bc.AbortLease(run.lease) {
		w.r.killedConns.Add(1)
	}
	log.AnErr("kill_error", err).Msg("query timed out and its server did not stop it: closed the query's backend connection")
}
