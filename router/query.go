package router

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// comQuery runs one COM_QUERY: the hot path of DESIGN.md §3. p is the whole
// packet payload (command byte included); it stays valid until the next
// read from the client, which happens only after the response is sent.
func (s *session) comQuery(rt *live.Runtime, p []byte) bool {
	start := s.cmdStart // set by beginCommand
	q := p[1:]
	if len(bytes.TrimSpace(q)) == 0 || (len(q) == 1 && q[0] == ';') {
		s.writeErr(errEmptyQuery())
		return true
	}
	if s.user.FastForward {
		return s.fastForward(rt, p, backend.ShapeResult)
	}
	if isInternalCommand(q) {
		return s.writeInternal(rt, q) == nil
	}
	if s.digesterOpts != rt.Digest {
		s.digester, s.digesterOpts = sqlscan.NewDigester(rt.Digest), rt.Digest
	}
	d := s.dialect()
	s.digester.Digest(&s.digest, q, d)
	s.startQuery()

	// Canned answers ProxySQL gives before the rules (reference §3.1).
	if s.digest.Kind == sqlscan.KindSelect {
		if k, col := localQuery(q); k != localNone {
			return s.writeLocal(rt, k, col, false) == nil
		}
	}

	q2 := &s.query
	*q2 = rules.Query{
		User: s.username, Schema: s.state.Schema, ClientAddr: s.clientIP,
		ProxyAddr: s.proxyAddr, ProxyPort: s.proxyPort,
		DigestHash: s.digest.Hash, DigestText: s.digest.Text, FirstComment: s.digest.FirstComment,
		Text: q, NextQueryFlagIN: s.nextFlagIN, MirrorFlagOUT: -1, MirrorHostgroup: -1,
	}
	dec := &s.decision
	firewallOff := s.match(rt, dec)
	if rt.Router.StatsTimeQP {
		s.r.stats.Add(s.id, stats.QueryProcessorTimeNsec, int64(time.Since(start)))
	}
	rewritten := dec.Rewritten // q is not the client's text: the packet is rebuilt
	if dec.Rewritten {
		// What runs is the rewritten query, and it is what the digest
		// stats, the events log and everything below (statement kind,
		// read/write follow, pinning, the cache) see, as ProxySQL digests
		// the new packet again. The rules matched the original.
		q = dec.NewQuery
		s.digester.Digest(&s.digest, q, d)
		q2.Text, q2.DigestHash, q2.DigestText, q2.FirstComment = q, s.digest.Hash, s.digest.Text, s.digest.FirstComment
	}
	ev := s.newEvent(rt, dec, start, q)

	switch {
	case dec.HasOKMsg:
		s.finishEvent(ev, -1, "", backend.Response{OK: true})
		return s.writeOK(0, 0, dec.OKMsg) == nil
	case dec.HasErrorMsg:
		s.finishEvent(ev, -1, "", backend.Response{})
		s.writeErr(errRuleMessage(dec.ErrorMsg))
		return true
	}
	// As ProxySQL, a query the rules answer themselves (OK_msg,
	// error_msg) leaves the flagIN of the next one as it was.
	if dec.NextQueryFlagIN != rules.Unset {
		s.nextFlagIN = dec.NextQueryFlagIN
	}
	if s.sqlInjection(rt, q, firewallOff) {
		s.finishEvent(ev, -1, "", backend.Response{})
		return false
	}
	if s.diag.kind != diagNone {
		if handled, ok := s.answerDiag(); handled {
			s.finishEvent(ev, -1, "", backend.Response{ResultSets: 1})
			return ok
		}
		if s.diag.kind == diagGet && s.diagHeld() == nil {
			if set, ok := s.diagnosticsAsSet(q); ok {
				q = set // the SET of its variables, from the session's record (getdiag.go)
				s.digester.Digest(&s.digest, q, d)
				rewritten = true
			}
		}
	}

	var set sqlscan.SetStatement
	stateText := q // what the SET parser and the hidden-state check read
	switch s.digest.Kind {
	case sqlscan.KindSet:
		if body, ok := s.execBody(q); ok {
			stateText = body
		}
		set = sqlscan.ParseSet(stateText, d)
		if e := setCharsetRefused(&set); set.Outcome == sqlscan.SetTracked && e != nil {
			s.finishEvent(ev, -1, "", backend.Response{})
			s.writeErr(e)
			return true
		}
		if set.Outcome == sqlscan.SetTracked && s.lockedHG < 0 && !hasNextTransaction(&set) {
			// Tracked variables are answered without a backend and replayed
			// on whichever connection serves the session next.
			prev := s.state
			applySet(&s.state, &set)
			if e := s.syncHeldFor(rt, &set); e != nil {
				s.state = prev
				s.finishEvent(ev, -1, "", backend.Response{Err: e})
				s.writeErr(e)
				return true
			}
			s.noteUnconfirmed(&prev)
			s.noteSQLMode(&set)
			if setsAutocommit(&set) {
				s.r.stats.Add(s.id, stats.ComAutocommitFiltered, 1)
			}
			if len(set.Assignments) > 0 && set.Assignments[0].Kind == sqlscan.AssignNames {
				s.r.stats.Add(s.id, stats.ComFrontendSetNames, 1)
			}
			s.finishEvent(ev, -1, "", backend.Response{OK: true})
			return s.writeOK(0, 0, "") == nil
		}
	case sqlscan.KindCommit, sqlscan.KindRollback:
		// No transaction open on any backend connection of the session:
		// nothing to commit or roll back, so answer here, as ProxySQL does
		// (counted in Com_commit_filtered / Com_rollback_filtered) — unless
		// a SET TRANSACTION waits there for the next transaction: the
		// server drops it at a COMMIT or ROLLBACK.
		if !s.conns.mayBeInTransaction() && !s.conns.nextTransactionSet() && s.lockedHG < 0 {
			s.finishEvent(ev, -1, "", backend.Response{OK: true})
			return s.writeOK(0, 0, "") == nil && !releasesSession(s.digest.Text, s.completionRelease)
		}
	case sqlscan.KindKill:
		if id, query, ok := parseKill(q); ok {
			if e := s.killCommand(rt, id, query); e != nil {
				s.writeErr(e)
				return true
			}
			s.finishEvent(ev, -1, "", backend.Response{OK: true})
			return s.writeOK(0, 0, "") == nil
		}
	case sqlscan.KindUse:
		if db, ok := parseUse(q); ok {
			if e := s.changeSchema(rt, db); e != nil {
				s.writeErr(e)
				return true
			}
			s.r.stats.Add(s.id, stats.ComFrontendUseDB, 1)
			s.finishEvent(ev, -1, "", backend.Response{OK: true})
			return s.writeOK(0, 0, "") == nil
		}
		// A USE the proxy cannot read (an executable comment, a quoting
		// it does not know) runs on the server, and the schema it may
		// change is not seen: the session keeps the connection, as after
		// a SET it cannot parse, and the schema is read back. Pooled, it
		// gave the next session that schema.
		set = sqlscan.SetStatement{Outcome: sqlscan.SetLock, Reason: reasonUnparsedUse}
	}

	if set.Outcome != sqlscan.SetLock && sqlscan.HiddenStateChange(stateText, d, s.state.MultiStatements) {
		// A SET or USE further into a multi-statement query, or in an
		// executable comment not every server runs, changes the connection
		// in ways the proxy does not see: the session keeps the connection,
		// as after a SET the proxy cannot parse (ProxySQL locks on a
		// multi-statement SET too). Pooled, it would carry another schema,
		// time_zone or sql_mode to the next session.
		set = sqlscan.SetStatement{Outcome: sqlscan.SetLock, Reason: reasonMultiStatement}
	}
	fl := followOf(s.digest.Kind, s.digest.Text)
	if fl == followWrite && s.writeHeld() == nil {
		// The connection of the last write is gone: the plain forms are
		// answered with the id the proxy saw (ProxySQL #1421).
		if name, ok := plainInsertID(q); ok {
			s.finishEvent(ev, -1, "", backend.Response{})
			return s.writeInsertID(name, false) == nil
		}
	}
	if !s.state.Autocommit && !rt.Router.EnforceAutocommitOnReads && s.digest.Kind == sqlscan.KindSelect {
		if name, ok := plainSelect(q, "@@autocommit", "@@session.autocommit"); ok {
			s.finishEvent(ev, -1, "", backend.Response{})
			return s.writeAutocommitOff(name) == nil
		}
	}
	caching := fl == followRules && cachedKind(s.digest.Kind, s.digest.Text) && s.cacheable(rt, dec) && !readsUserVars(q, d)
	if caching {
		s.buildCacheKey(q)
		if res, hit, sent := s.serveCached(rt); hit {
			s.finishEvent(ev, -1, "", res)
			return sent
		}
	}
	hg, e := s.hostgroup(dec.DestinationHostgroup, fl)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.noteHostgroup(hg)
	if set.Outcome != sqlscan.SetNotSet && setsAutocommit(&set) {
		s.r.stats.Add(s.id, stats.ComAutocommit, 1)
	}
	if rewritten {
		s.scratch = append(append(s.scratch[:0], wire.ComQuery), q...)
		p = s.scratch
	}
	if d := queryDelay(rt, dec.Delay); d > 0 && !s.pause(d) {
		return false
	}
	if s.digest.Kind == sqlscan.KindLoad && !s.armed.IsZero() {
		// LOAD DATA LOCAL reads its file from the client within the
		// command: an upload is not idle time (mysql-wait_timeout).
		_ = s.nc.SetReadDeadline(time.Time{})
		s.armed = time.Time{}
	}
	s.req = request{hg: hg, payload: p, shape: backend.ShapeResult, retries: retriesFor(rt, dec.Retries),
		repeatable: safeToRepeat(s.digest.Kind), createNew: dec.CreateNewConnection, timeout: timeoutFor(rt, dec.Timeout),
		read: !s.state.Autocommit && locksNothing(s.digest.Kind, s.digest.Text)}
	res, h, ok := s.runCaching(rt, dec, caching)
	if !ok {
		return false
	}
	if h == nil {
		return true // an error was sent
	}
	if set.Outcome == sqlscan.SetLock && set.Computed && res.Err == nil {
		// Tracked variables set to expressions (Connector/J's sql_mode =
		// CONCAT(@@sql_mode, …)) ran on the server: their values are read
		// back and tracked like literals, so the session is not locked.
		s.readComputed(rt, h, &set)
	}
	s.ranSet(rt, h, &set, hg, q, res.Err)
	addr := h.addr // afterQuery may recycle h
	if (s.digest.Kind == sqlscan.KindCommit || s.digest.Kind == sqlscan.KindRollback) && res.Err == nil && releasesSession(s.digest.Text, s.completionRelease) {
		// COMMIT RELEASE / ROLLBACK RELEASE: the server closes the
		// connection after its OK (never to be pooled: the next session
		// would meet the close), and the client's session ends with it,
		// as on a direct connection.
		s.discard(h)
		s.finishEvent(ev, hg, addr, res)
		return false
	}
	if fl == followWrite && res.Err == nil {
		// SELECT LAST_INSERT_ID(42) sets the id as an insert would; an
		// expression's value is read back from the connection.
		if v, ok := insertIDArg(q); ok {
			s.lastID = v
		} else if res.ResultSets > 0 && hasInsertIDArg(q) {
			s.readInsertID(rt, h)
		}
	}
	s.afterQuery(rt, h, &res, dec, &set, q)
	s.finishEvent(ev, hg, addr, res)
	s.mirror(rt, dec, wire.ComQuery, q, nil)
	return true
}

