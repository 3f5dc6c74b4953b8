package router

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// Binary prepared statements keep multiplexing (reference §5.2): the proxy
// keeps one global cache of statements, gives each client its own statement
// ids, and prepares a statement on whichever backend connection serves an
// EXECUTE, the first time that connection sees it.

// stmtKey identifies a global statement: the same text prepared in the same
// schema by the same user is the same statement.
type stmtKey struct {
	user, schema, query string
}

// globalStmt is one cached statement with the metadata of its PREPARE
// response, so later PREPAREs of the same text are answered from memory.
type globalStmt struct {
	id        uint64
	query     string
	text      []byte // query as bytes, for rules.Query (read only)
	digest    uint64
	digestTxt []byte // digest text and first comment, computed once at PREPARE
	comment   []byte
	kind      rules.StmtKind
	numParams uint16
	numCols   uint16
	params    [][]byte // parameter definition packets
	cols      [][]byte // column definition packets
}

type stmtCache struct {
	mu     sync.RWMutex
	byKey  map[stmtKey]*globalStmt
	nextID atomic.Uint64
}

func (c *stmtCache) get(k stmtKey) *globalStmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byKey[k]
}

// put caches g under k and returns the cached statement (an earlier one
// when another session raced us). With max entries cached already
// (mysql-max_stmts_cache), g is returned uncached: it still serves its
// client, and lives as long as that client's statement does — the cache
// cannot grow without bound on applications that prepare ever new texts.
func (c *stmtCache) put(k stmtKey, g *globalStmt, max int) *globalStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = make(map[stmtKey]*globalStmt)
	}
	if old := c.byKey[k]; old != nil {
		return old
	}
	if len(c.byKey) < max {
		c.byKey[k] = g
	}
	return g
}

// len returns the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byKey)
}

// clientStmt is a statement as one client sees it.
type clientStmt struct {
	g        *globalStmt
	types    []byte           // parameter types from the last EXECUTE that sent them
	longData map[int][][]byte // COM_STMT_SEND_LONG_DATA chunks per parameter, replayed before EXECUTE
	cursor   *held            // connection holding an open cursor (COM_STMT_FETCH), or nil
}

type stmtMap struct {
	m    map[uint32]*clientStmt
	next uint32
}

func (sm *stmtMap) add(cs *clientStmt) uint32 {
	if sm.m == nil {
		sm.m = make(map[uint32]*clientStmt)
	}
	sm.next++
	sm.m[sm.next] = cs
	return sm.next
}

func (sm *stmtMap) closeAll() { sm.m = nil }

// comStmtPrepare answers COM_STMT_PREPARE, from the global cache when the
// statement is known, else by preparing it on a backend of the hostgroup the
// rules choose.
func (s *session) comStmtPrepare(rt *runtimeConfig, p []byte) bool {
	start := time.Now()
	q := p[1:]
	key := stmtKey{s.username, s.state.Schema, string(q)}
	g := s.r.stmts.get(key)
	if g == nil {
		var ok bool
		if g, ok = s.prepareOnBackend(rt, key, p); g == nil {
			return ok
		}
	}
	id := s.stmts.add(&clientStmt{g: g})
	s.r.stats.Add(s.id, stats.StmtClientActiveTotal, 1)
	if ev := s.stmtEvent(rt, eventlog.ComStmtPrepare, g, id, start); ev != nil {
		s.finishEvent(ev, -1, "", result{ok: true})
	}
	return s.writePrepareOK(id, g) == nil
}

// prepareOnBackend prepares the statement on a connection of the hostgroup
// the rules choose, caches the metadata and relays errors to the client.
func (s *session) prepareOnBackend(rt *runtimeConfig, key stmtKey, p []byte) (*globalStmt, bool) {
	q := p[1:]
	s.digester.Digest(&s.digest, q)
	s.query = rules.Query{
		User: s.username, Schema: s.state.Schema, ClientAddr: s.clientIP,
		ProxyAddr: s.proxyAddr, ProxyPort: s.proxyPort,
		DigestHash: s.digest.Hash, DigestText: s.digest.Text, FirstComment: s.digest.FirstComment,
		Text: q, NextQueryFlagIN: s.nextFlagIN, MirrorFlagOUT: -1, MirrorHostgroup: -1,
	}
	rt.rules.Match(&s.query, &s.decision)
	if s.decision.HasErrorMsg {
		s.writeErr(errRuleMessage(s.decision.ErrorMsg))
		return nil, true
	}
	hg, e := s.chooseHostgroup(rt, &s.decision)
	if e != nil {
		s.writeErr(e)
		return nil, true
	}
	h, e := s.acquire(rt, hg, false)
	if e != nil {
		s.writeErr(e)
		return nil, true
	}
	g := &globalStmt{query: string(q), text: bytes.Clone(q), digest: s.digest.Hash, kind: s.digest.Kind,
		digestTxt: bytes.Clone(s.digest.Text), comment: bytes.Clone(s.digest.FirstComment)}
	s.r.stats.Add(s.id, stats.ComBackendStmtPrepare, 1)
	backendID, serr, err := prepareOn(h, p, g)
	if err != nil {
		s.discard(h)
		s.writeErr(errLostBackend(hg, h.addr, false))
		return nil, true
	}
	if serr != nil {
		s.release(rt, h)
		s.writeErr(serr)
		return nil, true
	}
	g.id = s.r.stmts.nextID.Add(1)
	g = s.r.stmts.put(key, g, rt.maxStmtsCache)
	h.stmts()[g.id] = backendID
	s.release(rt, h)
	return g, true
}

