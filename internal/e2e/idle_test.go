package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestIdleClientMemory opens many client sessions through Sluice, runs one
// query on each (so each has been through the whole path: login, a
// backend borrowed and returned, a result written) and leaves them idle:
// what each idle client costs in Sluice's RSS, and that multiplexing kept
// the backend side small. SLUICE_IDLE_CLIENTS overrides the count (2 000).
func TestIdleClientMemory(t *testing.T) {
	n, s, db := manyClients(t, "SLUICE_IDLE_CLIENTS", 2000)
	pid := s.Cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	open := func(k int) []*sql.Conn { return openClients(t, ctx, db, k, true) }
	closeAll := closeClients
	// Warm-up: the pools, the runtime's caches and the first GC cycles.
	closeAll(open(50))
	time.Sleep(time.Second)
	rss0, fds0 := rss(t, pid), fdCount(pid)
	conns := open(n)
	defer closeAll(conns)
	time.Sleep(3 * time.Second) // a GC cycle or two with them idle
	rss1, fds1 := rss(t, pid), fdCount(pid)
	backendConns := adminInt(t, s, "SELECT COALESCE(SUM(ConnUsed+ConnFree),0) FROM stats_mysql_connection_pool")
	perClient := float64(rss1-rss0) / float64(n)
	t.Logf("%d idle clients: RSS %d → %d KiB, %.1f KiB per client; fds %d → %d; %d backend connections",
		n, rss0, rss1, perClient, fds0, fds1, backendConns)
	// The race detector's shadow memory multiplies what a client costs.
	if limit := 32.0; !testenv.RaceEnabled() && perClient > limit || perClient > 8*limit {
		t.Errorf("%.1f KiB of RSS per idle client", perClient)
	}
	if backendConns > 64 {
		t.Errorf("%d backend connections for %d idle clients: multiplexing should have returned them", backendConns, n)
	}
}

// openClients opens k sessions on db, 32 logins at a time, and with warm
// runs SELECT 1 on each (a backend borrowed and given back, a result
// written). Any error fails the test.
func openClients(t *testing.T, ctx context.Context, db *sql.DB, k int, warm bool) []*sql.Conn {
	t.Helper()
	conns := make([]*sql.Conn, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			if warm {
				var one int
				if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
					errs <- err
					return
				}
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("opening %d clients: %v", k, err)
	}
	return conns
}

func closeClients(conns []*sql.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// manyClients starts a Sluice in front of one backend for n clients (the
// environment variable envVar overrides n, up to 20 000; less when the fd
// limit is lower), with mysql-max_connections raised to match, and a
// database handle of user sbtest that can hold them all.
func manyClients(t *testing.T, envVar string, n int) (int, *testenv.Sluice, *sql.DB) {
	t.Helper()
	if v := os.Getenv(envVar); v != "" {
		if k, err := strconv.Atoi(v); err == nil && k > 0 && k <= 20000 {
			n = k
		}
	}
	n = floodSize(t, n+200) - 200 // the test process holds n sockets too
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf("SET mysql-max_connections=%d; LOAD MYSQL VARIABLES TO RUNTIME", n+100))
	routeTo(t, s, 0, bs[0].Port)
	// Room for a probe beside n clients (mysql_users.max_connections
	// defaults to 10 000, as in ProxySQL).
	admin(t, s, fmt.Sprintf("UPDATE mysql_users SET max_connections=%d; LOAD MYSQL USERS TO RUNTIME", n+100))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(n + 50)
	db.SetMaxIdleConns(n + 50)
	db.SetConnMaxLifetime(0)
	return n, s, db
}

// fdCount is the number of open file descriptors of process pid.
func fdCount(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}
