package e2e

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestClientHostErrorCache: with mysql-client_host_cache_size and
// mysql-client_host_error_counts set, a client address that failed to log
// in that many times is disconnected even with the right password (as
// ProxySQL: the connection is lost, 2013), other addresses are not, a
// successful login clears an address, stats_mysql_client_host_cache shows
// the counts, and PROXYSQL FLUSH MYSQL CLIENT HOSTS unblocks.
func TestClientHostErrorCache(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, "SET mysql-client_host_cache_size=5; SET mysql-client_host_error_counts=3; LOAD MYSQL VARIABLES TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("LOAD with the host cache warned: %q", w)
	}
	login := func(ip, pw string) error {
		t.Helper()
		db, err := sql.Open("mysql", fmt.Sprintf("sbtest:%s@%s(127.0.0.1:%d)/?timeout=5s", pw, dialFrom(ip), s.DataPort))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var one int
		return db.QueryRow("SELECT 1").Scan(&one)
	}
	cache := func() string {
		return strings.TrimSpace(admin(t, s, "SELECT client_address, error_count FROM stats_mysql_client_host_cache ORDER BY client_address"))
	}

	for i := 0; i < 3; i++ {
		if err := login("127.0.0.2", "wrong"); err == nil || !strings.Contains(err.Error(), "1045") {
			t.Fatalf("failed login %d: %v, want ERR 1045", i+1, err)
		}
	}
	if got := cache(); got != "127.0.0.2\t3" {
		t.Fatalf("stats_mysql_client_host_cache after 3 failures: %q", got)
	}
	// Blocked now, even with the right password; the connection is cut
	// before any error packet.
	if err := login("127.0.0.2", "sbtest"); err == nil || strings.Contains(err.Error(), "1045") {
		t.Fatalf("a blocked address logging in: %v, want a lost connection", err)
	}
	if n := adminInt(t, s, "SELECT variable_value FROM stats_mysql_global WHERE variable_name='client_host_error_killed_connections'"); n != 1 {
		t.Fatalf("client_host_error_killed_connections = %d after one blocked login, want 1", n)
	}
	// Another address is not affected, and its success clears its entry.
	if err := login("127.0.0.3", "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := login("127.0.0.3", "sbtest"); err != nil {
		t.Fatalf("127.0.0.3 with the right password: %v", err)
	}
	if got := cache(); got != "127.0.0.2\t3" {
		t.Fatalf("after 127.0.0.3 logged in: %q, want only 127.0.0.2", got)
	}
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1") // 127.0.0.1

	admin(t, s, "PROXYSQL FLUSH MYSQL CLIENT HOSTS")
	if got := cache(); got != "" {
		t.Fatalf("after PROXYSQL FLUSH MYSQL CLIENT HOSTS: %q", got)
	}
	if err := login("127.0.0.2", "sbtest"); err != nil {
		t.Fatalf("127.0.0.2 after the flush: %v", err)
	}
	// _reset reads and empties.
	_ = login("127.0.0.4", "wrong")
	if got := strings.TrimSpace(admin(t, s, "SELECT client_address, error_count FROM stats_mysql_client_host_cache_reset")); got != "127.0.0.4\t1" {
		t.Fatalf("stats_mysql_client_host_cache_reset: %q", got)
	}
	if got := cache(); got != "" {
		t.Fatalf("after reading the _reset table: %q", got)
	}
}