func hasNextTransaction(set *sqlscan.SetStatement) bool {
	for _, a := range set.Assignments {
		if a.NextTransaction {
			return true
		}
	}
	return false
}

// execBody returns the text of a statement that is one executable comment
// every server runs — mariadb-dump's /*M!100100 SET … */ — once every
// server of the proxy is known to be MariaDB at the comment's version or
// above (their handshakes, pooled or the monitor's). Without that the
// comment is ambiguous (MySQL skips /*M!) and the SET locks the session.
func (s *session) execBody(q []byte) ([]byte, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(q), []byte("/*")) {
		return nil, false
	}
	floor := int64(0)
	for _, srv := range s.r.cfg.Registry.Servers() {
		v := srv.MariaDBVersionNumber()
		if v <= 0 {
			return nil, false // not MariaDB, or not known yet
		}
		if floor == 0 || v < floor {
			floor = v
		}
	}
	return sqlscan.UnwrapExecComment(q, floor)
}

// releasesSession reports whether digest is a COMMIT or ROLLBACK with
// RELEASE (not NO RELEASE), or, under completion_type=RELEASE (byDefault),
// one without NO RELEASE or AND CHAIN: the server closes the connection
// after it.
func releasesSession(digest []byte, byDefault bool) bool {
	d := bytes.TrimRight(digest, " ;")
	if !hasPrefixFold(d, "COMMIT") && !hasPrefixFold(d, "ROLLBACK") || sqlscan.ContainsFold(d, " TO ") {
		return false // ROLLBACK TO SAVEPOINT release
	}
	const rel, norel, chain, nochain = " RELEASE", " NO RELEASE", " CHAIN", " NO CHAIN"
	if hasSuffixFold(d, norel) {
		return false
	}
	if hasSuffixFold(d, rel) {
		return true
	}
	return byDefault && (!sqlscan.ContainsFold(d, chain) || sqlscan.ContainsFold(d, nochain))
}

