package proxy

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/backend/monitor"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/threads"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/router"
)

// The live tables: just before an admin statement reads a stats_* or
// runtime_mysql_servers table, the proxy writes the table's current rows
// into SQLite (ProxySQL's GenericRefreshStatistics). Tables nobody reads
// cost nothing.

// poolBaseline is what stats_mysql_connection_pool_reset subtracts: the
// counters of each server at the last reset. backend.Server counters only
// grow; the reset is a view. It is kept per server object, not per
// (hostgroup, host, port): a LOAD or a monitor move that makes a new object
// for the same key starts its counters at 0, and subtracting the old
// object's would show negative counts.
type poolBaseline struct {
	mu   sync.Mutex
	base map[*backend.Server]backend.Stats
}

// RefreshTables regenerates the live tables the statement names. Tables it
// does not produce (stats_mysql_errors, the other monitor.* and runtime_*
// tables, which LOAD already wrote) are left alone.
func (p *Proxy) RefreshTables(names []string) error {
	if p.cfg.Store == nil {
		return nil
	}
	named := make(map[string]bool, len(names))
	for _, n := range names {
		named[n] = true
	}
	ctx := context.Background()
	var errs []error
	replace := func(table string, cols []string, rows [][]any) {
		if err := p.cfg.Store.ReplaceTable(ctx, table, cols, rows); err != nil {
			errs = append(errs, err)
		}
	}
	// A table and its _reset twin: reading the twin empties what it
	// shows (the digest map, the pool counters, the error and client host
	// tables); when a statement names both, both get the rows read just
	// before the reset (ProxySQL would compute only the reset one).
	withReset := func(table string, cols []string, rows func(reset bool) [][]any) {
		switch {
		case named[table+"_reset"]:
			r := rows(true)
			replace(table+"_reset", cols, r)
			if named[table] {
				replace(table, cols, r)
			}
		case named[table]:
			replace(table, cols, rows(false))
		}
	}
	withReset("stats_mysql_query_digest", digestCols, func(reset bool) [][]any { return digestRows(p.stats.Digests().Snapshot(reset)) })
	withReset("stats_mysql_connection_pool", poolCols, p.poolRows)
	withReset("stats_mysql_errors", errorCols, func(reset bool) [][]any { return errorRows(p.router.Errors(reset)) })
	withReset("stats_mysql_client_host_cache", hostCacheCols, func(reset bool) [][]any { return hostCacheRows(p.router.ClientHosts(reset)) })
	for _, n := range names {
		switch n {
		case "stats_mysql_free_connections":
			replace(n, freeConnCols, p.freeConnRows())
		case "stats_mysql_processlist":
			replace(n, processlistCols, p.processlistRows())
		case "stats_mysql_global":
			replace(n, varCols, varRows(p.globalVars()))
		case "stats_mysql_commands_counters":
			replace(n, commandCols, p.commandRows())
		case "stats_mysql_users":
			replace(n, userCols, p.userRows())
		case "stats_mysql_query_rules":
			replace(n, []string{"rule_id", "hits"}, p.ruleRows())
		case "stats_mysql_migrations":
			replace(n, migrationCols, p.migrationRows())
		case "stats_memory_metrics":
			replace(n, varCols, varRows(p.memoryVars()))
		case "stats_mysql_prepared_statements_info":
			replace(n, stmtInfoCols, p.stmtInfoRows())
		case "runtime_mysql_servers":
			replace(n, serverCols, p.serverRows())
		case "monitor.mysql_server_connect_log", "monitor.mysql_server_ping_log", "monitor.mysql_server_read_only_log",
			"monitor.mysql_server_replication_lag_log", "monitor.mysql_server_galera_log", "monitor.mysql_server_group_replication_log":
			// Without a monitor the tables stay as they are (empty).
			if p.monitor != nil {
				seq := p.monitor.LogSeq()
				cols, rows := monitorRows(p.monitor, n)
				replace(n, cols, rows)
				p.monitorCopies.Store(n, seq)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("refreshing %s: %w", strings.Join(names, ", "), errors.Join(errs...))
	}
	return nil
}

// TruncateStats serves TRUNCATE of the digest tables: the map is emptied.
func (p *Proxy) TruncateStats(table string) (bool, error) {
	switch table {
	case "stats_mysql_query_digest", "stats_mysql_query_digest_reset":
		p.stats.Digests().Truncate()
		return true, nil
	}
	return false, nil
}

var digestCols = []string{"hostgroup", "schemaname", "username", "client_address", "digest", "digest_text",
	"count_star", "first_seen", "last_seen", "sum_time", "min_time", "max_time", "sum_rows_affected", "sum_rows_sent"}

func digestRows(rs []stats.DigestRow) [][]any {
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Hostgroup, r.Schema, r.User, r.ClientAddr, sqlscan.FormatHash(r.Digest), r.DigestText,
			int64(r.CountStar), r.FirstSeen, r.LastSeen, int64(r.SumTime), int64(r.MinTime), int64(r.MaxTime),
			int64(r.SumRowsAffected), int64(r.SumRowsSent)}
	}
	return out
}

