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
	go w.disconnected(rt, s, run)
	return 0
}

// disconnected ends the session of a client that went away and stops its
// query on the server.
func (w *watchdog) disconnected(rt *live.Runtime, s *session, run running) {
	log := w.r.log.Warn().Uint64("session", s.id).Str("backend", run.server.Addr()).Uint32("thread_id", run.threadID).
		Int("hostgroup", run.server.Key().Hostgroup)
	s.kill()
	var err error
	if run.cred != nil {
		err = killQuery(rt, run, run.cred, min(rt.Router.ConnectTimeoutMax, killGrace))
	}
	run.bc.Abort()
	log.AnErr("kill_error", err).Msg("client disconnected while its query ran: killed the query on its server (mysql-kill_backend_connection_when_disconnect)")
}