func hasSuffixFold(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], []byte(suffix))
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// fastForward runs a query of a fast_forward=1 user (reference §4.4): no
// digest, no rules, no SET tracking, no multiplexing — the session keeps one
// backend connection of its default hostgroup for its whole life (held.pinned)
// and every query goes there as sent. Packets are still relayed one by one,
// not as raw bytes, because the backend connection was opened with the
// proxy's capabilities, which may differ from the client's
// (CLIENT_DEPRECATE_EOF): the streamer translates.
func (s *session) fastForward(rt *live.Runtime, p []byte, shape backend.Shape) bool {
	hg, e := s.hostgroup(-1, followRules)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.noteHostgroup(hg)
	s.req = request{hg: hg, payload: p, shape: shape}
	res, h, ok := s.run(rt, &s.req)
	if !ok || h == nil {
		return ok
	}
	if shape == backend.ShapeStream && !(res.Err != nil && res.Err.Code == 1047) {
		// (A server that does not know the command — MariaDB and MySQL's
		// COM_BINLOG_DUMP_GTID — answers 1047 and goes on: so does the
		// session.)
		// The server ended a binlog dump (a non-blocking one reached the
		// end of the log): its connection is left to no one, and the
		// session ends, as the server closes the client's connection
		// then — whatever the session held (a transaction) is gone with
		// it, and its client is told so by the close.
		s.discard(h)
		return false
	}
	h.inTrx = res.Status&wire.StatusInTrans != 0
	s.release(rt, h)
	return true
}

