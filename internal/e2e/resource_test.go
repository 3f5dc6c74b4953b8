package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// fakeMetrics serves TiDB-like /metrics whose CPU usage (a fraction of
// tidb_server_maxprocs, as a counter growing in real time) and memory
// usage (of tidb_server_memory_quota_bytes) the test sets.
type fakeMetrics struct {
	mu       sync.Mutex
	cpu, mem float64
	seconds  float64
	last     time.Time
}

func (f *fakeMetrics) set(cpu, mem float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	f.cpu, f.mem = cpu, mem
}

func (f *fakeMetrics) advance() {
	now := time.Now()
	if !f.last.IsZero() {
		f.seconds += now.Sub(f.last).Seconds() * f.cpu * 8
	}
	f.last = now
}

func (f *fakeMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.advance()
	body := fmt.Sprintf("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n"+
		"# TYPE tidb_server_maxprocs gauge\ntidb_server_maxprocs 8\n"+
		"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %g\n"+
		"# TYPE tidb_server_memory_quota_bytes gauge\ntidb_server_memory_quota_bytes 1e+10\n", f.seconds, f.mem*1e10)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(body))
}

// TestCPUAndMemoryFactors: three real servers, each with a metrics_url on
// an endpoint the test controls (TiDB's metric names). One server at 95 %
// CPU (the others 10 %) gets no new session; when a second turns hot, its
// sessions leave it at the configured rate (the curve is logged); and a
// server at OOM risk (memory 80 %) loses all its sessions.
func TestCPUAndMemoryFactors(t *testing.T) {
	bs := testenv.Backends(t, 3)
	metrics := make([]*fakeMetrics, 3)
	var urls []string
	for i := range metrics {
		metrics[i] = &fakeMetrics{cpu: 0.10, mem: 0.30}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: metrics[i]}}
		srv.Start()
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL+"/metrics")
	}
	metrics[0].set(0.95, 0.30)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-balance_metrics_interval_ms=250; SET mysql-balance_cpu_migrations_per_second=5;
		SET mysql-balance_memory_migrations_per_second=10; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers_balance(hostname, port, metrics_url) VALUES
			('127.0.0.1', %d, '%s'), ('127.0.0.1', %d, '%s'), ('127.0.0.1', %d, '%s');`,
		bs[0].Port, urls[0], bs[1].Port, urls[1], bs[2].Port, urls[2]))
	routeTo(t, s, 1, bs[0].Port, bs[1].Port, bs[2].Port)
	// Until two scrapes a second apart give the hot server a CPU rate, the
	// three score alike.
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	hotScore := regexp.MustCompile(fmt.Sprintf(`"endpoint":"127.0.0.1:%d"[^}]*"score":"0x([0-9a-f]+)"`, bs[0].Port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, _ := exec.Command("curl", "-s", "http://127.0.0.1:"+port+"/api/status").Output()
		if m := hotScore.FindSubmatch(out); m != nil && len(m[1]) > 4 { // the CPU bits sit above the 16 conn bits
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU score for the hot server after 10 s: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// New sessions avoid the hot server.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(40)
	sessions := statefulSessions(t, db, 30)
	per := sessionPorts(t, sessions)
	if per[bs[0].Port] != 0 {
		out, _ := exec.Command("curl", "-s", "http://127.0.0.1:"+port+"/api/status").Output()
		t.Fatalf("new sessions went to the server at 95 %% CPU: %v\n%s", per, out)
	}
	t.Logf("95 %% / 10 %% / 10 %% CPU: 30 new sessions went %v", per)

	// A second server turns hot: its sessions leave it.
	metrics[1].set(0.95, 0.30)
	start := time.Now()
	var curve []string
	for next := time.Duration(0); next <= 20*time.Second; next += time.Second {
		time.Sleep(time.Until(start.Add(next)))
		used := usedPerServer(t, s, 1)
		curve = append(curve, fmt.Sprintf("%ds %d/%d/%d", int(next.Seconds()), used[bs[0].Port], used[bs[1].Port], used[bs[2].Port]))
		if used[bs[1].Port] == 0 {
			break
		}
	}
	after := sessionPorts(t, sessions)
	if after[bs[1].Port] >= per[bs[1].Port] {
		t.Fatalf("no session left the server that turned hot: %v → %v; curve %s", per, after, strings.Join(curve, ", "))
	}
	t.Logf("second server at 95 %% CPU (5/s configured): sessions per server %s", strings.Join(curve, ", "))

	// OOM risk: every session leaves the third server.
	metrics[1].set(0.10, 0.30)
	metrics[2].set(0.10, 0.80)
	start = time.Now()
	var took time.Duration
	for time.Since(start) < 20*time.Second {
		if usedPerServer(t, s, 1)[bs[2].Port] == 0 {
			took = time.Since(start)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	final := sessionPorts(t, sessions)
	if took == 0 || final[bs[2].Port] != 0 {
		t.Fatalf("sessions still on the server at OOM risk after 20 s: %v", final)
	}
	rows := adminRows(t, s, "SELECT reason, outcome, SUM(count_star) FROM stats_mysql_migrations GROUP BY reason, outcome")
	t.Logf("memory at 80 %%: its %d sessions left in %v (10/s configured); sessions now %v; migrations %v",
		after[bs[2].Port], took.Round(100*time.Millisecond), final, rows)
}
