package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestInterfacesChangeAtLoad: mysql-interfaces takes effect at LOAD MYSQL
// VARIABLES TO RUNTIME, without a restart (ProxySQL needs one: its #440).
// The new interfaces (TCP and a Unix socket) accept logins at once, the old
// one stops accepting, and a session opened on it goes on with its state.
// An interface that cannot be bound fails the LOAD and changes nothing.
func TestInterfacesChangeAtLoad(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	held, err := old.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.ExecContext(ctx, "SET @v = 42"); err != nil {
		t.Fatal(err)
	}

	newPort := testenv.FreePort(t)
	sock := filepath.Join(t.TempDir(), "sluice.sock")
	admin(t, s, fmt.Sprintf("SET mysql-interfaces='127.0.0.1:%d;%s'; LOAD MYSQL VARIABLES TO RUNTIME;", newPort, sock))
	for _, dsn := range []string{
		fmt.Sprintf("sbtest:sbtest@tcp(127.0.0.1:%d)/", newPort),
		fmt.Sprintf("sbtest:sbtest@unix(%s)/", sock),
	} {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var one int
		err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		db.Close()
		if err != nil {
			t.Fatalf("login on the new interface %s: %v", dsn, err)
		}
	}
	if out, err := testenv.CLI(t, newPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("mariadb CLI on the new port: %v %s", err, out)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.DataPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("the old port %d still accepts connections", s.DataPort)
	}
	var v int
	if err := held.QueryRowContext(ctx, "SELECT @v").Scan(&v); err != nil || v != 42 {
		t.Fatalf("the session opened on the old interface: @v=%d, %v", v, err)
	}

	// A port already taken: the LOAD fails, and the data port stays as it was.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out, err := testenv.CLI(t, s.AdminPort, "admin", "admin",
		fmt.Sprintf("SET mysql-interfaces='%s'; LOAD MYSQL VARIABLES TO RUNTIME;", taken.Addr()))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("LOAD with a taken port: %v %s", err, out)
	}
	if got := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-interfaces'")); got != fmt.Sprintf("127.0.0.1:%d;%s", newPort, sock) {
		t.Fatalf("runtime mysql-interfaces after the failed LOAD: %q", got)
	}
	if out, err := testenv.CLI(t, newPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("the data port after the failed LOAD: %v %s", err, out)
	}
	t.Logf("moved from :%d to :%d and %s at LOAD; the old session kept @v; a taken port failed the LOAD: %v", s.DataPort, newPort, sock, err)
}
