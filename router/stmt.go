package router

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// Binary prepared statements keep multiplexing (reference §5.2): the proxy
// keeps one global cache of statements, gives each client its own statement
// ids, and prepares a statement on whichever backend connection serves an
// EXECUTE, the first time that connection sees it.

// stmtKey identifies a global statement: the same text prepared in the same
// schema by the same user with the same settings is the same statement. The
// settings (backend.State.Settings) are in the key because the PREPARE
// response depends on them: a latin1 session's column definitions carry
// latin1 and a third of a utf8mb4 session's lengths, and sql_mode changes
// how the text parses.
type stmtKey struct {
	user, schema, query string
	settings            uint64
}

// globalStmt is one cached statement with the metadata of its PREPARE
// response, so later PREPAREs of the same text are answered from memory.
type globalStmt struct {
	id  uint64
	key stmtKey // its key in the cache: user, schema it was prepared in, query, settings
	// sql is what servers prepare, key.query: the client's text, or a
	// rule's rewrite of it (replace_pattern); text is sql as bytes, for
	// rules.Query (read only). The digest describes sql.
	sql       string
	text      []byte
	digest    uint64
	digestTxt []byte // digest text and first comment, computed once at PREPARE
	comment   []byte
	kind      sqlscan.StmtKind
	numParams uint16
	numCols   uint16
	params    [][]byte // parameter definition packets
	cols      [][]byte // column definition packets
	// local marks a statement the proxy answers itself, in both
	// protocols alike (SELECT CONNECTION_ID()); 0 for backend statements.
	local localAnswer
	// clients counts the client statements that name it, servers the
	// backend connections it is prepared on (ref_count_client and
	// ref_count_server of stats_mysql_prepared_statements_info).
	clients, servers atomic.Int32
}

type stmtCache struct {
	mu     sync.RWMutex
	byKey  map[stmtKey]*globalStmt
	nextID atomic.Uint64
	purged time.Time // when put last dropped unreferenced statements (under mu)
}

// stmtPurgeEvery bounds how often a full cache is scanned for statements
// nothing references.
const stmtPurgeEvery = time.Second

func (c *stmtCache) get(k stmtKey) *globalStmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byKey[k]
}

// put caches g under k and returns the cached statement (an earlier one
// when another session raced us). With max entries cached already
// (mysql-max_stmts_cache), the statements no client and no backend
// connection references are dropped first (at most once a second), as
// ProxySQL purges them; if none is, g is returned uncached: it still
// serves its client, and lives as long as that client's statement does —
// the cache cannot grow without bound on applications that prepare ever
// new texts, nor stay full of statements nobody uses.
func (c *stmtCache) put(k stmtKey, g *globalStmt, max int) *globalStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = make(map[stmtKey]*globalStmt)
	}
	if old := c.byKey[k]; old != nil {
		return old
	}
	if len(c.byKey) >= max && time.Since(c.purged) >= stmtPurgeEvery {
		c.purged = time.Now()
		for key, st := range c.byKey {
			if st.clients.Load() == 0 && st.servers.Load() == 0 {
				delete(c.byKey, key)
			}
		}
	}
	if len(c.byKey) < max {
		c.byKey[k] = g
	}
	return g
}

// forget drops g from the cache, if it is what its key holds: the next
// PREPARE of that text asks a server again. Clients holding g go on using
// it.
func (c *stmtCache) forget(g *globalStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[g.key] == g {
		delete(c.byKey, g.key)
	}
}

// forgetAll empties the cache, as forget does for every statement: after
// DDL through the proxy, a cached PREPARE answer may describe a table as it
// was (the wrong columns, or a table that is gone).
func (c *stmtCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.byKey)
}

// len returns the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byKey)
}

