package storage

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	spooky "github.com/dgryski/go-spooky"

	"github.com/sluice-proxy/sluice/internal/config"
)

func ns(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
func ni(n int64) sql.NullInt64   { return sql.NullInt64{Int64: n, Valid: true} }

func TestBuildSnapshotMapping(t *testing.T) {
	s, _ := openTemp(t)
	mustExec(t, s,
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment) "+
			"VALUES (2, 'b', 3307, 3308, 'offline_soft', 10, 1, 50, 30, 1, 200, 'c2'), (1, 'a', 3306, 0, 'online', 1, 0, 1000, 0, 0, 0, '')",
		"INSERT INTO mysql_servers_balance VALUES ('a', 3306, '{\"zone\":\"z1\"}', 'http://a/metrics', 'bal')",
		"INSERT INTO mysql_replication_hostgroups VALUES (1, 2, 'read_only', 'rh')",
		"INSERT INTO mysql_hostgroup_attributes (hostgroup_id, autocommit, init_connect, hostgroup_settings) VALUES (1, 0, 'SET x=1', '{\"handle_warnings\":1}')",
		"INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, comment) VALUES (20, 21, 22, 23, NULL)",
		"INSERT INTO mysql_users (username, password, active, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, backend, frontend, max_connections, attributes, comment) "+
			"VALUES ('app', 'secret', 1, 1, 1, 'db', 1, 0, 1, 1, 1, 77, '{\"a\":1}', 'c'), ('off', 'x', 0, 0, 1, NULL, 0, 1, 0, 1, 1, 10, '', ''), ('neg', 'x', 1, 0, -1, NULL, 0, 1, 0, 1, 1, 10, '', ''), ('nopw', NULL, 1, 0, 0, NULL, 0, 1, 0, 1, 1, 10, '', '')",
		"INSERT INTO mysql_query_rules (rule_id, active, username, flagIN, proxy_port, match_pattern, replace_pattern, destination_hostgroup, cache_ttl, multiplex, apply, comment) "+
			"VALUES (20, 1, 'app', 0, 6033, '^SELECT', 'SELECT 1', 2, 100, 2, 1, 'r20'), (10, 1, NULL, 3, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL), (15, 0, NULL, 0, NULL, NULL, NULL, 1, NULL, NULL, 1, NULL)",
		"INSERT INTO mysql_query_rules_fast_routing VALUES ('app', 'db', 0, 3, 'fr')",
		"INSERT INTO scheduler (id, active, interval_ms, filename, arg1, arg3, comment) VALUES (5, 0, 2000, '/bin/job', 'a1', 'a3', 'sc')",
		"INSERT INTO proxysql_servers VALUES ('peer', 6032, 3, 'ps')",
		"INSERT INTO global_variables VALUES ('mysql-threads', '8'), ('admin-version', 'v')",
		"INSERT INTO restapi_routes (timeout_ms, method, uri, script) VALUES (1000, 'GET', 'm', '/s')",
	)
	base := &config.Snapshot{Users: []config.User{{Username: "keep"}}, Tables: map[string][][]sql.NullString{"other": nil}}
	snap := base
	var err error
	for _, m := range config.Modules {
		if snap, err = s.BuildSnapshot(snap, m); err != nil {
			t.Fatalf("BuildSnapshot(%s): %v", m, err)
		}
	}
	if len(base.Users) != 1 || base.Users[0].Username != "keep" || base.Servers != nil {
		t.Errorf("base snapshot was modified: %+v", base)
	}
	if _, ok := snap.Tables["other"]; !ok {
		t.Errorf("base Tables entry lost")
	}
	wantServers := []config.Server{
		{HostgroupID: 1, Hostname: "a", Port: 3306, Status: "ONLINE", Weight: 1, MaxConnections: 1000},
		{HostgroupID: 2, Hostname: "b", Port: 3307, GTIDPort: 3308, Status: "OFFLINE_SOFT", Weight: 10, Compression: 1,
			MaxConnections: 50, MaxReplicationLag: 30, UseSSL: 1, MaxLatencyMs: 200, Comment: "c2"},
	}
	if !reflect.DeepEqual(snap.Servers, wantServers) {
		t.Errorf("servers %+v", snap.Servers)
	}
	if want := []config.ServerBalance{{Hostname: "a", Port: 3306, Labels: `{"zone":"z1"}`, MetricsURL: "http://a/metrics", Comment: "bal"}}; !reflect.DeepEqual(snap.ServersBalance, want) {
		t.Errorf("balance %+v", snap.ServersBalance)
	}
	if want := []config.ReplicationHostgroup{{WriterHostgroup: 1, ReaderHostgroup: 2, CheckType: "read_only", Comment: "rh"}}; !reflect.DeepEqual(snap.ReplicationHostgroups, want) {
		t.Errorf("replication %+v", snap.ReplicationHostgroups)
	}
	wantHGA := config.HostgroupAttributes{HostgroupID: 1, MaxNumOnlineServers: 1000000, Autocommit: 0, FreeConnectionsPct: 10,
		InitConnect: "SET x=1", Multiplex: 1, ThrottleConnectionsPerSec: 1000000, HostgroupSettings: `{"handle_warnings":1}`}
	if len(snap.HostgroupAttributes) != 1 || snap.HostgroupAttributes[0] != wantHGA {
		t.Errorf("hostgroup attributes %+v", snap.HostgroupAttributes)
	}
	if g := snap.Tables["mysql_galera_hostgroups"]; len(g) != 1 || g[0][0] != ns("20") || g[0][8].Valid {
		t.Errorf("galera raw rows %v", g)
	}
	if r := snap.Tables["restapi_routes"]; len(r) != 1 || r[0][3] != ns("GET") {
		t.Errorf("restapi raw rows %v", r)
	}
	wantUsers := []config.User{
		{Username: "app", Password: "secret", Active: true, UseSSL: true, DefaultHostgroup: 1, DefaultSchema: "db", SchemaLocked: true,
			FastForward: true, Backend: true, Frontend: true, MaxConnections: 77, Attributes: `{"a":1}`, Comment: "c"},
		{Username: "nopw", Active: true, TransactionPersistent: true, Backend: true, Frontend: true, MaxConnections: 10},
	}
	if !reflect.DeepEqual(snap.Users, wantUsers) {
		t.Errorf("users %+v", snap.Users)
	}
	if len(snap.QueryRules) != 2 || snap.QueryRules[0].RuleID != 10 || snap.QueryRules[1].RuleID != 20 {
		t.Fatalf("rules %+v", snap.QueryRules)
	}
	r10, r20 := snap.QueryRules[0], snap.QueryRules[1]
	if r10.Username.Valid || r10.DestinationHostgroup.Valid || r10.Comment.Valid || r10.ProxyPort.Valid || r10.FlagIN != 3 ||
		!r10.Active || r10.Apply || r10.ReModifiers != ns("CASELESS") {
		t.Errorf("rule 10 NULLs/defaults: %+v", r10)
	}
	if r20.Username != ns("app") || r20.ProxyPort != ni(6033) || r20.ReplacePattern != ns("SELECT 1") ||
		r20.DestinationHostgroup != ni(2) || r20.CacheTTL != ni(100) || r20.Multiplex != ni(2) || !r20.Apply || r20.Comment != ns("r20") {
		t.Errorf("rule 20: %+v", r20)
	}
	if want := []config.FastRoute{{Username: "app", Schemaname: "db", DestinationHostgroup: 3, Comment: "fr"}}; !reflect.DeepEqual(snap.FastRouting, want) {
		t.Errorf("fast routing %+v", snap.FastRouting)
	}
	wantJob := config.SchedulerJob{ID: 5, IntervalMs: 2000, Filename: "/bin/job", Args: [5]sql.NullString{ns("a1"), {}, ns("a3"), {}, {}}, Comment: "sc"}
	if len(snap.Scheduler) != 1 || !reflect.DeepEqual(snap.Scheduler[0], wantJob) {
		t.Errorf("scheduler %+v", snap.Scheduler)
	}
	if want := []config.ProxySQLServer{{Hostname: "peer", Port: 6032, Weight: 3, Comment: "ps"}}; !reflect.DeepEqual(snap.ProxySQLServers, want) {
		t.Errorf("proxysql servers %+v", snap.ProxySQLServers)
	}
	if snap.MySQLVars["mysql-threads"] != "8" || len(snap.MySQLVars) != 1 || snap.AdminVars["admin-version"] != "v" || len(snap.AdminVars) != 1 {
		t.Errorf("vars %v %v", snap.MySQLVars, snap.AdminVars)
	}

	// A value SQLite accepted but Sluice cannot read is an error naming the table.
	mustExec(t, s, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES ('abc', 'bad')")
	if _, err := s.BuildSnapshot(snap, config.ModMySQLServers); err == nil || !strings.Contains(err.Error(), "mysql_servers") {
		t.Errorf("bad hostgroup_id: %v", err)
	}
}

// TestPasswordsKeptAsWritten: as in ProxySQL 2.6+, a password reads back
// exactly as written, clear text or mysql_native_password hash, from
// mysql_users and runtime_mysql_users, after LOAD MYSQL USERS TO RUNTIME
// (WriteRuntime) and after SAVE MYSQL USERS TO MEMORY (RuntimeToMemory).
func TestPasswordsKeptAsWritten(t *testing.T) {
	s, _ := openTemp(t)
	const clear, hashed = "S3cret!", "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29"
	mustExec(t, s, "INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('clear', '"+clear+"', 1), ('hashed', '"+hashed+"', 1)")
	check := func(stage string) {
		t.Helper()
		for table, want := range map[string][][]string{
			"main.mysql_users":         {{"clear", clear}, {"hashed", hashed}},
			"main.runtime_mysql_users": {{"clear", clear}, {"clear", clear}, {"hashed", hashed}, {"hashed", hashed}},
		} {
			got := strs(mustRows(t, s, "SELECT username, password FROM "+table+" ORDER BY username, backend"))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %v, want %v", stage, table, got, want)
			}
		}
	}
	load := func() *config.Snapshot {
		t.Helper()
		snap, err := s.BuildSnapshot(nil, config.ModMySQLUsers)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteRuntime(snap, config.ModMySQLUsers); err != nil {
			t.Fatal(err)
		}
		return snap
	}
	snap := load()
	check("after LOAD")
	if _, err := s.RuntimeToMemory(snap, config.ModMySQLUsers); err != nil {
		t.Fatal(err)
	}
	check("after SAVE TO MEMORY")
	load()
	check("after a second LOAD")
}

