package admin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// The aliases below are written out from the reference (§2.2), apart from
// the implementation's table, so that a slip in one shows up in the other.
var wantAliases = map[Direction][]string{
	MemoryToRuntime: {"LOAD %s FROM MEMORY", "LOAD %s FROM MEM", "LOAD %s TO RUNTIME", "LOAD %s TO RUN"},
	RuntimeToMemory: {"SAVE %s TO MEMORY", "SAVE %s TO MEM", "SAVE %s FROM RUNTIME", "SAVE %s FROM RUN"},
	DiskToMemory:    {"LOAD %s TO MEMORY", "LOAD %s TO MEM", "LOAD %s FROM DISK"},
	MemoryToDisk:    {"SAVE %s FROM MEMORY", "SAVE %s FROM MEM", "SAVE %s TO DISK"},
	ConfigToMemory:  {"LOAD %s FROM CONFIG"},
}

var wantModules = map[string]config.Module{
	"MYSQL USERS": config.ModMySQLUsers, "MYSQL SERVERS": config.ModMySQLServers,
	"MYSQL QUERY RULES": config.ModMySQLQueryRules, "MYSQL VARIABLES": config.ModMySQLVariables,
	"ADMIN VARIABLES": config.ModAdminVariables, "SCHEDULER": config.ModScheduler,
	"PROXYSQL SERVERS": config.ModProxySQLServers, "MYSQL FIREWALL": config.ModMySQLFirewall,
	"RESTAPI": config.ModRestAPI,
}

func TestLoadSaveEveryAlias(t *testing.T) {
	count := 0
	for modName, mod := range wantModules {
		for dir, forms := range wantAliases {
			for _, f := range forms {
				cmd := fmt.Sprintf(f, modName)
				count++
				// As typed, lower case, with messy whitespace and trailing ';'.
				variants := []string{
					cmd,
					strings.ToLower(cmd),
					"  " + strings.ReplaceAll(cmd, " ", " \t\n ") + " ;; ; ",
				}
				for _, v := range variants {
					got, ok := parseLoadSave(normalize(v))
					if !ok {
						t.Errorf("%q: not recognized", v)
						continue
					}
					if got.Module != mod || got.Dir != dir {
						t.Errorf("%q: got (%v, %v), want (%v, %v)", v, got.Module, got.Dir, mod, dir)
					}
				}
			}
		}
	}
	if count != len(loadSaveCommands) {
		t.Errorf("reference has %d aliases, the grammar table %d", count, len(loadSaveCommands))
	}
	if want := 9 * 15; count != want {
		t.Errorf("%d aliases, want %d", count, want)
	}
}

