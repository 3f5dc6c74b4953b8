package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestSilentSocketFlood: sockets that connect to the data port and never
// log in do not count against mysql-max_connections. With 3 000 of them
// open (over the default limit of 2 048), real clients still log in and
// query; mysql-connect_timeout_client closes a silent socket when it
// expires.
func TestSilentSocketFlood(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-connect_timeout_client=3000; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Port))
	addr := fmt.Sprintf("127.0.0.1:%d", s.DataPort)
	const flood = 3000
	socks := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range socks {
			c.Close()
		}
	}()
	start := time.Now()
	for range flood {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(socks), err)
		}
		socks = append(socks, c)
	}
	// Real logins during the flood.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := 0
	for i := range 20 {
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("login %d during a flood of %d silent sockets: %v", i, flood, err)
		}
		db.Close()
		served++
	}
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("mariadb CLI during the flood: %v %s", err, out)
	}
	loginsDone := time.Since(start)
	// mysql-connect_timeout_client: the last silent socket is closed at
	// about 3 s (its handshake packet first, then EOF).
	last := socks[len(socks)-1]
	_ = last.SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	_, err := io.Copy(io.Discard, last)
	closedAfter := time.Since(start)
	if err != nil {
		t.Fatalf("the silent socket was not closed by the server: %v", err)
	}
	if closedAfter > 9*time.Second {
		t.Fatalf("a silent socket lived %v with mysql-connect_timeout_client=3000", closedAfter)
	}
	t.Logf("%d silent sockets: %d go-sql-driver logins and the mariadb CLI served in %v; a silent socket closed %v after it connected (waited %v)",
		flood, served, loginsDone.Round(time.Millisecond), closedAfter.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}