// clientStmt is a statement as one client sees it.
type clientStmt struct {
	g         *globalStmt
	types     []byte           // parameter types from the last EXECUTE that sent them
	longData  map[int][][]byte // COM_STMT_SEND_LONG_DATA chunks per parameter, replayed before EXECUTE
	longBytes int              // the bytes in longData
	// longDataErr is what every EXECUTE answers, until COM_STMT_RESET,
	// after long data the server would have refused (a parameter the statement does not have,
	// more than max_allowed_packet for one): the data is dropped, not held.
	longDataErr *wire.SQLError
	cursor      *held // connection holding an open cursor (COM_STMT_FETCH), or nil
	// cols are the column definitions the client holds for the statement
	// (MARIADB_CLIENT_CACHE_METADATA): its PREPARE response's, then what
	// executes sent (backend.Sink.Known).
	cols [][]byte
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
	cs.g.clients.Add(1)
	return sm.next
}

// remove closes the client's statement id.
func (sm *stmtMap) remove(id uint32) {
	if cs := sm.m[id]; cs != nil {
		cs.g.clients.Add(-1)
		delete(sm.m, id)
	}
}

func (sm *stmtMap) closeAll() {
	for _, cs := range sm.m {
		cs.g.clients.Add(-1)
	}
	sm.m = nil
}

// maxClientStmts bounds the prepared statements one client session keeps
// open: MySQL's and MariaDB's default max_prepared_stmt_count, which bounds
// them for a whole server.
const maxClientStmts = 16382

// comStmtPrepare answers COM_STMT_PREPARE, from the global cache when the
// statement is known, else by preparing it on a backend of the hostgroup the
// rules choose.
func (s *session) comStmtPrepare(rt *live.Runtime, p []byte) bool {
	start := time.Now()
	q := p[1:]
	if len(s.stmts.m) >= maxClientStmts {
		// Each one the client keeps costs the proxy memory, whatever
		// connection runs it; a direct connection would hit the server's
		// limit here.
		s.writeErr(&wire.SQLError{Code: 1461, State: "42000",
			Message: fmt.Sprintf("Can't create more than max_prepared_stmt_count statements (current value: %d)", maxClientStmts)})
		return true
	}
	g := localStmt(q)
	hg, addr := -1, "" // where it was prepared: a statement from the cache, none
	if g == nil {
		// Every PREPARE goes through the rules, as in ProxySQL: an
		// error_msg answers it, cached or not, and the hits count it.
		// What servers prepare is what the rules make of the text for
		// this session (a rewrite may depend on its user, address, port or
		// flagIN chain), and the cache is keyed by it: a session never gets
		// a statement that another session's rules made, and new rules
		// make new statements.
		sql := s.prepareRules(rt, q)
		if s.decision.HasErrorMsg {
			s.writeErr(errRuleMessage(s.decision.ErrorMsg))
			return true
		}
		key := stmtKey{s.username, s.state.Schema, string(sql), s.state.Settings()}
		if g = s.r.stmts.get(key); g == nil {
			var ok bool
			if g, hg, addr, ok = s.prepareOnBackend(rt, key); g == nil {
				return ok
			}
		}
	}
	id := s.stmts.add(&clientStmt{g: g, cols: g.cols})
	s.r.stats.Add(s.id, stats.StmtClientActiveTotal, 1)
	if ev := s.stmtEvent(rt, eventlog.ComStmtPrepare, g, id, start); ev != nil {
		s.finishEvent(ev, hg, addr, backend.Response{OK: true})
	}
	return s.writePrepareOK(id, g) == nil
}

// prepareRules runs the rules on the text q of a PREPARE, as on a query,
// and returns the text servers are to prepare: q, or a rule's rewrite of it
// (replace_pattern applies to a PREPARE as to a query: ProxySQL #238),
// which s.digest then describes.
func (s *session) prepareRules(rt *live.Runtime, q []byte) []byte {
	d := s.dialect()
	s.digester.Digest(&s.digest, q, d)
	s.query = rules.Query{
		User: s.username, Schema: s.state.Schema, ClientAddr: s.clientIP,
		ProxyAddr: s.proxyAddr, ProxyPort: s.proxyPort,
		DigestHash: s.digest.Hash, DigestText: s.digest.Text, FirstComment: s.digest.FirstComment,
		Text: q, NextQueryFlagIN: s.nextFlagIN, MirrorFlagOUT: -1, MirrorHostgroup: -1,
	}
	s.match(rt, &s.decision)
	if s.decision.Rewritten {
		q = s.decision.NewQuery
		s.digester.Digest(&s.digest, q, d)
	}
	return q
}