// afterQuery updates routing and multiplexing state from the response and
// returns the connection to the pool when ProxySQL would (reference §5.2).
func (s *session) afterQuery(rt *live.Runtime, h *held, res *backend.Response, dec *rules.Decision, set *sqlscan.SetStatement, q []byte) {
	if res.Status&wire.StatusDBDropped != 0 {
		// The query dropped the connection's current database: the server
		// now has no database selected on it (and, as in MySQL, neither has
		// the client's session). Record that, or the next session wanting
		// that schema would take this connection unsynced and get "No
		// database selected".
		s.state.Schema = ""
		st := h.bc.State()
		st.Schema = ""
		h.bc.NoteState(&st)
	}
	h.noteTrx(rt, res.Status)
	h.maybeTrx = res.Err != nil && res.NoStatus() && mayOpenTransaction(h, s.digest.Kind)
	switch {
	case set.Outcome == sqlscan.SetTracked && res.Err == nil && hasNextTransaction(set):
		h.nextTrx = true // kept until a statement surely consumed it
	case h.nextTrx && (h.inTrx || s.digest.Kind == sqlscan.KindCommit || s.digest.Kind == sqlscan.KindRollback):
		// Consumed: the statement began the transaction (which pins the
		// connection now), or ended one, as COMMIT and ROLLBACK do even
		// with none open. An autocommit statement may consume it or not
		// (MariaDB: one that reads a table does, SELECT 1 or DO does not),
		// which the proxy cannot tell from the text: the session keeps the
		// connection until its next transaction. Released after SELECT 1,
		// it gave READ ONLY to another session's next transaction (1792).
		h.nextTrx = false
	}
	ctx := rules.FlagContext{Multiplex: dec.Multiplex, InTransaction: h.inTrx, Keep: rt.Router.KeepVars,
		LegacySetAlgorithm: !rt.Router.SetQueryLock,
		Untracked:          set.Reason == reasonMultiStatement || set.Reason == reasonPreparedSet || set.Reason == reasonUnparsedUse}
	if set.Outcome != sqlscan.SetNotSet {
		ctx.Set = set
	}
	h.flags = rules.UpdateFlags(h.flags, &s.digest, &ctx)
	if hasPrefixFold(s.digest.Text, "HANDLER ") {
		h.noteHandler(s.digest.Text, res.Err == nil)
	}
	if res.Err == nil && (set.Outcome == sqlscan.SetLock || bytes.IndexByte(q, '@') >= 0 ||
		s.digest.Kind == sqlscan.KindPrepare || s.digest.Kind == sqlscan.KindDeallocate) {
		s.noteCarried(rt, h, q, set)
	} else if res.Err != nil && s.digest.Kind == sqlscan.KindPrepare {
		s.failedPrepare(h, q)
	}
	if s.user.TransactionPersistent && h.inTrx {
		s.trxHG = h.hg
	} else if !h.inTrx {
		s.trxHG = -1
	}
	if res.Warnings > 0 && rt.Router.LogWarnings {
		s.logWarnings(h, q, res.Warnings)
	}
	// Warnings are in the connection's diagnostics area: it stays with the
	// session for SHOW WARNINGS, GET DIAGNOSTICS and the counts
	// (mysql-handle_warnings), until a statement that does not read them.
	// (After an error it goes back to the pool, as in ProxySQL: the
	// session's record of the error answers those statements.)
	if res.Warnings > 0 && rt.Router.WarningsHandled(h.hg) {
		s.warningsHG = h.hg
		h.warnings = true
	} else if h.warnings && (res.Warnings > 0 || !readsDiagnostics(s.digest.Kind, s.digest.Text)) {
		h.warnings = false
		s.warningsHG = -1
	}
	if res.OK {
		s.noteWrite(h, res)
		if changesTables(s.digest.Kind) {
			// A cached PREPARE answer may now describe a table as it was.
			s.r.stmts.forgetAll()
		}
		if s.digest.Kind == sqlscan.KindDropDatabase {
			s.r.schemas.Clear() // a USE of it must ask a server again
		}
	}
	if res.OK && res.InsertID > 0 && res.Affected > 0 {
		// Kept for the next queries (or until the timeout) so that a
		// LAST_INSERT_ID() finds the connection that made the id.
		h.autoIncDelay = rt.Router.AutoIncDelay
		h.autoIncAt = s.cmdStart
	} else if h.autoIncDelay > 0 {
		h.autoIncDelay--
	}
	s.release(rt, h)
}

