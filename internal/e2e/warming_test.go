package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestConnectionWarming: with mysql-connection_warming, a server with fewer
// connections than free_connections_pct of its max_connections gets a new
// connection for each request instead of a reused one, up to that number;
// then connections are reused. The hostgroup's attributes row replaces the
// variables.
func TestConnectionWarming(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `UPDATE mysql_servers SET max_connections=10; LOAD MYSQL SERVERS TO RUNTIME;
		SET mysql-connection_warming='true'; SET mysql-free_connections_pct=50; LOAD MYSQL VARIABLES TO RUNTIME`)
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("connection_warming warned: %q", w)
	}
	opened := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(admin(t, s, "SELECT SUM(ConnOK) FROM stats_mysql_connection_pool WHERE hostgroup=0")))
		return n
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(1) // one client session, queries one after another
	for i := 0; i < 8; i++ {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened(); n != 5 {
		t.Fatalf("warming to 50%% of 10: %d connections opened by 8 sequential queries, want 5", n)
	}
	// The attributes row turns warming off for the hostgroup.
	admin(t, s, "INSERT INTO mysql_hostgroup_attributes (hostgroup_id, connection_warming, free_connections_pct) VALUES (0, 0, 90); LOAD MYSQL SERVERS TO RUNTIME")
	for i := 0; i < 5; i++ {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened(); n != 5 {
		t.Fatalf("warming off for the hostgroup: %d connections opened, want still 5", n)
	}
}

// TestLoweredMaxConnectionsEnforced: lowering mysql_servers.max_connections
// at LOAD sheds load from a server at once: connections over the new
// limit are closed as they come back or sit idle, and no more are handed
// out until the server is under it, as ProxySQL picks a server only while
// its used connections are under the limit. The pool kept handing out the
// connections it had: under steady load the limit never applied.
func TestLoweredMaxConnectionsEnforced(t *testing.T) {
	s, b := multiplexSetup(t, 20, "")
	serverConns := func() int {
		out := backendSQL(t, b, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'sbtest'")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	others := serverConns() // not this proxy's
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(6)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Exec("DO SLEEP(0.05)"); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for serverConns()-others < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the load never used 5 connections: %d", serverConns())
		}
		time.Sleep(100 * time.Millisecond)
	}
	admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET max_connections = 2 WHERE port = %d; LOAD MYSQL SERVERS TO RUNTIME;", b.Port))
	time.Sleep(time.Second)
	for i := range 10 {
		if n := serverConns() - others; n > 2 {
			t.Fatalf("sample %d after max_connections=2: %d connections on the server", i, n)
		}
		if used := adminInt(t, s, fmt.Sprintf("SELECT ConnUsed + ConnFree FROM stats_mysql_connection_pool WHERE srv_port = %d", b.Port)); used > 2 {
			t.Fatalf("sample %d after max_connections=2: the pool holds %d", i, used)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if errs.Load() != 0 {
		t.Fatalf("%d queries failed", errs.Load())
	}
}

// TestFreeConnectionsTrimmedWhilePinged: free_connections_pct trims idle
// connections even when mysql-ping_interval_server_msec pings them more
// often than the trim's idle time (2 s): a ping counted as a use, and a
// pool pinged every second never shrank.
func TestFreeConnectionsTrimmedWhilePinged(t *testing.T) {
	s, b := multiplexSetup(t, 20, "SET mysql-ping_interval_server_msec=1000; SET mysql-free_connections_pct=0; LOAD MYSQL VARIABLES TO RUNTIME;")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Exec("DO SLEEP(0.3)"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	free := func() int64 {
		return adminInt(t, s, fmt.Sprintf("SELECT ConnFree FROM stats_mysql_connection_pool WHERE srv_port = %d", b.Port))
	}
	if n := free(); n < 2 {
		t.Fatalf("%d free connections after 5 concurrent queries", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for free() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d free connections 10 s later with free_connections_pct=0 and pings every second", free())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
