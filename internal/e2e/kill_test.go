package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestBackendKilledUnderSysbench: three real servers in one hostgroup, the
// third one the test's own. sysbench oltp_read_only --skip-trx=on with 16
// threads runs through Sluice (monitor on, default settings) for 28 s; the
// third server is killed with SIGKILL at 6 s and started again at 12 s.
// sysbench must finish with 0 errors; the test measures how long the dead
// server took to be shunned and how long traffic took to come back after
// it was up again. Before the load, sessions holding state on the server
// to kill (user variables, schema, charset) continue elsewhere with it
// intact, and one in a transaction there gets a clear error and stays
// usable.
func TestBackendKilledUnderSysbench(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	bs := testenv.Backends(t, 2)
	own := testenv.OwnBackends(t, 1)
	servers := append(bs, own.Backends[0])
	victim := own.Backends[0].Port
	const dbName = "killtest"
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=" + dbName, "--tables=2", "--table-size=2000"}
	sysbench := sysbenchDB(t, servers, bs, dbName, "oltp_read_only", common, 2*time.Minute)

	s := startIn(t, t.TempDir(), "", true)
	routeTo(t, s, 0, servers[0].Port, servers[1].Port, victim)

	// Stateful sessions, some of them on the server to kill.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", dbName, "")
	db.SetMaxOpenConns(40)
	ctx := context.Background()
	var sessions []*sql.Conn
	var onVictim []int
	var trx *sql.Conn
	for i := 0; len(onVictim) < 4 || trx == nil; i++ {
		if i > 200 {
			t.Fatal("no sessions landed on the server to kill")
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.ExecContext(ctx, fmt.Sprintf("SET @v = %d", len(sessions))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
			t.Fatal(err)
		}
		var port int
		if err := c.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port == victim && len(onVictim) == 4 && trx == nil {
			if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ExecContext(ctx, "SELECT COUNT(*) FROM sbtest1"); err != nil {
				t.Fatal(err)
			}
			trx = c
			continue
		}
		if port == victim {
			onVictim = append(onVictim, len(sessions))
		}
		sessions = append(sessions, c)
	}

	// The sysbench run, with a per-second curve of queries per server.
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := sysbench(runCtx, s.DataPort, "oltp_read_only", "--skip-trx=on", "--threads=16", "--time=28", "--report-interval=5", "run")
		done <- result{out, err}
	}()
	queriesOn := func() (int64, string) {
		rows := adminRows(t, s, fmt.Sprintf("SELECT Queries, status FROM stats_mysql_connection_pool WHERE srv_port=%d", victim))
		if len(rows) != 1 {
			return 0, ""
		}
		n, _ := strconv.ParseInt(rows[0][0], 10, 64)
		return n, rows[0][1]
	}
	var mu sync.Mutex
	var curve []string
	var killedAt, shunnedAt, restartedAt, backAt time.Duration
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		var last int64
		for tick := 0; ; tick++ {
			select {
			case <-stopPoll:
				return
			case <-time.After(time.Until(start.Add(time.Duration(tick) * 250 * time.Millisecond))):
			}
			q, st := queriesOn()
			now := time.Since(start)
			mu.Lock()
			if killedAt > 0 && shunnedAt == 0 && st != "ONLINE" {
				shunnedAt = now
			}
			if restartedAt > 0 && backAt == 0 && q > last && st == "ONLINE" {
				backAt = now
			}
			if tick%4 == 0 {
				curve = append(curve, fmt.Sprintf("%ds:%d:%s", tick/4, q-last, st))
			}
			if tick%4 == 0 || restartedAt > 0 {
				last = q
			}
			mu.Unlock()
		}
	}()

	time.Sleep(time.Until(start.Add(6 * time.Second)))
	own.Kill(t, 0)
	mu.Lock()
	killedAt = time.Since(start)
	mu.Unlock()

	// The sessions that were on the dead server continue with their state.
	for _, i := range onVictim {
		var v, port int
		var cs string
		if err := sessions[i].QueryRowContext(ctx, "SELECT @v, @@port, @@character_set_client").Scan(&v, &port, &cs); err != nil {
			t.Fatalf("session %d after the kill: %v", i, err)
		}
		if v != i || port == victim || cs != "utf8mb4" {
			t.Fatalf("session %d after the kill: @v=%d port=%d charset=%s", i, v, port, cs)
		}
	}
	// The one in a transaction is told, clearly, and stays usable.
	_, err := trx.ExecContext(ctx, "SELECT COUNT(*) FROM sbtest1")
	if err == nil || !strings.Contains(err.Error(), "1927") {
		t.Fatalf("statement in a transaction on the killed server: %v, want ERR 1927", err)
	}
	trxErr := err.Error()
	if _, err := trx.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("ROLLBACK after the error: %v", err)
	}
	var one int
	if err := trx.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the session is not usable after the error: %v", err)
	}

	time.Sleep(time.Until(start.Add(12 * time.Second)))
	own.Start(t)
	mu.Lock()
	restartedAt = time.Since(start)
	mu.Unlock()

	r := <-done
	time.Sleep(300 * time.Millisecond)
	close(stopPoll)
	<-pollDone
	if r.err != nil {
		t.Fatalf("sysbench: %v\n%s\n%s", r.err, r.out, s.Output())
	}
	m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(r.out)
	if m == nil || m[1] != "0" {
		t.Fatalf("sysbench reported errors:\n%s", r.out)
	}
	var summary []string
	for _, line := range strings.Split(r.out, "\n") {
		if strings.Contains(line, "queries:") || strings.Contains(line, "95th percentile") || strings.Contains(line, "reconnects:") {
			summary = append(summary, strings.Join(strings.Fields(line), " "))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if shunnedAt == 0 {
		t.Errorf("the killed server was never seen leave ONLINE")
	}
	if backAt == 0 {
		t.Errorf("no traffic on the restarted server before sysbench ended: %s", strings.Join(curve, " "))
	}
	t.Logf("killed at %v, shunned %v later; restarted (up) at %v, traffic back %v later; transaction: %q; sysbench %s; per-second queries on the victim: %s",
		killedAt.Round(time.Millisecond), (shunnedAt - killedAt).Round(time.Millisecond), restartedAt.Round(time.Millisecond),
		(backAt - restartedAt).Round(time.Millisecond), trxErr, strings.Join(summary, "; "), strings.Join(curve, " "))
}

// sysbenchDB creates database dbName on every server and prepares
// sysbench's tables of test there (within prep each), drops it from bs when
// the test ends, and returns a runner: sysbench <args[0]> common...
// --mysql-port=port args[1:]....
func sysbenchDB(t *testing.T, servers, bs []testenv.Backend, dbName, test string, common []string, prep time.Duration) func(ctx context.Context, port int, args ...string) (string, error) {
	t.Helper()
	sysbench := func(ctx context.Context, port int, args ...string) (string, error) {
		full := append(append([]string{args[0]}, common...), fmt.Sprintf("--mysql-port=%d", port))
		out, err := exec.CommandContext(ctx, "sysbench", append(full, args[1:]...)...).CombinedOutput()
		return string(out), err
	}
	for _, b := range servers {
		backendSQL(t, b, "DROP DATABASE IF EXISTS "+dbName+"; CREATE DATABASE "+dbName)
		ctx, cancel := context.WithTimeout(context.Background(), prep)
		out, err := sysbench(ctx, b.Port, test, "prepare")
		cancel()
		if err != nil {
			t.Fatalf("sysbench prepare on %d: %v\n%s", b.Port, err, out)
		}
	}
	t.Cleanup(func() {
		for _, b := range bs {
			testenv.CLI(t, b.Port, "root", "test", "DROP DATABASE IF EXISTS "+dbName)
		}
	})
	return sysbench
}