// prepareOnBackend prepares the statement key names on a connection of the
// hostgroup the rules chose (s.decision), caches the metadata and relays
// errors to the client; it returns the statement and the hostgroup and
// server that prepared it.
func (s *session) prepareOnBackend(rt *live.Runtime, key stmtKey) (_ *globalStmt, hg int, addr string, ok bool) {
	sql := key.query
	hg, e := s.hostgroup(s.decision.DestinationHostgroup, followRules)
	if e != nil {
		s.writeErr(e)
		return nil, -1, "", true
	}
	g := &globalStmt{id: s.r.stmts.nextID.Add(1), key: key, sql: sql, text: []byte(sql), digest: s.digest.Hash,
		kind: s.digest.Kind, digestTxt: bytes.Clone(s.digest.Text), comment: bytes.Clone(s.digest.FirstComment)}
	var meta backend.StmtMeta
	s.req = request{hg: hg, prepare: g, meta: &meta, retries: retriesFor(rt, s.decision.Retries),
		repeatable: true, createNew: s.decision.CreateNewConnection}
	res, h, ok := s.run(rt, &s.req)
	if h == nil {
		return nil, -1, "", ok
	}
	addr = h.addr
	s.release(rt, h)
	if res.Err != nil {
		s.writeErr(res.Err)
		return nil, -1, "", true
	}
	g.numParams, g.numCols, g.params, g.cols = meta.NumParams, meta.NumCols, meta.Params, meta.Cols
	return s.r.stmts.put(key, g, rt.Router.MaxStmtsCache), hg, addr, true
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
		return nil, 0, errUnknownStmt(-1, p[0])
	}
	id := binary.LittleEndian.Uint32(p[1:])
	cs := s.stmts.m[id]
	if cs == nil {
		return nil, id, errUnknownStmt(int64(id), p[0])
	}
	return cs, id, nil
}