func TestWriteRuntimeAndSaveToMemory(t *testing.T) {
	s, _ := openTemp(t)
	mustExec(t, s,
		"INSERT INTO mysql_users (username, password, default_hostgroup, comment) VALUES ('u1', 'pw', 1, 'c'), ('u2', '*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B', 2, ''), ('u3', '', 0, '')",
		"INSERT INTO mysql_users (username, password, active) VALUES ('inactive', 'x', 0)",
		"INSERT INTO mysql_query_rules (rule_id, active, match_digest) VALUES (1, 1, 'a'), (2, 0, 'b'), (3, 1, NULL)",
		"INSERT INTO global_variables VALUES ('mysql-a', '1'), ('mysql-b', '2'), ('admin-c', '3')",
		sampleRows["mysql_group_replication_hostgroups"],
	)
	snap := &config.Snapshot{}
	var err error
	for _, m := range config.Modules {
		if snap, err = s.BuildSnapshot(snap, m); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteRuntime(snap, m); err != nil {
			t.Fatalf("WriteRuntime(%s): %v", m, err)
		}
	}
	rows := mustRows(t, s, "SELECT username, password, active, backend, frontend, default_hostgroup, comment FROM runtime_mysql_users ORDER BY username, backend")
	want := [][]string{
		{"u1", "pw", "1", "0", "1", "1", "c"}, {"u1", "pw", "1", "1", "0", "1", "c"},
		{"u2", "*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B", "1", "0", "1", "2", ""}, {"u2", "*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B", "1", "1", "0", "2", ""},
		{"u3", "", "1", "0", "1", "0", ""}, {"u3", "", "1", "1", "0", "0", ""},
	}
	if got := strs(rows); !reflect.DeepEqual(got, want) {
		t.Errorf("runtime_mysql_users\n got %v\nwant %v", got, want)
	}
	if got := strs(mustRows(t, s, "SELECT rule_id FROM runtime_mysql_query_rules ORDER BY rule_id")); !reflect.DeepEqual(got, [][]string{{"1"}, {"3"}}) {
		t.Errorf("runtime rules %v, want active ones only", got)
	}
	if got := scalar(t, s, "SELECT count(*) FROM runtime_global_variables"); got != "3" {
		t.Errorf("runtime_global_variables has %s rows, want both prefixes (3)", got)
	}
	if got := scalar(t, s, "SELECT count(*) FROM runtime_mysql_group_replication_hostgroups"); got != "1" {
		t.Errorf("raw table not mirrored to runtime: %s rows", got)
	}
	// Reloading one variables module leaves the other prefix alone.
	snap2 := snap.Clone()
	snap2.MySQLVars = map[string]string{"mysql-a": "9", "mysql-max_allowed_packet": "1024"}
	if err := s.WriteRuntime(snap2, config.ModMySQLVariables); err != nil {
		t.Fatal(err)
	}
	if got := strs(mustRows(t, s, "SELECT * FROM runtime_global_variables ORDER BY variable_name")); !reflect.DeepEqual(got,
		[][]string{{"admin-c", "3"}, {"mysql-a", "9"}, {"mysql-max_allowed_packet", "1024"}}) {
		t.Errorf("runtime vars after mysql reload: %v", got)
	}
	if got := strs(mustRows(t, s, "SELECT * FROM stats.global_variables")); !reflect.DeepEqual(got, [][]string{{"mysql-max_allowed_packet", "1024"}}) {
		t.Errorf("stats.global_variables = %v", got)
	}

	// SAVE … TO MEMORY: users come back with their passwords as written,
	// users RUNTIME lacks stay, inactive (one never loaded too, as ProxySQL
	// does), rules become the loaded (active) ones.
	mustExec(t, s, "UPDATE mysql_users SET comment='edited' WHERE username='u1'", "INSERT INTO mysql_query_rules (rule_id, active) VALUES (9, 1)",
		"INSERT INTO mysql_users (username, password, active) VALUES ('notloaded', 'x', 1)")
	if n, err := s.RuntimeToMemory(snap, config.ModMySQLUsers); err != nil || n != 3 {
		t.Fatalf("RuntimeToMemory users: n=%d err=%v", n, err)
	}
	got := strs(mustRows(t, s, "SELECT username, password, active, backend, frontend, comment FROM mysql_users ORDER BY username"))
	wantMem := [][]string{{"inactive", "x", "0", "1", "1", ""}, {"notloaded", "x", "0", "1", "1", ""}, {"u1", "pw", "1", "1", "1", "c"},
		{"u2", "*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B", "1", "1", "1", ""}, {"u3", "", "1", "1", "1", ""}}
	if !reflect.DeepEqual(got, wantMem) {
		t.Errorf("mysql_users after SAVE TO MEMORY\n got %v\nwant %v", got, wantMem)
	}
	if _, err := s.RuntimeToMemory(snap, config.ModMySQLQueryRules); err != nil {
		t.Fatal(err)
	}
	if got := strs(mustRows(t, s, "SELECT rule_id FROM mysql_query_rules ORDER BY rule_id")); !reflect.DeepEqual(got, [][]string{{"1"}, {"3"}}) {
		t.Errorf("rules after SAVE TO MEMORY %v", got)
	}
	mustExec(t, s, "UPDATE global_variables SET variable_value='x' WHERE variable_name='mysql-b'")
	if _, err := s.RuntimeToMemory(snap, config.ModMySQLVariables); err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-b'"); got != "2" {
		t.Errorf("mysql-b after SAVE TO MEMORY = %q", got)
	}
	if got := scalar(t, s, "SELECT variable_value FROM global_variables WHERE variable_name='admin-c'"); got != "3" {
		t.Errorf("admin-c touched by mysql SAVE: %q", got)
	}
}

