package router

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// comQuery runs one COM_QUERY: the hot path of DESIGN.md §3. p is the whole
// packet payload (command byte included); it stays valid until the next
// read from the client, which happens only after the response is sent.
func (s *session) comQuery(rt *runtimeConfig, p []byte) bool {
	start := s.cmdStart // set by beginCommand
	q := p[1:]
	if len(bytes.TrimSpace(q)) == 0 || (len(q) == 1 && q[0] == ';') {
		s.writeErr(errEmptyQuery())
		return true
	}
	if s.user.FastForward {
		return s.fastForward(rt, p)
	}
	if s.digesterOpts != rt.digestOpts {
		s.digester, s.digesterOpts = rules.NewDigester(rt.digestOpts), rt.digestOpts
	}
	s.digester.Digest(&s.digest, q)
	s.startQuery()

	// Canned answers ProxySQL gives before the rules (reference §3.1).
	if s.digest.Kind == rules.KindSelect {
		switch {
		case bytes.Equal(q, []byte("select @@version_comment limit 1")):
			return s.writeTextResult([]string{"@@version_comment"}, [][]*string{{strp(rt.versionComment)}}) == nil
		case bytes.EqualFold(bytes.TrimRight(q, "; "), []byte("SELECT CONNECTION_ID()")):
			// The session id, as ProxySQL answers: KILL takes it.
			return s.writeTextResult([]string{"CONNECTION_ID()"}, [][]*string{{strp(strconv.FormatUint(s.id, 10))}}) == nil
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
	rt.rules.Match(q2, dec)
	if rt.statsTimeQP {
		s.r.stats.Add(s.id, stats.QueryProcessorTimeNsec, int64(time.Since(start)))
	}
	if dec.NextQueryFlagIN != rules.Unset {
		s.nextFlagIN = dec.NextQueryFlagIN
	}
	if dec.Rewritten {
		q = dec.NewQuery
	}
	ev := s.newEvent(rt, dec, start, q)

	switch {
	case dec.HasOKMsg:
		s.finishEvent(ev, -1, "", result{ok: true})
		return s.writeOK(0, 0, dec.OKMsg) == nil
	case dec.HasErrorMsg:
		s.finishEvent(ev, -1, "", result{})
		s.writeErr(errRuleMessage(dec.ErrorMsg))
		return true
	}

	var set rules.SetStatement
	switch s.digest.Kind {
	case rules.KindSet:
		set = rules.ParseSet(q)
		if set.Outcome == rules.SetTracked && s.lockedHG < 0 && !hasNextTransaction(&set) {
			// Tracked variables are answered without a backend and replayed
			// on whichever connection serves the session next.
			s.noteUnconfirmed()
			applySet(&s.state, &set)
			if setsAutocommit(&set) {
				s.r.stats.Add(s.id, stats.ComAutocommitFiltered, 1)
			}
			s.finishEvent(ev, -1, "", result{ok: true})
			return s.writeOK(0, 0, "") == nil
		}
	case rules.KindCommit, rules.KindRollback:
		// No transaction open on any backend connection of the session:
		// nothing to commit or roll back, so answer here, as ProxySQL does
		// (counted in Com_commit_filtered / Com_rollback_filtered).
		if !s.conns.inTransaction() && s.lockedHG < 0 {
			s.finishEvent(ev, -1, "", result{ok: true})
			return s.writeOK(0, 0, "") == nil
		}
	case rules.KindKill:
		if id, query, ok := parseKill(q); ok {
			if e := s.killCommand(rt, id, query); e != nil {
				s.writeErr(e)
				return true
			}
			s.finishEvent(ev, -1, "", result{ok: true})
			return s.writeOK(0, 0, "") == nil
		}
	case rules.KindUse:
		if db, ok := parseUse(q); ok {
			if e := s.changeSchema(db); e != nil {
				s.writeErr(e)
				return true
			}
			s.r.stats.Add(s.id, stats.ComFrontendUseDB, 1)
			s.finishEvent(ev, -1, "", result{ok: true})
			return s.writeOK(0, 0, "") == nil
		}
	}

	hg, e := s.chooseHostgroup(rt, dec)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.noteHostgroup(hg)
	if set.Outcome != rules.SetNotSet && setsAutocommit(&set) {
		s.r.stats.Add(s.id, stats.ComAutocommit, 1)
	}
	res, h, ok := s.execute(rt, hg, p, q, dec)
	if !ok {
		return false
	}
	if h == nil {
		return true // an error was sent
	}
	if set.Outcome == rules.SetLock {
		s.r.stats.Add(s.id, stats.HostgroupLockedSetCmds, 1)
		s.lockedHG = hg
		s.log.Warn().Str("query", string(q)).Str("reason", set.Reason).Int("hostgroup", hg).
			Msg("Unable to parse unknown SET query from client. Setting lock_hostgroup")
	} else if set.Outcome == rules.SetTracked && res.err == nil {
		// Forwarded because the session is locked (or it is SET TRANSACTION
		// for the next transaction): the backend now has it too.
		applySet(&s.state, &set)
		h.bc.NoteState(&s.state)
	}
	addr := h.addr // afterQuery may recycle h
	s.afterQuery(rt, h, &res, dec, &set)
	s.finishEvent(ev, hg, addr, res)
	s.mirror(rt, hg, dec, q)
	return true
}

func hasNextTransaction(set *rules.SetStatement) bool {
	for _, a := range set.Assignments {
		if a.NextTransaction {
			return true
		}
	}
	return false
}

// chooseHostgroup picks the destination (reference §4.5): the rules (or the
// user's default), overridden by a transaction-persistent pin, checked
// against a hostgroup lock.
func (s *session) chooseHostgroup(rt *runtimeConfig, dec *rules.Decision) (int, *wire.SQLError) {
	hg := s.user.DefaultHostgroup
	if dec.DestinationHostgroup >= 0 {
		hg = dec.DestinationHostgroup
	}
	if s.trxHG >= 0 {
		hg = s.trxHG
	}
	if s.warningsHG >= 0 && s.digest.Kind == rules.KindShow && isShowWarnings(s.digest.Text) {
		hg = s.warningsHG
	}
	if s.lockedHG >= 0 && hg != s.lockedHG {
		s.r.stats.Add(s.id, stats.HostgroupLockedQueries, 1)
		return 0, errLockedHostgroup(s.lockedHG, hg)
	}
	return hg, nil
}

func isShowWarnings(digest []byte) bool {
	return hasPrefixFold(digest, "SHOW WARNINGS") || hasPrefixFold(digest, "SHOW COUNT(*) WARNINGS")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// execute runs the command payload p on a connection of hostgroup hg and
// streams the response. It retries on a fresh connection when the backend
// failed before anything reached the client and repeating is safe. It
// returns ok=false when the client is gone, and h=nil when the query failed
// and the client got an ERR.
func (s *session) execute(rt *runtimeConfig, hg int, p, q []byte, dec *rules.Decision) (result, *held, bool) {
	retries := rt.queryRetries
	if dec.Retries >= 0 {
		retries = dec.Retries
	}
	for attempt := 0; ; attempt++ {
		h, e := s.acquire(rt, hg, dec.CreateNewConnection)
		if e != nil {
			s.writeErr(e)
			return result{}, nil, true
		}
		s.noteConn(h)
		var sent time.Time
		if rt.statsTimeBackend {
			sent = time.Now()
		}
		bw := h.w
		bw.ResetSeq()
		if dec.Rewritten {
			s.scratch = append(append(s.scratch[:0], wire.ComQuery), q...)
			p = s.scratch
		}
		err := bw.WritePacket(p)
		if err == nil {
			err = bw.Flush()
		}
		var res result
		if err == nil {
			s.c.SetSeq(bw.Seq())
			s.stream.status = s.status()
			s.setRunning(h)
			res, err = s.stream.forwardResponse(s.c, bw, s.depr, h.depr)
			s.setRunning(nil)
		}
		if rt.statsTimeBackend {
			s.r.stats.Add(s.id, stats.BackendQueryTimeNsec, int64(time.Since(sent)))
		}
		if err == nil {
			h.server.CountQuery(time.Duration(0))
			return res, h, true
		}
		if errors.Is(err, errClientGone) {
			s.discard(h)
			return res, nil, false
		}
		// The backend failed. If nothing reached the client and no
		// transaction is lost, repeat the query on another connection.
		inTrx := h.inTrx
		s.discard(h)
		h.server.CountError()
		if !inTrx && res.resultSets == 0 && !res.ok && res.err == nil && attempt < retries && safeToRepeat(s.digest.Kind) {
			s.log.Debug().Err(err).Int("hostgroup", hg).Str("backend", h.addr).Msg("backend failed, retrying")
			continue
		}
		if inTrx {
			s.trxHG = -1
		}
		s.writeErr(errLostBackend(hg, h.addr, inTrx))
		return res, nil, true
	}
}

// fastForward runs a query of a fast_forward=1 user (reference §4.4): no
// digest, no rules, no SET tracking, no multiplexing — the session keeps one
// backend connection of its default hostgroup for its whole life (held.pinned)
// and every query goes there as sent. Packets are still relayed one by one,
// not as raw bytes, because the backend connection was opened with the
// proxy's capabilities, which may differ from the client's
// (CLIENT_DEPRECATE_EOF): the streamer translates.
func (s *session) fastForward(rt *runtimeConfig, p []byte) bool {
	var dec rules.Decision // no rule applies: no retries, no rewrite
	hg := s.user.DefaultHostgroup
	s.noteHostgroup(hg)
	res, h, ok := s.execute(rt, hg, p, p[1:], &dec)
	if !ok || h == nil {
		return ok
	}
	h.inTrx = res.status&wire.StatusInTrans != 0
	s.release(rt, h)
	return true
}

// safeToRepeat reports whether a statement of this kind may run twice when
// the backend failed without answering: reads only. A write may have been
// applied before the connection broke, and running it again would apply it
// twice; the client gets ERR 2013 and decides.
func safeToRepeat(k rules.StmtKind) bool {
	switch k {
	case rules.KindSelect, rules.KindShow, rules.KindShowTableStatus, rules.KindDescribe, rules.KindExplain:
		return true
	}
	return false
}

// afterQuery updates routing and multiplexing state from the response and
// returns the connection to the pool when ProxySQL would (reference §5.2).
func (s *session) afterQuery(rt *runtimeConfig, h *held, res *result, dec *rules.Decision, set *rules.SetStatement) {
	if res.status&wire.StatusDBDropped != 0 {
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
	h.inTrx = res.status&wire.StatusInTrans != 0 || (rt.autocommitFalseIsTrx && !s.state.Autocommit)
	ctx := rules.FlagContext{Multiplex: dec.Multiplex, InTransaction: h.inTrx, Keep: rt.keepVars}
	if set.Outcome != rules.SetNotSet {
		ctx.Set = set
	}
	h.flags = rules.UpdateFlags(h.flags, &s.digest, &ctx)
	if s.user.TransactionPersistent && h.inTrx {
		s.trxHG = h.hg
	} else if !h.inTrx {
		s.trxHG = -1
	}
	if res.warnings > 0 {
		s.warningsHG = h.hg
		h.warnings = true
	} else if h.warnings && !isShowWarnings(s.digest.Text) {
		h.warnings = false
		s.warningsHG = -1
	}
	if res.ok && res.insertID > 0 && res.affected > 0 {
		s.lastWrite, s.lastID = h.hg, res.insertID
		h.autoIncDelay = rt.autoIncDelay
	} else if h.autoIncDelay > 0 {
		h.autoIncDelay--
	}
	s.release(rt, h)
}

// changeSchema serves USE and COM_INIT_DB: ProxySQL records the schema and
// answers OK; the backend connection is switched lazily by sync.
func (s *session) changeSchema(db string) *wire.SQLError {
	if s.user.SchemaLocked && s.user.DefaultSchema != "" && db != s.user.DefaultSchema {
		return errSchemaLocked(s.user.DefaultSchema)
	}
	s.state.Schema = db
	return nil
}

// parseUse extracts the schema of "USE db" (backquotes allowed).
func parseUse(q []byte) (string, bool) {
	q = bytes.TrimSpace(q)
	q = bytes.TrimRight(q, "; \t\r\n")
	if len(q) < 4 || !bytes.EqualFold(q[:3], []byte("USE")) || (q[3] != ' ' && q[3] != '\t' && q[3] != '\n' && q[3] != '`') {
		return "", false
	}
	db := bytes.TrimSpace(q[3:])
	if len(db) >= 2 && db[0] == '`' && db[len(db)-1] == '`' {
		db = bytes.ReplaceAll(db[1:len(db)-1], []byte("``"), []byte("`"))
	} else if bytes.ContainsAny(db, " \t\n`;") || len(db) == 0 {
		return "", false
	}
	return string(db), true
}

// newEvent starts an events log record when the query is to be logged
// (rule log=1, or log unset and mysql-eventslog_default_log=1).
func (s *session) newEvent(rt *runtimeConfig, dec *rules.Decision, start time.Time, q []byte) *eventlog.Event {
	if s.r.cfg.Events == nil || !(dec.Log == 1 || (dec.Log == rules.Unset && rt.eventsDefaultLog)) {
		return nil
	}
	return &eventlog.Event{
		Type: eventlog.ComQuery, ThreadID: s.id, Username: s.username, Schemaname: s.state.Schema,
		Client: s.clientAddr, Start: start, Digest: s.digest.Hash, Query: string(q),
	}
}

func (s *session) finishEvent(ev *eventlog.Event, hg int, server string, res result) {
	// The stats tables take the same facts (recorded when the command ends).
	s.cs.hg, s.cs.sent = hg, res.rows
	if res.ok {
		s.cs.affected = res.affected
	}
	if ev == nil {
		return
	}
	ev.End = time.Now()
	ev.HostgroupID, ev.Server = hg, server
	if res.ok {
		ev.HasRowsAffected, ev.RowsAffected, ev.LastInsertID = true, res.affected, res.insertID
	}
	if res.resultSets > 0 {
		ev.HasRowsSent, ev.RowsSent = true, res.rows
	}
	s.r.cfg.Events.Log(ev)
}
