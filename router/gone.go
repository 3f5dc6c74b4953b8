package router

import (
	"time"

	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// mysql-kill_backend_connection_when_disconnect (ProxySQL's default true):
// a client that goes away while its query runs does not leave the query
// running on the server. The watchdog looks at the sessions whose query
// has run for goneAfter or more, once a second while there are any (and
// only then: a quick query costs nothing), and peeks at their client
// sockets; a client that closed or reset its connection has its session
// closed and its query killed on the server (KILL QUERY, then the backend
// connection is cut), as a query past its timeout is.

// goneAfter is how long a query runs before its client is looked at.
const goneAfter = time.Second

// watchGone reports whether s runs a query that has run for goneAfter at
// ns, and kills it if its client is gone. It returns when to look again
// (0: nothing to watch).
func (w *watchdog) watchGone(rt *live.Runtime, s *session, ns int64) int64 {
	if !rt.Router.KillBackendOnDisconnect || s.headless || s.killed.Load() || s.pub.command.Load() == cmdSleep {
		return 0
	}
	since := s.pub.since.Load()
	if ns-since < int64(goneAfter) {
		return since + int64(goneAfter)
	}
	run := s.running.get()
	if run.server == nil {
		return 0 // not waiting on a server
	}
	// Bytes waiting (a pipelined command, a TLS close_notify) read as a
	// live client.
	if wire.Peek(s.nc) != wire.PeekClosed {
		return ns + int64(time.Second)
	}
	w.r.stop(rt, s, run, "client disconnected while its query ran")
	return 0
}

// stop ends session s — KILL CONNECTION on either port, a client gone
// mid-query, a transaction past its limit — and does not leave the query
// it runs (run, read before the kill) going on its server: with
// mysql-kill_backend_connection_when_disconnect (ProxySQL kills a backend
// connection that is not idle when it destroys it) the query is killed from
// another connection (KILL QUERY), and the backend connection is cut. A
// session that waits on no server just ends. The kill runs in the
// background: the caller does not wait for the server.
func (r *Router) stop(rt *live.Runtime, s *session, run running, why string) {
	s.kill()
	if run.server == nil {
		return
	}
	go func() {
		log := r.log.Warn().Uint64("session", s.id).Str("backend", run.server.Addr()).Uint32("thread_id", run.threadID).
			Int("hostgroup", run.server.Key().Hostgroup)
		killed := rt.Router.KillBackendOnDisconnect && run.cred != nil
		var err error
		if killed {
			err = r.killQuery(rt, s, run, run.cred, min(rt.Router.ConnectTimeoutMax, killGrace))
		}
		if run.bc.AbortLease(run.lease) {
			r.killedConns.Add(1)
		}
		if killed {
			log.AnErr("kill_error", err).Msg(why + ": killed the query on its server (mysql-kill_backend_connection_when_disconnect)")
		} else {
			log.Msg(why + ": cut the backend connection of the query it ran")
		}
	}()
}