// comStmtExecute routes an EXECUTE like its statement's text, answers it
// from the query cache when it may (qcache.go), else prepares the statement
// on the chosen connection if needed, replays long data, rewrites the
// statement id (and the parameter types, which the chosen connection may
// never have seen) and streams the binary result.
func (s *session) comStmtExecute(rt *live.Runtime, p []byte) bool {
	start := s.cmdStart // set by beginCommand
	cs, clientID, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	if e := cs.longDataErr; e != nil {
		// As the server's statement in its error state: every EXECUTE
		// fails until COM_STMT_RESET.
		s.writeErr(e)
		return true
	}
	// An execute consumes the statement's long data whatever comes of
	// it, as on a server: kept after a failed one (a rule's error, no
	// connection, a connection that refused to prepare the statement), it
	// was sent ahead of the next execute and taken for the parameter the
	// client then sent inline.
	defer cs.dropLongData()
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
	s.startQuery()
	if g.local != 0 {
		s.finishEvent(s.stmtEvent(rt, eventlog.ComStmtExecute, g, clientID, start), -1, "", backend.Response{ResultSets: 1, Rows: 1})
		_, col := localQuery(g.text)
		return s.writeLocal(rt, g.local, col, true) == nil
	}
	s.query = rules.Query{
		User: s.username, Schema: s.state.Schema, ClientAddr: s.clientIP,
		ProxyAddr: s.proxyAddr, ProxyPort: s.proxyPort,
		DigestHash: g.digest, DigestText: s.digest.Text, FirstComment: s.digest.FirstComment,
		Text: g.text, NextQueryFlagIN: s.nextFlagIN,
		MirrorFlagOUT: -1, MirrorHostgroup: -1, StmtExecute: true,
	}
	dec := &s.decision
	s.match(rt, dec)
	if dec.HasErrorMsg {
		s.writeErr(errRuleMessage(dec.ErrorMsg))
		return true
	}
	fl := followOf(g.kind, g.digestTxt)
	if fl == followWrite && s.writeHeld() == nil {
		if name, ok := plainInsertID(g.text); ok {
			s.finishEvent(s.stmtEvent(rt, eventlog.ComStmtExecute, g, clientID, start), -1, "", backend.Response{ResultSets: 1, Rows: 1})
			return s.writeInsertID(name, true) == nil
		}
	}
	// The server closes a statement's open cursor when it runs again, here
	// or on whichever connection this execute gets.
	s.closeCursor(cs)
	hg, e := s.hostgroup(dec.DestinationHostgroup, fl)
	if e != nil {
		s.writeErr(e)
		return true
	}
	ev := s.stmtEvent(rt, eventlog.ComStmtExecute, g, clientID, start)
	caching := fl == followRules && stmtCacheable(cs, pkt) && s.cacheable(rt, dec) && !readsUserVars(g.text, s.dialect())
	if caching {
		// A stored or served answer carries its column definitions whole,
		// and the statement's are not updated from it: what the client
		// holds is unknown until an execute sends them again.
		cs.cols = nil
		s.buildStmtCacheKey(hg, g, pkt)
		if res, hit, sent := s.serveCached(rt); hit {
			// Nothing of the statement's state changes: the types were
			// remembered by rewriteExecute, no long data or cursor exists.
			s.finishEvent(ev, -1, "", res)
			return sent
		}
	}
	s.noteHostgroup(hg)
	timeout := timeoutFor(rt, dec.Timeout)
	if s.user.FastForward {
		// As its text queries, which ProxySQL relays untouched: no
		// mysql-default_query_timeout for a fast_forward user.
		timeout = 0
	}
	s.req = request{hg: hg, payload: pkt, shape: backend.ShapeResult, stmt: cs,
		retries: retriesFor(rt, dec.Retries), repeatable: safeToRepeat(g.kind), createNew: dec.CreateNewConnection,
		timeout: timeout, read: !s.state.Autocommit && locksNothing(g.kind, g.digestTxt)}
	res, h, ok := s.runCaching(rt, dec, caching)
	if !ok {
		return false
	}
	if h == nil {
		return true // an error was sent
	}
	if s.req.prepareFailed {
		// The connection refused to prepare the statement: its state is
		// as before, and the client has the server's error.
		s.release(rt, h)
		return true
	}
	mirrorable := cs.longData == nil && len(pkt) > 5 && pkt[5] == 0 // no long data, no cursor
	var set sqlscan.SetStatement
	if g.kind == sqlscan.KindSet && res.Err == nil {
		// A prepared SET ran on this connection. Without parameters it is
		// read as its text would be; with them its values are ones the
		// proxy does not parse, and the change stays on this connection, as
		// an unparsable SET does.
		set = sqlscan.SetStatement{Outcome: sqlscan.SetLock, Reason: reasonPreparedSet}
		if g.numParams == 0 {
			set = sqlscan.ParseSet(g.text, s.dialect())
		}
		s.ranSet(rt, h, &set, hg, g.text, nil)
	}
	if fl == followWrite && res.Err == nil && res.ResultSets > 0 && hasInsertIDArg(g.text) {
		// SELECT LAST_INSERT_ID(?) sets the connection's id: read back.
		s.readInsertID(rt, h)
	}
	addr := h.addr // afterQuery may recycle h
	s.afterQuery(rt, h, &res, dec, &set, g.text)
	s.finishEvent(ev, hg, addr, res)
	if mirrorable {
		s.mirror(rt, dec, wire.ComStmtExecute, pkt[1:], g)
	}
	return true
}