func strs(rows [][]sql.NullString) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = v.String
		}
	}
	return out
}

// oneShotChecksum computes ProxySQL's raw checksum independently of the
// streaming code: SpookyHash128 of the concatenated fields, first half.
func oneShotChecksum(fields ...string) string {
	h1, h2 := uint64(19), uint64(3)
	spooky.Hash128([]byte(strings.Join(fields, "")), &h1, &h2)
	lo := binary.LittleEndian.AppendUint64(nil, h1)
	return fmt.Sprintf("0x%X%X", binary.LittleEndian.Uint32(lo[:4]), binary.LittleEndian.Uint32(lo[4:]))
}

func TestChecksums(t *testing.T) {
	s, _ := openTemp(t)
	rows := strs(mustRows(t, s, "SELECT name, version, checksum FROM runtime_checksums_values ORDER BY name"))
	if len(rows) != len(checksumNames) {
		t.Fatalf("checksum rows %v", rows)
	}
	for i, r := range rows {
		if r[0] != checksumNames[i] || r[1] != "1" || r[2] != "0x00" {
			t.Errorf("initial checksum row %v", r)
		}
	}
	g0, _ := s.GlobalChecksum()

	load := func(m config.Module) {
		t.Helper()
		snap, err := s.BuildSnapshot(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteRuntime(snap, m); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordLoad(m, time.Unix(1700000000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	version := func(name string) string {
		return scalar(t, s, "SELECT version || ' ' || epoch || ' ' || checksum FROM runtime_checksums_values WHERE name='"+name+"'")
	}
	mustExec(t, s, "INSERT INTO proxysql_servers (hostname, port, weight, comment) VALUES ('p1', 6032, 0, ''), ('p2', 6033, 1, 'x')")
	load(config.ModProxySQLServers) // the boot load stays version 1
	want := oneShotChecksum("p1", "6032", "0", "", "p2", "6033", "1", "x")
	if got := version("proxysql_servers"); got != "1 1700000000 "+want {
		t.Errorf("after boot load: %q, want version 1 and %s", got, want)
	}
	load(config.ModProxySQLServers)
	if got := version("proxysql_servers"); got != "2 1700000000 "+want {
		t.Errorf("after second load: %q", got)
	}
	load(config.ModMySQLServers)
	load(config.ModMySQLServers)
	if a, b := version("mysql_servers"), version("mysql_servers_v2"); a != "2 1700000000 0x00" || b != a {
		t.Errorf("servers checksums %q %q", a, b)
	}
	load(config.ModScheduler) // no checksum row: a no-op
	g1, _ := s.GlobalChecksum()
	if g1 == g0 || g1 > 1<<63-1 {
		t.Errorf("global checksum %d (was %d)", g1, g0)
	}
	if g2, _ := s.GlobalChecksum(); g2 != g1 {
		t.Errorf("global checksum not stable: %d then %d", g1, g2)
	}

	// The format: low half then high half, neither padded.
	if got := formatChecksum(0x0000000A0000000B); got != "0xBA" {
		t.Errorf("format = %s", got)
	}
	if got := formatChecksum(0); got != "0x00" {
		t.Errorf("format(0) = %s", got)
	}

	// CHECKSUM DISK|MEMORY <table>.
	mustExec(t, s, sampleRows["mysql_servers"])
	mem, err := s.Checksum("MEMORY", "mysql servers")
	if err != nil {
		t.Fatal(err)
	}
	if want := oneShotChecksum("1", "db1", "3306", "0", "ONLINE", "1", "0", "1000", "0", "0", "0", "one",
		"2", "db2", "3307", "0", "ONLINE", "1", "0", "1000", "0", "0", "0", "two"); mem != want {
		t.Errorf("CHECKSUM MEMORY MYSQL SERVERS = %s, want %s", mem, want)
	}
	if d, _ := s.Checksum("DISK", "MYSQL SERVERS"); d != "0x00" {
		t.Errorf("CHECKSUM DISK before save = %s", d)
	}
	if _, err := s.MemoryToDisk(config.ModMySQLServers); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Checksum("DISK", "MYSQL SERVERS"); d != mem {
		t.Errorf("CHECKSUM DISK after save = %s, want %s", d, mem)
	}
	if m, _ := s.Checksum("", "MYSQL SERVERS"); m != mem {
		t.Errorf("CHECKSUM without layer = %s", m)
	}
	if _, err := s.Checksum("MEM", "MYSQL NONSENSE"); err == nil {
		t.Errorf("unknown table accepted")
	}
}

func TestSpookyStreamingMatchesOneShot(t *testing.T) {
	// rawChecksum feeds SpookyHash field by field, as ProxySQL's Update
	// calls do; that must equal hashing the concatenation, across the
	// 192-byte buffer boundary too.
	var rows [][]sql.NullString
	var fields []string
	for i := 0; i < 40; i++ {
		f := strings.Repeat(fmt.Sprint(i), i%13)
		rows = append(rows, []sql.NullString{ns(f), {}})
		fields = append(fields, f)
	}
	if got, want := formatChecksum(rawChecksum(rows)), oneShotChecksum(fields...); got != want {
		t.Errorf("streaming %s, one-shot %s", got, want)
	}
}