var poolCols = []string{"hostgroup", "srv_host", "srv_port", "status", "ConnUsed", "ConnFree", "ConnOK", "ConnERR",
	"MaxConnUsed", "Queries", "Queries_GTID_sync", "Bytes_data_sent", "Bytes_data_recv", "Latency_us"}

// poolRows returns stats_mysql_connection_pool: one row per server, its
// counters since the last _reset read; with reset, that read is now.
// MaxConnUsed is the all-time peak (the pool does not keep one per reset).
func (p *Proxy) poolRows(reset bool) [][]any {
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	servers := p.registry.Servers()
	var next map[*backend.Server]backend.Stats
	if reset {
		// Only the servers that exist now: the map does not grow with
		// every object a LOAD replaced.
		next = make(map[*backend.Server]backend.Stats, len(servers))
	}
	out := make([][]any, 0, len(servers))
	for _, s := range servers {
		st := s.Stats()
		b := p.pool.base[s]
		out = append(out, []any{st.Hostgroup, st.Host, st.Port, st.Status.String(), st.ConnUsed, st.ConnFree,
			int64(st.ConnOK - b.ConnOK), int64(st.ConnERR - b.ConnERR), st.MaxConnUsed, int64(st.Queries - b.Queries), 0,
			int64(st.BytesSent - b.BytesSent), int64(st.BytesRecv - b.BytesRecv), st.LatencyUs})
		if reset {
			next[s] = st
		}
	}
	if reset {
		p.pool.base = next
	}
	return out
}

// liveStatus is how runtime_mysql_servers shows a status: as in ProxySQL
// (MYHGM_GEN_ADMIN_RUNTIME_SERVERS), SHUNNED_REPLICATION_LAG is SHUNNED
// there (the table's CHECK constraint knows no other value);
// stats_mysql_connection_pool shows SHUNNED_REPLICATION_LAG.
func liveStatus(s backend.Status) string {
	if s == backend.StatusShunnedReplicationLag {
		return backend.StatusShunned.String()
	}
	return s.String()
}

var processlistCols = []string{"ThreadID", "SessionID", "user", "db", "cli_host", "cli_port", "hostgroup",
	"l_srv_host", "l_srv_port", "srv_host", "srv_port", "command", "time_ms", "info", "status_flags", "extended_info"}

func (p *Proxy) processlistRows() [][]any {
	list := p.router.Processlist()
	out := make([][]any, len(list))
	for i, pi := range list {
		var lHost, lPort, sHost, sPort, info any
		if pi.ServerHost != "" {
			sHost, sPort = pi.ServerHost, pi.ServerPort
		}
		if pi.LocalHost != "" {
			lHost, lPort = pi.LocalHost, pi.LocalPort
		}
		if pi.HasInfo {
			info = pi.Info
		}
		// extended_info says what keeps a session on its backend connection
		// (state the proxy cannot carry to another one), as JSON.
		var ext any
		if pi.Pinned != "" {
			b, _ := json.Marshal(map[string]any{"movable": false, "pinned_by": pi.Pinned})
			ext = string(b)
		}
		// ThreadID is ProxySQL's worker thread; Sluice runs a goroutine per
		// session, so it is 0 for all.
		out[i] = []any{0, int64(pi.SessionID), pi.User, pi.DB, pi.ClientHost, pi.ClientPort, pi.Hostgroup,
			lHost, lPort, sHost, sPort, pi.Command, pi.Time.Milliseconds(), info, 0, ext}
	}
	return out
}

var varCols = []string{"Variable_Name", "Variable_Value"}

func varRows(vs []stats.Var) [][]any {
	out := make([][]any, len(vs))
	for i, v := range vs {
		out[i] = []any{v.Name, v.Value}
	}
	return out
}