// executeOn is one attempt of an EXECUTE on h: prepare the statement there
// if the connection has not seen it, replay long data, send, stream.
func (s *session) executeOn(h *held, req *request) (backend.Response, error) {
	cs := req.stmt
	g := cs.g
	bid, ok := h.bc.StmtID(g.id)
	if !ok {
		s.r.stats.Add(s.id, stats.ComBackendStmtPrepare, 1)
		var meta backend.StmtMeta
		id, err := h.bc.Prepare(g.id, &g.servers, g.key.schema, g.sql, &meta)
		if se, isSQL := backend.IsSQLError(err); isSQL {
			if res := s.prepareRefused(se); res.Refused != nil {
				return res, nil
			}
			req.prepareFailed = true
			return backend.Response{Err: se}, s.relayErr(se)
		}
		if err != nil {
			return backend.Response{}, err
		}
		bid = id
		if !sameMeta(g, &meta) {
			// The table changed under the statement (DDL that did not
			// pass through the proxy): the cached PREPARE answer is
			// stale, and the next PREPARE asks a server, as ProxySQL
			// refreshes its global statement when a backend prepares it
			// again. The server need not say so (METADATA_CHANGED comes
			// only from a connection that had it prepared before).
			s.r.stmts.forget(g)
		}
	}
	pkt := req.payload
	binary.LittleEndian.PutUint32(pkt[1:], bid)
	for param, chunks := range cs.longData {
		for _, c := range chunks {
			b := append(s.longData[:0], wire.ComStmtSendLongData)
			b = binary.LittleEndian.AppendUint32(b, bid)
			b = binary.LittleEndian.AppendUint16(b, uint16(param))
			s.longData = append(b, c...)
			if err := h.bc.Send(s.longData); err != nil {
				return backend.Response{}, err
			}
		}
	}
	s.r.stats.Add(s.id, stats.ComBackendStmtExecute, 1)
	s.sink.Known = &cs.cols
	res, err := h.bc.Run(pkt, backend.ShapeResult, &s.sink)
	s.sink.Known = nil
	if err == nil && res.Status&wire.StatusMetadataChanged != 0 {
		// The server re-prepared the statement: the table changed under it
		// (DDL that did not pass through the proxy). The cached PREPARE
		// answer is stale; the next PREPARE asks the server.
		s.r.stmts.forget(cs.g)
	}
	if err == nil && res.Status&wire.StatusCursorExists != 0 {
		// A cursor lives on this connection until the statement is reset
		// or closed: keep it for COM_STMT_FETCH.
		h.cursors++
		cs.cursor = h
	}
	return res, err
}

// sameMeta reports whether a server's PREPARE answer m describes g as
// cached: the same parameters and column definitions.
func sameMeta(g *globalStmt, m *backend.StmtMeta) bool {
	if m.NumParams != g.numParams || m.NumCols != g.numCols || len(m.Cols) != len(g.cols) {
		return false
	}
	for i, c := range m.Cols {
		if !bytes.Equal(c, g.cols[i]) {
			return false
		}
	}
	return true
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
		return nil, errStmtArgs("")
	}
	if p[pos] == 1 {
		if len(p) < pos+1+2*n {
			return nil, errMalformedPacket()
		}
		cs.types = append(cs.types[:0], p[pos+1:pos+1+2*n]...)
		return append(dst, p...), nil
	}
	if len(cs.types) != 2*n {
		if allNull(p[10:pos], n) {
			// No types ever, but every parameter NULL: a server runs it.
			return append(dst, p...), nil
		}
		return nil, errStmtArgs("") // MariaDB's answer when no EXECUTE sent the types
	}
	dst = append(dst, p[:pos]...)
	dst = append(dst, 1)
	dst = append(dst, cs.types...)
	return append(dst, p[pos+1:]...), nil
}

// allNull reports whether the null bitmap of an EXECUTE marks all n
// parameters NULL.
func allNull(bitmap []byte, n int) bool {
	for i := range n {
		if bitmap[i/8]&(1<<(i%8)) == 0 {
			return false
		}
	}
	return true
}

