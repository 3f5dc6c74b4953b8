package storage

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
)

// fullCnf is a proxysql.cnf as ProxySQL users write them, touching every
// section Sluice reads.
const fullCnf = `
datadir="/var/lib/proxysql"
errorlog="/var/lib/proxysql/proxysql.log"

admin_variables=
{
	admin_credentials="admin:admin"
	mysql_ifaces="127.0.0.1:6032"
	refresh_interval=2000
	debug=false
}

mysql_variables=
{
	threads=4
	max_connections=0x800
	have_compress=true
	interfaces="127.0.0.1:6033"
	default_schema="information_schema"
	server_version="5.5.30"
	monitor_username="monitor"
	monitor_password="monitor"
	not_a_real_variable="kept"
	ratio=0.5
}

mysql_servers =
(
	{ address="10.0.0.1", port=3306, hostgroup=0, max_connections=200, comment="primary" },
	{ hostname="10.0.0.2", hostgroup_id=1, status="offline_soft", weight=10 },
	{ address="10.0.0.3", port="3307", hostgroup=1, status="bogus", use_ssl=true, max_replication_lag=10 },
	{ address="/var/lib/mysql/mysql.sock", port=0, hostgroup=2 }
)

mysql_users:
(
	{ username="app", password="*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29", default_hostgroup=0, max_connections=100 },
	{ username="ro", password="secret", default_hostgroup=1, active=0, default_schema="shop", transaction_persistent=0, comment="read only" }
)

mysql_query_rules:
(
	{ rule_id=1, active=1, match_pattern="^SELECT .* FOR UPDATE$", destination_hostgroup=0, apply=1 },
	{ rule_id=2, match_digest="^SELECT", destination_hostgroup=1, cache_ttl=-1, apply=5, comment="reads" },
	{ rule_id=3, username="app", re_modifiers="", flagIN=-3, error_msg="no \"quotes\" here", mirror_hostgroup=2 }
)

mysql_query_rules_fast_routing:
(
	{ username="app", schemaname="shop", destination_hostgroup=1 }
)

mysql_replication_hostgroups=
(
	{ writer_hostgroup=0, reader_hostgroup=1, comment="repl" },
	{ writer_hostgroup=10, reader_hostgroup=11, check_type="SUPER_READ_ONLY" },
	{ writer_hostgroup=20, reader_hostgroup=21, check_type="no_such_check" }
)

mysql_group_replication_hostgroups=
(
	{ writer_hostgroup=30, backup_writer_hostgroup=31, reader_hostgroup=32, offline_hostgroup=33, max_writers=2 }
)

mysql_galera_hostgroups=
(
	{ writer_hostgroup=40, backup_writer_hostgroup=41, reader_hostgroup=42, offline_hostgroup=43, active=0, comment="galera" }
)

mysql_aws_aurora_hostgroups=
(
	{ writer_hostgroup=50, reader_hostgroup=51, domain_name=".cluster-x.rds.amazonaws.com" }
)

mysql_hostgroup_attributes=
(
	{ hostgroup_id=1, multiplex=0, init_connect="SET NAMES utf8mb4" }
)

mysql_servers_ssl_params=
(
	{ hostname="10.0.0.1", ssl_ca="/etc/ca.pem" }
)

mysql_servers_balance=
(
	{ address="10.0.0.1", labels={ zone="east"; role="primary" }, metrics_url="http://10.0.0.1:9104/metrics" },
	{ hostname="10.0.0.2", port=3306, labels="{\"zone\":\"west\"}" }
)

scheduler=
(
	{ id=1, active=0, interval_ms=10000, filename="/var/lib/proxysql/check.sh", arg1="0", arg5="/tmp/log" }
)

proxysql_servers=
(
	{ hostname="10.0.1.1", port=6032, weight=1, comment="peer" },
	{ address="10.0.1.2", port=6032 }
)

restapi=
(
	{ id=1, interval_ms=2000, method="GET", uri="metrics", script="/bin/metrics.sh" }
)
`

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, _, err := Open(Options{Datadir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func parseCnf(t *testing.T, text string) *cnf.Setting {
	t.Helper()
	root, err := cnf.Parse([]byte(text))
	if err != nil {
		t.Fatalf("cnf.Parse: %v", err)
	}
	return root
}

// rows runs a query on the store's connection and renders each row as its
// columns joined by "|", NULL as "NULL".
func rows(t *testing.T, s *Store, query string) []string {
	t.Helper()
	r, err := s.conn.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkRows(t *testing.T, s *Store, query string, want ...string) {
	t.Helper()
	got := rows(t, s, query)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s\n got:\n  %s\nwant:\n  %s", query, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func loadAll(t *testing.T, s *Store, root *cnf.Setting) map[config.Module]int64 {
	t.Helper()
	counts := make(map[config.Module]int64)
	for _, m := range config.Modules {
		n, skipped, err := s.LoadConfigFile(root, m)
		if err != nil || len(skipped) > 0 {
			t.Fatalf("LoadConfigFile(%s): %v, skipped %v", m, err, skipped)
		}
		counts[m] = n
	}
	return counts
}

func TestImportConfigFull(t *testing.T) {
	s := openTestStore(t)
	counts := loadAll(t, s, parseCnf(t, fullCnf))
	wantCounts := map[config.Module]int64{
		config.ModMySQLUsers: 2, config.ModMySQLServers: 4 + 3 + 1 + 1 + 1 + 1 + 1 + 2,
		config.ModMySQLQueryRules: 3 + 1, config.ModMySQLVariables: 10, config.ModAdminVariables: 4,
		config.ModScheduler: 1, config.ModProxySQLServers: 2, config.ModMySQLFirewall: 0, config.ModRestAPI: 1,
	}
	for m, want := range wantCounts {
		if counts[m] != want {
			t.Errorf("%s: %d rows, want %d", m, counts[m], want)
		}
	}

	checkRows(t, s, "SELECT * FROM main.mysql_servers ORDER BY hostgroup_id, hostname",
		"0|10.0.0.1|3306|0|ONLINE|1|0|200|0|0|0|primary",
		"1|10.0.0.2|3306|0|offline_soft|10|0|1000|0|0|0|",
		"1|10.0.0.3|3307|0|ONLINE|1|0|1000|10|1|0|",
		"2|/var/lib/mysql/mysql.sock|0|0|ONLINE|1|0|1000|0|0|0|")
	checkRows(t, s, "SELECT * FROM main.mysql_users ORDER BY username",
		"app|*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29|1|0|0|NULL|0|1|0|1|1|100||",
		"ro|secret|0|0|1|shop|0|0|0|1|1|10000||read only")
	checkRows(t, s, "SELECT rule_id, active, username, flagIN, match_digest, match_pattern, negate_match_pattern, "+
		"re_modifiers, destination_hostgroup, cache_ttl, mirror_hostgroup, error_msg, apply, attributes, comment "+
		"FROM main.mysql_query_rules ORDER BY rule_id",
		"1|1|NULL|0|NULL|^SELECT .* FOR UPDATE$|0|CASELESS|0|NULL|NULL|NULL|1||NULL",
		"2|1|NULL|0|^SELECT|NULL|0|CASELESS|1|NULL|NULL|NULL|1||reads",
		`3|1|app|0|NULL|NULL|0||NULL|NULL|2|no "quotes" here|0||NULL`)
	checkRows(t, s, "SELECT * FROM main.mysql_query_rules_fast_routing", "app|shop|0|1|")
	checkRows(t, s, "SELECT * FROM main.mysql_replication_hostgroups ORDER BY writer_hostgroup",
		"0|1|read_only|repl", "10|11|SUPER_READ_ONLY|", "20|21|read_only|")
	checkRows(t, s, "SELECT * FROM main.mysql_group_replication_hostgroups", "30|31|32|33|1|2|0|0|NULL")
	checkRows(t, s, "SELECT * FROM main.mysql_galera_hostgroups", "40|41|42|43|0|1|0|0|galera")
	checkRows(t, s, "SELECT * FROM main.mysql_aws_aurora_hostgroups",
		"50|51|1|3306|.cluster-x.rds.amazonaws.com|600000|1000|1000|0|1|30|30|1|NULL")
	checkRows(t, s, "SELECT hostgroup_id, max_num_online_servers, autocommit, multiplex, init_connect, throttle_connections_per_sec FROM main.mysql_hostgroup_attributes",
		"1|1000000|-1|0|SET NAMES utf8mb4|1000000")
	checkRows(t, s, "SELECT hostname, port, username, ssl_ca, ssl_cert FROM main.mysql_servers_ssl_params", "10.0.0.1|3306||/etc/ca.pem|")
	checkRows(t, s, "SELECT * FROM main.mysql_servers_balance ORDER BY hostname",
		`10.0.0.1|3306|{"zone":"east","role":"primary"}|http://10.0.0.1:9104/metrics|`,
		`10.0.0.2|3306|{"zone":"west"}||`)
	checkRows(t, s, "SELECT * FROM main.scheduler", "1|0|10000|/var/lib/proxysql/check.sh|0|NULL|NULL|NULL|/tmp/log|")
	checkRows(t, s, "SELECT * FROM main.proxysql_servers ORDER BY hostname", "10.0.1.1|6032|1|peer", "10.0.1.2|6032|0|")
	checkRows(t, s, "SELECT * FROM main.restapi_routes", "1|1|2000|GET|metrics|/bin/metrics.sh|")
	checkRows(t, s, "SELECT * FROM main.global_variables WHERE variable_name LIKE 'admin-%' ORDER BY 1",
		"admin-admin_credentials|admin:admin", "admin-debug|false", "admin-mysql_ifaces|127.0.0.1:6032", "admin-refresh_interval|2000")
	checkRows(t, s, "SELECT * FROM main.global_variables WHERE variable_name IN "+
		"('mysql-threads','mysql-max_connections','mysql-have_compress','mysql-not_a_real_variable','mysql-ratio') ORDER BY 1",
		"mysql-have_compress|true", "mysql-max_connections|2048", "mysql-not_a_real_variable|kept", "mysql-ratio|0.5", "mysql-threads|4")
}

func TestImportConfigOneModule(t *testing.T) {
	s := openTestStore(t)
	n, _, err := s.LoadConfigFile(parseCnf(t, fullCnf), config.ModMySQLUsers)
	if err != nil || n != 2 {
		t.Fatalf("LoadConfigFile(MYSQL USERS) = %d, %v", n, err)
	}
	for _, table := range []string{"mysql_servers", "mysql_query_rules", "scheduler", "proxysql_servers", "restapi_routes"} {
		checkRows(t, s, "SELECT count(*) FROM main."+table, "0")
	}
	checkRows(t, s, "SELECT count(*) FROM main.global_variables WHERE variable_name = 'mysql-threads'", "0")
	// A second load merges (INSERT OR REPLACE): same rows, no duplicates.
	if _, _, err := s.LoadConfigFile(parseCnf(t, fullCnf), config.ModMySQLUsers); err != nil {
		t.Fatal(err)
	}
	checkRows(t, s, "SELECT count(*) FROM main.mysql_users", "2")
}

// TestImportConfigVariableNames: a variable is stored under its canonical
// name whatever the case it is written in (query_cache_size_MB, as SAVE
// CONFIG TO FILE writes it, or QUERY_CACHE_SIZE_mb): one row, the one LOAD
// reads. Lower-casing it made a second row that nothing read.
func TestImportConfigVariableNames(t *testing.T) {
	s := openTestStore(t)
	cnfText := "mysql_variables={ query_cache_size_MB=1\n Threads=2\n no_such_Thing=3 }\nadmin_variables={ REFRESH_INTERVAL=2500 }"
	for _, m := range []config.Module{config.ModMySQLVariables, config.ModAdminVariables} {
		if _, _, err := s.LoadConfigFile(parseCnf(t, cnfText), m); err != nil {
			t.Fatal(err)
		}
	}
	checkRows(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name = 'mysql-query_cache_size_MB'", "1")
	checkRows(t, s, "SELECT count(*) FROM main.global_variables WHERE lower(variable_name) = 'mysql-query_cache_size_mb'", "1")
	checkRows(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name = 'mysql-threads'", "2")
	checkRows(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name = 'admin-refresh_interval'", "2500")
	checkRows(t, s, "SELECT variable_value FROM main.global_variables WHERE variable_name = 'mysql-no_such_thing'", "3")
}

// TestImportConfigSkips: an entry ProxySQL's reader would skip (a missing
// key, a wrong type, a CHECK the row violates) is skipped, named with its
// section, index, line and reason, and the rest of the file loads.
func TestImportConfigSkips(t *testing.T) {
	tests := []struct {
		name string
		m    config.Module
		text string
		want string
	}{
		{"missing hostgroup", config.ModMySQLServers,
			"mysql_servers=(\n{address=\"a\", hostgroup=0},\n{address=\"b\"})",
			"mysql_servers[1] (line 3): missing required hostgroup or hostgroup_id"},
		{"missing hostname", config.ModMySQLServers, "mysql_servers=({port=1, hostgroup=0})",
			"mysql_servers[0] (line 1): missing required address or hostname"},
		{"check violation", config.ModMySQLServers, "mysql_servers=({address=\"a\", hostgroup=0},\n\n {address=\"b\", hostgroup=0, weight=-1})",
			"mysql_servers[1] (line 3): "},
		{"entry not a group", config.ModMySQLUsers, "mysql_users=({username=\"u\"}, 5)",
			"mysql_users[1] (line 1): expected a group { … }, found an int"},
		{"section not a list", config.ModMySQLUsers, "mysql_users=\"u\"",
			"mysql_users (line 1): expected a list"},
		{"missing rule_id", config.ModMySQLQueryRules, "mysql_query_rules=({active=1})",
			"mysql_query_rules[0] (line 1): missing required rule_id"},
		{"replace without match_pattern", config.ModMySQLQueryRules, "mysql_query_rules=({rule_id=1, replace_pattern=\"x\"})",
			"mysql_query_rules[0] (line 1): "},
		{"scheduler interval", config.ModScheduler, "scheduler=({id=1, filename=\"/x\"})",
			"scheduler[0] (line 1): missing required interval_ms"},
		{"scheduler check", config.ModScheduler, "scheduler=({id=1, filename=\"/x\", interval_ms=5})",
			"scheduler[0] (line 1): "},
		{"proxysql_servers port", config.ModProxySQLServers, "proxysql_servers=({hostname=\"p\"})",
			"proxysql_servers[0] (line 1): missing required port"},
		{"restapi method", config.ModRestAPI, "restapi=({id=1, timeout_ms=1000, method=\"PUT\", uri=\"u\", script=\"s\"})",
			"restapi[0] (line 1): "},
		{"aurora domain", config.ModMySQLServers, "mysql_aws_aurora_hostgroups=({writer_hostgroup=1, reader_hostgroup=2})",
			"mysql_aws_aurora_hostgroups[0] (line 1): missing required domain_name"},
		{"variable group", config.ModMySQLVariables, "mysql_variables={threads=4\n x={y=1}}",
			"mysql_variables.x (line 2): expected a string, number or boolean, found a group"},
		{"variables not a group", config.ModAdminVariables, "admin_variables=(1)",
			"admin_variables (line 1): expected a group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t)
			root := parseCnf(t, tt.text)
			good := map[string]string{}
			for _, table := range tt.m.Tables() {
				good[table] = "0"
			}
			n, skipped, err := s.LoadConfigFile(root, tt.m)
			if err != nil {
				t.Fatalf("LoadConfigFile: %v", err)
			}
			if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), tt.want) || !errors.Is(skipped[0], ErrConfigEntry) {
				t.Fatalf("skipped %v, want one notice containing %q", skipped, tt.want)
			}
			// What loaded is every entry but the skipped one.
			var rows int64
			for _, table := range tt.m.Tables() {
				c, _ := strconv.ParseInt(scalar(t, s, "SELECT count(*) FROM main."+table), 10, 64)
				rows += c
			}
			if rows != n {
				t.Errorf("%d rows in MEMORY, LoadConfigFile said %d", rows, n)
			}
		})
	}
}

// TestImportConfigSavepoint runs importConfig outside any transaction: its
// savepoint alone must undo the rows written before the failing entry.
// TestImportConfigDefaultsWrongOptional: an optional value of the wrong
// type keeps its entry, with the column's default for it, as ProxySQL's
// lookupValue leaves it (the entry used to be skipped: a server vanished
// for max_connections=1e3); the notice names the key and its line. A
// required one still skips the entry.
func TestImportConfigDefaultsWrongOptional(t *testing.T) {
	tests := []struct {
		name, text, query, want, notice string
		m                               config.Module
	}{
		{"float max_connections", "mysql_servers=({address=\"a\", hostgroup=0, weight=7, max_connections=1e3})",
			"SELECT hostname, weight, max_connections FROM main.mysql_servers", "a|7|1000",
			"mysql_servers[0] (line 1): max_connections (line 1): expected an integer, found a float (the entry is kept)", config.ModMySQLServers},
		{"string port", "mysql_servers=({address=\"a\", hostgroup=0, port=\"abc\"})",
			"SELECT hostname, port FROM main.mysql_servers", "a|3306",
			`port (line 1): expected an integer, found the string "abc"`, config.ModMySQLServers},
		{"bad labels", "mysql_servers_balance=({hostname=\"a\", labels={z=(1)}})",
			"SELECT hostname, labels FROM main.mysql_servers_balance", "a|",
			"mysql_servers_balance[0] (line 1): labels (line 1): label z: expected a string, found a list", config.ModMySQLServers},
		{"float user limit", "mysql_users=({username=\"u\", password=\"p\", max_connections=1.5})",
			"SELECT username, max_connections FROM main.mysql_users", "u|10000",
			"max_connections (line 1): expected an integer, found a float", config.ModMySQLUsers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t)
			n, notes, err := s.LoadConfigFile(parseCnf(t, tt.text), tt.m)
			if err != nil {
				t.Fatalf("LoadConfigFile: %v", err)
			}
			if n != 1 || len(notes) != 1 || !errors.Is(notes[0], ErrConfigValue) || errors.Is(notes[0], ErrConfigEntry) ||
				!strings.Contains(notes[0].Error(), tt.notice) {
				t.Fatalf("%d rows, notices %v; want the entry and one notice containing %q", n, notes, tt.notice)
			}
			rows := mustRows(t, s, tt.query)
			var got []string
			for _, r := range rows {
				for _, v := range r {
					got = append(got, v.String)
				}
			}
			if strings.Join(got, "|") != tt.want {
				t.Fatalf("%s = %q, want %q", tt.query, strings.Join(got, "|"), tt.want)
			}
		})
	}
	// A required key of the wrong type still skips its entry.
	s := openTestStore(t)
	n, notes, err := s.LoadConfigFile(parseCnf(t, "mysql_servers=({address=\"a\", hostgroup=\"x\"})"), config.ModMySQLServers)
	if err != nil || n != 0 || len(notes) != 1 || !errors.Is(notes[0], ErrConfigEntry) {
		t.Fatalf("a required hostgroup of the wrong type: %d rows, %v %v", n, notes, err)
	}
}

func TestImportConfigSavepoint(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	root := parseCnf(t, "mysql_users=({username=\"a\"}, {username=\"b\"}, {username=\"c\", active=7})")
	n, skipped, err := importConfig(ctx, s.conn, root, config.ModMySQLUsers)
	if err != nil || n != 2 || len(skipped) != 1 {
		t.Fatalf("importConfig with active=7 in the third entry = %d, %v, skipped %v", n, err, skipped)
	}
	checkRows(t, s, "SELECT count(*) FROM main.mysql_users", "2")
	// A failure of the database itself undoes the rows written before it.
	if _, err := s.conn.ExecContext(ctx, "CREATE TEMP TRIGGER fail_c BEFORE INSERT ON main.mysql_users WHEN NEW.username = 'c' BEGIN INSERT INTO temp.no_such_table VALUES (1); END"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := importConfig(ctx, s.conn, parseCnf(t, "mysql_users=({username=\"x\"}, {username=\"c\"})"), config.ModMySQLUsers); err == nil {
		t.Fatal("importConfig succeeded though an INSERT failed")
	}
	checkRows(t, s, "SELECT count(*) FROM main.mysql_users WHERE username = 'x'", "0")
	if n, _, err := importConfig(ctx, s.conn, nil, config.ModMySQLUsers); err != nil || n != 0 {
		t.Fatalf("importConfig(nil) = %d, %v", n, err)
	}
}

// configTablesOf lists every table the config file covers, for comparing
// two stores.
func configTablesOf() []string {
	var out []string
	for _, m := range config.Modules {
		for _, sec := range cnfSections[m] {
			out = append(out, sec.table)
		}
	}
	return append(out, "global_variables")
}

func TestExportImportRoundTrip(t *testing.T) {
	s := openTestStore(t)
	loadAll(t, s, parseCnf(t, fullCnf))
	// Rows as the admin port makes them: NULLs where the file cannot say
	// NULL directly, awkward strings, a variable libconfig cannot name.
	ctx := context.Background()
	for _, q := range []string{
		"INSERT INTO main.mysql_users (username, password, active, default_hostgroup, backend, frontend) VALUES ('root', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 1, 1, 1, 0)",
		"INSERT INTO main.mysql_users (username, backend, frontend, comment) VALUES ('root', 0, 1, 'tab\there \"q\" back\\slash\nnewline')",
		"INSERT INTO main.mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply) VALUES (10, 1, '.', 1, 2, 1)",
		"INSERT INTO main.mysql_query_rules (rule_id, username, schemaname, comment) VALUES (11, '', '', '')",
		"INSERT INTO main.mysql_group_replication_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, comment) VALUES (60, 61, 62, 63, '')",
		"INSERT INTO main.scheduler (id, interval_ms, filename, arg2) VALUES (2, 100, 'x', '')",
		"INSERT INTO main.global_variables VALUES ('mysql-eventslog_filename', 'proxysql_queries.log')",
		"INSERT INTO main.global_variables VALUES ('mysql-empty', '')",
		"INSERT INTO main.global_variables VALUES ('admin-héllo', 'x')",
	} {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	text, err := s.ConfigFileText()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mysql_variables=\n{\n", "\tthreads=\"4\"\n", "mysql_servers:\n(\n\t{\n\t\thostgroup_id=0\n\t\thostname=\"10.0.0.1\"\n",
		"\t\tcomment=\"tab\\there \\\"q\\\" back\\\\slash\\nnewline\"\n", "restapi:\n(\n", "proxysql_servers:\n(\n",
		`# Not written: variable "admin-héllo"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("SELECT CONFIG FILE output lacks %q", want)
		}
	}
	root, err := cnf.Parse([]byte(text))
	if err != nil {
		t.Fatalf("exported text does not parse: %v\n%s", err, text)
	}
	fresh := openTestStore(t)
	loadAll(t, fresh, root)
	if _, err := s.conn.ExecContext(ctx, "DELETE FROM main.global_variables WHERE variable_name = 'admin-héllo'"); err != nil {
		t.Fatal(err)
	}
	for _, table := range configTablesOf() {
		q := "SELECT * FROM main." + table + " ORDER BY 1, 2, 3"
		if table == "global_variables" {
			q = "SELECT * FROM main.global_variables ORDER BY 1"
		}
		want, got := rows(t, s, q), rows(t, fresh, q)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s after export and import:\n got:\n  %s\nwant:\n  %s", table, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	// The only documented loss: a NULL re_modifiers comes back as ''.
	if _, err := s.conn.ExecContext(ctx, "UPDATE main.mysql_query_rules SET re_modifiers = NULL WHERE rule_id = 10"); err != nil {
		t.Fatal(err)
	}
	text, err = s.ConfigFileText()
	if err != nil {
		t.Fatal(err)
	}
	root = parseCnf(t, text)
	if _, _, err := fresh.LoadConfigFile(root, config.ModMySQLQueryRules); err != nil {
		t.Fatal(err)
	}
	checkRows(t, fresh, "SELECT quote(re_modifiers) FROM main.mysql_query_rules WHERE rule_id = 10", "''")
}

func TestExportEmpty(t *testing.T) {
	s := openTestStore(t)
	text, err := s.ConfigFileText()
	if err != nil {
		t.Fatal(err)
	}
	root := parseCnf(t, text)
	for _, name := range []string{"admin_variables", "mysql_variables", "mysql_users", "mysql_query_rules", "mysql_servers",
		"mysql_replication_hostgroups", "mysql_group_replication_hostgroups", "mysql_galera_hostgroups",
		"mysql_aws_aurora_hostgroups", "mysql_servers_balance", "scheduler", "restapi", "proxysql_servers"} {
		if root.Get(name) == nil {
			t.Errorf("empty export lacks %s", name)
		}
	}
	counts := loadAll(t, openTestStore(t), root)
	for m, n := range counts {
		if n != 0 {
			t.Errorf("%s: %d rows from an empty export", m, n)
		}
	}
}

// TestConfigFileNotices: what a file holds that no table reads is named,
// with its line: a misspelled key (a query rule whose match key is
// misspelled matches every query), a misspelled section, a ProxySQL module
// Sluice lacks, an entry that replaces an earlier one. A full file written
// with ProxySQL's keys, and one SELECT CONFIG FILE writes, give none.
func TestConfigFileNotices(t *testing.T) {
	if got := ConfigFileNotices(parseCnf(t, fullCnf)); len(got) != 0 {
		t.Errorf("notices for a file with only known keys: %q", got)
	}
	s := openTestStore(t)
	loadAll(t, s, parseCnf(t, fullCnf))
	text, err := exportConfig(context.Background(), s.conn)
	if err != nil {
		t.Fatal(err)
	}
	if got := ConfigFileNotices(parseCnf(t, text)); len(got) != 0 {
		t.Errorf("notices for SELECT CONFIG FILE's output: %q", got)
	}

	bad := parseCnf(t, `mysql_variables={ threads=4 }
mysql_variabels={ threads=4 }
ldap_variables={ ldap_auth_method="simple" }
mysql_servers=( { address="10.0.0.1", port=3306, hostgroup=1, wieght=5 },
	{ hostname="10.0.0.1", port=3306, hostgroup_id=1, use_ssl=1 },
	{ address="10.0.0.1", port=3306, hostgroup=2 } )
mysql_query_rules=( { rule_id=1, active=1, match_patern="^SELECT", destination_hostgroup=1 } )
`)
	want := []string{
		"mysql_variabels (line 2) ignored: not a setting ProxySQL or Sluice reads (misspelled?)",
		"ldap_variables (line 3) ignored: Sluice has no LDAP authentication",
	}
	got := ConfigFileNotices(bad)
	want = []string{want[0], want[1],
		"mysql_servers[0] (line 4): key wieght ignored: no mysql_servers column reads it (misspelled?)",
		"mysql_servers[1] (line 5) has the same hostgroup_id, hostname, port as mysql_servers[0] (line 4) and replaces it",
		"mysql_query_rules[0] (line 7): key match_patern ignored: no mysql_query_rules column reads it (misspelled?)",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("notices\n got %q\nwant %q", got, want)
	}
	// One module: its lists only.
	if got := ConfigFileNotices(bad, config.ModMySQLQueryRules); len(got) != 1 || !strings.Contains(got[0], "match_patern") {
		t.Errorf("query rules notices: %q", got)
	}
}
