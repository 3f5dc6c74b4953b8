package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// fullCnf is a proxysql.cnf as a ProxySQL user writes it: every section
// ProxySQL reads at start-up, ProxySQL's key spellings (address/hostname,
// hostgroup/hostgroup_id) and variables Sluice does not act on.
const fullCnf = `
datadir="/var/lib/proxysql"
errorlog="/nonexistent-dir/proxysql.log"

admin_variables=
{
	admin_credentials="admin:admin;cluster1:secret1pass"
	mysql_ifaces="127.0.0.1:%d"
	refresh_interval=2000
	web_enabled=false
}

mysql_variables=
{
	threads=4
	max_connections=2048
	default_query_delay=0
	default_query_timeout=36000000
	have_compress=true
	poll_timeout=2000
	interfaces="127.0.0.1:%d"
	default_schema="information_schema"
	stacksize=1048576
	server_version="5.7.30"
	connect_timeout_server=3000
	monitor_username="monitor"
	monitor_password="monitor"
	monitor_history=600000
	monitor_connect_interval=60000
	monitor_ping_interval=10000
	monitor_read_only_interval=1500
	monitor_read_only_timeout=500
	ping_interval_server_msec=120000
	ping_timeout_server=500
	commands_stats=true
	sessions_sort=true
	connect_retries_on_failure=10
	eventslog_filename="queries.log"
	eventslog_format=2
}

mysql_servers =
(
	{ address = "127.0.0.1" , port = 23307 , hostgroup = 0, max_connections=200, weight=10, comment="writer" },
	{ address = "127.0.0.1" , port = 23308 , hostgroup = 1, status = "OFFLINE_SOFT", max_replication_lag = 5 },
	{ hostname = "127.0.0.1" , port = 23309 , hostgroup_id = 1, max_latency_ms = 50, status = "nonsense" }
)

mysql_users:
(
	{ username = "root", password = "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29", default_hostgroup = 0, active = 1 },
	{ username = "app", password = "app-secret", default_hostgroup = 1, max_connections=100, default_schema="test", transaction_persistent=0 }
)

mysql_query_rules:
(
	{
		rule_id=1
		active=1
		match_pattern="^SELECT .* FOR UPDATE$"
		destination_hostgroup=0
		apply=1
	},
	{
		rule_id=2
		active=1
		match_digest="^SELECT"
		destination_hostgroup=1
		apply=1
		comment="reads"
	},
	{
		rule_id=3
		active=0
		match_pattern="DROP"
		error_msg="no drops"
	}
)

scheduler=
(
	{
		id=1
		active=0
		interval_ms=10000
		filename="/var/lib/proxysql/proxysql_galera_checker.sh"
		arg1="0"
		arg2="0"
		arg3="0"
		arg4="1"
		arg5="/var/lib/proxysql/proxysql_galera_checker.log"
	}
)

mysql_replication_hostgroups=
(
	{
		writer_hostgroup=0
		reader_hostgroup=1
		comment="test repl 1"
	}
)

proxysql_servers =
(
	{ hostname="127.0.0.1" port=%d weight=0 comment="self" }
)
`