// mayOpenTransaction reports whether a statement of kind k that failed on
// h may have left a transaction open there that the connection's last
// status does not show: any statement under autocommit=0, a procedure or a
// dynamic statement (its START TRANSACTION and writes before the error)
// under autocommit=1. A plain statement that fails under autocommit=1
// opens none: keeping its connection from the pool (as ProxySQL keeps
// every connection whose last statement failed) only starved the pool
// while its session sat idle.
func mayOpenTransaction(h *held, k sqlscan.StmtKind) bool {
	if !h.bc.State().Autocommit {
		return true
	}
	switch k {
	case sqlscan.KindCall, sqlscan.KindExecute, sqlscan.KindUnknown:
		return true
	}
	return false
}

// The lock reasons of statements that change session state the proxy
// neither parses nor sees (rules.FlagContext.Untracked).
const (
	// reasonMultiStatement: sqlscan.HiddenStateChange.
	reasonMultiStatement = "a multi-statement query, or an executable comment, that changes session state (SET, USE…)"
	// reasonPreparedSet: a SET run as a prepared statement, its values
	// parameters.
	reasonPreparedSet = "a prepared SET (its values are parameters)"
	// reasonUnparsedUse: a USE parseUse cannot read.
	reasonUnparsedUse = "a USE the proxy cannot parse"
)

// ranSet settles a SET that ran on h (hostgroup hg; text q, for the log):
// one the proxy could not track locks the session (lockForSet); a tracked
// one that succeeded — forwarded because the session is locked, a SET
// TRANSACTION for the next transaction, a prepared SET without parameters —
// is now the session's state and the connection's. The text and the
// prepared path both end here.
func (s *session) ranSet(rt *live.Runtime, h *held, set *sqlscan.SetStatement, hg int, q []byte, err *wire.SQLError) {
	switch {
	case set.Outcome == sqlscan.SetLock:
		s.lockForSet(rt, set, hg, q)
		if err == nil {
			s.noteCompletionType(set)
			s.readClientCharset(rt, h, q)
			if set.Reason == reasonUnparsedUse {
				s.readSchema(rt, h)
			}
		}
	case set.Outcome == sqlscan.SetTracked && err == nil:
		applySet(&s.state, set)
		h.bc.NoteState(&s.state)
		s.noteSQLMode(set)
		if setsClientCharset(set) {
			s.csServer = "" // tracked again
		}
		// A variable the proxy ignores (wait_timeout, net_read_timeout…)
		// is answered without a backend, except on a session whose SETs
		// run on its connection (locked): then the server has it, and it
		// would not follow the session to another connection.
		for i := range set.Assignments {
			if a := &set.Assignments[i]; a.Kind == sqlscan.AssignIgnored && h.untracked == "" {
				h.untracked = "a SET of " + a.Name + ", which the proxy does not replay"
			}
		}
	}
}

