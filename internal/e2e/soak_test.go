//go:build soak

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestSoak is `make soak` (SLUICE_SOAK_DURATION, default 10m), not part of
// `make test`: sysbench read/write and read-only traffic plus stateful
// go-sql-driver sessions through one Sluice while a chaos loop LOADs config
// every second, flips a server OFFLINE_SOFT and back, kills -9 and restarts
// a backend, and opens and abandons half-open sockets on both ports.
//
// What must hold at the end: no error for any statement outside a
// transaction (sysbench read-only with --skip-trx, the stateful sessions,
// whose user variables must follow them across the kills); the read/write
// transactions may meet ERR 1927 only for the transactions a kill took
// with it; and once the load is gone, Sluice's goroutines, file
// descriptors and RSS are back where they were after a warm-up of the
// same load (figures in the log).
func TestSoak(t *testing.T) {
	dur := 10 * time.Minute
	if v := os.Getenv("SLUICE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second || d > 2*time.Hour {
			t.Fatalf("SLUICE_SOAK_DURATION=%q: want a duration between 30s and 2h", v)
		}
		dur = d
	}
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make soak installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	bs := testenv.Backends(t, 2)
	own := testenv.OwnBackends(t, 1)
	servers := append(bs, own.Backends[0])
	victim := own.Backends[0].Port
	const dbName = "soaktest"
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=" + dbName, "--tables=4", "--table-size=10000", "--rand-type=uniform"}
	sysbench := sysbenchDB(t, servers, bs, dbName, "oltp_read_write", common, 3*time.Minute)

	s := startIn(t, t.TempDir(), "", true)
	routeTo(t, s, 0, servers[0].Port, servers[1].Port, victim)
	pid := s.Cmd.Process.Pid

	type sample struct {
		goroutines, fds int64
		rssKiB          int64
	}
	measure := func() sample {
		var sm sample
		sm.goroutines = adminInt(t, s, "SELECT Variable_Value FROM stats_memory_metrics WHERE Variable_Name='Go_goroutines'")
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			sm.fds = int64(len(ents))
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			if m := regexp.MustCompile(`VmRSS:\s+(\d+)`).FindSubmatch(b); m != nil {
				sm.rssKiB, _ = strconv.ParseInt(string(m[1]), 10, 64)
			}
		}
		return sm
	}
	// Idle: no client, the half-open sockets timed out (connect_timeout_client
	// is 10 s), the pools trimmed to what they keep.
	settle := func() sample {
		time.Sleep(15 * time.Second)
		return measure()
	}

	// run drives the whole load for d: it returns what went wrong.
	run := func(d time.Duration, chaos bool) (report []string, failures []string) {
		ctx, cancel := context.WithTimeout(context.Background(), d+3*time.Minute)
		defer cancel()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		fail := func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if len(failures) < 20 {
				failures = append(failures, fmt.Sprintf(format, args...))
			}
		}
		secs := strconv.Itoa(int(d.Seconds()))

		// sysbench, read/write transactions: ERR 1927 (a transaction lost
		// with its server) and the server's own deadlocks are expected.
		var rwOut, roOut string
		wg.Add(2)
		go func() {
			defer wg.Done()
			out, err := sysbench(ctx, s.DataPort, "oltp_read_write", "--threads=4", "--time="+secs,
				"--report-interval=0", "--mysql-ignore-errors=1213,1020,1205,1927", "run")
			if err != nil || strings.Contains(out, "FATAL") {
				fail("sysbench oltp_read_write: %v\n%s", err, out)
			}
			rwOut = out
		}()
		// sysbench, autocommit reads: never an error.
		go func() {
			defer wg.Done()
			out, err := sysbench(ctx, s.DataPort, "oltp_read_only", "--skip-trx=on", "--threads=4", "--time="+secs,
				"--report-interval=0", "run")
			if err != nil || strings.Contains(out, "FATAL") {
				fail("sysbench oltp_read_only --skip-trx: %v\n%s", err, out)
			}
			if m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(out); m == nil || m[1] != "0" {
				fail("sysbench oltp_read_only --skip-trx ignored errors: %v", m)
			}
			roOut = out
		}()

		// Stateful go-sql-driver sessions: a user variable each, read back
		// with every query, across kills and migrations.
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", dbName, "")
		defer db.Close()
		var stateful atomic.Int64
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := db.Conn(ctx)
				if err != nil {
					fail("stateful session %d: %v", i, err)
					return
				}
				defer c.Close()
				if _, err := c.ExecContext(ctx, fmt.Sprintf("SET @v = %d", 1000+i)); err != nil {
					fail("stateful session %d: SET: %v", i, err)
					return
				}
				for n := 0; n < 10_000_000; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var v, k int
					err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT @v, k FROM sbtest%d WHERE id=%d", 1+n%4, 1+rand.IntN(10000))).Scan(&v, &k)
					if err != nil {
						fail("stateful session %d, query %d: %v", i, n, err)
						return
					}
					if v != 1000+i {
						fail("stateful session %d, query %d: @v=%d, want %d", i, n, v, 1000+i)
						return
					}
					stateful.Add(1)
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}

		// Half-open sockets on both ports: silent, or a header that
		// promises more than it sends; some closed early, the rest left
		// to Sluice's connect_timeout_client.
		var sockets atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			var open []net.Conn
			defer func() {
				for _, c := range open {
					c.Close()
				}
			}()
			for tick := 0; ; tick++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				for j := range 5 {
					port := s.DataPort
					if j == 4 {
						port = s.AdminPort
					}
					c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
					if err != nil {
						continue
					}
					sockets.Add(1)
					if j%2 == 1 {
						c.Write([]byte{200, 0, 0, 1, 0x85, 0xa6, 0xff, 0x01, 0, 0, 0, 1})
					}
					open = append(open, c)
				}
				// Keep at most ~60 of ours open: close the oldest.
				for len(open) > 60 {
					open[0].Close()
					open = open[1:]
				}
			}
		}()

		// Chaos: a LOAD every second, OFFLINE_SOFT flips, backend kills.
		var loads, loadErrs, flips, kills atomic.Int64
		if chaos {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mods := []string{"MYSQL SERVERS", "MYSQL QUERY RULES", "MYSQL VARIABLES", "MYSQL USERS"}
				start := time.Now()
				killedAt := time.Duration(-1)
				for tick := 1; ; tick++ {
					select {
					case <-stop:
						if killedAt >= 0 {
							own.Start(t)
						}
						return
					case <-time.After(time.Until(start.Add(time.Duration(tick) * time.Second))):
					}
					sqlText := "LOAD " + mods[tick%len(mods)] + " TO RUNTIME"
					switch tick % 30 {
					case 10:
						sqlText = fmt.Sprintf("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME", servers[0].Port)
						flips.Add(1)
					case 20:
						sqlText = fmt.Sprintf("UPDATE mysql_servers SET status='ONLINE' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME", servers[0].Port)
					}
					if out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", sqlText); err != nil {
						loadErrs.Add(1)
						fail("admin %q: %v %s", sqlText, err, out)
					}
					loads.Add(1)
					since := time.Since(start)
					switch {
					case killedAt < 0 && tick%90 == 45:
						own.Kill(t, 0)
						kills.Add(1)
						killedAt = since
					case killedAt >= 0 && since-killedAt >= 20*time.Second:
						own.Start(t)
						killedAt = -1
					}
				}
			}()
		}

		time.Sleep(d)
		close(stop)
		wg.Wait()
		summary := func(name, out string) string {
			var parts []string
			for _, line := range strings.Split(out, "\n") {
				for _, k := range []string{"transactions:", "queries:", "ignored errors:", "reconnects:"} {
					if strings.Contains(line, k) {
						parts = append(parts, strings.Join(strings.Fields(line), " "))
					}
				}
			}
			return name + ": " + strings.Join(parts, "; ")
		}
		report = append(report, summary("sysbench oltp_read_write", rwOut), summary("sysbench oltp_read_only --skip-trx", roOut),
			fmt.Sprintf("stateful sessions: %d queries", stateful.Load()),
			fmt.Sprintf("half-open sockets: %d", sockets.Load()))
		if chaos {
			report = append(report, fmt.Sprintf("chaos: %d admin LOADs (%d failed), %d OFFLINE_SOFT flips, %d kill -9 of server %d",
				loads.Load(), loadErrs.Load(), flips.Load(), kills.Load(), victim))
			if m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(rwOut); m != nil {
				// Each kill takes at most one open transaction per thread.
				if n, _ := strconv.Atoi(m[1]); int64(n) > 4*kills.Load()+20 {
					fail("sysbench oltp_read_write ignored %d errors for %d kills", n, kills.Load())
				}
			}
		}
		return report, failures
	}

	// Warm-up: the same load without chaos, then the idle baseline.
	rep, failures := run(30*time.Second, false)
	if len(failures) > 0 {
		t.Fatalf("warm-up: %s", strings.Join(failures, "\n"))
	}
	t.Logf("warm-up 30s: %s", strings.Join(rep, " | "))
	before := settle()

	t0 := time.Now()
	rep, failures = run(dur, true)
	elapsed := time.Since(t0)
	after := settle()
	gen := adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='generated_error_packets'")
	t.Logf("soak %s: %s", elapsed.Round(time.Second), strings.Join(rep, " | "))
	t.Logf("idle after warm-up: %d goroutines, %d fds, RSS %d KiB; idle after the soak: %d goroutines, %d fds, RSS %d KiB; error packets generated by Sluice: %d",
		before.goroutines, before.fds, before.rssKiB, after.goroutines, after.fds, after.rssKiB, gen)
	os.WriteFile(filepath.Join(s.Datadir, "soak.txt"), []byte(strings.Join(rep, "\n")+"\n"), 0o644)
	if len(failures) > 0 {
		t.Fatalf("soak failures:\n%s", strings.Join(failures, "\n"))
	}
	if after.goroutines > before.goroutines+20 {
		t.Errorf("goroutines grew from %d to %d", before.goroutines, after.goroutines)
	}
	if after.fds > before.fds+20 {
		t.Errorf("file descriptors grew from %d to %d", before.fds, after.fds)
	}
	if after.rssKiB > before.rssKiB*3/2+32*1024 {
		t.Errorf("RSS grew from %d to %d KiB", before.rssKiB, after.rssKiB)
	}
}
