package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// driverBadConn makes database/sql drop a connection instead of pooling it.
var driverBadConn = driver.ErrBadConn

func itoa(n int) string { return strconv.Itoa(n) }

// routeTo puts the servers on ports in hostgroup hg and lets sbtest/sbtest
// in with hg as its default hostgroup: the setup most tests start with.
func routeTo(t *testing.T, s *testenv.Sluice, hg int, ports ...int) {
	t.Helper()
	var vals []string
	for _, p := range ports {
		vals = append(vals, fmt.Sprintf("(%d, '127.0.0.1', %d)", hg, p))
	}
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES %s;
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', %d);
		LOAD MYSQL USERS TO RUNTIME;`, strings.Join(vals, ", "), hg))
}

// dialFrom registers a go-sql-driver network that connects from the
// loopback address ip (127.0.0.0/8 is all local on Linux) and returns its
// name, for DSNs "user:pw@<name>(127.0.0.1:port)/".
func dialFrom(ip string) string {
	name := "from" + strings.ReplaceAll(ip, ".", "_")
	mysql.RegisterDialContext(name, func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return d.DialContext(ctx, "tcp", addr)
	})
	return name
}

// runPHP runs a PHP script (source text) with the system php, bounded to a
// minute, and returns what it printed.
func runPHP(t *testing.T, name, src string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=php)")
	}
	script := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, "php", script).CombinedOutput()
}

// oneConn opens one session as sbtest (schema sbtest) on a data port,
// closed when the test ends.
func oneConn(t *testing.T, port int) (*sql.Conn, context.Context) {
	t.Helper()
	ctx := context.Background()
	c, err := testenv.DB(t, port, "sbtest", "sbtest", "sbtest", "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ctx
}

// queryOne runs q on c and returns its one value as text ("" for NULL);
// an error fails the test.
func queryOne(t *testing.T, c *sql.Conn, q string) string {
	t.Helper()
	var v sql.NullString
	if err := c.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

// connOf takes one connection of db for the test (closed when it ends).
func connOf(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sbtestConn logs in to port as sbtest (schema sbtest) with the go-mysql
// client, which lets a test set capabilities and send any packet; closed
// when the test ends, if not before.
func sbtestConn(t *testing.T, port int, opts ...client.Option) *client.Conn {
	t.Helper()
	c, err := client.Connect(fmt.Sprintf("127.0.0.1:%d", port), "sbtest", "sbtest", "sbtest", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sessionOf takes a connection of db and its Sluice session id (SELECT
// CONNECTION_ID()), for tests that KILL it; the connection is closed at the
// end of the test.
func sessionOf(ctx context.Context, t *testing.T, db *sql.DB) (*sql.Conn, uint64) {
	t.Helper()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var id uint64
	if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return c, id
}
