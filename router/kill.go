package router

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// running is what a session is executing on a backend right now, for
// KILL QUERY from another session.
type running struct {
	server   *backend.Server
	threadID uint32
	bc       *backend.BackendConn
	lease    uint64               // bc's use by this session (BackendConn.AbortLease)
	cred     *backend.Credentials // the session's login, for the watchdog's KILL QUERY
	seq      uint64               // which of the session's queries (runningSlot.still)
}

// runningSlot publishes the session's running query. A per-session mutex,
// uncontended except while a KILL QUERY reads it, keeps the two fields
// consistent without allocating per query.
type runningSlot struct {
	mu  sync.Mutex
	run running
	seq uint64
}

func (r *runningSlot) set(v running) {
	r.mu.Lock()
	if v.server != nil {
		r.seq++
		v.seq = r.seq
	}
	r.run = v
	r.mu.Unlock()
}

// still reports whether the query run was read from (running.seq) is the
// one running now. A connection pinned to its session keeps its lease from
// one query to the next: only this tells a KILL QUERY that the query it was
// aimed at has ended and the thread runs the session's next one.
func (r *runningSlot) still(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run.server != nil && r.run.seq == seq
}

func (r *runningSlot) get() running {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

// setRunning records (or, with nil, clears) the backend connection the
// session is waiting on, and brackets the command on its server's Busy
// count. The session is the slot's only writer: it reads its own run
// without the lock.
func (s *session) setRunning(h *held) {
	if prev := s.running.run.server; prev != nil {
		prev.EndCommand()
	}
	if h == nil {
		s.running.set(running{})
		return
	}
	h.server.BeginCommand()
	s.running.set(running{server: h.server, threadID: h.bc.ThreadID(), bc: h.bc, lease: h.bc.Lease(), cred: s.cred})
}

// killedByProxy reports whether the proxy killed the session's current
// command (killAt).
func (s *session) killedByProxy() bool {
	k := s.killAt.Load()
	return k != 0 && k == s.pub.since.Load()
}

// parseKill parses "KILL [CONNECTION|QUERY] <id>"; query reports QUERY.
func parseKill(q []byte) (id uint64, query, ok bool) {
	f := sqlWords(q)
	if len(f) < 2 || len(f) > 4 || !bytes.EqualFold(f[0], []byte("KILL")) {
		return 0, false, false
	}
	f = f[1:]
	// MariaDB's KILL [HARD | SOFT]: SOFT lets a critical operation
	// finish first; the proxy's KILL waits for nothing either way.
	if len(f) > 1 && (bytes.EqualFold(f[0], []byte("HARD")) || bytes.EqualFold(f[0], []byte("SOFT"))) {
		f = f[1:]
	}
	if len(f) == 2 {
		switch {
		case bytes.EqualFold(f[0], []byte("QUERY")):
			query = true
		case bytes.EqualFold(f[0], []byte("CONNECTION")):
		default:
			return 0, false, false // KILL USER u, KILL QUERY ID n: the server's
		}
		f = f[1:]
	}
	if len(f) != 1 {
		return 0, false, false
	}
	n := f[0]
	if len(n) > 2 && n[0] == '(' && n[len(n)-1] == ')' { // KILL (42)
		n = n[1 : len(n)-1]
	}
	id, err := strconv.ParseUint(string(n), 10, 64)
	return id, query, err == nil
}

// sqlWords splits a short statement (KILL, SELECT CONNECTION_ID()) into
// its words, without comments (/* … */, # …, -- …) and the trailing
// semicolon; the words end at an executable comment (its text is the
// server's to read).
func sqlWords(q []byte) [][]byte {
	var words [][]byte
	for i := sqlscan.SkipSpace(q, 0); i >= 0 && i < len(q); i = sqlscan.SkipSpace(q, i) {
		if q[i] == ';' {
			i++
			continue
		}
		j := i + 1
		for j < len(q) && !sqlscan.IsSpace(q[j]) && q[j] != ';' && !sqlscan.IsCommentStart(q, j) {
			j++
		}
		words = append(words, q[i:j])
		i = j
	}
	return words
}

// killCommand serves KILL [CONNECTION|QUERY] <id> on the data port, where ids are
// Sluice session ids (what SELECT CONNECTION_ID() returns), as in ProxySQL.
// KILL QUERY runs KILL QUERY for the backend thread the session waits on,
// from another connection to the same server.
//
// The id may also be a backend thread id — what SHOW PROCESSLIST and
// CONNECTION_ID() in any other spelling return, since they run on a
// server: the session of the killer's user whose query runs on that thread
// is the target. Session ids start at sessionIDBase, far above the thread
// ids of servers, so one id never names a session and another session's
// thread (before, KILL of a processlist id could end an unrelated session
// whose own id happened to be that number).
func (s *session) killCommand(rt *live.Runtime, id uint64, query bool) *wire.SQLError {
	var target *session
	if v, ok := s.r.sessions.Load(id); ok {
		target = v.(*session)
	} else {
		var e *wire.SQLError
		if target, e = s.r.sessionOnThread(id, s.username); e != nil {
			return e
		}
	}
	if target == nil {
		return errUnknownThread(id)
	}
	// As on a MySQL server without CONNECTION ADMIN, and as ProxySQL kills
	// only sessions of the killer's user: another user's session is not
	// this session's to stop.
	if target != s && target.publishedUser() != s.username {
		return errKillDenied(id)
	}
	if !query {
		if target == s {
			// As MariaDB, the client is told before its connection
			// closes (it used to see only the connection drop: 2013).
			s.writeErr(&wire.SQLError{Code: 1927, State: "70100", Message: "Connection was killed"})
		}
		s.r.stop(rt, target, target.running.get(), "session killed (KILL CONNECTION)")
		return nil
	}
	if target == s {
		// As MariaDB: the KILL QUERY is the session's running query.
		return errInterrupted()
	}
	run := target.running.get()
	if run.server == nil {
		// Nothing running on a server. A command the client sent that has
		// not reached one yet (waiting for a connection, a delay) is
		// interrupted when it would, as a server's KILL QUERY interrupts
		// a query it is still parsing; an idle session has nothing to stop.
		if since := target.pub.since.Load(); target.pub.command.Load() != cmdSleep {
			target.killAt.Store(since)
		}
		// The command may have reached its server between the look above
		// and the record (it looks at killAt right after it is marked
		// running): then it is stopped there.
		if run = target.running.get(); run.server == nil {
			return nil
		}
	}
	cred, e := s.credentials(rt)
	if e != nil {
		return e
	}
	err := s.r.killQuery(rt, target, run, cred, rt.Router.ConnectTimeoutMax)
	if se, ok := backend.IsSQLError(err); ok {
		return se
	}
	if err != nil {
		// The server cannot be reached to stop the query (frozen, gone):
		// the query's backend connection is cut instead, as a query
		// timeout's is, so its client does not wait on it; the KILL
		// succeeds, as it would on a server.
		target.killCut.Store(true)
		cut := target.running.still(run.seq) && run.bc.AbortLease(run.lease)
		if cut {
			s.r.killedConns.Add(1)
		} else {
			target.killCut.Store(false)
		}
		s.log.Warn().Err(err).Uint64("target", id).Str("backend", run.server.Addr()).Bool("cut", cut).
			Msg("KILL QUERY could not reach the query's server: closed the query's backend connection")
	}
	return nil
}

// killQuery runs KILL QUERY for the backend thread of run, the query
// session s runs, within timeout, from an idle pooled connection of cred
// to the same server if there is one, else from one opened for it and
// closed after, outside the pool, as ProxySQL's kill_query_thread's: a pool
// at its max_connections — when queries pile up and time out — must not
// keep the KILL from being sent. A query that ended meanwhile is not killed: its thread may run the
// session's next query, or another session's.
func (r *Router) killQuery(rt *live.Runtime, s *session, run running, cred *backend.Credentials, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// An idle pooled connection of the user, when there is one, saves the
	// connect and login (slow on a loaded server, where timeouts fire).
	st := backend.State{Autocommit: true}
	pool := run.server.Pool()
	bc := pool.TryGet(rt.Backend, cred.User, &st, st.Fingerprint())
	if bc != nil {
		defer pool.Put(bc)
	} else {
		k := run.server.Key()
		var err error
		if bc, err = backend.DialSSL(ctx, k.Host, k.Port, run.server.UseSSL() != 0, rt.Backend, cred); err != nil {
			return err
		}
		defer bc.Close()
	}
	since := s.pub.since.Load() // the command's, read before the check: never a later one's
	if !s.running.still(run.seq) || run.bc.Lease() != run.lease {
		return nil
	}
	// The kill is the proxy's before it is sent: the server's 1317 reaches
	// the session as soon as the query stops, and read before killAt was
	// set it counted as the server's error. A KILL that failed takes it back.
	prev := s.killAt.Swap(since)
	err := bc.Exec(ctx, "KILL QUERY "+strconv.FormatUint(uint64(run.threadID), 10))
	if err != nil {
		s.killAt.CompareAndSwap(since, prev)
		return err
	}
	r.killedQueries.Add(1)
	return nil
}

// sessionOnThread finds the session of user whose query runs on backend
// thread id. Thread ids are per server: when sessions on two servers run
// on threads of that number, the id names neither, and the error says so.
func (r *Router) sessionOnThread(id uint64, user string) (*session, *wire.SQLError) {
	if id > math.MaxUint32 {
		return nil, nil
	}
	var found *session
	var servers []string
	r.sessions.Range(func(_, v any) bool {
		c := v.(*session)
		run := c.running.get()
		if run.server == nil || uint64(run.threadID) != id || c.publishedUser() != user {
			return true
		}
		found = c
		servers = append(servers, run.server.Addr())
		return true
	})
	if len(servers) > 1 {
		return nil, &wire.SQLError{Code: 1094, State: "HY000", Message: fmt.Sprintf(
			"Unknown thread id: %d (thread %d runs queries of this user on several servers: %s; KILL the session id from SELECT CONNECTION_ID() or stats_mysql_processlist)",
			id, id, strings.Join(servers, ", "))}
	}
	return found, nil
}