func TestBootFromProxySQLCnf(t *testing.T) {
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := filepath.Join(dir, "proxysql.cnf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(fullCnf, adminPort, dataPort, adminPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	datadir := filepath.Join(dir, "data")
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort)

	want := map[string]string{
		"SELECT hostgroup_id, hostname, port, status, weight, max_connections, max_replication_lag, max_latency_ms, comment FROM mysql_servers ORDER BY port": "0\t127.0.0.1\t23307\tONLINE\t10\t200\t0\t0\twriter\n" +
			"1\t127.0.0.1\t23308\tOFFLINE_SOFT\t1\t1000\t5\t0\t\n" +
			"1\t127.0.0.1\t23309\tONLINE\t1\t1000\t0\t50\t\n",
		"SELECT username, password, active, default_hostgroup, default_schema, transaction_persistent, max_connections, backend, frontend FROM mysql_users ORDER BY username": "app\tapp-secret\t1\t1\ttest\t0\t100\t1\t1\n" +
			"root\t*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29\t1\t0\tNULL\t1\t10000\t1\t1\n",
		"SELECT rule_id, active, match_digest, match_pattern, destination_hostgroup, error_msg, apply FROM mysql_query_rules ORDER BY rule_id": "1\t1\tNULL\t^SELECT .* FOR UPDATE$\t0\tNULL\t1\n" +
			"2\t1\t^SELECT\tNULL\t1\tNULL\t1\n" +
			"3\t0\tNULL\tDROP\tNULL\tno drops\t0\n",
		"SELECT rule_id FROM runtime_mysql_query_rules ORDER BY rule_id":                                     "1\n2\n",
		"SELECT writer_hostgroup, reader_hostgroup, check_type, comment FROM mysql_replication_hostgroups":   "0\t1\tread_only\ttest repl 1\n",
		"SELECT writer_hostgroup, reader_hostgroup FROM runtime_mysql_replication_hostgroups":                "0\t1\n",
		"SELECT id, active, interval_ms, filename, arg4, arg5 FROM scheduler":                                "1\t0\t10000\t/var/lib/proxysql/proxysql_galera_checker.sh\t1\t/var/lib/proxysql/proxysql_galera_checker.log\n",
		fmt.Sprintf("SELECT hostname, port, weight, comment FROM proxysql_servers WHERE port=%d", adminPort): fmt.Sprintf("127.0.0.1\t%d\t0\tself\n", adminPort),
		"SELECT variable_value FROM global_variables WHERE variable_name='mysql-server_version'":             "5.7.30\n",
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'":    "2048\n",
		"SELECT variable_value FROM global_variables WHERE variable_name='mysql-monitor_ping_interval'":      "10000\n",
		"SELECT variable_value FROM global_variables WHERE variable_name='admin-admin_credentials'":          "admin:admin;cluster1:secret1pass\n",
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-eventslog_filename'": "queries.log\n",
		"SELECT COUNT(*) FROM disk.mysql_servers":                                                            "3\n",
		"SELECT COUNT(*) FROM disk.mysql_users":                                                              "2\n",
		"SELECT COUNT(*) FROM disk.mysql_query_rules":                                                        "3\n",
		"SELECT COUNT(*) FROM runtime_mysql_users":                                                           "4\n",
	}
	for q, w := range want {
		if got := admin(t, s, q); got != w {
			t.Errorf("%s\n got: %q\nwant: %q", q, got, w)
		}
	}
	// The second admin user of admin_credentials can log in too.
	if out := testenv.MustCLI(t, adminPort, "cluster1", "secret1pass", "SELECT 1", "-N"); out != "1\n" {
		t.Errorf("cluster1 login: %q", out)
	}
	if !strings.Contains(s.Output(), "cannot open the error log") {
		t.Errorf("an unusable errorlog should be reported, output:\n%s", s.Output())
	}

	// Once sluice.db exists the file is ignored, and the log says why.
	admin(t, s, "UPDATE mysql_servers SET weight=77 WHERE port=23307; SAVE MYSQL SERVERS TO DISK")
	s.Restart()
	if got := admin(t, s, "SELECT weight FROM mysql_servers WHERE port=23307"); got != "77\n" {
		t.Errorf("after a plain restart DISK must win over the file: weight %q", got)
	}
	if !strings.Contains(s.Output(), "config file ignored") {
		t.Errorf("the log should say the config file was ignored:\n%s", s.Output())
	}
	// --reload merges the file into the saved config.
	s.Args = []string{"--reload"}
	s.Restart()
	if got := admin(t, s, "SELECT weight FROM disk.mysql_servers WHERE port=23307"); got != "10\n" {
		t.Errorf("--reload: weight %q, want the file's 10", got)
	}
	// --initial rebuilds from the file and keeps the old DB as sluice.db.bak.
	admin(t, s, "INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (5, '127.0.0.1', 23399); SAVE MYSQL SERVERS TO DISK")
	s.Args = []string{"--initial"}
	s.Restart()
	if got := admin(t, s, "SELECT COUNT(*) FROM disk.mysql_servers"); got != "3\n" {
		t.Errorf("--initial: %q servers on disk, want the file's 3", got)
	}
	if _, err := os.Stat(filepath.Join(datadir, "sluice.db.bak")); err != nil {
		t.Errorf("--initial should keep sluice.db.bak: %v", err)
	}
}

// TestBootFromProxySQLSampleStyle boots from a proxysql.cnf written like
// ProxySQL's shipped sample (tabs, ':' and '=', commented-out entries,
// trailing commas, an errorlog in a directory that may not exist). Only the
// two listener addresses are changed, to free ports on 127.0.0.1.
func TestBootFromProxySQLSampleStyle(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "internal", "cnf", "testdata", "proxysql-style.cnf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	text := strings.Replace(string(src), `mysql_ifaces="0.0.0.0:6032"`, fmt.Sprintf(`mysql_ifaces="127.0.0.1:%d"`, adminPort), 1)
	text = strings.Replace(text, `interfaces="0.0.0.0:6033"`, fmt.Sprintf(`interfaces="127.0.0.1:%d"`, dataPort), 1)
	if text == string(src) {
		t.Fatal("the sample's listener lines were not found")
	}
	cfg := filepath.Join(dir, "proxysql.cnf")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testenv.Start(t, cfg, filepath.Join(dir, "data"), adminPort, dataPort)
	if got := admin(t, s, "SELECT COUNT(*) FROM runtime_mysql_servers"); got == "0\n" {
		t.Errorf("no servers loaded from the sample")
	}
	if got := admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-server_version'"); got != "5.5.30\n" {
		t.Errorf("mysql-server_version = %q", got)
	}
	// The data port answers (and refuses an unknown user the ProxySQL way).
	if _, err := testenv.CLI(t, dataPort, "nobody", "x", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Errorf("data port: %v", err)
	}
}