// prepareOn sends COM_STMT_PREPARE on h and reads the response into g
// (metadata packets are copied). It returns the backend's statement id, or
// the backend's error.
func prepareOn(h *held, p []byte, g *globalStmt) (uint32, *wire.SQLError, error) {
	w := h.w
	w.ResetSeq()
	if err := w.WritePacket(p); err != nil {
		return 0, nil, err
	}
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}
	r, err := w.ReadPacket()
	if err != nil {
		return 0, nil, err
	}
	if wire.IsERR(r) {
		e, err := wire.ParseERR(r)
		return 0, e, err
	}
	if len(r) < 12 || r[0] != wire.HeaderOK {
		return 0, nil, fmt.Errorf("router: malformed COM_STMT_PREPARE response")
	}
	id := binary.LittleEndian.Uint32(r[1:])
	g.numCols = binary.LittleEndian.Uint16(r[5:])
	g.numParams = binary.LittleEndian.Uint16(r[7:])
	readDefs := func(n uint16) ([][]byte, error) {
		if n == 0 {
			return nil, nil
		}
		defs := make([][]byte, 0, n)
		for i := uint16(0); i < n; i++ {
			d, err := w.ReadPacket()
			if err != nil {
				return nil, err
			}
			defs = append(defs, append([]byte(nil), d...))
		}
		if !h.depr {
			if _, err := w.ReadPacket(); err != nil { // EOF
				return nil, err
			}
		}
		return defs, nil
	}
	if g.params, err = readDefs(g.numParams); err != nil {
		return 0, nil, err
	}
	if g.cols, err = readDefs(g.numCols); err != nil {
		return 0, nil, err
	}
	return id, nil, nil
}

// writePrepareOK sends the PREPARE response for a cached statement under the
// client's statement id, in the client's EOF dialect.
func (s *session) writePrepareOK(id uint32, g *globalStmt) error {
	b := s.scratch[:0]
	b = append(b, wire.HeaderOK)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, g.numCols)
	b = binary.LittleEndian.AppendUint16(b, g.numParams)
	b = append(b, 0, 0, 0) // filler, warnings
	s.scratch = b
	if err := s.c.WritePacket(b); err != nil {
		return err
	}
	for _, defs := range [][][]byte{g.params, g.cols} {
		if len(defs) == 0 {
			continue
		}
		for _, d := range defs {
			if err := s.c.WritePacket(d); err != nil {
				return err
			}
		}
		if !s.depr {
			if err := s.c.WriteEOF(0, s.status()); err != nil {
				return err
			}
		}
	}
	return s.c.Flush()
}

func (s *session) lookupStmt(p []byte) (*clientStmt, uint32, *wire.SQLError) {
	if len(p) < 5 {
		return nil, 0, &wire.SQLError{Code: 1243, State: "HY000", Message: "Unknown prepared statement handler given to mysqld_stmt_execute"}
	}
	id := binary.LittleEndian.Uint32(p[1:])
	cs := s.stmts.m[id]
	if cs == nil {
		return nil, id, &wire.SQLError{Code: 1243, State: "HY000",
			Message: fmt.Sprintf("Unknown prepared statement handler (%d) given to mysqld_stmt_execute", id)}
	}
	return cs, id, nil
}

