package router

import (
	"encoding/binary"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The data plane feeds ProxySQL's stats tables (reference §1.2) without a
// global lock and without allocating per query: counters go to the
// stats.Collector's shards (hinted by the session id), each finished
// COM_QUERY/COM_STMT_EXECUTE is recorded once, after its command, and each
// session publishes what stats_mysql_processlist shows through atomics and
// a small mutex of its own around a reused query-text buffer.

// cmdStats is what the session notes while a COM_QUERY or COM_STMT_EXECUTE
// runs, recorded when the command ends.
type cmdStats struct {
	active   bool // the command was digested: record it
	start    time.Time
	schema   string // the schema when the query started (the digest key)
	hg       int    // hostgroup that served it, -1 when the proxy answered
	affected uint64
	sent     uint64
}

// maxInfoLen caps the query text a session publishes for the processlist,
// so one huge statement does not pin a huge buffer to its session.
const maxInfoLen = 64 << 10

// procInfo is a session's row of stats_mysql_processlist. The session's
// goroutine writes it; Processlist reads it from the admin's.
type procInfo struct {
	command atomic.Int32 // command byte of the running command, or cmdSleep
	since   atomic.Int64 // unix nanoseconds when the command (or the idle time) began
	hg      atomic.Int64 // current hostgroup, -1 before the first routed query
	conn    atomic.Pointer[backend.BackendConn]
	pins    atomic.Uint32                     // pinMask of the connections the session keeps
	servers atomic.Pointer[[]*backend.Server] // servers of the connections it keeps (the balancer reads it)
	// trxSince is when the open transaction began (the start of the
	// command that opened it, unix ns), 0 with none: the watchdog's
	// mysql-max_transaction_time and _idle_time.
	trxSince atomic.Int64

	mu        sync.Mutex // guards the fields below
	untracked string     // the reason of a pinUntrackedSet
	user      string
	db        string
	info      []byte // text of the running query; reused
}

// cmdSleep marks an idle session in procInfo.command.
const cmdSleep = -1

// beginCommand publishes the command that starts now and counts the
// frontend commands of stats_mysql_global.
func (s *session) beginCommand(p []byte) {
	now := time.Now()
	s.cmdStart = now
	pi := &s.pub
	pi.since.Store(now.UnixNano())
	pi.command.Store(int32(p[0]))
	s.classifyDiag(p)
	switch p[0] {
	case wire.ComQuery:
		s.publishInfo(p[1:])
	case wire.ComStmtPrepare:
		s.publishInfo(p[1:])
		s.r.stats.Add(s.id, stats.ComFrontendStmtPrepare, 1)
		s.r.stats.Add(s.id, stats.Questions, 1) // as ProxySQL counts them
	case wire.ComStmtExecute:
		// The info of an EXECUTE is its statement's text.
		var text string
		if len(p) >= 5 {
			if cs := s.stmts.m[binary.LittleEndian.Uint32(p[1:])]; cs != nil {
				text = cs.g.sql
			}
		}
		setInfo(&s.pub, text)
		s.r.stats.Add(s.id, stats.ComFrontendStmtExecute, 1)
	case wire.ComStmtClose:
		s.r.stats.Add(s.id, stats.ComFrontendStmtClose, 1)
		s.r.stats.Add(s.id, stats.Questions, 1)
	case wire.ComInitDB:
		s.r.stats.Add(s.id, stats.ComFrontendInitDB, 1)
	}
}

// setInfo sets the processlist's info text (the running query).
func setInfo[T ~string | ~[]byte](pi *procInfo, q T) {
	if len(q) > maxInfoLen {
		q = q[:maxInfoLen]
	}
	pi.mu.Lock()
	pi.info = append(pi.info[:0], q...)
	pi.mu.Unlock()
}

func (s *session) publishInfo(q []byte) { setInfo(&s.pub, q) }

// endCommand records the command that just finished in the stats and
// publishes the session as idle.
func (s *session) endCommand() {
	now := time.Now()
	if s.cs.active {
		s.recordQuery(now)
		s.cs.active = false
	}
	pi := &s.pub
	pi.command.Store(cmdSleep)
	pi.since.Store(now.UnixNano())
	// An idle session shows the backend connection it keeps, if any.
	var bc *backend.BackendConn
	if len(s.conns.list) > 0 {
		bc = s.conns.list[0].bc
	}
	if pi.conn.Load() != bc {
		pi.conn.Store(bc)
	}
	var pins pinMask
	untracked := ""
	for _, h := range s.conns.list {
		pins |= h.pins()
		if h.untracked != "" {
			untracked = h.untracked
		}
	}
	if uint32(pins) != pi.pins.Load() {
		pi.mu.Lock()
		pi.untracked = untracked
		pi.mu.Unlock()
		pi.pins.Store(uint32(pins))
	}
	if s.state.Schema != s.pubDB || s.username != s.pubUser {
		s.publishIdentity()
	}
	if trx := s.conns.inTransaction(); trx != s.pubTrx {
		s.pubTrx = trx
		d := int64(1)
		pi.trxSince.Store(s.cmdStart.UnixNano())
		if !trx {
			d = -1
			pi.trxSince.Store(0)
		}
		s.r.stats.Add(s.id, stats.ActiveTransactions, d)
		if maxTrx := s.cmdRT.Router.MaxTrxTime; trx && maxTrx > 0 {
			s.r.watchdog.due(s.cmdStart.UnixNano() + int64(maxTrx))
		}
	}
	if maxIdle := s.cmdRT.Router.MaxTrxIdleTime; s.pubTrx && maxIdle > 0 {
		s.r.watchdog.due(now.UnixNano() + int64(maxIdle))
	}
}

// publishIdentity publishes the user and schema (after login, USE,
// COM_INIT_DB, COM_CHANGE_USER).
func (s *session) publishIdentity() {
	s.pubDB, s.pubUser = s.state.Schema, s.username
	s.pub.mu.Lock()
	s.pub.db, s.pub.user = s.pubDB, s.pubUser
	s.pub.mu.Unlock()
}

// publishedUser is the session's user as last published, safe to read
// from another session's goroutine (KILL).
func (s *session) publishedUser() string {
	s.pub.mu.Lock()
	defer s.pub.mu.Unlock()
	return s.pub.user
}

// startQuery marks a digested COM_QUERY/COM_STMT_EXECUTE to be recorded
// when its command ends.
func (s *session) startQuery() {
	s.cs = cmdStats{active: true, start: s.cmdStart, schema: s.state.Schema, hg: -1}
}

// noteHostgroup records the hostgroup a query is routed to.
func (s *session) noteHostgroup(hg int) {
	s.cs.hg = hg
	s.pub.hg.Store(int64(hg))
}

// noteConn publishes the backend connection serving the running query.
func (s *session) noteConn(h *held) { s.pub.conn.Store(h.bc) }

// recordQuery hands the finished query to the collector, with the counters
// that depend on its kind.
func (s *session) recordQuery(end time.Time) {
	cs := &s.cs
	q := &s.sq
	*q = stats.Query{
		Kind: s.digest.Kind, Hostgroup: cs.hg, Schema: cs.schema, User: s.username, ClientAddr: s.clientIP,
		Digest: s.digest.Hash, DigestText: s.digest.Text, Duration: end.Sub(cs.start), End: end,
		RowsAffected: cs.affected, RowsSent: cs.sent,
	}
	st := s.r.stats
	st.RecordQuery(s.id, s.cmdRT.Stats, q)
	s.countFrontendBytes()
	switch s.digest.Kind {
	case sqlscan.KindCommit:
		st.Add(s.id, pick(cs.hg >= 0, stats.ComCommit, stats.ComCommitFiltered), 1)
	case sqlscan.KindRollback:
		st.Add(s.id, pick(cs.hg >= 0, stats.ComRollback, stats.ComRollbackFiltered), 1)
	case sqlscan.KindSelectForUpdate:
		if !s.state.Autocommit {
			st.Add(s.id, stats.SelectsForUpdateAutocommit0, 1)
		}
	}
}

func pick(cond bool, a, b stats.Counter) stats.Counter {
	if cond {
		return a
	}
	return b
}

// setsAutocommit reports whether a SET assigns autocommit (Com_autocommit).
func setsAutocommit(set *sqlscan.SetStatement) bool {
	for _, a := range set.Assignments {
		if a.Kind == sqlscan.AssignAutocommit {
			return true
		}
	}
	return false
}

// endSession settles the gauges a session holds and counts an abort.
func (s *session) endSession() {
	if s.pubTrx {
		s.pubTrx = false
		s.r.stats.Add(s.id, stats.ActiveTransactions, -1)
	}
	if n := len(s.stmts.m); n > 0 {
		s.r.stats.Add(s.id, stats.StmtClientActiveTotal, -int64(n))
	}
	s.lockOn(-1)
	if !s.quit {
		s.r.stats.Add(s.id, stats.ClientConnectionsAborted, 1)
	}
}

// ProcessInfo is one row of stats_mysql_processlist.
type ProcessInfo struct {
	SessionID  uint64
	User       string
	DB         string
	ClientHost string
	ClientPort int
	Hostgroup  int    // current hostgroup, -1 before the first routed query
	LocalHost  string // proxy side of the backend connection ("" when none)
	LocalPort  int
	ServerHost string // backend server ("" when none)
	ServerPort int
	Command    string // "Sleep" when idle, else the MySQL command name ("Query", "Execute", …)
	Time       time.Duration
	Info       string // the running query's text; "" with HasInfo false when idle
	HasInfo    bool
	// Pinned names the session state its backend connections hold that
	// cannot follow it to another connection ("" when all of it can).
	Pinned string
}

// Processlist returns the logged-in client sessions, by session id. It
// takes no global lock: each session's row is read from its own atomics
// and mutex.
func (r *Router) Processlist() []ProcessInfo {
	var out []ProcessInfo
	now := time.Now().UnixNano()
	r.sessions.Range(func(_, v any) bool {
		out = append(out, v.(*session).processInfo(now))
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out
}

func (s *session) processInfo(now int64) ProcessInfo {
	pi := &s.pub
	p := ProcessInfo{SessionID: s.id, Hostgroup: int(pi.hg.Load()), ClientHost: s.clientIP}
	if _, port, err := net.SplitHostPort(s.clientAddr); err == nil {
		p.ClientPort, _ = strconv.Atoi(port)
	}
	cmd := pi.command.Load()
	if since := pi.since.Load(); since > 0 && now > since {
		p.Time = time.Duration(now - since)
	}
	pins := pinMask(pi.pins.Load())
	pi.mu.Lock()
	p.User, p.DB = pi.user, pi.db
	p.Pinned = m2text(pins, pi.untracked)
	if cmd == int32(wire.ComQuery) || cmd == int32(wire.ComStmtExecute) || cmd == int32(wire.ComStmtPrepare) {
		p.Info, p.HasInfo = string(pi.info), true
	}
	pi.mu.Unlock()
	p.Command = commandName(cmd)
	if bc := pi.conn.Load(); bc != nil {
		srv := bc.Server().Key()
		p.ServerHost, p.ServerPort = srv.Host, srv.Port
		if a, ok := bc.LocalAddr().(*net.TCPAddr); ok {
			p.LocalHost, p.LocalPort = a.IP.String(), a.Port
		}
	}
	return p
}

// commandNames are the processlist names of the MySQL commands, as MySQL
// and ProxySQL show them.
var commandNames = map[byte]string{
	wire.ComQuit: "Quit", wire.ComInitDB: "Init DB", wire.ComQuery: "Query", wire.ComFieldList: "Field List",
	wire.ComStatistics: "Statistics", wire.ComProcessKill: "Kill", wire.ComPing: "Ping",
	wire.ComChangeUser: "Change user", wire.ComStmtPrepare: "Prepare", wire.ComStmtExecute: "Execute",
	wire.ComStmtSendLongData: "Long Data", wire.ComStmtClose: "Close stmt", wire.ComStmtReset: "Reset stmt",
	wire.ComSetOption: "Set option", wire.ComStmtFetch: "Fetch", wire.ComResetConnection: "Reset connection",
}

func commandName(cmd int32) string {
	if cmd < 0 {
		return "Sleep"
	}
	if n, ok := commandNames[byte(cmd)]; ok {
		return n
	}
	return "Unknown"
}

// UserStats is one row of stats_mysql_users.
type UserStats struct {
	Username               string
	FrontendConnections    int64
	FrontendMaxConnections int
}

// Users returns the runtime frontend users with their open client
// connections, by name.
func (r *Router) Users() []UserStats {
	rt := r.rt.Load()
	out := make([]UserStats, 0, len(rt.Frontend))
	for name, u := range rt.Frontend {
		var n int64
		if v, ok := r.userConns.Load(name); ok {
			n = v.(*atomic.Int64).Load()
		}
		out = append(out, UserStats{Username: name, FrontendConnections: n, FrontendMaxConnections: u.MaxConnections})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Stats returns the collector the router counts into.
func (r *Router) Stats() *stats.Collector { return r.stats }

// StmtCached returns the number of statements in the global prepared
// statement cache (Stmt_Cached).
func (r *Router) StmtCached() int { return r.stmts.len() }

// StmtInfo is one statement of the global prepared statement cache, as
// stats_mysql_prepared_statements_info shows it.
type StmtInfo struct {
	ID                 uint64
	Schema, User       string
	Digest             uint64
	Clients, Servers   int32 // client statements naming it; backend connections holding it
	NumCols, NumParams uint16
	Query              string
}

// StmtInfos lists the cached statements by id.
func (r *Router) StmtInfos() []StmtInfo {
	r.stmts.mu.RLock()
	out := make([]StmtInfo, 0, len(r.stmts.byKey))
	for _, g := range r.stmts.byKey {
		out = append(out, StmtInfo{ID: g.id, Schema: g.key.schema, User: g.key.user, Digest: g.digest,
			Clients: g.clients.Load(), Servers: g.servers.Load(),
			NumCols: g.numCols, NumParams: g.numParams, Query: g.sql})
	}
	r.stmts.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MirrorStatus returns the mirror queries running now and waiting in the
// queue (Mirror_concurrency, Mirror_queue_length).
func (r *Router) MirrorStatus() (running, queued int64) {
	return r.mirror.running.Load(), r.mirror.queued.Load()
}

// SessionBytes is stats_mysql_global's mysql_session_internal_bytes: the
// sessions' own structures, as many as there are sessions (each session's
// buffers are counted with the connections', wire.FrontendBuffers and
// wire.BackendBuffers; ProxySQL likewise counts its sessions' structures).
func (r *Router) SessionBytes() int64 {
	var n int64
	r.sessions.Range(func(_, _ any) bool { n++; return true })
	return n * int64(unsafe.Sizeof(session{}))
}

// MixedRuntimeCommands returns how many commands used a configuration other
// than the runtime they started with (see session.checkRuntime): 0 unless
// a path reads the configuration a second way.
func (r *Router) MixedRuntimeCommands() uint64 { return r.mixed.Load() }

// KilledBackend returns how many KILL QUERYs the proxy ran on servers (a
// timeout, a client gone, KILL on either port) and how many backend
// connections it cut under a running query.
func (r *Router) KilledBackend() (queries, conns uint64) {
	return r.killedQueries.Load(), r.killedConns.Load()
}

// countFrontendBytes adds what the client connection read and wrote since
// the last call to Queries_frontends_bytes_recv/_sent: after each query,
// and once more when the session ends.
func (s *session) countFrontendBytes() {
	in, out := s.c.BytesRead(), s.c.BytesWritten()
	if d := in - s.bytesCounted[0]; d > 0 {
		s.r.stats.Add(s.id, stats.QueriesFrontendsBytesRecv, int64(d))
	}
	if d := out - s.bytesCounted[1]; d > 0 {
		s.r.stats.Add(s.id, stats.QueriesFrontendsBytesSent, int64(d))
	}
	s.bytesCounted = [2]uint64{in, out}
}
