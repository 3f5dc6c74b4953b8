package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestTenThousandMostlyIdle (SLUICE_LONG=1): issue 11's "10 000 mostly idle
// clients, one query every 5 s each" on one Sluice. The same aggregate rate
// is first sent by 100 busy clients (one query every 50 ms each), then by
// 10 000 clients (one every 5 s each, started at random offsets): Sluice's
// RSS, its file descriptors, the backend connections multiplexing needed
// and the client-side p50/p95/p99 of both phases are logged. The test's
// client runs thousands of goroutines on the same two cores, so its own
// scheduling shows in those figures; a probe in a separate process
// (sysbench, 2 threads, 400 SELECT 1 per second) measures both phases
// from outside too. The test fails on any query error; latencies are
// reported, never asserted.
// SLUICE_MOSTLY_IDLE_CLIENTS overrides the count.
func TestTenThousandMostlyIdle(t *testing.T) {
	if os.Getenv("SLUICE_LONG") != "1" {
		t.Skip("long: set SLUICE_LONG=1 (docs/benchmarks.md records the figures)")
	}
	const period, busy, phase = 5 * time.Second, 100, 20 * time.Second
	n, s, db := manyClients(t, "SLUICE_MOSTLY_IDLE_CLIENTS", 10000)
	pid := s.Cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var errs atomic.Int64
	var firstErr atomic.Value
	// run makes k clients each send one query per every, for d, starting
	// at a random offset within the first period; it returns the latencies.
	run := func(conns []*sql.Conn, every, d time.Duration) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := make([]time.Duration, 0, int(d/every)+1)
				next := time.Now().Add(rand.N(every))
				for next.Before(end) && ctx.Err() == nil {
					time.Sleep(time.Until(next))
					start := time.Now()
					var one int
					if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					mine = append(mine, time.Since(start))
					next = next.Add(every)
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
	pct := func(lat []time.Duration, p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	open := func(k int) []*sql.Conn { return openClients(t, ctx, db, k, false) }
	closeAll := closeClients

	rss0, fds0 := rss(t, pid), fdCount(pid)
	few := open(busy)
	probed := probe(t, ctx, s.DataPort, phase)
	lat := run(few, period*busy/time.Duration(n), phase)
	t.Logf("probe beside %d busy clients: %s", busy, <-probed)
	if errs.Load() > 0 {
		t.Fatalf("%d busy clients: %d queries failed, first: %v", busy, errs.Load(), firstErr.Load())
	}
	t.Logf("%d clients, one query every %v each: %d queries, p50 %v p95 %v p99 %v",
		busy, period*busy/time.Duration(n), len(lat), pct(lat, .5), pct(lat, .95), pct(lat, .99))
	closeAll(few)

	opened := time.Now()
	conns := open(n)
	defer closeAll(conns)
	t.Logf("%d clients logged in in %v", n, time.Since(opened).Round(time.Millisecond))
	probed = probe(t, ctx, s.DataPort, phase)
	lat = run(conns, period, phase)
	t.Logf("probe beside %d mostly idle clients: %s", n, <-probed)
	rss1, fds1 := rss(t, pid), fdCount(pid)
	backendConns := adminInt(t, s, "SELECT COALESCE(SUM(ConnUsed+ConnFree),0) FROM stats_mysql_connection_pool")
	if errs.Load() > 0 {
		out := s.Output()
		t.Logf("pool: %s", adminRows(t, s, "SELECT hostgroup, srv_port, status, ConnUsed, ConnFree, ConnOK, ConnERR, Queries FROM stats_mysql_connection_pool"))
		t.Fatalf("%d mostly idle clients: %d queries failed, first: %v\nlog tail: %s", n, errs.Load(), firstErr.Load(), out[max(0, len(out)-3000):])
	}
	t.Logf("%d clients, one query every %v each: %d queries, p50 %v p95 %v p99 %v",
		n, period, len(lat), pct(lat, .5), pct(lat, .95), pct(lat, .99))
	t.Logf("Sluice RSS %d → %d KiB (%.1f MiB, %.1f KiB per client); fds %d → %d; %d backend connections",
		rss0, rss1, float64(rss1)/1024, float64(rss1-rss0)/float64(n), fds0, fds1, backendConns)
	if !testenv.RaceEnabled() && rss1 > 400<<10 {
		t.Errorf("Sluice RSS %d KiB with %d mostly idle clients", rss1, n)
	}
}

// probeScript is a sysbench test that sends SELECT 1 and nothing else.
const probeScript = `
function thread_init() con = sysbench.sql.driver():connect() end
function event() con:query("SELECT 1") end
function thread_done() con:disconnect() end
`

// probe runs sysbench in its own process beside a phase of
// TestTenThousandMostlyIdle, starting a second in and stopping a second
// before d ends, and sends its latency summary (or why there is none).
func probe(t *testing.T, ctx context.Context, port int, d time.Duration) <-chan string {
	t.Helper()
	out := make(chan string, 1)
	if _, err := exec.LookPath("sysbench"); err != nil {
		out <- "none (sysbench is not installed)"
		return out
	}
	script := filepath.Join(t.TempDir(), "probe.lua")
	if err := os.WriteFile(script, []byte(probeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			out <- "none (cancelled)"
			return
		}
		text, err := exec.CommandContext(ctx, "sysbench", script, "--db-driver=mysql", "--mysql-host=127.0.0.1",
			fmt.Sprintf("--mysql-port=%d", port), "--mysql-user=sbtest", "--mysql-password=sbtest", "--mysql-db=sbtest",
			"--threads=2", "--rate=400", fmt.Sprintf("--time=%d", int((d-2*time.Second).Seconds())),
			"--percentile=95", "run").CombinedOutput()
		m := regexp.MustCompile(`(?s)total number of events:\s+(\d+).*min:\s+([0-9.]+).*avg:\s+([0-9.]+).*max:\s+([0-9.]+).*95th percentile:\s+([0-9.]+)`).FindSubmatch(text)
		if err != nil || m == nil {
			out <- fmt.Sprintf("failed (%v): %s", err, text[max(0, len(text)-500):])
			return
		}
		out <- fmt.Sprintf("%s queries, avg %s ms, p95 %s ms, max %s ms", m[1], m[3], m[5], m[4])
	}()
	return out
}