// TestFailedStartKeepsNoDatabase: a first start whose config file does not
// load (here mysql-interfaces names a port in use) exits with the error and
// leaves no sluice.db behind, so the start after the file is fixed reads it
// — before, it found a database of defaults (admin on 0.0.0.0:6032, no
// servers) and ignored the fixed file. A failed --initial puts the previous
// database back.
func TestFailedStartKeepsNoDatabase(t *testing.T) {
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	cfg, datadir := filepath.Join(dir, "proxysql.cnf"), filepath.Join(dir, "data")
	write := func(iface, port int) {
		t.Helper()
		c := fmt.Sprintf(`admin_variables={ admin_credentials="admin:admin" mysql_ifaces="127.0.0.1:%d" }
mysql_variables={ interfaces="127.0.0.1:%d" }
mysql_servers=( { address="127.0.0.1", port=%d, hostgroup=1 } )
`, adminPort, iface, port)
		if err := os.WriteFile(cfg, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	failStart := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(testenv.Binary(t), append([]string{"-c", cfg, "-D", datadir, "--no-monitor"}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "address already in use") {
			t.Fatalf("start with a data port in use: %v\n%s", err, out)
		}
		return string(out)
	}
	write(busyPort, 23307)
	failStart()
	if _, err := os.Stat(filepath.Join(datadir, "sluice.db")); !os.IsNotExist(err) {
		t.Fatalf("a failed first start left sluice.db: %v", err)
	}
	write(dataPort, 23307)
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort)
	if got := admin(t, s, "SELECT hostgroup_id, port FROM runtime_mysql_servers"); got != "1\t23307\n" {
		t.Fatalf("the fixed file was not read: %q\n%s", got, s.Output())
	}
	admin(t, s, "UPDATE mysql_servers SET weight=7; SAVE MYSQL SERVERS TO DISK")
	s.Stop()

	write(busyPort, 23308)
	if out := failStart("--initial"); !strings.Contains(out, "previous one is back in place") {
		t.Fatalf("the failed --initial does not say so:\n%s", out)
	}
	s.Args = nil
	s.Restart()
	if got := admin(t, s, "SELECT port, weight FROM disk.mysql_servers"); got != "23307\t7\n" {
		t.Fatalf("after a failed --initial the saved configuration is %q, want the previous one", got)
	}
}

// TestSkippedConfigEntries: an entry ProxySQL's reader skips — here a
// Galera hostgroup whose backup writer is its reader, as Galera tutorials
// write it, which the table's CHECK refuses, and a server without a
// hostgroup — is skipped with an ERROR naming its line, and the rest of the
// file starts Sluice as it starts ProxySQL. Variable names are not case
// sensitive (ProxySQL lowercases them). An events log in a directory that
// does not exist leaves the log off, said in the log. Before, such a file
// stopped the start.
func TestSkippedConfigEntries(t *testing.T) {
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg, datadir := filepath.Join(dir, "proxysql.cnf"), filepath.Join(dir, "data")
	c := fmt.Sprintf(`admin_variables={ admin_credentials="admin:admin" mysql_ifaces="127.0.0.1:%d" }
mysql_variables={ interfaces="127.0.0.1:%d"
  Max_Connections=321 eventslog_filename="/nonexistent-sluice-dir/queries.log" }
mysql_servers=( { address="127.0.0.1", port=23307, hostgroup=10 },
  { address="127.0.0.1", port=23308 } )
mysql_galera_hostgroups=(
  { writer_hostgroup=10, backup_writer_hostgroup=20, reader_hostgroup=20, offline_hostgroup=30, active=1, max_writers=1 } )
`, adminPort, dataPort)
	if err := os.WriteFile(cfg, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort)
	if got := admin(t, s, "SELECT hostgroup_id, port FROM runtime_mysql_servers"); got != "10\t23307\n" {
		t.Errorf("runtime_mysql_servers %q, want the one complete server", got)
	}
	if got := admin(t, s, "SELECT count(*) FROM mysql_galera_hostgroups"); got != "0\n" {
		t.Errorf("%s Galera rows, want the refused one skipped", got)
	}
	if got := admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'mysql-max_connections'"); got != "321\n" {
		t.Errorf("mysql-max_connections %q, want 321 from Max_Connections", got)
	}
	out := s.Output()
	for _, want := range []string{"mysql_galera_hostgroups[0] (line 7)", "mysql_servers[1] (line 5): missing required hostgroup", "the events log is off"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not name the skipped entry %q:\n%s", want, out)
		}
	}
}