// readClientCharset reads back, after a statement the proxy could not
// follow ran on h, the connection's character_set_client when the
// statement may have changed it (SET character_set_client = @cs, a SET
// NAMES further into a multi-statement query): how the proxy reads the
// session's SQL (dialect) then follows the server, not the session's last
// tracked SET NAMES — read in the old character set, a gbk string hid a
// DROP from the rules and a password from the masking.
func (s *session) readClientCharset(rt *live.Runtime, h *held, q []byte) {
	if !sqlscan.ContainsFold(q, "NAMES") && !sqlscan.ContainsFold(q, "CHARACTER") && !sqlscan.ContainsFold(q, "CHARSET") {
		return
	}
	if v, ok := s.readBack(rt, h, "SELECT @@character_set_client"); ok && v.Valid {
		s.csServer = v.String
	}
}

// readBack runs q, a one-value SELECT, on h, to learn what a statement the
// proxy could not follow left on the connection; ok is false (logged at
// DEBUG) when it gave no single value.
func (s *session) readBack(rt *live.Runtime, h *held, q string) (v sql.NullString, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
	defer cancel()
	res, err := h.bc.Query(ctx, q)
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		s.log.Debug().Err(err).Str("query", q).Msg("reading back the connection's state failed")
		return v, false
	}
	return res.Rows[0][0], true
}

// noteCompletionType follows SET completion_type (which locks the session
// to its connection): under RELEASE (2) a COMMIT or ROLLBACK ends the
// session, as the server ends the connection.
func (s *session) noteCompletionType(set *sqlscan.SetStatement) {
	for _, a := range set.Assignments {
		if a.Name == "completion_type" {
			s.completionRelease = a.Value == "2" || bytes.EqualFold([]byte(a.Value), []byte("RELEASE"))
		}
	}
}

// readSchema reads back the connection's schema after a USE the proxy
// could not read ran on h: the session's schema (schemaname rules, the
// events log, a later move) follows the server.
func (s *session) readSchema(rt *live.Runtime, h *held) {
	v, ok := s.readBack(rt, h, "SELECT DATABASE()")
	if !ok {
		return
	}
	s.state.Schema = v.String // "" for NULL: none selected
	st := h.bc.State()
	st.Schema = s.state.Schema
	h.bc.NoteState(&st)
}

// setsClientCharset reports whether a tracked SET names the client
// character set.
func setsClientCharset(set *sqlscan.SetStatement) bool {
	for _, a := range set.Assignments {
		if a.Kind == sqlscan.AssignNames || a.Kind == sqlscan.AssignCharset || a.Name == "character_set_client" {
			return true
		}
	}
	return false
}

// lockOn locks the session on hostgroup hg (-1: unlocks it), counting
// the locked sessions (Client_Connections_hostgroup_locked).
func (s *session) lockOn(hg int) {
	switch {
	case s.lockedHG < 0 && hg >= 0:
		s.r.stats.Add(s.id, stats.ClientConnectionsHostgroupLocked, 1)
	case s.lockedHG >= 0 && hg < 0:
		s.r.stats.Add(s.id, stats.ClientConnectionsHostgroupLocked, -1)
	}
	s.lockedHG = hg
}

// lockForSet applies a SET the proxy could not track (set.Outcome is
// SetLock), run on hostgroup hg: with mysql-set_query_lock_on_hostgroup=1
// the session is locked on hg, as ProxySQL does; otherwise (ProxySQL before
// 2.0.6) the SET only pins its connection (USER_VARIABLE, set in
// afterQuery) and later queries routed to other hostgroups run without it.
func (s *session) lockForSet(rt *live.Runtime, set *sqlscan.SetStatement, hg int, q []byte) {
	logged := clip(string(sqlscan.MaskPasswords(q, s.dialect())), maxLoggedQuery)
	if !rt.Router.SetQueryLock {
		s.log.Warn().Str("query", logged).Str("reason", set.Reason).Int("hostgroup", hg).
			Msg("Unable to parse unknown SET query from client; mysql-set_query_lock_on_hostgroup=0: not locking the hostgroup")
		return
	}
	s.r.stats.Add(s.id, stats.HostgroupLockedSetCmds, 1)
	s.lockOn(hg)
	msg := "Unable to parse unknown SET query from client. Setting lock_hostgroup"
	if set.Reason == reasonUnparsedUse {
		msg = "Unable to parse USE statement from client. Setting lock_hostgroup"
	}
	if set.Reason == reasonMultiStatement {
		msg = "Unable to parse multi-statements command with SET statement from client. Setting lock_hostgroup"
	}
	s.log.Warn().Str("query", logged).Str("reason", set.Reason).Int("hostgroup", hg).Msg(msg)
}

