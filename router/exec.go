package router

import (
	"errors"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The one execute loop. Every command that needs a backend — COM_QUERY,
// COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_FIELD_LIST,
// COM_STATISTICS, fast_forward queries and the mirror's copies — is a
// request that run carries out the same way: choose a connection of the
// hostgroup (the session's own, or the pool's, synced to the session),
// register it as running so KILL QUERY can reach it, let the backend
// connection send the command and stream its response to the session's
// sink, count it, and on a backend failure repeat it on a fresh connection
// when nothing reached the client, no transaction is lost and the rule's
// retries allow — also when the server refused to serve it (a Galera node
// not ready, a server shutting down: backend.Hold), then on another server
// of the hostgroup. A fix to any of these steps lands once.

// request is one command for a backend.
type request struct {
	hg      int
	payload []byte        // the command packet, command byte included
	shape   backend.Shape // how its response is laid out
	// retries is how often a failed attempt may be repeated on a fresh
	// connection: mysql-query_retries_on_failure, or the rule's retries.
	retries int
	// repeatable: running the command twice is harmless (reads, PREPARE).
	repeatable bool
	createNew  bool // create_new_connection=1 annotation
	// read: a SELECT that locks nothing (not FOR UPDATE / FOR SHARE / LOCK
	// IN SHARE MODE), which mysql-enforce_autocommit_on_reads=false runs
	// with autocommit=1.
	read bool
	// timeout bounds the backend's answer: the rule's timeout, else
	// mysql-default_query_timeout (0: none). The watchdog (timeout.go)
	// kills the query after it.
	timeout time.Duration

	prepareFailed bool // an EXECUTE's connection refused to prepare it (the client has the ERR)

	stmt    *clientStmt       // COM_STMT_EXECUTE: prepare on the connection first, replay long data
	prepare *globalStmt       // COM_STMT_PREPARE of a statement the cache lacks: filled from the response
	conn    *held             // run on this connection (COM_STMT_FETCH's cursor): no choice, no retry
	meta    *backend.StmtMeta // prepare: where the metadata goes
}

// retriesFor is the number of retries a query gets: the rule's retries
// when a rule set them, else mysql-query_retries_on_failure.
func retriesFor(rt *live.Runtime, ruleRetries int) int {
	if ruleRetries >= 0 {
		return ruleRetries
	}
	return rt.Router.QueryRetries
}

// timeoutFor is the time a query may take: the rule's (or annotation's)
// timeout in ms when one is set, else mysql-default_query_timeout.
func timeoutFor(rt *live.Runtime, ruleTimeout int) time.Duration {
	if ruleTimeout > 0 {
		return time.Duration(ruleTimeout) * time.Millisecond
	}
	return rt.Router.QueryTimeout
}

// localFiles says whether this command may pass a server's request for a
// client file (LOAD DATA LOCAL INFILE) to the client, and if not, what the
// client is told instead. A fast_forward session is relayed whatever
// mysql-enable_load_data_local_infile says, as ProxySQL relays its packets
// without looking at them.
func (s *session) localFiles(rt *live.Runtime) (bool, *wire.SQLError) {
	switch {
	case !rt.Router.LoadDataLocal && !s.user.FastForward:
		return false, backend.ErrLocalInfileOff
	case s.caps&wire.ClientLocalFiles == 0:
		// It could not send the file: the server's own error.
		return false, backend.ErrNoClientLocalFiles
	}
	return true, nil
}

// queryDelay is how long a query waits before it goes to a backend:
// mysql-default_query_delay plus the rule's delay (or query_delay
// annotation), both in milliseconds, as ProxySQL adds them. Queries the
// proxy answers itself (cache hits, OK_msg, error_msg, tracked SET) are not
// delayed.
func queryDelay(rt *live.Runtime, ruleDelay int) time.Duration {
	d := rt.Router.QueryDelay
	if ruleDelay > 0 {
		d += time.Duration(ruleDelay) * time.Millisecond
	}
	return d
}

// pause waits d, or less when the session is killed meanwhile (false).
func (s *session) pause(d time.Duration) bool {
	end := time.Now().Add(d)
	for !s.killed.Load() {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		time.Sleep(min(left, 50*time.Millisecond))
	}
	return false
}

// run executes req and returns the backend's response with the connection
// that served it, still held: the caller settles it (afterQuery, or
// release). h is nil when the command failed and the client got an ERR
// (or, for a headless session, the error was recorded); ok is false when
// the client connection is gone and the session must end.
func (s *session) run(rt *live.Runtime, req *request) (res backend.Response, h *held, ok bool) {
	s.sink.DeprecateEOF, s.sink.Status = s.depr, s.status()
	s.sink.Call = s.digest.Kind == sqlscan.KindCall
	s.sink.LocalFiles, s.sink.NoLocalFiles = s.localFiles(rt)
	autocommitRead := req.read && !rt.Router.EnforceAutocommitOnReads && !s.state.Autocommit
	for attempt := 0; ; attempt++ {
		h = req.conn
		if h == nil {
			var e *wire.SQLError
			h, e = s.acquire(rt, req.hg, req.createNew, autocommitRead)
			s.avoid = nil
			if e != nil {
				s.writeErr(e)
				return res, nil, true
			}
		}
		s.sink.ClearAutocommit = autocommitRead && h.bc.State().Autocommit
		// A server's refusal to serve (backend.Hold) is kept from the client
		// while the command may still go elsewhere: retries left, and
		// nothing on this connection that must stay with the session.
		s.sink.Hold = backend.HoldNone
		if req.conn == nil && attempt < req.retries && !h.pinned(rt, s) {
			s.sink.Hold = backend.HoldNotRun
			if req.repeatable {
				s.sink.Hold = backend.HoldAny
			}
		}
		if req.conn == nil {
			s.checkRuntime(rt, h)
		}
		s.noteConn(h)
		var sent time.Time
		if rt.Router.StatsTimeBackend {
			sent = time.Now()
		}
		s.setRunning(h)
		if s.killedByProxy() {
			// A KILL QUERY came before the command reached the server.
			s.setRunning(nil)
			s.sink.Hold = backend.HoldNone
			res = backend.Response{Err: errInterrupted()}
			s.noteOutcome(res.Err, 0, -1)
			s.writeErr(res.Err)
			return res, h, true
		}
		if rt.Router.KillBackendOnDisconnect && !s.headless {
			// The watchdog looks at the client of a query that runs for
			// goneAfter (watchGone); one atomic load unless its next look
			// is later than that.
			s.r.watchdog.due(s.cmdStart.UnixNano() + int64(goneAfter))
		}
		if req.timeout > 0 && !s.headless {
			d := s.cmdStart.UnixNano() + int64(req.timeout)
			s.deadline.Store(d)
			s.r.watchdog.due(d)
		}
		var err error
		out0 := s.c.BytesWritten()
		res, err = s.exchange(h, req)
		s.sink.Hold = backend.HoldNone
		s.setRunning(nil)
		timedOut := false
		if req.timeout > 0 {
			s.deadline.Store(0)
			if s.timedOut.Load() != 0 {
				timedOut = true
				s.timedOut.Store(0)
				s.sink.Interrupt.Store(nil)
			}
		}
		if rt.Router.StatsTimeBackend {
			s.r.stats.Add(s.id, stats.BackendQueryTimeNsec, int64(time.Since(sent)))
		}
		if err == nil && res.Refused != nil {
			// The server refused the command without running it (a Galera
			// node not ready, a server shutting down): counted against it
			// as a failed connect, the connection closed, the command sent
			// to another server of the hostgroup, as ProxySQL does.
			h.bc.Refused(res.Refused)
			s.noteError(req.hg, h.server, res.Refused.Code, res.Refused.Message)
			s.discard(h)
			if !s.killed.Load() {
				s.avoid = h.server
				continue
			}
			s.writeErr(res.Refused)
			return res, nil, true
		}
		if err == nil {
			// The command's time so far (its start was read at beginCommand:
			// one clock read here) is the server's latency as clients see it.
			var took time.Duration
			if !s.headless {
				took = time.Since(s.cmdStart)
			}
			h.server.CountQuery(took)
			rows := int64(-1)
			if res.Err == nil && res.OK {
				rows = int64(res.Affected)
			}
			s.noteOutcome(res.Err, res.Warnings, rows)
			if res.Err == nil && (res.OK || res.ResultSets > 0) {
				// The server's status says how the session's sql_mode
				// makes clients escape strings; a session with the
				// servers' default teaches new sessions what it is.
				f := res.Status & backend.ModeBits
				s.modeFlags = f
				if !s.ownMode && s.lockedHG < 0 && !s.headless && s.digest.Kind != sqlscan.KindSet {
					backend.NoteDefaultMode(f)
				}
			}
			if res.Err != nil {
				msg := errorMessage(res.Err, req, s.dialect())
				s.noteError(req.hg, h.server, res.Err.Code, msg)
				s.logQueryError(h, res.Err.Code, msg, rt.Router.VerboseQueryError)
			}
			return res, h, true
		}
		if errors.Is(err, backend.ErrClientGone) {
			s.discard(h)
			return res, nil, false
		}
		if se, ok := backend.ClosedWith(err); ok {
			// The server refused the command unread and closed (a packet
			// over its max_allowed_packet): its answer is the client's, as
			// on a direct connection, and the session goes on with another
			// connection. Nothing says the server failed; its pool stays.
			s.noteOutcome(se, 0, -1)
			s.noteError(req.hg, h.server, se.Code, se.Message)
			if lost := s.lose(h); lost != nil {
				s.writeErr(lost)
			} else {
				s.writeErr(se)
			}
			return res, nil, true
		}
		// The backend failed. What the session held there that the proxy
		// carries follows it to the next connection; if nothing else was
		// lost and nothing reached the client, repeat the command there.
		// A connection cut because the session was killed (KILL, from a
		// client or the admin) says nothing of its server.
		if !s.killed.Load() {
			h.server.CountError()
			if !timedOut {
				// A connection that broke under a command says the server
				// (or the path to it) failed: its idle connections are
				// suspect too, and a retry must not take one of them (a
				// server that was killed leaves a pool of dead sockets).
				// They are closed; a healthy server's pool refills on
				// demand.
				h.server.CloseIdle()
			}
			s.noteError(req.hg, h.server, 2013, "Lost connection to backend: "+err.Error())
			s.r.lostLog.Event(time.Now(), s.log.Warn, "more_not_logged").Err(err).Int("hostgroup", req.hg).
				Str("backend", h.addr).Bool("timed_out", timedOut).Msg("a backend connection broke while running a statement")
		}
		lost := s.lose(h)
		if timedOut && lost == nil {
			// The proxy cut the connection of a query past its timeout (its
			// server did not answer KILL QUERY): not a failure to retry.
			lost = errQueryTimeout
		}
		if s.killCut.Swap(false) && lost == nil {
			lost = errInterrupted() // a KILL QUERY its server could not hear
		}
		if s.c.Torn() {
			// Part of a packet reached the client: whatever the proxy
			// wrote now would be read as its rest, and the client would
			// wait for ever. Its connection is closed, as a direct one
			// to the server would be (2013).
			s.log.Warn().Err(err).Str("backend", h.addr).Msg("backend failed in the middle of a packet to the client: closing the client connection")
			return res, nil, false
		}
		// Anything of the response already written to the client (a
		// column count, definitions) rules out running the command again:
		// the client would read a second answer.
		wrote := s.c.BytesWritten() != out0
		if lost == nil && req.conn == nil && !res.Started() && !wrote && req.repeatable && attempt < req.retries && !s.killed.Load() {
			s.log.Debug().Err(err).Int("hostgroup", req.hg).Str("backend", h.addr).Msg("backend failed, retrying")
			// Another server if there is one: a server killed under load
			// is not shunned yet when its connections start failing, and
			// the retry took another of its pooled connections (just
			// given back by a session that had not failed yet) and failed
			// the same way — the client got 1927 with two servers up.
			s.avoid = h.server
			continue
		}
		if lost == nil {
			lost = errLostBackend(req.hg, h.addr)
		}
		s.writeErr(lost)
		return res, nil, true
	}
}

// exchange is one attempt of req on h: the backend connection sends the
// command and streams the response to the session's sink.
func (s *session) exchange(h *held, req *request) (backend.Response, error) {
	switch {
	case req.prepare != nil:
		s.r.stats.Add(s.id, stats.ComBackendStmtPrepare, 1)
		_, err := h.bc.Prepare(req.prepare.id, &req.prepare.servers, req.prepare.key.schema, req.prepare.sql, req.meta)
		if se, ok := backend.IsSQLError(err); ok {
			return s.prepareRefused(se), nil
		}
		return backend.Response{}, err
	case req.stmt != nil:
		return s.executeOn(h, req)
	}
	return h.bc.Run(req.payload, req.shape, &s.sink)
}

// prepareRefused is the response to a PREPARE the server refused: held for
// a retry elsewhere when it is a refusal the sink holds (backend.Hold), as
// the response walker holds one to any other command; else the ERR.
func (s *session) prepareRefused(se *wire.SQLError) backend.Response {
	if s.sink.Hold.Holds(se) {
		return backend.Response{Refused: se}
	}
	return backend.Response{Err: se}
}

// locksNothing reports whether a statement is a SELECT that takes no row
// locks (ProxySQL's is_select_NOT_for_update): the reads
// mysql-enforce_autocommit_on_reads=false runs outside a transaction.
func locksNothing(k sqlscan.StmtKind, digest []byte) bool {
	return k == sqlscan.KindSelect && !sqlscan.ContainsFold(digest, "FOR UPDATE") &&
		!sqlscan.ContainsFold(digest, "FOR SHARE") && !sqlscan.ContainsFold(digest, "LOCK IN SHARE MODE")
}

// safeToRepeat reports whether a statement of this kind may run twice when
// the backend failed without answering: reads, and the start of a
// transaction (one begun on a connection that broke died with it). A write
// may have been applied before the connection broke, and running it again
// would apply it twice; the client gets the error and decides.
func safeToRepeat(k sqlscan.StmtKind) bool {
	switch k {
	case sqlscan.KindSelect, sqlscan.KindShow, sqlscan.KindShowTableStatus, sqlscan.KindDescribe, sqlscan.KindExplain,
		sqlscan.KindBegin, sqlscan.KindStartTransaction:
		return true
	}
	return false
}

// follow says whose hostgroup a command follows instead of the rules'.
type follow uint8

const (
	followRules    follow = iota
	followWarnings        // SHOW WARNINGS, GET DIAGNOSTICS…: where the last query left its conditions
	followWrite           // LAST_INSERT_ID() or @@IDENTITY: where the last write ran
)

// followOf classifies a statement by its kind and digest text.
func followOf(kind sqlscan.StmtKind, digest []byte) follow {
	switch {
	case readsDiagnostics(kind, digest):
		return followWarnings
	case mentionsInsertID(digest):
		return followWrite
	}
	return followRules
}

// hostgroup picks the destination of a command (reference §4.5): dest, the
// rules' destination (-1: the user's default hostgroup), overridden by a
// transaction-persistent pin; SHOW WARNINGS goes where the warnings are,
// and LAST_INSERT_ID() where the last write ran while the session still
// holds that connection (ProxySQL #1421); then checked against a hostgroup
// lock (ERR 9006). Every command that needs a backend asks here.
func (s *session) hostgroup(dest int, f follow) (int, *wire.SQLError) {
	hg := s.user.DefaultHostgroup
	if dest >= 0 {
		hg = dest
	}
	if s.trxHG >= 0 {
		hg = s.trxHG
	}
	switch f {
	case followWarnings:
		if s.warningsHG >= 0 {
			hg = s.warningsHG
		}
	case followWrite:
		if h := s.writeHeld(); h != nil {
			hg = h.hg
		}
	}
	if s.lockedHG >= 0 && hg != s.lockedHG {
		s.r.stats.Add(s.id, stats.HostgroupLockedQueries, 1)
		return 0, errLockedHostgroup(s.lockedHG, hg)
	}
	return hg, nil
}

// checkRuntime verifies that the connection a command runs on was handed
// out under the runtime the command started with (pool options, and so
// init_connect and the age limit). A mismatch would mean some path read the
// configuration a second way; it is counted (stats_mysql_global
// Runtime_mixed_commands) and must stay 0.
func (s *session) checkRuntime(rt *live.Runtime, h *held) {
	if h.bc.Options() != rt.Backend {
		s.r.mixed.Add(1)
	}
}
