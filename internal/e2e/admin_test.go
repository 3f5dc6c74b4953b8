package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// seedAdminScript is the admin part of the seed walkthrough (DESIGN.md §1),
// word for word, with the three servers given as placeholders.
const seedAdminScript = `
SET mysql-eventslog_filename='proxysql_queries.log';
SET mysql-eventslog_default_log=1;
SET mysql-eventslog_format=2;
LOAD MYSQL VARIABLES TO RUNTIME;  SAVE MYSQL VARIABLES TO DISK;
insert into mysql_servers(hostgroup_id, hostname, port) values(1, '%s', %d);
insert into mysql_servers(hostgroup_id, hostname, port) values(2, '%s', %d);
insert into mysql_servers(hostgroup_id, hostname, port) values(2, '%s', %d);
load mysql servers to runtime;  save mysql servers to disk;
insert into mysql_users(username, password, active, default_hostgroup, backend, frontend)
       values('root', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 1, 1, 1, 1);
load mysql users to runtime;  save mysql users to disk;
insert into mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply)
       values(1, 1, '.', 1, 2, 1);
load mysql query rules to runtime;  save mysql query rules to disk;
`

// startFresh starts sluice on free ports with an empty datadir.
func startFresh(t *testing.T, extraCnf string, args ...string) *testenv.Sluice {
	t.Helper()
	return startIn(t, t.TempDir(), extraCnf, false, args...)
}

// startIn starts Sluice with a fresh config (plus extraCnf) and datadir
// under dir, with the backend monitor when monitor is set.
func startIn(t *testing.T, dir, extraCnf string, monitor bool, args ...string) *testenv.Sluice {
	t.Helper()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := testenv.WriteConfig(t, dir, adminPort, dataPort, extraCnf)
	datadir := filepath.Join(dir, "data")
	if err := os.MkdirAll(datadir, 0o755); err != nil {
		t.Fatal(err)
	}
	if monitor {
		return testenv.StartWithMonitor(t, cfg, datadir, adminPort, dataPort, args...)
	}
	return testenv.Start(t, cfg, datadir, adminPort, dataPort, args...)
}

func admin(t *testing.T, s *testenv.Sluice, sql string) string {
	t.Helper()
	return testenv.MustCLI(t, s.AdminPort, "admin", "admin", sql, "-N")
}

func seedScript(servers ...testenv.Backend) string {
	return fmt.Sprintf(seedAdminScript, servers[0].Host, servers[0].Port,
		servers[1].Host, servers[1].Port, servers[2].Host, servers[2].Port)
}

func TestSeedAdminScript(t *testing.T) {
	bs := []testenv.Backend{{Host: "10.0.0.1", Port: 9030}, {Host: "10.0.0.2", Port: 9030}, {Host: "10.0.0.3", Port: 9030}}
	s := startFresh(t, "")
	admin(t, s, seedScript(bs...))

	check := func(stage string) {
		t.Helper()
		want := map[string]string{
			"SELECT hostgroup_id, hostname, port, status FROM runtime_mysql_servers ORDER BY hostgroup_id, hostname": "1\t10.0.0.1\t9030\tONLINE\n2\t10.0.0.2\t9030\tONLINE\n2\t10.0.0.3\t9030\tONLINE\n",
			"SELECT hostgroup_id, hostname, port, status FROM mysql_servers ORDER BY hostgroup_id, hostname":         "1\t10.0.0.1\t9030\tONLINE\n2\t10.0.0.2\t9030\tONLINE\n2\t10.0.0.3\t9030\tONLINE\n",
			"SELECT username, password, active, default_hostgroup, backend, frontend FROM runtime_mysql_users ORDER BY backend":
			// ProxySQL shows two rows per runtime user: one frontend, one backend.
			"root\t*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29\t1\t1\t0\t1\nroot\t*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29\t1\t1\t1\t0\n",
			"SELECT username, password, default_hostgroup FROM mysql_users":                                                                                                                                                                       "root\t*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29\t1\n",
			"SELECT rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply FROM runtime_mysql_query_rules":                                                                                                                 "1\t1\t.\t1\t2\t1\n",
			"SELECT rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply FROM mysql_query_rules":                                                                                                                         "1\t1\t.\t1\t2\t1\n",
			"SELECT variable_name, variable_value FROM runtime_global_variables WHERE variable_name LIKE 'mysql-eventslog_%' AND variable_name IN ('mysql-eventslog_filename','mysql-eventslog_default_log','mysql-eventslog_format') ORDER BY 1": "mysql-eventslog_default_log\t1\nmysql-eventslog_filename\tproxysql_queries.log\nmysql-eventslog_format\t2\n",
			"SELECT variable_name, variable_value FROM global_variables WHERE variable_name IN ('mysql-eventslog_filename','mysql-eventslog_default_log','mysql-eventslog_format') ORDER BY 1":                                                    "mysql-eventslog_default_log\t1\nmysql-eventslog_filename\tproxysql_queries.log\nmysql-eventslog_format\t2\n",
			"SELECT COUNT(*) FROM disk.mysql_servers":                                                       "3\n",
			"SELECT COUNT(*) FROM disk.mysql_users":                                                         "1\n",
			"SELECT COUNT(*) FROM disk.mysql_query_rules":                                                   "1\n",
			"SELECT variable_value FROM disk.global_variables WHERE variable_name='mysql-eventslog_format'": "2\n",
		}
		for q, w := range want {
			if got := admin(t, s, q); got != w {
				t.Errorf("%s: %s\n got: %q\nwant: %q", stage, q, got, w)
			}
		}
		// Every module was loaded at least once: version > 1 after a LOAD.
		out := admin(t, s, "SELECT name, version FROM runtime_checksums_values WHERE name IN ('mysql_servers','mysql_users','mysql_query_rules','mysql_variables') ORDER BY name")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(line, "\t")
			if len(f) != 2 || f[1] == "0" {
				t.Errorf("%s: runtime_checksums_values row %q", stage, line)
			}
		}
	}
	check("after the script")
	s.Restart()
	check("after a restart")
	if strings.Contains(s.Output(), "config file loaded") && strings.Count(s.Output(), "config file loaded") > 1 {
		t.Errorf("config file was read again on restart:\n%s", s.Output())
	}
}