// globalVars is stats_mysql_global: the collector's counters, then what is
// read from the pools and the router.
func (p *Proxy) globalVars() []stats.Var {
	vs := p.stats.Global()
	// Counters of every server the registry has had: they only grow, as
	// ProxySQL's, when a LOAD or the monitor takes a server out.
	t := p.registry.Totals()
	// The buffers of the pools' idle connections (ConnPool_memory_bytes);
	// those of the connections in use are the rest of what backend
	// connections hold.
	var poolFree int64
	for _, s := range p.registry.Servers() {
		poolFree += s.Pool().FreeBufferBytes()
	}
	backendBufs := max(wire.BackendBuffers.Bytes()-poolFree, 0)
	running, queued := p.router.MirrorStatus()
	pending, closed := p.router.HandshakeStats()
	qc := p.router.QueryCache().Stats()
	killedQ, killedC := p.router.KilledBackend()
	var clientUnique, serverTotal, serverUnique, maxID int64
	for _, st := range p.router.StmtInfos() {
		if st.Clients > 0 {
			clientUnique++
		}
		if st.Servers > 0 {
			serverUnique++
		}
		serverTotal += int64(st.Servers)
		maxID = max(maxID, int64(st.ID))
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	u64 := func(n uint64) string { return strconv.FormatUint(n, 10) }
	vs = append(vs,
		stats.Var{Name: "Com_backend_change_user", Value: u64(t.ChangeUsers)},
		stats.Var{Name: "Com_backend_init_db", Value: u64(t.InitDBs)},
		stats.Var{Name: "Com_backend_set_names", Value: u64(t.SetNames)},
		stats.Var{Name: "Server_Connections_aborted", Value: u64(t.ConnERR)},
		stats.Var{Name: "Server_Connections_connected", Value: i64(t.Connected)},
		stats.Var{Name: "Server_Connections_created", Value: u64(t.ConnOK)},
		stats.Var{Name: "Server_Connections_delayed", Value: u64(p.registry.ConnectionsDelayed())},
		// The read, write and large-packet buffers held now by the backend
		// connections in use (ProxySQL: its sessions' backend data streams)
		// and by the client connections (a session waiting for its next
		// command holds none).
		stats.Var{Name: "mysql_backend_buffers_bytes", Value: i64(backendBufs)},
		stats.Var{Name: "mysql_frontend_buffers_bytes", Value: i64(wire.FrontendBuffers.Bytes())},
		stats.Var{Name: "mysql_session_internal_bytes", Value: i64(p.router.SessionBytes())},
		stats.Var{Name: "Queries_backends_bytes_recv", Value: u64(t.BytesRecv)},
		stats.Var{Name: "Queries_backends_bytes_sent", Value: u64(t.BytesSent)},
		stats.Var{Name: "Mirror_concurrency", Value: i64(running)},
		stats.Var{Name: "Mirror_queue_length", Value: i64(queued)},
		// ProxySQL's MySQL_HostGroups_Manager rows: lookups of a free
		// connection (a request that waits looks again), those that took
		// one, connections given back (after a keep-alive ping too), and
		// connections handed out that were closed instead of pooled.
		stats.Var{Name: "MyHGM_myconnpoll_get", Value: u64(t.Pool.Get)},
		stats.Var{Name: "MyHGM_myconnpoll_get_ok", Value: u64(t.Pool.GetOK)},
		stats.Var{Name: "MyHGM_myconnpoll_push", Value: u64(t.Pool.Push)},
		stats.Var{Name: "MyHGM_myconnpoll_destroy", Value: u64(t.Pool.Destroy)},
	)
	if n, ok := sqliteMemory(); ok {
		vs = append(vs, stats.Var{Name: "SQLite3_memory_bytes", Value: i64(n)})
	}
	vs = append(vs,
		// The buffers of the pools' idle connections (ProxySQL adds its
		// per-server and per-connection structures).
		stats.Var{Name: "ConnPool_memory_bytes", Value: i64(poolFree)},
		stats.Var{Name: "Stmt_Cached", Value: strconv.Itoa(p.router.StmtCached())},
		// Of the cached statements: those clients hold, and their copies on backend connections.
		stats.Var{Name: "Stmt_Client_Active_Unique", Value: i64(clientUnique)},
		stats.Var{Name: "Stmt_Server_Active_Total", Value: i64(serverTotal)},
		stats.Var{Name: "Stmt_Server_Active_Unique", Value: i64(serverUnique)},
		stats.Var{Name: "Stmt_Max_Stmt_id", Value: i64(maxID)},
		stats.Var{Name: "Servers_table_version", Value: i64(p.serversVersion.Load())},
		// The threads running Go code (GOMAXPROCS: mysql-threads, or fewer with mysql-threads_adaptive),
		// without the one admin work adds while it runs (this statement is admin work).
		stats.Var{Name: "MySQL_Thread_Workers", Value: strconv.Itoa(workers())},
		// Sluice: queries whose digest found the map full (mysql-query_digests_max_entries).
		stats.Var{Name: "Query_digests_overflow", Value: u64(p.stats.Digests().Overflow())},
		// Sluice: the running runtime's generation (one per LOAD … TO RUNTIME), and commands that
		// saw a runtime other than the one they started with (must stay 0).
		stats.Var{Name: "Runtime_generation", Value: u64(p.rt.Load().Gen)},
		stats.Var{Name: "Runtime_mixed_commands", Value: u64(p.router.MixedRuntimeCommands())},
		// Sluice: client connections that have not logged in yet, and those closed to make room
		// for newer ones (router/handshakes.go: a flood of sockets that never log in).
		stats.Var{Name: "Client_Connections_handshakes_pending", Value: strconv.Itoa(pending)},
		stats.Var{Name: "Client_Connections_handshakes_closed", Value: u64(closed)},
		stats.Var{Name: "Query_Cache_Memory_bytes", Value: i64(qc.MemoryBytes)},
		stats.Var{Name: "Query_Cache_count_GET", Value: u64(qc.GET)},
		stats.Var{Name: "Query_Cache_count_GET_OK", Value: u64(qc.GETOK)},
		stats.Var{Name: "Query_Cache_count_SET", Value: u64(qc.SET)},
		stats.Var{Name: "Query_Cache_bytes_IN", Value: u64(qc.BytesIN)},
		stats.Var{Name: "Query_Cache_bytes_OUT", Value: u64(qc.BytesOUT)},
		stats.Var{Name: "Query_Cache_Purged", Value: u64(qc.Purged)},
		stats.Var{Name: "Query_Cache_Entries", Value: i64(qc.Entries)},
		// ProxySQL's sessions held by worker threads: all of them, as in
		// ProxySQL without --idle-threads (Sluice has no idle threads).
		stats.Var{Name: "Client_Connections_non_idle", Value: i64(p.stats.Value(stats.ClientConnectionsConnected))},
		stats.Var{Name: "mysql_killed_backend_queries", Value: u64(killedQ)},
		stats.Var{Name: "mysql_killed_backend_connections", Value: u64(killedC)},
	)
	// Listed with the monitor off too (0), as ProxySQL lists them.
	var counts map[string][2]uint64
	var monRunning, monStarted int64
	if p.monitor != nil {
		counts = p.monitor.CheckCounts()
		if p.rt.Load().Monitor.Enabled { // as ProxySQL: 0 with mysql-monitor_enabled=false
			monRunning, monStarted = p.monitor.Workers()
		}
	}
	vs = append(vs, stats.Var{Name: "MySQL_Monitor_Workers", Value: i64(monRunning)},
		stats.Var{Name: "MySQL_Monitor_Workers_Started", Value: i64(monStarted)})
	for _, check := range []string{"connect", "ping", "read_only", "replication_lag"} {
		c := counts[check]
		vs = append(vs, stats.Var{Name: "MySQL_Monitor_" + check + "_check_OK", Value: u64(c[0])},
			stats.Var{Name: "MySQL_Monitor_" + check + "_check_ERR", Value: u64(c[1])})
	}
	return vs
}

var commandCols = append([]string{"Command", "Total_Time_us", "Total_cnt"}, stats.CommandBuckets[:]...)

func (p *Proxy) commandRows() [][]any {
	cmds := p.stats.Commands()
	out := make([][]any, len(cmds))
	for i, c := range cmds {
		r := make([]any, 0, len(commandCols))
		r = append(r, c.Command, int64(c.TotalTimeUs), int64(c.TotalCnt))
		for _, b := range c.Buckets {
			r = append(r, int64(b))
		}
		out[i] = r
	}
	return out
}

var stmtInfoCols = []string{"global_stmt_id", "schemaname", "username", "digest",
	"ref_count_client", "ref_count_server", "num_columns", "num_params", "query"}

// stmtInfoRows is stats_mysql_prepared_statements_info: the global
// statement cache, with how many client statements and backend connections
// hold each statement.
func (p *Proxy) stmtInfoRows() [][]any {
	infos := p.router.StmtInfos()
	out := make([][]any, len(infos))
	for i, st := range infos {
		out[i] = []any{int64(st.ID), st.Schema, st.User, fmt.Sprintf("0x%016X", st.Digest),
			st.Clients, st.Servers, st.NumCols, st.NumParams, st.Query}
	}
	return out
}

var userCols = []string{"username", "frontend_connections", "frontend_max_connections"}

func (p *Proxy) userRows() [][]any {
	users := p.router.Users()
	out := make([][]any, len(users))
	for i, u := range users {
		out[i] = []any{u.Username, u.FrontendConnections, u.FrontendMaxConnections}
	}
	return out
}

func (p *Proxy) ruleRows() [][]any {
	hits := p.router.Rules().Hits()
	ids := make([]int, 0, len(hits))
	for id := range hits {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([][]any, len(ids))
	for i, id := range ids {
		out[i] = []any{id, int64(hits[id])}
	}
	return out
}

// memoryVars is stats_memory_metrics. Sluice has no jemalloc: the
// jemalloc_* rows carry the Go runtime's nearest equivalents, so ProxySQL
// dashboards keep working, and the Go_* rows the runtime's own names.
func (p *Proxy) memoryVars() []stats.Var {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	g := readGoMemory(&m)
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	var vs []stats.Var
	if n, ok := sqliteMemory(); ok {
		vs = append(vs, stats.Var{Name: "SQLite3_memory_bytes", Value: i(n)})
	}
	rt := p.rt.Load()
	return append(vs, []stats.Var{
		{Name: "jemalloc_resident", Value: u(g.resident)},
		{Name: "jemalloc_active", Value: u(g.active)},
		{Name: "jemalloc_allocated", Value: u(g.allocated)},
		{Name: "jemalloc_mapped", Value: u(g.mapped)},
		{Name: "jemalloc_metadata", Value: u(g.metadata)},
		{Name: "jemalloc_retained", Value: u(g.retained)},
		// Counted as ProxySQL counts these: each row's structure and its
		// strings (Go's map and slice overhead, and the compiled regular
		// expressions and firewall lookups, are not counted).
		{Name: "Auth_memory", Value: i(authBytes(rt.Frontend, rt.BackendUsers))},
		{Name: "query_digest_memory", Value: i(p.stats.Digests().MemoryBytes())},
		{Name: "mysql_query_rules_memory", Value: i(rowsBytes(rt.Snap.QueryRules) + rowsBytes(rt.Snap.FastRouting))},
		{Name: "mysql_firewall_users_config", Value: i(tableBytes(rt.Snap.Tables["mysql_firewall_whitelist_users"]))},
		{Name: "mysql_firewall_rules_config", Value: i(tableBytes(rt.Snap.Tables["mysql_firewall_whitelist_rules"]))},
		{Name: "stack_memory_mysql_threads", Value: u(m.StackInuse)},
		{Name: "Go_heap_alloc_bytes", Value: u(m.HeapAlloc)},
		{Name: "Go_heap_objects", Value: u(m.HeapObjects)},
		{Name: "Go_sys_bytes", Value: u(m.Sys)},
		{Name: "Go_gc_cycles", Value: u(uint64(m.NumGC))},
		{Name: "Go_goroutines", Value: strconv.Itoa(runtime.NumGoroutine())},
		{Name: "Query_digest_entries", Value: strconv.Itoa(p.stats.Digests().Len())},
	}...)
}

// sqliteMemStatus reports whether SQLite counts the memory it holds: the
// modernc build leaves SQLITE_CONFIG_MEMSTATUS off, and it can be turned on
// only before SQLite initializes — at package initialization, before any
// database is opened. (On, every SQLite allocation takes SQLite's memory
// mutex: the admin and stats databases, not the data plane.)
var sqliteMemStatus = func() bool {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.NewVaList(int32(1))
	defer libc.Xfree(tls, va)
	return sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_MEMSTATUS, va) == sqlite3.SQLITE_OK
}()

// sqliteMemory returns the bytes SQLite holds (sqlite3_memory_used, what
// ProxySQL's SQLite3_memory_bytes reads), or false when SQLite does not
// count them.
func sqliteMemory() (int64, bool) {
	if !sqliteMemStatus {
		return 0, false
	}
	tls := libc.NewTLS()
	defer tls.Close()
	return sqlite3.Xsqlite3_memory_used(tls), true
}

// authBytes is Auth_memory: the running configuration's mysql_users rows,
// each counted once (a user of both sides is one row here; ProxySQL keeps
// two copies).
func authBytes(maps ...map[string]*config.User) int64 {
	seen := make(map[*config.User]bool)
	var n int64
	for _, m := range maps {
		for _, u := range m {
			if !seen[u] {
				seen[u] = true
				n += structBytes(reflect.ValueOf(u).Elem())
			}
		}
	}
	return n
}

// rowsBytes is the bytes of a slice of configuration rows: each row's
// structure and the strings it points to.
func rowsBytes[T any](rows []T) int64 {
	var n int64
	for i := range rows {
		n += structBytes(reflect.ValueOf(&rows[i]).Elem())
	}
	return n
}

// structBytes is v's size and the bytes of its string fields
// (sql.NullString included).
func structBytes(v reflect.Value) int64 {
	n := int64(v.Type().Size())
	for i := range v.NumField() {
		switch f := v.Field(i); {
		case f.Kind() == reflect.String:
			n += int64(f.Len())
		case f.Type() == reflect.TypeFor[sql.NullString]():
			n += int64(len(f.Interface().(sql.NullString).String))
		}
	}
	return n
}

// tableBytes is the bytes of raw table rows Sluice keeps as loaded
// (config.Snapshot.Tables): the cells and their strings.
func tableBytes(rows [][]sql.NullString) int64 {
	var n int64
	for _, r := range rows {
		n += int64(unsafe.Sizeof(r)) + int64(len(r))*int64(unsafe.Sizeof(sql.NullString{}))
		for _, c := range r {
			n += int64(len(c.String))
		}
	}
	return n
}

var serverCols = []string{"hostgroup_id", "hostname", "port", "gtid_port", "status", "weight", "compression",
	"max_connections", "max_replication_lag", "use_ssl", "max_latency_ms", "comment"}

// serverRows is runtime_mysql_servers: LiveServers with each server's live
// status (SHUNNED by errors, pings or replication lag, or a status a
// monitor set) instead of the one LOAD wrote.
func (p *Proxy) serverRows() [][]any {
	servers := p.liveServers(true)
	out := make([][]any, len(servers))
	for i, v := range servers {
		out[i] = []any{v.HostgroupID, v.Hostname, v.Port, v.GTIDPort, v.Status, v.Weight, v.Compression,
			v.MaxConnections, v.MaxReplicationLag, v.UseSSL, v.MaxLatencyMs, v.Comment}
	}
	return out
}

// LiveServers is what SAVE MYSQL SERVERS FROM RUNTIME writes to MEMORY
// (admin.LiveServerser): the servers as runtime_mysql_servers has them —
// without those the read_only, Galera or Group Replication check took out
// of a hostgroup and
// with those it added — and, as ProxySQL saves them, a server the proxy
// shunned is saved ONLINE (an administrator's OFFLINE stays).
func (p *Proxy) LiveServers() []config.Server { return p.liveServers(false) }

// liveServers lists the configured servers still in the registry, in the
// order of mysql_servers, then the servers a monitor added, in registry
// order. shunned keeps SHUNNED as the status of a shunned server; else it
// is ONLINE.
func (p *Proxy) liveServers(shunned bool) []config.Server {
	snap := p.Runtime()
	servers := p.registry.Servers()
	out := make([]config.Server, 0, len(servers))
	status := func(s *backend.Server) string {
		st := liveStatus(s.Status())
		if !shunned && st == backend.StatusShunned.String() {
			return backend.StatusOnline.String()
		}
		return st
	}
	moved := p.monitor != nil && (len(snap.ReplicationHostgroups) > 0 || len(p.rt.Load().Monitor.ClusterHostgroups) > 0)
	listed := make(map[backend.Key]bool, len(snap.Servers))
	for _, v := range snap.Servers {
		k := backend.Key{Hostgroup: v.HostgroupID, Host: v.Hostname, Port: v.Port}
		v.Status = strings.ToUpper(v.Status)
		if s := p.registry.Lookup(k); s != nil {
			v.Status = status(s)
		} else if moved {
			continue // moved out by the read_only, Galera or Group Replication check
		}
		listed[k] = true
		out = append(out, v)
	}
	for _, s := range servers {
		k := s.Key()
		if listed[k] {
			continue
		}
		out = append(out, config.Server{HostgroupID: k.Hostgroup, Hostname: k.Host, Port: k.Port, GTIDPort: s.GTIDPort(),
			Status: status(s), Weight: s.Weight(), Compression: s.Compression(), MaxConnections: s.MaxConnections(),
			MaxReplicationLag: s.MaxReplicationLag(), UseSSL: s.UseSSL(), MaxLatencyMs: s.MaxLatencyMs(), Comment: s.Comment()})
	}
	return out
}

// monitorRows returns the columns and rows of a monitor log table.
func monitorRows(m *monitor.Monitor, table string) ([]string, [][]any) {
	var cols []string
	var log []monitor.LogEntry
	switch table {
	case "monitor.mysql_server_connect_log":
		cols = []string{"hostname", "port", "time_start_us", "connect_success_time_us", "connect_error"}
		log = m.ConnectLog()
	case "monitor.mysql_server_ping_log":
		cols = []string{"hostname", "port", "time_start_us", "ping_success_time_us", "ping_error"}
		log = m.PingLog()
	case "monitor.mysql_server_replication_lag_log":
		cols = []string{"hostname", "port", "time_start_us", "success_time_us", "repl_lag", "error"}
		log = m.ReplicationLagLog()
	case "monitor.mysql_server_galera_log":
		return galeraLogRows(m.GaleraLog())
	case "monitor.mysql_server_group_replication_log":
		return grLogRows(m.GroupReplicationLog())
	default:
		cols = []string{"hostname", "port", "time_start_us", "success_time_us", "read_only", "error"}
		log = m.ReadOnlyLog()
	}
	lagLog := table == "monitor.mysql_server_replication_lag_log"
	rows := make([][]any, len(log))
	for i, e := range log {
		var errText any
		if e.Error != "" {
			errText = e.Error
		}
		r := []any{e.Host, e.Port, e.Start.UnixMicro(), e.Success.Microseconds()}
		if len(cols) == 6 {
			var v any
			switch {
			case lagLog && e.ReplLag >= 0:
				v = e.ReplLag
			case !lagLog && e.ReadOnly >= 0:
				v = e.ReadOnly
			}
			r = append(r, v)
		}
		rows[i] = append(r, errText)
	}
	return cols, rows
}

// galeraLogRows is monitor.mysql_server_galera_log: after an error only
// the error is known, and the other columns have the table's defaults, as
// ProxySQL writes them.
func galeraLogRows(log []monitor.LogEntry) ([]string, [][]any) {
	cols := []string{"hostname", "port", "time_start_us", "success_time_us", "primary_partition", "read_only",
		"wsrep_local_recv_queue", "wsrep_local_state", "wsrep_desync", "wsrep_reject_queries",
		"wsrep_sst_donor_rejects_queries", "pxc_maint_mode", "error"}
	rows := make([][]any, len(log))
	for i, e := range log {
		r := []any{e.Host, e.Port, e.Start.UnixMicro(), e.Success.Microseconds()}
		if g := e.Galera; g != nil {
			rows[i] = append(r, yes(g.Primary), yes(g.ReadOnly), g.RecvQueue, g.LocalState, yes(g.Desync),
				yes(g.RejectQueries), yes(g.DonorRejects), yes(g.MaintMode != "DISABLED"), nil)
			continue
		}
		rows[i] = append(r, "NO", "YES", 0, 0, "NO", "NO", "NO", "NO", e.Error)
	}
	return cols, rows
}

// yes is how the monitor logs write a flag.
func yes(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// grLogRows is monitor.mysql_server_group_replication_log; after an error,
// the table's defaults and the error, as ProxySQL writes them.
func grLogRows(log []monitor.LogEntry) ([]string, [][]any) {
	cols := []string{"hostname", "port", "time_start_us", "success_time_us", "viable_candidate", "read_only",
		"transactions_behind", "error"}
	rows := make([][]any, len(log))
	for i, e := range log {
		r := []any{e.Host, e.Port, e.Start.UnixMicro(), e.Success.Microseconds()}
		if g := e.GR; g != nil {
			rows[i] = append(r, yes(g.Viable), yes(g.ReadOnly), g.Behind, nil)
			continue
		}
		rows[i] = append(r, "NO", "YES", 0, e.Error)
	}
	return cols, rows
}

var migrationCols = []string{"hostgroup", "from_server", "to_server", "reason", "outcome", "count_star", "last_seen"}

// migrationRows is stats_mysql_migrations: session migrations by hostgroup,
// servers, reason and outcome.
func (p *Proxy) migrationRows() [][]any {
	ms := p.router.Migrations()
	out := make([][]any, len(ms))
	for i, m := range ms {
		out[i] = []any{m.Hostgroup, m.From, m.To, m.Reason, m.Outcome, int64(m.Count), m.Last.Unix()}
	}
	return out
}

var errorCols = []string{"hostgroup", "hostname", "port", "username", "client_address", "schemaname", "errno",
	"count_star", "first_seen", "last_seen", "last_error"}

// errorRows is stats_mysql_errors.
func errorRows(es []router.ErrorRow) [][]any {
	out := make([][]any, len(es))
	for i, e := range es {
		out[i] = []any{e.Hostgroup, e.Host, e.Port, e.User, e.ClientAddr, e.Schema, int(e.Errno),
			int64(e.Count), e.FirstSeen, e.LastSeen, e.LastError}
	}
	return out
}

var freeConnCols = []string{"fd", "hostgroup", "srv_host", "srv_port", "user", "schema", "init_connect",
	"time_zone", "sql_mode", "autocommit", "idle_ms", "statistics", "mysql_info"}

// freeConnRows is stats_mysql_free_connections: every idle pooled
// connection, with the state it holds (ProxySQL's columns; statistics and
// mysql_info as JSON objects).
func (p *Proxy) freeConnRows() [][]any {
	now := time.Now()
	initConnect := p.Runtime().Var("mysql-init_connect")
	var out [][]any
	for _, s := range p.registry.Servers() {
		k := s.Key()
		for _, c := range s.FreeConns(now) {
			tz, mode := "", ""
			for _, v := range c.State.Vars {
				switch v.Name {
				case "time_zone":
					tz = setValue(v.SQL)
				case "sql_mode":
					mode = setValue(v.SQL)
				}
			}
			stats, _ := json.Marshal(map[string]any{"address": net.JoinHostPort(k.Host, strconv.Itoa(k.Port)),
				"age_ms": now.Sub(c.Created).Milliseconds(), "bytes_sent": c.BytesSent, "bytes_recv": c.BytesIn})
			info, _ := json.Marshal(map[string]any{"thread_id": c.ThreadID, "server_version": c.ServerVersion})
			out = append(out, []any{c.FD, k.Hostgroup, k.Host, k.Port, c.User, c.State.Schema, initConnect,
				tz, mode, b2s(c.State.Autocommit), c.Idle.Milliseconds(), string(stats), string(info)})
		}
	}
	return out
}

// setValue is the value of a tracked variable's "SET name=value".
func setValue(stmt string) string {
	if i := strings.IndexByte(stmt, '='); i >= 0 {
		return strings.Trim(strings.TrimSpace(stmt[i+1:]), "'\"")
	}
	return stmt
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// TableWarnings serves admin.TableNoter: the tables a statement reads that
// Sluice never fills (live.UnfilledTables).
func (p *Proxy) TableWarnings(ids []string) []string { return live.UnfilledTables(ids) }

var hostCacheCols = []string{"client_address", "error_count", "last_updated"}

// hostCacheRows are stats_mysql_client_host_cache's rows; last_updated is
// in Unix seconds, as ProxySQL's.
func hostCacheRows(es []router.HostCacheEntry) [][]any {
	rows := make([][]any, 0, len(es))
	for _, e := range es {
		rows = append(rows, []any{e.Address, e.ErrorCount, e.LastUpdated.Unix()})
	}
	return rows
}

// MonitorLogEdited applies a statement that wrote monitor log table (bare
// name, e.g. mysql_server_ping_log) — DELETE FROM monitor.mysql_server_ping_log
// after fixing the monitor password — to the monitor's log, which the table
// is copied from at each read: the rows the statement removed from the
// copy are dropped from the log, so they do not come back at the next
// read (as in ProxySQL, whose log is the table itself).
func (p *Proxy) MonitorLogEdited(table string) error {
	if p.monitor == nil || p.cfg.Store == nil || !monitor.EditableLog(table) {
		return nil
	}
	v, ok := p.monitorCopies.Load("monitor." + table)
	if !ok {
		return nil // never copied: the statement saw an empty table
	}
	res, err := p.cfg.Store.Query(context.Background(), "SELECT hostname, port, time_start_us FROM monitor."+table, false)
	if err != nil {
		return err
	}
	type key struct {
		host          string
		port, startUs int64
	}
	left := make(map[key]bool, len(res.Rows))
	for _, r := range res.Rows {
		port, _ := strconv.ParseInt(r[1].String, 10, 64)
		start, _ := strconv.ParseInt(r[2].String, 10, 64)
		left[key{r[0].String, port, start}] = true
	}
	p.monitor.Retain(table, v.(uint64), func(host string, port int, startUs int64) bool {
		return left[key{host, int64(port), startUs}]
	})
	return nil
}

// workers is the data plane's thread count: the controller's base when it
// manages GOMAXPROCS, GOMAXPROCS otherwise.
func workers() int {
	if n := threads.Default.Base(); n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}