// changeSchema serves USE and COM_INIT_DB. ProxySQL records the schema and
// answers OK, and the backend connection is switched lazily by sync; so
// does Sluice for a schema a server of the session's hostgroup accepted in
// the last schemaTTL. Another one is tried there first, so that a schema
// that does not exist gets the server's 1049 on the USE itself, as from a
// server, not on the statement after it (Connector/J's setCatalog throws
// where it should). Not where the schema steers routing (fast routing, a
// rule with schemaname): the schema may exist only on the hostgroup its
// queries go to, so it is answered as ProxySQL does.
func (s *session) changeSchema(rt *live.Runtime, db string) *wire.SQLError {
	if s.user.SchemaLocked && s.user.DefaultSchema != "" && db != s.user.DefaultSchema {
		return errSchemaLocked(s.user.DefaultSchema)
	}
	if db != s.state.Schema && !rt.Rules.RoutesBySchema() {
		if e := s.checkSchema(rt, db); e != nil {
			return e
		}
	}
	// Answered before any server has seen it, as a tracked SET is: a
	// schema the server refuses (1049) fails the next statement and the
	// session goes back to its schema, as after a failed USE on a server,
	// instead of failing every statement from then on.
	prev := s.state
	s.state.Schema = db
	if e := s.syncHeld(rt); e != nil {
		s.state = prev
		return e
	}
	s.noteUnconfirmed(&prev)
	return nil
}

// schemaTTL is how long a schema a server accepted is taken to exist on
// its hostgroup without asking again.
const schemaTTL = time.Minute

// checkSchema asks the session's hostgroup whether schema db exists, by
// taking a connection of one of its servers synced to it, unless a server
// of that hostgroup accepted it in the last schemaTTL. Only the server's
// refusal of the COM_INIT_DB is returned. Nothing of the session is touched: a session with a
// connection attached there, a hostgroup that cannot be reached, or a pool
// with no connection to spare within schemaCheckWait leave the answer to
// the next statement, as ProxySQL does.
func (s *session) checkSchema(rt *live.Runtime, db string) *wire.SQLError {
	hg, e := s.hostgroup(s.lockedHG, followRules) // where a query with no rule would go
	if e != nil {
		return nil
	}
	key := schemaKey{hg: hg, schema: db}
	if until, ok := s.r.schemas.Load(key); ok && time.Now().UnixNano() < until.(int64) {
		return nil
	}
	if s.conns.find(hg) != nil {
		return nil
	}
	srv := s.r.pick(rt, hg, nil)
	if srv == nil {
		return nil
	}
	cred, e := s.credentials(rt)
	if e != nil {
		return nil
	}
	// A connection in the session's current state, then COM_INIT_DB: the
	// server's own answer to the USE (1049 no such schema, 1044 access
	// denied, 1102 a bad name), never a refused login counted against
	// the server (as a connection opened in db would be).
	cur := s.state
	ctx, cancel := context.WithTimeout(context.Background(), schemaCheckWait)
	defer cancel()
	bc, err := srv.Pool().Get(ctx, rt.Backend, cred, &cur)
	if err != nil {
		return nil
	}
	want := s.state
	want.Schema = db
	err = bc.Sync(ctx, rt.Backend, cred, &want)
	srv.Pool().Put(bc) // in the schema now, or to be reset: the session's next query may take it
	if se, ok := backend.IsSQLError(err); ok {
		return se
	}
	if err != nil {
		return nil
	}
	s.r.schemas.Store(key, time.Now().Add(schemaTTL).UnixNano())
	return nil
}

// schemaCheckWait bounds how long a USE waits for a connection to check
// its schema on; past it, the USE is answered as ProxySQL answers it.
const schemaCheckWait = 250 * time.Millisecond

// schemaKey names a schema a hostgroup's server accepted (Router.schemas).
type schemaKey struct {
	hg     int
	schema string
}

