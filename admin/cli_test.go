package admin

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mariadbCLI runs the real mariadb client against the test server and
// returns its stdout and stderr. The test is skipped when the client is not
// installed.
func (e *env) mariadbCLI(user, pass, stdin string, args ...string) (string, string, error) {
	e.t.Helper()
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		e.t.Skip("mariadb client not installed")
	}
	host, port, _ := net.SplitHostPort(e.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"--no-defaults", "-h" + host, "-P" + port, "-u" + user, "-p" + pass}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestMariaDBCLIWalkthrough is the operator's session of DESIGN §1, typed
// into the real mariadb client.
func TestMariaDBCLIWalkthrough(t *testing.T) {
	e := newEnv(t)
	script := `
SET mysql-eventslog_filename='proxysql_queries.log';
SET mysql-eventslog_default_log=1;
SET mysql-eventslog_format=2;
LOAD MYSQL VARIABLES TO RUNTIME;  SAVE MYSQL VARIABLES TO DISK;
insert into mysql_servers(hostgroup_id, hostname, port) values(1, '10.0.0.1', 9030);
insert into mysql_servers(hostgroup_id, hostname, port) values(2, '10.0.0.2', 9030);
insert into mysql_servers(hostgroup_id, hostname, port) values(2, '10.0.0.3', 9030);
load mysql servers to runtime;  save mysql servers to disk;
insert into mysql_users(username, password, active, default_hostgroup, backend, frontend)
       values('root', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 1, 1, 1, 1);
load mysql users to runtime;  save mysql users to disk;
insert into mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply)
       values(1, 1, '.', 1, 2, 1);
load mysql query rules to runtime;  save mysql query rules to disk;
SELECT hostname FROM runtime_mysql_servers ORDER BY hostname;
SELECT COUNT(*) FROM disk.mysql_query_rules;
`
	out, stderr, err := e.mariadbCLI("admin", "admin", script, "--batch", "--skip-column-names")
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, stderr)
	}
	if want := "10.0.0.1\n10.0.0.2\n10.0.0.3\n1\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	rt := e.app.Runtime()
	if len(rt.Servers) != 3 || len(rt.Users) == 0 || len(rt.QueryRules) != 1 || rt.MySQLVars["mysql-eventslog_format"] != "2" {
		t.Errorf("runtime: %d servers, %d users, %d rules, eventslog_format %q",
			len(rt.Servers), len(rt.Users), len(rt.QueryRules), rt.MySQLVars["mysql-eventslog_format"])
	}
}

func TestMariaDBCLIMessages(t *testing.T) {
	e := newEnv(t)
	// The info message of an unknown SET shows after "Query OK".
	out, stderr, err := e.mariadbCLI("admin", "admin", "", "-vvv", "-e", "SET mysql-no_such=1")
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "ERROR: Unknown global variable: 'mysql-no_such'.") {
		t.Errorf("no info message in:\n%s", out)
	}
	// SQLite errors come back as ERR 1045 with ProxySQL's prefix.
	_, stderr, err = e.mariadbCLI("admin", "admin", "", "-e", "SELECT * FROM nope")
	if err == nil || !strings.Contains(stderr, "ERROR 1045 (28000) at line 1: ProxySQL Admin Error: no such table: nope") {
		t.Errorf("error output %q (%v)", stderr, err)
	}
	// Wrong password.
	_, stderr, err = e.mariadbCLI("admin", "wrong", "", "-e", "SELECT 1")
	if err == nil || !strings.Contains(stderr, "ERROR 1045 (28000): ProxySQL Error: Access denied for user 'admin'@'127.0.0.1' (using password: YES)") {
		t.Errorf("login error output %q (%v)", stderr, err)
	}
	// The stats user reads stats and cannot write.
	if _, stderr, err = e.mariadbCLI("stats", "stats", "", "-e", "SELECT * FROM stats_mysql_global"); err != nil {
		t.Errorf("stats read: %v %s", err, stderr)
	}
	if _, stderr, err = e.mariadbCLI("stats", "stats", "", "-e", "DELETE FROM stats_mysql_global"); err == nil {
		t.Error("stats user could write")
	} else if !strings.Contains(stderr, "ProxySQL Admin Error:") {
		t.Errorf("stats write error %q", stderr)
	}
	// SHOW commands and SELECT CONFIG FILE print rows.
	out, stderr, err = e.mariadbCLI("admin", "admin", "", "--batch", "-e", "SHOW TABLES; SHOW DATABASES; SELECT CONFIG FILE")
	if err != nil {
		t.Fatalf("SHOW: %v %s", err, stderr)
	}
	for _, want := range []string{"mysql_servers", "runtime_mysql_servers", "disk", "Data", "mysql_variables"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The interactive "status" command (COM_STATISTICS and driver queries).
	out, stderr, err = e.mariadbCLI("admin", "admin", "status\n", "--table")
	if err != nil {
		t.Fatalf("status: %v %s", err, stderr)
	}
	if !strings.Contains(out, "Uptime:") || !strings.Contains(out, "admin@127.0.0.1") {
		t.Errorf("status output:\n%s", out)
	}
}