func TestLoadSaveNearMisses(t *testing.T) {
	for _, q := range []string{
		"LOAD MYSQL SERVER TO RUNTIME",
		"LOAD MYSQL SERVERS TO",
		"SAVE MYSQL SERVERS TO RUNTIME",
		"LOAD MYSQL SERVERS TO DISK",
		"SAVE MYSQL SERVERS FROM DISK",
		"SAVE MYSQL SERVERS FROM CONFIG",
		"LOAD MYSQL SERVERS",
		"LOAD MYSQLSERVERS TO RUNTIME",
		"LOAD MYSQL SERVERS TO RUNTIME NOW",
		"LOAD MYSQL SERVERS TO RUNTIMES",
		"LOAD LDAP VARIABLES TO RUNTIME",
		"LOAD COREDUMP TO RUNTIME",
		"LOAD MYSQL USER bob TO RUNTIME",
		"SELECT 'LOAD MYSQL SERVERS TO RUNTIME'",
		"",
	} {
		if got, ok := parseLoadSave(normalize(q)); ok {
			t.Errorf("%q matched as (%v, %v)", q, got.Module, got.Dir)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"select 1":                     "select 1",
		"  select\t\n 1 ;":             "select 1",
		"LOAD MYSQL USERS TO RUNTIME;": "LOAD MYSQL USERS TO RUNTIME",
		"x ; ; ;  ":                    "x",
		";;;":                          "",
		"a  'b   c'":                   "a 'b c'",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	for in, want := range map[string][]string{
		"select 1":                        {"select 1"},
		"select 1; select 2":              {"select 1", " select 2"},
		"select ';'; select 2;":           {"select ';'", " select 2"},
		"select 1 -- a;b\n; select 2":     {"select 1 -- a;b\n", " select 2"},
		"select /* ; */ 1; select \"a;\"": {"select /* ; */ 1", " select \"a;\""},
		"select 'it''s;'; select `a;b`":   {"select 'it''s;'", " select `a;b`"},
		// A backslash is no escape to SQLite: the quote after it ends the
		// string, and a driver that escaped a value for NO_BACKSLASH_ESCAPES
		// (what the admin says) must not see its statement split elsewhere.
		"select 'a\\'; select 2":            {"select 'a\\'", " select 2"},
		"select '\\''; delete from t; --'":  {"select '\\''; delete from t; --'"},
		";;":                                {";;"},
		"insert into t values(1);;select 1": {"insert into t values(1)", "select 1"},
		// A trigger's BEGIN … END body is one statement, as SQLite reads it.
		"CREATE TRIGGER tt AFTER UPDATE ON t BEGIN SELECT 1; SELECT 2; END; select 3": {
			"CREATE TRIGGER tt AFTER UPDATE ON t BEGIN SELECT 1; SELECT 2; END", " select 3"},
		"create temp trigger x after insert on t begin\n delete from u;\nend;select 4": {
			"create temp trigger x after insert on t begin\n delete from u;\nend", "select 4"},
		"create table begin_log (a); select 5": {"create table begin_log (a)", " select 5"},
	} {
		got := splitStatements(in)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("splitStatements(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSelectList(t *testing.T) {
	for in, want := range map[string]string{
		"@@version_comment limit 1":                      "[{@@version_comment }]",
		"DATABASE(), USER() LIMIT 1":                     "[{DATABASE() } {USER() }]",
		"DATABASE() AS name":                             "[{DATABASE() name}]",
		"@@session.auto_increment_increment AS a, @@x y": "[{@@session.auto_increment_increment a} {@@x y}]",
		"concat(@@version, ' ', @@version_comment)":      "[{concat(@@version, ' ', @@version_comment) }]",
		"@@max_allowed_packet 'm'":                       "[{@@max_allowed_packet m}]",
	} {
		items, ok := parseSelectList(in)
		if !ok {
			t.Errorf("%q: not parsed", in)
			continue
		}
		if got := fmt.Sprint(items); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
	for _, in := range []string{"1 LIMIT x", "(a", "a)", "'x"} {
		if _, ok := parseSelectList(in); ok {
			t.Errorf("%q: parsed, want refused", in)
		}
	}
}

func TestVariablesInList(t *testing.T) {
	names, ok := variablesInList("Variable_name in ('max_allowed_packet','system_time_zone','time_zone','sql_mode')")
	if !ok || fmt.Sprint(names) != "[max_allowed_packet system_time_zone time_zone sql_mode]" {
		t.Errorf("IN list: %v %v", names, ok)
	}
	names, ok = variablesInList("Variable_name = 'language' OR Variable_name = 'net_write_timeout'")
	if !ok || fmt.Sprint(names) != "[language net_write_timeout]" {
		t.Errorf("OR list: %v %v", names, ok)
	}
	if _, ok := variablesInList("variable_value > 3"); ok {
		t.Error("a general condition parsed as a name list")
	}
}

func TestLikeMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"%runtime%", "runtime_mysql_servers", true},
		{"max_allowed_packet", "max_allowed_packet", true},
		{"MAX%", "max_allowed_packet", true},
		{"max\\_allowed%", "maxXallowed_packet", false},
		{"_ql", "sql", true},
		{"_ql", "mysql", false},
		{"%", "", true},
	} {
		if got := likeMatch(c.pat, c.s); got != c.want {
			t.Errorf("likeMatch(%q, %q) = %v", c.pat, c.s, got)
		}
	}
}

func TestStatsForbidden(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT * FROM stats_mysql_query_digest":            "",
		"SELECT * FROM mysql_users":                         "mysql_users",
		"select * from `global_variables`":                  "global_variables",
		"SELECT * FROM disk.scheduler":                      "disk.scheduler",
		"SELECT * FROM stats.stats_mysql_global":            "",
		"SELECT 'mysql_users' FROM stats_mysql_global":      "",
		"SELECT * FROM runtime_mysql_servers":               "runtime_mysql_servers",
		"SELECT * FROM monitor.mysql_server_ping_log":       "",
		"SELECT * FROM stats_mysql_global -- mysql_servers": "",
	} {
		if got := statsForbidden(q); got != want {
			t.Errorf("statsForbidden(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestLookupCredential(t *testing.T) {
	list := "admin:admin; radmin:pa:ss;empty:"
	for user, want := range map[string]string{"admin": "admin", "radmin": "pa:ss", "empty": ""} {
		if got, ok := LookupCredential(list, user); !ok || got != want {
			t.Errorf("%s: got %q %v", user, got, ok)
		}
	}
	if _, ok := LookupCredential(list, "nobody"); ok {
		t.Error("unknown user found")
	}
}

func TestLiveTables(t *testing.T) {
	got := liveTables("SELECT * FROM stats_mysql_query_digest JOIN runtime_mysql_servers, monitor.mysql_server_ping_log")
	want := "[stats_mysql_query_digest runtime_mysql_servers monitor.mysql_server_ping_log]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if got := liveTables("SHOW FULL PROCESSLIST"); fmt.Sprint(got) != "[stats_mysql_processlist]" {
		t.Errorf("processlist: %v", got)
	}
	// Unqualified, the monitor's logs are found in the monitor schema.
	if got := liveTables("SELECT MAX(time_start_us) FROM mysql_server_ping_log"); fmt.Sprint(got) != "[monitor.mysql_server_ping_log]" {
		t.Errorf("unqualified monitor log: %v", got)
	}
	if got := liveTables("SELECT * FROM mysql_servers"); len(got) != 0 {
		t.Errorf("config table reported live: %v", got)
	}
}

func TestTZOffset(t *testing.T) {
	if got := tzOffset(mustTime(t, "2024-01-02T03:04:05-05:30")); got != "-05:30:00" {
		t.Errorf("got %q", got)
	}
	if got := tzOffset(mustTime(t, "2024-01-02T03:04:05+02:00")); got != "02:00:00" {
		t.Errorf("got %q", got)
	}
}

func TestIsReadOnlySQL(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM mysql_servers":                      true,
		"select 1; select 2":                               true,
		"SELECT 1; DELETE FROM mysql_servers":              false,
		"INSERT INTO mysql_servers VALUES (1)":             false,
		"WITH x AS (SELECT 1) SELECT * FROM x":             true,
		"WITH x AS (SELECT 1) DELETE FROM mysql_servers":   false,
		"SELECT REPLACE(sql, 'a', 'b') FROM sqlite_master": true,
		"PRAGMA table_info(mysql_servers)":                 true,
		"PRAGMA main.table_info(mysql_servers)":            true,
		"PRAGMA query_only=OFF":                            false,
		"PRAGMA foreign_keys":                              false,
		"EXPLAIN QUERY PLAN SELECT * FROM mysql_servers":   true,
		"/* c */ SELECT 1":                                 true,
		"SELECT 'x; DELETE FROM t'":                        true,
		"ATTACH DATABASE ':memory:' AS x":                  false,
		"":                                                 false,
	} {
		if got := isReadOnlySQL(q); got != want {
			t.Errorf("isReadOnlySQL(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestStatsGlobalVariables(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT * FROM global_variables":                                        "SELECT * FROM stats.global_variables",
		"SELECT * FROM main.global_variables":                                   "SELECT * FROM stats.global_variables",
		"SELECT * FROM `main`.`global_variables` WHERE 1":                       "SELECT * FROM stats.global_variables WHERE 1",
		"SELECT * FROM `global_variables`":                                      "SELECT * FROM stats.global_variables",
		"SELECT 'global_variables' FROM stats_mysql_global":                     "SELECT 'global_variables' FROM stats_mysql_global",
		"SELECT * FROM runtime_global_variables":                                "SELECT * FROM runtime_global_variables",
		"SELECT * FROM disk.global_variables":                                   "SELECT * FROM disk.global_variables",
		"/* global_variables */ SELECT 1":                                       "/* global_variables */ SELECT 1",
		"SELECT variable_value FROM global_variables, stats.`global_variables`": "SELECT variable_value FROM stats.global_variables, stats.global_variables",
	} {
		if got := statsGlobalVariables(in); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}
