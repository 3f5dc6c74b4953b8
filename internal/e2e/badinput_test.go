package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestAdminBadInput feeds the admin port what users get wrong and checks
// each gets the proper answer while the port keeps serving and nothing
// saved is lost.
func TestAdminBadInput(t *testing.T) {
	s := startFresh(t, "")
	admin(t, s, `INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', 3306);
		SAVE MYSQL SERVERS TO DISK; LOAD MYSQL SERVERS TO RUNTIME;`)

	cases := []struct {
		sql     string
		wantErr string // substring of the client's error; "" means success
		wantOut string // substring of the output when it succeeds
	}{
		// CHECK constraints, as ProxySQL's DDL has them.
		{"INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, 'h', 70000)", "CHECK constraint failed", ""},
		{"INSERT INTO mysql_servers(hostgroup_id, hostname, port, status) VALUES (1, 'h', 1, 'BROKEN')", "CHECK constraint failed", ""},
		{"INSERT INTO mysql_users(username, password, active) VALUES ('u', 'p', 7)", "CHECK constraint failed", ""},
		{"INSERT INTO mysql_query_rules(rule_id, active, replace_pattern) VALUES (5, 1, 'x')", "CHECK constraint failed", ""},
		// Unknown module and malformed LOAD/SAVE fall through to SQLite, which refuses them.
		{"LOAD MYSQL SERVER TO RUNTIME", "ProxySQL Admin Error", ""},
		{"LOAD MYSQL FOO TO RUNTIME", "ProxySQL Admin Error", ""},
		{"LOAD MYSQL SERVERS TO", "ProxySQL Admin Error", ""},
		{"SAVE MYSQL SERVERS TO RUNTIME", "ProxySQL Admin Error", ""},
		// SET of an unknown variable answers OK with ProxySQL's message; of init_connect, ERR.
		{"SET mysql-no_such_variable='1'", "", ""},
		{"SET mysql-init_connect='SELECT 1'", "is not configurable using SET command", ""},
		// A bad regex is refused at LOAD with its rule_id, RUNTIME unchanged.
		{"INSERT INTO mysql_query_rules(rule_id, active, match_pattern, apply) VALUES (42, 1, '(unclosed', 1); LOAD MYSQL QUERY RULES TO RUNTIME", "42", ""},
		{"SELECT COUNT(*) FROM runtime_mysql_query_rules", "", "0"},
		{"DELETE FROM mysql_query_rules WHERE rule_id=42", "", ""},
		// Plain SQL errors come back as ERR with SQLite's message.
		{"SELEKT 1", "syntax error", ""},
		{"SELECT * FROM no_such_table", "no such table", ""},
		// The admin port still serves.
		{"SELECT hostname FROM disk.mysql_servers", "", "127.0.0.1"},
		{"SELECT hostname FROM runtime_mysql_servers", "", "127.0.0.1"},
	}
	for _, c := range cases {
		out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", c.sql, "-N")
		switch {
		case c.wantErr != "" && err == nil:
			t.Errorf("%s: no error, output %q", c.sql, out)
		case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
			t.Errorf("%s: error %q, want it to contain %q", c.sql, err, c.wantErr)
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.sql, err)
		case c.wantErr == "" && !strings.Contains(out, c.wantOut):
			t.Errorf("%s: output %q, want %q", c.sql, out, c.wantOut)
		}
	}

	// The unknown-variable answer carries ProxySQL's message in the OK packet.
	db := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
	if _, err := db.Exec("SET mysql-no_such_variable='1'"); err != nil {
		t.Errorf("SET unknown variable: %v", err)
	}
	if n := admin(t, s, "SELECT COUNT(*) FROM global_variables WHERE variable_name='mysql-no_such_variable'"); n != "0\n" {
		t.Errorf("unknown variable was created: %q", n)
	}

	// An invalid value is reverted at LOAD, as ProxySQL does.
	admin(t, s, "SET mysql-max_connections='not-a-number'; LOAD MYSQL VARIABLES TO RUNTIME")
	if v := admin(t, s, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-max_connections'"); v == "not-a-number\n" {
		t.Errorf("invalid value kept in MEMORY after LOAD: %q", v)
	}
	if v := admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'"); v == "not-a-number\n" {
		t.Errorf("invalid value reached RUNTIME: %q", v)
	}

	// The stats user reads but cannot write.
	if out, err := testenv.CLI(t, s.AdminPort, "stats", "stats", "SELECT COUNT(*) FROM stats_mysql_global", "-N"); err != nil {
		t.Errorf("stats user read: %v %q", err, out)
	}
	// Its global_variables is the stats schema's, as in ProxySQL (#708):
	// mysql-max_allowed_packet alone, by any of the names a tool uses.
	for _, q := range []string{
		"SELECT * FROM global_variables", "SELECT * FROM main.global_variables", "SELECT * FROM stats.global_variables",
		"SHOW VARIABLES", "SHOW VARIABLES LIKE 'mysql-max_allowed%'", "SELECT @@mysql-max_allowed_packet",
	} {
		out, err := testenv.CLI(t, s.AdminPort, "stats", "stats", q, "-N")
		if err != nil || !strings.Contains(out, "67108864") || strings.Contains(out, "admin-admin_credentials") {
			t.Errorf("stats user: %s: %v %q", q, err, out)
		}
	}
	if out, err := testenv.CLI(t, s.AdminPort, "stats", "stats", "SELECT variable_value FROM global_variables WHERE variable_name='admin-admin_credentials'", "-N"); err != nil || out != "" {
		t.Errorf("stats user reads the admin credentials: %v %q", err, out)
	}
	for _, q := range []string{
		"INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (9, 'evil', 1)",
		"DELETE FROM disk.mysql_servers",
		"UPDATE global_variables SET variable_value='x'",
		"SAVE MYSQL SERVERS TO DISK",
	} {
		if _, err := testenv.CLI(t, s.AdminPort, "stats", "stats", q); err == nil {
			t.Errorf("stats user could run %q", q)
		}
	}
	// A wrong password is refused with 1045.
	if _, err := testenv.CLI(t, s.AdminPort, "admin", "wrong", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Errorf("wrong admin password: %v", err)
	}

	// Nothing saved was lost.
	if out := admin(t, s, "SELECT hostgroup_id, hostname, port FROM disk.mysql_servers"); out != "1\t127.0.0.1\t3306\n" {
		t.Errorf("disk.mysql_servers after bad input: %q", out)
	}
	s.Restart()
	if out := admin(t, s, "SELECT hostgroup_id, hostname, port FROM runtime_mysql_servers"); out != "1\t127.0.0.1\t3306\n" {
		t.Errorf("runtime_mysql_servers after restart: %q", out)
	}

	// A rule saved to DISK that does not compile does not keep the proxy
	// from starting (it used to exit, pointing at --initial, which rebuilds
	// the configuration from the file): the rule is left out, the log says
	// so, the other rules run, and a LOAD still refuses it.
	admin(t, s, `INSERT INTO mysql_query_rules(rule_id, active, match_pattern, destination_hostgroup, apply) VALUES
		(50, 1, '^SELECT (unclosed', 1, 1), (51, 1, '^SELECT', 1, 1), (52, 1, NULL, 1, 1);
		UPDATE mysql_query_rules SET digest='0xZZ' WHERE rule_id=52;
		SAVE MYSQL QUERY RULES TO DISK;`)
	s.Restart()
	for _, want := range []string{"rule_id 50: bad match_pattern", "rule_id 52: bad digest", "left out of the runtime"} {
		if !strings.Contains(s.Output(), want) {
			t.Errorf("the start-up log does not say %q", want)
		}
	}
	if out := admin(t, s, "SELECT rule_id FROM stats_mysql_query_rules"); out != "51\n" {
		t.Errorf("rules running after the restart: %q, want 51 alone", out)
	}
	// runtime_mysql_query_rules lists what runs (it listed the bad rules).
	if out := admin(t, s, "SELECT rule_id FROM runtime_mysql_query_rules"); out != "51\n" {
		t.Errorf("runtime_mysql_query_rules after the restart: %q, want 51 alone", out)
	}
	if out := admin(t, s, "SELECT rule_id FROM mysql_query_rules WHERE rule_id IN (50, 52) ORDER BY rule_id"); out != "50\n52\n" {
		t.Errorf("MEMORY lost the bad rules at start-up: %q", out)
	}
	if _, err := testenv.CLI(t, s.AdminPort, "admin", "admin", "LOAD MYSQL QUERY RULES TO RUNTIME", "-N"); err == nil || !strings.Contains(err.Error(), "rule_id 50") {
		t.Errorf("LOAD with the bad rules: %v, want an error naming rule_id 50", err)
	}
	admin(t, s, "DELETE FROM mysql_query_rules WHERE rule_id IN (50, 52); LOAD MYSQL QUERY RULES TO RUNTIME; SAVE MYSQL QUERY RULES TO DISK;")

	// Likewise a user and a server no LOAD takes (a mistyped attribute, an
	// empty hostname from a script's unset variable), saved to DISK: the
	// proxy starts without them and says so; the others run; MEMORY keeps
	// them to be fixed. It used to exit at every start.
	admin(t, s, `INSERT INTO mysql_users(username, password, attributes) VALUES
		('typo', 'pw', '{"default-transaction_isolation":"READ-UNCOMMITED"}'), ('fine', 'pw', '');
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (5, '', 3306), (5, '127.0.0.1', 3307);
		SAVE MYSQL USERS TO DISK; SAVE MYSQL SERVERS TO DISK;`)
	s.Restart()
	for _, want := range []string{"(username='typo'): attributes.default-transaction_isolation", "(hostgroup_id=5, hostname='', port=3306): hostname is empty", "left out of the runtime"} {
		if !strings.Contains(s.Output(), want) {
			t.Errorf("the start-up log does not say %q", want)
		}
	}
	if out := admin(t, s, "SELECT username FROM runtime_mysql_users WHERE username IN ('typo', 'fine') ORDER BY username"); out != "fine\nfine\n" {
		t.Errorf("runtime_mysql_users after the restart: %q, want fine (frontend and backend) alone", out)
	}
	if out := admin(t, s, "SELECT hostname, port FROM runtime_mysql_servers WHERE hostgroup_id=5"); out != "127.0.0.1\t3307\n" {
		t.Errorf("runtime_mysql_servers of hostgroup 5 after the restart: %q", out)
	}
	if out := admin(t, s, "SELECT COUNT(*) FROM mysql_users WHERE username='typo'"); out != "1\n" {
		t.Errorf("MEMORY lost the user no LOAD takes: %q", out)
	}
	admin(t, s, "DELETE FROM mysql_users WHERE username IN ('typo', 'fine'); DELETE FROM mysql_servers WHERE hostgroup_id=5; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL SERVERS TO RUNTIME; SAVE MYSQL USERS TO DISK; SAVE MYSQL SERVERS TO DISK;")
}

