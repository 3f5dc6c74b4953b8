package storage

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, existed, err := Open(Options{Datadir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if existed {
		t.Fatalf("existed = true for a new datadir")
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func mustExec(t *testing.T, s *Store, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := s.Query(context.Background(), q, false); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func mustRows(t *testing.T, s *Store, q string) [][]sql.NullString {
	t.Helper()
	res, err := s.Query(context.Background(), q, false)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !res.HasRows {
		t.Fatalf("%s: no result set", q)
	}
	return res.Rows
}

func scalar(t *testing.T, s *Store, q string) string {
	t.Helper()
	rows := mustRows(t, s, q)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: got %v, want one value", q, rows)
	}
	return rows[0][0].String
}

// sampleRows holds one valid INSERT for every config table, into MEMORY.
var sampleRows = map[string]string{
	"mysql_servers":                              "INSERT INTO main.mysql_servers (hostgroup_id, hostname, port, comment) VALUES (1, 'db1', 3306, 'one'), (2, 'db2', 3307, 'two')",
	"mysql_replication_hostgroups":               "INSERT INTO main.mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup) VALUES (1, 2)",
	"mysql_group_replication_hostgroups":         "INSERT INTO main.mysql_group_replication_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup) VALUES (10, 11, 12, 13)",
	"mysql_galera_hostgroups":                    "INSERT INTO main.mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, comment) VALUES (20, 21, 22, 23, NULL)",
	"mysql_aws_aurora_hostgroups":                "INSERT INTO main.mysql_aws_aurora_hostgroups (writer_hostgroup, reader_hostgroup, domain_name) VALUES (30, 31, '.example.com')",
	"mysql_hostgroup_attributes":                 "INSERT INTO main.mysql_hostgroup_attributes (hostgroup_id, servers_defaults) VALUES (1, '{\"weight\": 5}')",
	"mysql_servers_ssl_params":                   "INSERT INTO main.mysql_servers_ssl_params (hostname, port, username, ssl_ca) VALUES ('db1', 3306, 'u', '/ca.pem')",
	"mysql_servers_balance":                      "INSERT INTO main.mysql_servers_balance (hostname, port, labels, metrics_url) VALUES ('db1', 3306, '{\"zone\":\"a\"}', 'http://db1:9104/metrics')",
	"mysql_users":                                "INSERT INTO main.mysql_users (username, password, default_hostgroup) VALUES ('u1', 'p1', 1), ('u2', NULL, 2)",
	"mysql_query_rules":                          "INSERT INTO main.mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply) VALUES (1, 1, '^SELECT', 2, 1), (2, 0, '.', 1, 0)",
	"mysql_query_rules_fast_routing":             "INSERT INTO main.mysql_query_rules_fast_routing (username, schemaname, destination_hostgroup, comment) VALUES ('u1', 'db', 1, '')",
	"scheduler":                                  "INSERT INTO main.scheduler (interval_ms, filename, arg1) VALUES (1000, '/bin/true', 'x')",
	"proxysql_servers":                           "INSERT INTO main.proxysql_servers (hostname) VALUES ('peer1')",
	"restapi_routes":                             "INSERT INTO main.restapi_routes (timeout_ms, method, uri, script) VALUES (1000, 'GET', 'metrics', '/bin/true')",
	"mysql_firewall_whitelist_users":             "INSERT INTO main.mysql_firewall_whitelist_users (username, client_address, comment) VALUES ('u1', '', '')",
	"mysql_firewall_whitelist_rules":             "INSERT INTO main.mysql_firewall_whitelist_rules (username, client_address, schemaname, digest, comment) VALUES ('u1', '', 'db', '0x1', '')",
	"mysql_firewall_whitelist_sqli_fingerprints": "INSERT INTO main.mysql_firewall_whitelist_sqli_fingerprints (fingerprint) VALUES ('s&1')",
}

func TestSchemaVerbatimAndDatabases(t *testing.T) {
	s, _ := openTemp(t)
	for _, def := range configTables {
		for _, schema := range []string{"main", "disk"} {
			got := scalar(t, s, "SELECT sql FROM "+schema+".sqlite_master WHERE type='table' AND name='"+def.name+"'")
			if got != def.ddl {
				t.Errorf("%s.%s stored as\n%s\nwant\n%s", schema, def.name, got, def.ddl)
			}
		}
		if noRuntimeTwin[def.name] {
			continue
		}
		got := scalar(t, s, "SELECT sql FROM main.sqlite_master WHERE type='table' AND name='runtime_"+def.name+"'")
		if want := strings.Replace(def.ddl, "CREATE TABLE "+def.name, "CREATE TABLE runtime_"+def.name, 1); got != want {
			t.Errorf("runtime_%s stored as %s", def.name, got)
		}
	}
	for _, def := range append(append([]tableDef{}, statsTables...), monitorTables...) {
		_ = scalar(t, s, "SELECT count(*) FROM "+def.name)
	}
	// Every module's table has a definition.
	for _, m := range config.Modules {
		for _, tb := range m.Tables() {
			if scalar(t, s, "SELECT count(*) FROM main.sqlite_master WHERE name='"+tb+"'") != "1" {
				t.Errorf("module %s: table %s missing", m, tb)
			}
		}
	}
	var names []string
	for _, r := range mustRows(t, s, "PRAGMA database_list") {
		names = append(names, r[1].String)
	}
	if want := []string{"main", "disk", "stats", "monitor", "stats_history"}; !reflect.DeepEqual(names, want) {
		t.Errorf("databases %v, want %v", names, want)
	}
	if mode := scalar(t, s, "PRAGMA disk.journal_mode"); mode != "wal" {
		t.Errorf("disk journal_mode %q", mode)
	}
	if sync := scalar(t, s, "PRAGMA disk.synchronous"); sync != "2" {
		t.Errorf("disk synchronous %q, want 2 (FULL)", sync)
	}
}

func dump(t *testing.T, s *Store, schema, table string) [][]sql.NullString {
	t.Helper()
	return mustRows(t, s, "SELECT * FROM "+schema+"."+table+" ORDER BY rowid")
}

func TestLayerRoundTripEveryModule(t *testing.T) {
	s, _ := openTemp(t)
	for _, m := range config.Modules {
		var want int64
		if p := m.VarPrefix(); p != "" {
			mustExec(t, s, "INSERT INTO main.global_variables VALUES ('"+p+"roundtrip_a', '1'), ('"+p+"roundtrip_b', 'x')")
			want = 2
		} else {
			for _, tb := range m.Tables() {
				q, ok := sampleRows[tb]
				if !ok {
					t.Fatalf("no sample row for %s", tb)
				}
				mustExec(t, s, q)
				want += int64(strings.Count(q, "), (") + 1)
			}
		}
		n, err := s.MemoryToDisk(m)
		if err != nil {
			t.Fatalf("%s MemoryToDisk: %v", m, err)
		}
		if n != want {
			t.Errorf("%s MemoryToDisk copied %d rows, want %d", m, n, want)
		}
		saved := map[string][][]sql.NullString{}
		for _, tb := range m.Tables() {
			saved[tb] = dump(t, s, "main", tb)
			if d := dump(t, s, "disk", tb); !reflect.DeepEqual(d, saved[tb]) {
				t.Errorf("%s: disk.%s = %v, memory %v", m, tb, d, saved[tb])
			}
		}
		// Change MEMORY, then load DISK back over it.
		if p := m.VarPrefix(); p != "" {
			mustExec(t, s, "UPDATE main.global_variables SET variable_value='changed' WHERE variable_name LIKE '"+p+"%'")
		} else {
			for _, tb := range m.Tables() {
				mustExec(t, s, "DELETE FROM main."+tb)
			}
		}
		n, err = s.DiskToMemory(m)
		if err != nil {
			t.Fatalf("%s DiskToMemory: %v", m, err)
		}
		if n != want {
			t.Errorf("%s DiskToMemory copied %d rows, want %d", m, n, want)
		}
		for _, tb := range m.Tables() {
			if got := dump(t, s, "main", tb); !reflect.DeepEqual(got, saved[tb]) {
				t.Errorf("%s: main.%s after load = %v, want %v", m, tb, got, saved[tb])
			}
		}
	}
	// A variables module touches only its prefix.
	if got := scalar(t, s, "SELECT count(*) FROM disk.global_variables"); got != "4" {
		t.Errorf("disk.global_variables has %s rows, want 4", got)
	}
	// A table module replaces: a row only in MEMORY disappears on load.
	mustExec(t, s, "INSERT INTO main.proxysql_servers (hostname) VALUES ('extra')")
	if _, err := s.DiskToMemory(config.ModProxySQLServers); err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT count(*) FROM main.proxysql_servers"); got != "1" {
		t.Errorf("proxysql_servers after load: %s rows, want 1", got)
	}
}

func TestCheckConstraintErrors(t *testing.T) {
	s, _ := openTemp(t)
	cases := []string{
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (0, 'h', 70000)",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, status) VALUES (0, 'h', 'BROKEN')",
		"INSERT INTO mysql_users (username, attributes) VALUES ('u', 'not json')",
		"INSERT INTO mysql_query_rules (rule_id, replace_pattern) VALUES (1, 'x')",
		"INSERT INTO mysql_servers_balance (hostname, labels) VALUES ('h', '{bad')",
		"INSERT INTO scheduler (interval_ms, filename) VALUES (5, 'f')",
	}
	for _, q := range cases {
		_, err := s.Query(context.Background(), q, false)
		var se *SQLError
		if !errors.As(err, &se) {
			t.Errorf("%s: err %v, want *SQLError", q, err)
			continue
		}
		if !strings.HasPrefix(se.Msg, "CHECK constraint failed") {
			t.Errorf("%s: message %q", q, se.Msg)
		}
	}
	_, err := s.Query(context.Background(), "SELECT * FROM nosuch", false)
	if err == nil || err.Error() != "no such table: nosuch" {
		t.Errorf("unknown table: %v", err)
	}
	_, err = s.Query(context.Background(), "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (0, 'h'), (0, 'h')", false)
	if err == nil || !strings.HasPrefix(err.Error(), "UNIQUE constraint failed") {
		t.Errorf("duplicate key: %v", err)
	}
}

func TestQueryResults(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	res, err := s.Query(ctx, "INSERT INTO mysql_query_rules (active, match_digest) VALUES (1, 'a'), (1, 'b')", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.HasRows || res.AffectedRows != 2 || res.LastInsertID != 2 {
		t.Errorf("insert result %+v", res)
	}
	res, err = s.Query(ctx, "CREATE TABLE main.scratch (a INT)", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.AffectedRows != 0 {
		t.Errorf("DDL reported %d affected rows", res.AffectedRows)
	}
	res, err = s.Query(ctx, "SELECT rule_id, username, 1.0, 2.5, 1e20, x'414243' FROM mysql_query_rules WHERE rule_id=1", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []sql.NullString{{String: "1", Valid: true}, {}, {String: "1.0", Valid: true}, {String: "2.5", Valid: true},
		{String: "1.0e+20", Valid: true}, {String: "ABC", Valid: true}}
	if !res.HasRows || len(res.Rows) != 1 || !reflect.DeepEqual(res.Rows[0], want) {
		t.Errorf("select result %+v", res)
	}
	if len(res.Columns) != 6 || res.Columns[0] != "rule_id" {
		t.Errorf("columns %v", res.Columns)
	}
	res, err = s.Query(ctx, "SELECT * FROM mysql_servers", false)
	if err != nil || !res.HasRows || len(res.Rows) != 0 || len(res.Columns) != 12 {
		t.Errorf("empty select: %+v %v", res, err)
	}
	// Several statements run in order; the last result set is returned.
	res, err = s.Query(ctx, "DELETE FROM mysql_query_rules WHERE rule_id=2; SELECT count(*) FROM mysql_query_rules", false)
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0].String != "1" {
		t.Errorf("multi statement: %+v %v", res, err)
	}
	// A transaction left open by a statement string is rolled back, so the
	// layer copies still work.
	if _, err := s.Query(ctx, "BEGIN; INSERT INTO proxysql_servers (hostname) VALUES ('p')", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MemoryToDisk(config.ModProxySQLServers); err != nil {
		t.Fatalf("MemoryToDisk after an open transaction: %v", err)
	}
	if got := scalar(t, s, "SELECT count(*) FROM proxysql_servers"); got != "0" {
		t.Errorf("uncommitted insert survived: %s rows", got)
	}
	// DETACH of a built-in schema is refused for everyone.
	if _, err := s.Query(ctx, "DETACH DATABASE disk", false); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("DETACH disk: %v", err)
	}
}

func TestReadOnlyQuery(t *testing.T) {
	s, dir := openTemp(t)
	ctx := context.Background()
	mustExec(t, s, "INSERT INTO stats.stats_mysql_global VALUES ('Questions', '7')")
	res, err := s.Query(ctx, "SELECT Variable_Value FROM stats_mysql_global", true)
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0].String != "7" {
		t.Fatalf("read-only select: %+v %v", res, err)
	}
	for _, q := range []string{
		"PRAGMA database_list",
		"SELECT name FROM sqlite_master WHERE type='table'",
		"SELECT name FROM stats.sqlite_master WHERE type='table'",
		"SELECT * FROM monitor.mysql_server_ping_log",
		"SELECT * FROM stats_history.mysql_connections",
	} {
		if _, err := s.Query(ctx, q, true); err != nil {
			t.Errorf("%s refused in a read-only session: %v", q, err)
		}
	}
	for _, q := range []string{
		"PRAGMA query_only=OFF",
		"pragma foreign_keys=ON",
		"ATTACH DATABASE '" + filepath.Join(dir, "x.db") + "' AS x",
		"DETACH DATABASE stats",
		"SELECT 1; PRAGMA query_only=OFF; DELETE FROM stats_mysql_global",
		"SELECT password FROM mysql_users",
		"SELECT * FROM disk.global_variables",
		"SELECT count(*) FROM stats_mysql_global WHERE Variable_Name IN (SELECT variable_name FROM main.global_variables)",
	} {
		_, err := s.Query(ctx, q, true)
		if !errors.Is(err, ErrNotAllowed) || err.Error() != "Command not allowed" {
			t.Errorf("%s: err %v, want Command not allowed", q, err)
		}
	}
	_, err = s.Query(ctx, "DELETE FROM stats_mysql_global", true)
	var se *SQLError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "readonly") {
		t.Errorf("write in read-only session: %v", err)
	}
	// The admin session is writable again.
	mustExec(t, s, "DELETE FROM stats_mysql_global", "PRAGMA disk.wal_checkpoint(PASSIVE)")
	if got := scalar(t, s, "SELECT count(*) FROM stats_mysql_global"); got != "0" {
		t.Errorf("delete after read-only session left %s rows", got)
	}
}

func TestInitDefaults(t *testing.T) {
	s, _ := openTemp(t)
	defs := config.VarDefs()
	if len(defs) < 2 {
		t.Skip("too few variables defined")
	}
	var rw, ro *config.VarDef
	for i := range defs {
		if defs[i].ReadOnly && ro == nil {
			ro = &defs[i]
		}
		if !defs[i].ReadOnly && rw == nil {
			rw = &defs[i]
		}
	}
	mustExec(t, s, "INSERT INTO disk.global_variables VALUES ('"+rw.Name+"', 'saved')",
		"INSERT INTO main.global_variables VALUES ('mysql-unknown_junk', 'x')")
	if ro != nil {
		mustExec(t, s, "INSERT INTO disk.global_variables VALUES ('"+ro.Name+"', 'stale')")
	}
	if err := s.InitDefaults(); err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT variable_value FROM disk.global_variables WHERE variable_name='"+rw.Name+"'"); got != "saved" {
		t.Errorf("DISK %s = %q, want the saved value", rw.Name, got)
	}
	if ro != nil {
		if got := scalar(t, s, "SELECT variable_value FROM disk.global_variables WHERE variable_name='"+ro.Name+"'"); got != ro.Default {
			t.Errorf("DISK %s = %q, want %q", ro.Name, got, ro.Default)
		}
	}
	if got := scalar(t, s, "SELECT count(*) FROM main.global_variables"); got != itoa(len(defs)) {
		t.Errorf("MEMORY has %s variables, want %d", got, len(defs))
	}
	if got := scalar(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name='"+rw.Name+"'"); got != rw.Default {
		t.Errorf("MEMORY %s = %q, want default %q", rw.Name, got, rw.Default)
	}
	// Then DISK → MEMORY brings the saved value in.
	mod := config.ModMySQLVariables
	if strings.HasPrefix(rw.Name, "admin-") {
		mod = config.ModAdminVariables
	}
	if _, err := s.DiskToMemory(mod); err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name='"+rw.Name+"'"); got != "saved" {
		t.Errorf("after DiskToMemory %s = %q", rw.Name, got)
	}
	if err := s.SetVariable(rw.Name, "runtime"); err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name='"+rw.Name+"'"); got != "runtime" {
		t.Errorf("after SetVariable %s = %q", rw.Name, got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func cnfRoot(t *testing.T, text string) *cnf.Setting {
	t.Helper()
	root, err := cnf.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestReopenKeepsDiskAndInitialBackup(t *testing.T) {
	dir := t.TempDir()
	s, existed, err := Open(Options{Datadir: dir})
	if err != nil || existed {
		t.Fatalf("first open: existed=%v err=%v", existed, err)
	}
	mustExec(t, s, sampleRows["mysql_servers"], "INSERT INTO main.mysql_servers (hostgroup_id, hostname) VALUES (3, 'memory-only')")
	if _, err := s.MemoryToDisk(config.ModMySQLServers); err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, "DELETE FROM main.mysql_servers WHERE hostname='db1'")
	s.Close()
	if _, err := s.Query(context.Background(), "SELECT 1", false); !errors.Is(err, ErrClosed) {
		t.Errorf("query after Close: %v", err)
	}

	s, existed, err = Open(Options{Datadir: dir})
	if err != nil || !existed {
		t.Fatalf("reopen: existed=%v err=%v", existed, err)
	}
	if got := scalar(t, s, "SELECT count(*) FROM disk.mysql_servers"); got != "3" {
		t.Errorf("DISK after reopen has %s servers, want 3", got)
	}
	if got := scalar(t, s, "SELECT count(*) FROM main.mysql_servers"); got != "0" {
		t.Errorf("MEMORY after reopen has %s servers, want 0 (fresh)", got)
	}
	s.Close()

	s, existed, err = Open(Options{Datadir: dir, Initial: true})
	if err != nil || existed {
		t.Fatalf("initial open: existed=%v err=%v", existed, err)
	}
	if got := scalar(t, s, "SELECT count(*) FROM disk.mysql_servers"); got != "0" {
		t.Errorf("DISK after --initial has %s servers, want 0", got)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "sluice.db.bak")); err != nil {
		t.Fatalf("backup missing: %v", err)
	}
	// The backup is a complete database: open it as a datadir of its own.
	bak := t.TempDir()
	for _, suf := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(filepath.Join(dir, "sluice.db.bak"+suf), filepath.Join(bak, "sluice.db"+suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s, _, err = Open(Options{Datadir: bak})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := scalar(t, s, "SELECT count(*) FROM disk.mysql_servers"); got != "3" {
		t.Errorf("backup has %s servers, want 3", got)
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(Options{Datadir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := scalar(t, s, "SELECT version FROM disk.sluice_schema"); got != itoa(schemaVersion) {
		t.Errorf("new DISK has schema version %s", got)
	}
	mustExec(t, s, "UPDATE disk.sluice_schema SET version = 99")
	s.Close()
	_, _, err = Open(Options{Datadir: dir})
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("newer schema: err %v, want ErrSchemaTooNew naming version 99", err)
	}

	// A DISK without sluice_schema (a copied proxysql.db) is upgraded in
	// place: its data stays, missing tables appear, the version is set.
	dir = t.TempDir()
	raw, err := sql.Open("sqlite", filepath.Join(dir, DiskFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{configTables[0].ddl, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (7, 'legacy')"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	s, existed, err := Open(Options{Datadir: dir})
	if err != nil || !existed {
		t.Fatalf("open legacy DISK: existed=%v err=%v", existed, err)
	}
	defer s.Close()
	if got := scalar(t, s, "SELECT hostname FROM disk.mysql_servers"); got != "legacy" {
		t.Errorf("legacy row: %q", got)
	}
	if got := scalar(t, s, "SELECT version FROM disk.sluice_schema"); got != itoa(schemaVersion) {
		t.Errorf("upgraded version %s", got)
	}
	if got := scalar(t, s, "SELECT count(*) FROM disk.mysql_servers_balance"); got != "0" {
		t.Errorf("missing table not created")
	}
}

func TestConfigFileDelegation(t *testing.T) {
	s, _ := openTemp(t)
	root := cnfRoot(t, `mysql_servers = ( { address="10.0.0.1", port=3306, hostgroup=1 }, { address="10.0.0.2", hostgroup=2 } )`)
	n, _, err := s.LoadConfigFile(root, config.ModMySQLServers)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || scalar(t, s, "SELECT count(*) FROM main.mysql_servers") != "2" {
		t.Errorf("LoadConfigFile read %d rows", n)
	}
	text, err := s.ConfigFileText()
	if err != nil || text == "" {
		t.Errorf("ConfigFileText: %q %v", text, err)
	}
}

// TestReadAllBounded: an admin result set past its bound is refused with
// ErrResultTooLarge instead of being held whole; within it, read in full.
func TestReadAllBounded(t *testing.T) {
	s := openTestStore(t)
	q := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000) SELECT x, printf('%.100c', 'a') FROM c"
	for _, tt := range []struct {
		limit int
		rows  int
		err   error
	}{{0, 1000, nil}, {1 << 20, 1000, nil}, {10_000, 0, ErrResultTooLarge}} {
		rows, err := s.conn.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		_, out, err := readAll(rows, tt.limit)
		rows.Close()
		if !errors.Is(err, tt.err) || len(out) != tt.rows {
			t.Errorf("limit %d: %d rows, %v; want %d, %v", tt.limit, len(out), err, tt.rows, tt.err)
		}
	}
}