// parseUse reads "USE db" with the comments a server skips around and
// inside it (/* … */, "-- ", "#": ORMs and APM agents add them). false
// for anything else — an executable comment, more than one name, a
// quoting it does not know — which the caller runs on the server and
// locks the session to, since the schema it may change is not seen.
func parseUse(q []byte) (string, bool) {
	i := sqlscan.SkipSpace(q, 0)
	if i < 0 || len(q)-i < 3 || !bytes.EqualFold(q[i:i+3], []byte("USE")) {
		return "", false
	}
	i += 3
	j := sqlscan.SkipSpace(q, i)
	if j < 0 || j == i && (j >= len(q) || q[j] != '`') {
		return "", false // USEdb, or nothing after USE
	}
	var db []byte
	if j < len(q) && q[j] == '`' {
		for k := j + 1; ; k++ {
			if k >= len(q) {
				return "", false
			}
			if q[k] == '`' {
				if k+1 < len(q) && q[k+1] == '`' {
					db = append(db, '`')
					k++
					continue
				}
				j = k + 1
				break
			}
			db = append(db, q[k])
		}
	} else {
		k := j
		for k < len(q) && !useNameEnd(q, k) {
			k++
		}
		db, j = q[j:k], k
	}
	j = sqlscan.SkipSpace(q, j)
	for j >= 0 && j < len(q) && q[j] == ';' {
		j = sqlscan.SkipSpace(q, j+1)
	}
	if j != len(q) || len(db) == 0 {
		return "", false // more after the name; USE `` gets the server's "Incorrect database name"
	}
	return string(db), true
}

// useNameEnd reports whether an unquoted name ends at q[k].
func useNameEnd(q []byte, k int) bool {
	switch c := q[k]; {
	case sqlscan.IsSpace(c), c == ';', c == '`', c == '"', c == '\'':
		return true
	}
	return sqlscan.IsCommentStart(q, k)
}

// newEvent starts an events log record when the query is to be logged
// (rule log=1, or log unset and mysql-eventslog_default_log=1).
func (s *session) newEvent(rt *live.Runtime, dec *rules.Decision, start time.Time, q []byte) *eventlog.Event {
	if s.r.cfg.Events == nil || !(dec.Log == 1 || (dec.Log == rules.Unset && rt.Router.EventsDefaultLog)) {
		return nil
	}
	return &eventlog.Event{
		Type: eventlog.ComQuery, ThreadID: s.id, Username: s.username, Schemaname: s.state.Schema,
		Client: s.clientAddr, Start: start, Digest: s.digest.Hash, Query: string(sqlscan.MaskPasswords(q, s.dialect())),
	}
}

func (s *session) finishEvent(ev *eventlog.Event, hg int, server string, res backend.Response) {
	// The stats tables take the same facts (recorded when the command ends).
	s.cs.hg, s.cs.sent = hg, res.Rows
	if res.OK {
		s.cs.affected = res.Affected
	}
	if ev == nil {
		return
	}
	ev.End = time.Now()
	ev.HostgroupID, ev.Server = hg, server
	if res.OK {
		ev.HasRowsAffected, ev.RowsAffected, ev.LastInsertID = true, res.Affected, res.InsertID
	}
	if res.ResultSets > 0 {
		ev.HasRowsSent, ev.RowsSent = true, res.Rows
	}
	s.r.cfg.Events.Log(ev)
}

// logWarnings writes the warnings a query left on its backend connection to
// the log (mysql-log_mysql_warnings_enabled), with the query (passwords
// masked, clipped) and where it ran. The server's SHOW WARNINGS does not
// reset them: the client can still read them. A connection that fails here
// is broken and is not pooled again.
func (s *session) logWarnings(h *held, q []byte, n uint16) {
	ev := s.log.Warn().Int("hostgroup", h.hg).Str("backend", h.addr).Str("user", s.username).
		Str("schema", s.state.Schema).Uint16("warning_count", n).
		Str("query", clip(string(sqlscan.MaskPasswords(q, s.dialect())), maxLoggedQuery))
	res, err := h.bc.ShowWarnings()
	if err != nil {
		ev.Err(err).Msg("warnings detected during query; SHOW WARNINGS failed")
		return
	}
	const maxListed = 10
	var list []string
	for i, r := range res.Rows {
		if i == maxListed {
			list = append(list, fmt.Sprintf("… %d more", len(res.Rows)-maxListed))
			break
		}
		if len(r) >= 3 {
			list = append(list, clip(r[0].String+" "+r[1].String+": "+r[2].String, 512))
		}
	}
	ev.Strs("warnings", list).Msg("warnings detected during query")
}

// changesTables reports whether a statement of this kind may change the
// columns a prepared statement returns or takes, or remove its table.
func changesTables(k sqlscan.StmtKind) bool {
	switch k {
	case sqlscan.KindAlterTable, sqlscan.KindAlterView, sqlscan.KindCreateTable, sqlscan.KindCreateView,
		sqlscan.KindDropTable, sqlscan.KindDropView, sqlscan.KindDropDatabase, sqlscan.KindRenameTable:
		return true
	}
	return false
}
