package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestPauseResumeStop: PROXYSQL PAUSE closes the data port and leaves open
// sessions running (a Kubernetes preStop hook's first step); RESUME opens
// it again; STOP ends the sessions as a graceful close does — an open
// transaction may still commit — and PROXYSQL START brings the data plane
// back. Each command refused in the wrong state answers with ProxySQL's
// words, and /health says why the proxy is unavailable meanwhile.
func TestPauseResumeStop(t *testing.T) {
	s, b := multiplexSetup(t, 10, "SET mysql-graceful_close_conn_timeout=5; LOAD MYSQL VARIABLES TO RUNTIME;")
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.pausestop (a INT); DELETE FROM sbtest.pausestop")
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://127.0.0.1:" + port + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Status, Reason string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body.Status + ": " + body.Reason
	}
	dataUp := func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.DataPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	refused := func(cmd, want string) {
		t.Helper()
		out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", cmd)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v %s; want the error %q", cmd, err, out, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := dbConn(t, s)
	if _, err := open.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}

	refused("PROXYSQL RESUME", "ProxySQL MySQL module is not paused, impossible to resume")
	admin(t, s, "PROXYSQL PAUSE")
	refused("PROXYSQL PAUSE", "ProxySQL MySQL module is already paused, impossible to pause")
	if dataUp() {
		t.Fatal("PROXYSQL PAUSE: the data port still accepts connections")
	}
	if _, err := open.ExecContext(ctx, "INSERT INTO sbtest.pausestop VALUES (1)"); err != nil {
		t.Fatalf("an open session after PROXYSQL PAUSE: %v", err)
	}
	if code, why := health(); code != http.StatusServiceUnavailable || !strings.Contains(why, "PROXYSQL PAUSE") {
		t.Fatalf("/health while paused: %d %s", code, why)
	}
	admin(t, s, "PROXYSQL RESUME")
	if !dataUp() {
		t.Fatal("PROXYSQL RESUME: the data port does not listen")
	}
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("a new client after PROXYSQL RESUME: %v %s", err, out)
	}
	if code, why := health(); code != http.StatusOK {
		t.Fatalf("/health after RESUME: %d %s", code, why)
	}

	// STOP with one idle session and one in a transaction: the idle one
	// ends at once, the other may commit, then it ends and STOP returns.
	trx := dbConn(t, s)
	for _, q := range []string{"BEGIN", "INSERT INTO sbtest.pausestop VALUES (2)"} {
		if _, err := trx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	stopped := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := testenv.CLI(t, s.AdminPort, "admin", "admin", "PROXYSQL STOP")
		stopped <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for dataUp() || open.PingContext(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("PROXYSQL STOP: the data port is open or the idle session lives after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, why := health(); code != http.StatusServiceUnavailable || !strings.Contains(why, "PROXYSQL STOP") {
		t.Fatalf("/health while PROXYSQL STOP drains: %d %s", code, why)
	}
	if _, err := trx.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatalf("COMMIT during PROXYSQL STOP: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("PROXYSQL STOP: %v", err)
	}
	if err := trx.PingContext(ctx); err == nil {
		t.Error("the session that committed lives after PROXYSQL STOP")
	}
	if rows := strings.TrimSpace(backendSQL(t, b, "SELECT COUNT(*) FROM sbtest.pausestop")); rows != "2" {
		t.Fatalf("%s rows after PROXYSQL STOP; want 2 (the paused session's and the committed one)", rows)
	}
	refused("PROXYSQL PAUSE", "ProxySQL MySQL module not running, impossible to pause")
	refused("PROXYSQL STOP", "ProxySQL MySQL module not running, impossible to stop")
	if code, why := health(); code != http.StatusServiceUnavailable || !strings.Contains(why, "PROXYSQL START") {
		t.Fatalf("/health after PROXYSQL STOP: %d %s", code, why)
	}
	admin(t, s, "PROXYSQL START")
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("a new client after PROXYSQL START: %v %s", err, out)
	}
	t.Logf("PAUSE kept a session and closed the port, RESUME reopened it, STOP drained in %v, START served again", time.Since(start).Round(time.Millisecond))
}

// TestProxySQLRestart: PROXYSQL RESTART answers OK, closes everything and
// starts Sluice again in the same process (same pid) from the DISK
// configuration: what was saved is there, what was only in MEMORY is gone,
// and --initial, given at the first start, is not applied again (it would
// rebuild the configuration from the file and lose the saved change).
func TestProxySQLRestart(t *testing.T) {
	bs := testenv.Backends(t, 1)
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	s := testenv.Start(t, testenv.WriteConfig(t, dir, adminPort, dataPort, ""), dir, adminPort, dataPort, "--initial")
	pid := s.Cmd.Process.Pid
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d);
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; SAVE MYSQL SERVERS TO DISK; SAVE MYSQL USERS TO DISK;
		SET mysql-max_connections=1234; SAVE MYSQL VARIABLES TO DISK; SET mysql-max_connections=999; LOAD MYSQL VARIABLES TO RUNTIME`, bs[0].Port))
	admin(t, s, "PROXYSQL RESTART")
	q := "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'"
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := testenv.CLI(t, adminPort, "admin", "admin", q, "-N")
		if err == nil && out == "1234\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after PROXYSQL RESTART: %q %v; want the DISK value 1234\n%s", out, err, s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if exited, _ := s.Exited(0); exited || s.Cmd.Process.Pid != pid {
		t.Fatalf("PROXYSQL RESTART: the process exited (pid %d)", pid)
	}
	if out, err := testenv.CLI(t, dataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("a client after PROXYSQL RESTART: %v %s", err, out)
	}
	if n := strings.Count(s.Output(), "Sluice ready"); n != 2 {
		t.Errorf("%d starts in the log, want 2", n)
	}
}
