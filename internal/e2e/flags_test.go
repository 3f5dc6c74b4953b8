package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestProxySQLFlags: ProxySQL's command line works unchanged. The harmless
// flags are accepted (-f, -e, --idle-threads, --no-version-check), -n
// starts only the admin until PROXYSQL START, -S serves the admin on a Unix
// socket as well, -r lets two processes share a data port, and flags Sluice
// does not implement are refused with a clear message.
func TestProxySQLFlags(t *testing.T) {
	bs := testenv.Backends(t, 1)
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := testenv.WriteConfig(t, dir, adminPort, dataPort, "")
	datadir := filepath.Join(dir, "data")
	if err := os.MkdirAll(datadir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort,
		"-f", "-e", "--idle-threads", "--no-version-check", "-n", "-r", "-S", sock)
	dataUp := func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", dataPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if dataUp() {
		t.Fatal("-n: the data port listens before PROXYSQL START")
	}
	// The admin on its Unix socket (-S).
	adm, err := sql.Open("mysql", fmt.Sprintf("admin:admin@unix(%s)/", sock))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.ExecContext(ctx, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d)`, bs[0].Port)); err != nil {
		t.Fatalf("admin on the -S socket: %v", err)
	}
	admin(t, s, `LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME; SET admin-refresh_interval=2000; LOAD ADMIN VARIABLES TO RUNTIME;`)
	if _, err := adm.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the -S socket after LOAD ADMIN VARIABLES: %v", err)
	}
	admin(t, s, "PROXYSQL START")
	if !dataUp() {
		t.Fatal("PROXYSQL START: the data port does not listen")
	}
	if out, err := testenv.CLI(t, adminPort, "admin", "admin", "PROXYSQL START"); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("a second PROXYSQL START: %v %s", err, out)
	}
	if out, err := testenv.CLI(t, dataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("query after PROXYSQL START: %v %s", err, out)
	}

	// -r: a second process binds the same data port.
	dir2 := t.TempDir()
	admin2 := testenv.FreePort(t)
	cfg2 := testenv.WriteConfig(t, dir2, admin2, dataPort, "")
	s2 := testenv.Start(t, cfg2, dir2, admin2, dataPort, "-r")
	admin(t, s2, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Port))
	if strings.Contains(s2.Output(), "address already in use") {
		t.Fatalf("-r: the second process could not bind the shared port:\n%s", s2.Output())
	}
	for i := range 20 {
		if out, err := testenv.CLI(t, dataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
			t.Fatalf("query %d on the shared port: %v %s", i, err, out)
		}
	}

	// Refused, clearly.
	for _, flag := range []string{"--sqlite3-server", "--clickhouse-server", "--bogus"} {
		out, err := exec.Command(testenv.Binary(t), flag).CombinedOutput()
		if err == nil || !strings.Contains(string(out), strings.TrimPrefix(flag, "--")) {
			t.Fatalf("sluice %s: %v %s", flag, err, out)
		}
	}
	t.Logf("-n, -S %s, PROXYSQL START, -r shared by two processes on :%d; refused flags exit with a message", sock, dataPort)
}

// TestStartHintNamesAdminPort: with no backend configured, the start-up
// hint gives the mysql command line for the admin port Sluice really
// listens on, not ProxySQL's default 6032.
func TestStartHintNamesAdminPort(t *testing.T) {
	s := startFresh(t, "")
	want := fmt.Sprintf("mysql -uadmin -padmin -h127.0.0.1 -P%d -e", s.AdminPort)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the start-up hint does not say %q:\n%s", want, s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