// TestAdminOnlyLocal connects as admin from a network namespace the test
// creates (a veth pair with addresses only this test uses) and expects
// ProxySQL's ERR 1040; the stats user may not log in remotely either, while
// another admin user may.
func TestAdminOnlyLocal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) to create a network namespace")
	}
	ns := fmt.Sprintf("sluice-t%d", os.Getpid()%100000)
	hostIf, nsIf := "slh"+ns[len(ns)-5:], "sln"+ns[len(ns)-5:]
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run("link", "set", nsIf, "netns", ns)
	run("addr", "add", "10.213.77.1/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("netns", "exec", ns, "ip", "addr", "add", "10.213.77.2/30", "dev", nsIf)
	run("netns", "exec", ns, "ip", "link", "set", nsIf, "up")
	run("netns", "exec", ns, "ip", "link", "set", "lo", "up")

	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := dir + "/sluice.cnf"
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`admin_variables = { admin_credentials = "admin:admin;radmin:radmin" mysql_ifaces = "127.0.0.1:%d;10.213.77.1:%d" }
mysql_variables = { interfaces = "127.0.0.1:%d" }
`, adminPort, adminPort, dataPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testenv.Start(t, cfg, dir, adminPort, dataPort)

	remote := func(user, pass string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", ns, "mariadb", "--no-defaults", "-h10.213.77.1",
			fmt.Sprintf("-P%d", adminPort), "-u"+user, "-p"+pass, "--connect-timeout=5", "-N", "-e", "SELECT 1").CombinedOutput()
		return string(out), err
	}
	out, err := remote("admin", "admin")
	if err == nil || !strings.Contains(out, "1040") || !strings.Contains(out, "User 'admin' can only connect locally") {
		t.Errorf("admin from a remote address: err=%v out=%q", err, out)
	}
	out, err = remote("stats", "stats")
	if err == nil || !strings.Contains(out, "1040") {
		t.Errorf("stats from a remote address: err=%v out=%q", err, out)
	}
	if out, err = remote("radmin", "radmin"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("another admin user from a remote address: err=%v out=%q", err, out)
	}
	// The local admin still works.
	if out := admin(t, s, "SELECT 1"); out != "1\n" {
		t.Errorf("local admin after remote refusals: %q", out)
	}
}