// comStmtSendLongData keeps a chunk of a parameter's value until the
// EXECUTE, bounded as the server bounds it: a parameter the statement has,
// at most maxPacket bytes for one (MariaDB's Item_param::set_longdata).
// Past that the server answers the EXECUTE with an error; so does the proxy,
// having dropped the data instead of holding what a client claims.
func (s *session) comStmtSendLongData(p []byte, maxPacket int) {
	if len(p) < 7 {
		return
	}
	cs := s.stmts.m[binary.LittleEndian.Uint32(p[1:])]
	if cs == nil || cs.longDataErr != nil {
		return
	}
	param := int(binary.LittleEndian.Uint16(p[5:]))
	if param >= int(cs.g.numParams) {
		cs.dropLongData()
		cs.longDataErr = &wire.SQLError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_send_long_data"}
		return
	}
	size := len(p) - 7
	for _, c := range cs.longData[param] {
		size += len(c)
	}
	// The session as a whole holds at most maxPacket bytes of long data:
	// a client spreading chunks over many parameters and statements would
	// otherwise make the proxy hold whatever it sends.
	held := len(p) - 7
	for _, other := range s.stmts.m {
		held += other.longBytes
	}
	if size > maxPacket || held > maxPacket {
		cs.dropLongData()
		cs.longDataErr = &wire.SQLError{Code: 1105, State: "HY000",
			Message: "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes"}
		if size <= maxPacket {
			cs.longDataErr.Message = "The session's prepared statements hold more long data (mysql_send_long_data()) than 'max_allowed_packet' bytes"
		}
		return
	}
	if cs.longData == nil {
		cs.longData = make(map[int][][]byte)
	}
	cs.longData[param] = append(cs.longData[param], append([]byte(nil), p[7:]...))
	cs.longBytes += len(p) - 7
}

// dropLongData forgets the statement's long data (sent, reset, refused).
func (cs *clientStmt) dropLongData() {
	cs.longData, cs.longBytes = nil, 0
}

func (s *session) comStmtClose(p []byte) {
	if len(p) < 5 {
		return
	}
	id := binary.LittleEndian.Uint32(p[1:])
	if cs := s.stmts.m[id]; cs != nil {
		s.closeCursor(cs)
		s.stmts.remove(id)
		s.r.stats.Add(s.id, stats.StmtClientActiveTotal, -1)
	}
}

func (s *session) comStmtReset(rt *live.Runtime, p []byte) bool {
	cs, _, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	cs.dropLongData()
	cs.longDataErr = nil
	s.closeCursor(cs)
	return s.writeOK(0, 0, "") == nil
}

// closeCursor forgets an open cursor; its connection goes back to normal
// multiplexing rules at the next release.
func (s *session) closeCursor(cs *clientStmt) {
	if h := cs.cursor; h != nil {
		h.cursors--
		cs.cursor = nil
		if !h.dead {
			s.release(s.r.rt.Load(), h)
		}
	}
}

// comStmtFetch forwards COM_STMT_FETCH to the connection holding the cursor.
func (s *session) comStmtFetch(rt *live.Runtime, p []byte) bool {
	cs, _, e := s.lookupStmt(p)
	if e != nil {
		s.writeErr(e)
		return true
	}
	h := cs.cursor
	if h == nil || h.dead {
		s.writeErr(errNoCursor(binary.LittleEndian.Uint32(p[1:])))
		return true
	}
	bid, _ := h.bc.StmtID(cs.g.id)
	pkt := append(s.scratch[:0], p...)
	binary.LittleEndian.PutUint32(pkt[1:], bid)
	s.scratch = pkt
	// The fetch response is rows and a terminator, like the tail of a
	// result set.
	s.req = request{hg: h.hg, payload: pkt, shape: backend.ShapeRows, conn: h}
	res, served, ok := s.run(rt, &s.req)
	switch {
	case served == nil:
		h.cursors--
		cs.cursor = nil
	case res.Status&wire.StatusLastRowSent != 0:
		// The server closed the cursor with its last row.
		s.closeCursor(cs)
	}
	return ok
}

func (s *session) stmtEvent(rt *live.Runtime, t eventlog.EventType, g *globalStmt, clientID uint32, start time.Time) *eventlog.Event {
	if s.r.cfg.Events == nil || !rt.Router.EventsDefaultLog || s.headless {
		return nil
	}
	return &eventlog.Event{
		Type: t, ThreadID: s.id, Username: s.username, Schemaname: s.state.Schema,
		Client: s.clientAddr, Start: start, Digest: g.digest, Query: string(sqlscan.MaskPasswords(g.text, s.dialect())), ClientStmtID: clientID,
	}
}