// comStmtExecute routes an EXECUTE like its statement's text, prepares the
// statement on the chosen connection if needed, replays long data, rewrites
// the statement id (and the parameter types, which the chosen connection may
// never have seen) and streams the binary result.
func (s *session) comStmtExecute(rt *runtimeConfig, p []byte) bool {
	start := s.cmdStart // set by beginCommand
	cs, clientID, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	g := cs.g
	pkt, e := cs.rewriteExecute(s.scratch[:0], p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.scratch = pkt
	// The statement was digested once at PREPARE: copy, don't recompute
	// (s.digest's buffers are the session's own and get reused).
	s.digest.Kind, s.digest.Hash = g.kind, g.digest
	s.digest.Text = append(s.digest.Text[:0], g.digestTxt...)
	s.digest.FirstComment = append(s.digest.FirstComment[:0], g.comment...)
	s.query = rules.Query{
		User: s.username, Schema: s.state.Schema, ClientAddr: s.clientIP,
		ProxyAddr: s.proxyAddr, ProxyPort: s.proxyPort,
		DigestHash: g.digest, DigestText: s.digest.Text, FirstComment: s.digest.FirstComment,
		Text: g.text, NextQueryFlagIN: s.nextFlagIN,
		MirrorFlagOUT: -1, MirrorHostgroup: -1, StmtExecute: true,
	}
	s.startQuery()
	dec := &s.decision
	rt.rules.Match(&s.query, dec)
	if dec.HasErrorMsg {
		s.writeErr(errRuleMessage(dec.ErrorMsg))
		return true
	}
	hg, e := s.chooseHostgroup(rt, dec)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.noteHostgroup(hg)
	ev := s.stmtEvent(rt, eventlog.ComStmtExecute, g, clientID, start)
	for attempt := 0; ; attempt++ {
		h, e := s.acquire(rt, hg, false)
		if e != nil {
			s.writeErr(e)
			return true
		}
		s.noteConn(h)
		var sent time.Time
		if rt.statsTimeBackend {
			sent = time.Now()
		}
		res, serr, err := s.executeOn(h, cs, pkt)
		if rt.statsTimeBackend {
			s.r.stats.Add(s.id, stats.BackendQueryTimeNsec, int64(time.Since(sent)))
		}
		switch {
		case errorsIsClientGone(err):
			s.discard(h)
			return false
		case err != nil:
			inTrx := h.inTrx
			s.discard(h)
			h.server.CountError()
			if !inTrx && res.resultSets == 0 && !res.ok && attempt < rt.queryRetries && safeToRepeat(g.kind) {
				continue
			}
			s.writeErr(errLostBackend(hg, h.addr, inTrx))
			return true
		case serr != nil:
			s.release(rt, h)
			s.writeErr(serr)
			return true
		}
		h.server.CountQuery(0)
		cs.longData = nil
		var set rules.SetStatement
		addr := h.addr // afterQuery may recycle h
		s.afterQuery(rt, h, &res, dec, &set)
		s.finishEvent(ev, hg, addr, res)
		return true
	}
}

// executeOn runs a rewritten EXECUTE on h: prepare there if needed, replay
// long data, send, stream.
func (s *session) executeOn(h *held, cs *clientStmt, pkt []byte) (result, *wire.SQLError, error) {
	g := cs.g
	bid, ok := h.stmts()[g.id]
	if !ok {
		var scratch globalStmt
		prep := append([]byte{wire.ComStmtPrepare}, g.query...)
		s.r.stats.Add(s.id, stats.ComBackendStmtPrepare, 1)
		id, serr, err := prepareOn(h, prep, &scratch)
		if err != nil || serr != nil {
			return result{}, serr, err
		}
		bid = id
		h.stmts()[g.id] = bid
	}
	binary.LittleEndian.PutUint32(pkt[1:], bid)
	w := h.w
	for param, chunks := range cs.longData {
		for _, c := range chunks {
			w.ResetSeq()
			b := make([]byte, 0, 7+len(c))
			b = append(b, wire.ComStmtSendLongData)
			b = binary.LittleEndian.AppendUint32(b, bid)
			b = binary.LittleEndian.AppendUint16(b, uint16(param))
			b = append(b, c...)
			if err := w.WritePacket(b); err != nil {
				return result{}, nil, err
			}
		}
	}
	w.ResetSeq()
	s.r.stats.Add(s.id, stats.ComBackendStmtExecute, 1)
	if err := w.WritePacket(pkt); err != nil {
		return result{}, nil, err
	}
	if err := w.Flush(); err != nil {
		return result{}, nil, err
	}
	s.c.SetSeq(w.Seq())
	s.stream.status = s.status()
	res, err := s.stream.forwardResponse(s.c, w, s.depr, h.depr)
	if err == nil && res.status&wire.StatusCursorExists != 0 {
		// A cursor lives on this connection until the statement is reset
		// or closed: keep it for COM_STMT_FETCH.
		h.cursor = true
		cs.cursor = h
	}
	return res, nil, err
}

// rewriteExecute copies an EXECUTE packet, filling in the parameter types
// when the client relies on types it sent with an earlier EXECUTE
// (new_params_bound_flag = 0): the backend connection may be another one.
func (cs *clientStmt) rewriteExecute(dst, p []byte) ([]byte, *wire.SQLError) {
	n := int(cs.g.numParams)
	if n == 0 {
		return append(dst, p...), nil
	}
	// cmd(1) stmt_id(4) flags(1) iteration_count(4) null_bitmap new_params_bound_flag
	nb := (n + 7) / 8
	pos := 10 + nb
	if len(p) < pos+1 {
		return nil, &wire.SQLError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute"}
	}
	if p[pos] == 1 {
		if len(p) < pos+1+2*n {
			return nil, &wire.SQLError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute"}
		}
		cs.types = append(cs.types[:0], p[pos+1:pos+1+2*n]...)
		return append(dst, p...), nil
	}
	if len(cs.types) != 2*n {
		return nil, &wire.SQLError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute: parameter types were never sent"}
	}
	dst = append(dst, p[:pos]...)
	dst = append(dst, 1)
	dst = append(dst, cs.types...)
	return append(dst, p[pos+1:]...), nil
}

func (s *session) comStmtSendLongData(p []byte) {
	if len(p) < 7 {
		return
	}
	cs := s.stmts.m[binary.LittleEndian.Uint32(p[1:])]
	if cs == nil {
		return
	}
	param := int(binary.LittleEndian.Uint16(p[5:]))
	if cs.longData == nil {
		cs.longData = make(map[int][][]byte)
	}
	cs.longData[param] = append(cs.longData[param], append([]byte(nil), p[7:]...))
}

func (s *session) comStmtClose(p []byte) {
	if len(p) < 5 {
		return
	}
	id := binary.LittleEndian.Uint32(p[1:])
	if cs := s.stmts.m[id]; cs != nil {
		s.closeCursor(cs)
		delete(s.stmts.m, id)
		s.r.stats.Add(s.id, stats.StmtClientActiveTotal, -1)
	}
}

func (s *session) comStmtReset(rt *runtimeConfig, p []byte) bool {
	cs, _, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	cs.longData = nil
	s.closeCursor(cs)
	return s.writeOK(0, 0, "") == nil
}

// closeCursor forgets an open cursor; its connection goes back to normal
// multiplexing rules at the next release.
func (s *session) closeCursor(cs *clientStmt) {
	if h := cs.cursor; h != nil {
		h.cursor = false
		cs.cursor = nil
		if h.w != nil {
			s.release(s.r.rt.Load(), h)
		}
	}
}

// comStmtFetch forwards COM_STMT_FETCH to the connection holding the cursor.
func (s *session) comStmtFetch(rt *runtimeConfig, p []byte) bool {
	cs, _, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	h := cs.cursor
	if h == nil || h.w == nil {
		s.writeErr(&wire.SQLError{Code: 1421, State: "HY000", Message: "The statement has no open cursor"})
		return true
	}
	bid := h.stmts()[cs.g.id]
	pkt := append(s.scratch[:0], p...)
	binary.LittleEndian.PutUint32(pkt[1:], bid)
	s.scratch = pkt
	w := h.w
	w.ResetSeq()
	err := w.WritePacket(pkt)
	if err == nil {
		err = w.Flush()
	}
	// The fetch response is rows and a terminator, like the tail of a
	// result set.
	var res result
	if err == nil {
		s.c.SetSeq(w.Seq())
		err = s.stream.forwardRows(s.c, w, s.depr, h.depr, &res)
	}
	if err != nil {
		if errorsIsClientGone(err) {
			return false
		}
		s.closeCursor(cs)
		s.discard(h)
		s.writeErr(errLostBackend(h.hg, h.addr, false))
		return true
	}
	return s.c.Flush() == nil
}

func (s *session) stmtEvent(rt *runtimeConfig, t eventlog.EventType, g *globalStmt, clientID uint32, start time.Time) *eventlog.Event {
	if s.r.cfg.Events == nil || !rt.eventsDefaultLog {
		return nil
	}
	return &eventlog.Event{
		Type: t, ThreadID: s.id, Username: s.username, Schemaname: s.state.Schema,
		Client: s.clientAddr, Start: start, Digest: g.digest, Query: g.query, ClientStmtID: clientID,
	}
}
