package scrape

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReducePresets: each preset on metrics text shaped as its server
// prints it (testdata: a TiDB, a node_exporter, a StarRocks FE).
func TestReducePresets(t *testing.T) {
	now := time.Unix(1000, 0)
	tidb, node, fe := readFixture(t, "tidb.prom"), readFixture(t, "node.prom"), readFixture(t, "starrocks_fe.prom")
	for _, c := range []struct {
		name       string
		text       []byte
		target     Target
		secs, cpus float64 // NaN: unknown
		mem        float64
	}{
		// process_cpu_seconds_total over GOMAXPROCS, RSS over the memory quota.
		{"tidb", tidb, Target{Preset: PresetTiDB}, 8123.42, 16, 0.25},
		{"tidb by default", tidb, Target{}, 8123.42, 16, 0.25},
		{"tidb, overridden", tidb, Target{Preset: PresetTiDB, CPUs: 8, MemLimit: 12884901888}, 8123.42, 8, 0.5},
		// The non-idle modes of both CPUs (guest seconds are another metric).
		{"node", node, Target{Preset: PresetNode}, 9899.5 + 9000, 2, 0.75},
		// The FE's heap, used over max; no CPU in the FE's metrics.
		{"starrocks_fe", fe, Target{Preset: PresetStarRocksFE}, math.NaN(), math.NaN(), 0.75},
		{"starrocks_fe, limit", fe, Target{Preset: PresetStarRocksFE, MemLimit: 12884901888}, math.NaN(), math.NaN(), 0.5},
		// A TiDB read as a plain process: the labels give what TiDB's own metrics would.
		{"process", tidb, Target{Preset: PresetProcess, CPUs: 4, MemLimit: 12884901888}, 8123.42, 4, 0.5},
		{"process, no cpus", tidb, Target{Preset: PresetProcess, MemLimit: 12884901888}, math.NaN(), math.NaN(), 0.5},
	} {
		s, err := Reduce(c.text, c.target, now)
		same := func(a, b float64) bool { return math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-9 }
		if err != nil || !s.At.Equal(now) || !same(s.CPUSeconds, c.secs) || !same(s.Mem, c.mem) ||
			!math.IsNaN(c.cpus) && s.CPUs != c.cpus {
			t.Errorf("%s: %+v %v, want cpu seconds %v of %v CPUs, memory %v", c.name, s, err, c.secs, c.cpus, c.mem)
		}
	}
	// What the preset reads is missing: no data, an error.
	if _, err := Reduce(node, Target{Preset: PresetTiDB}, now); err != ErrNoData {
		t.Errorf("node metrics read as tidb: %v", err)
	}
	if _, err := Reduce([]byte("up 1\n"), Target{Preset: PresetStarRocksFE}, now); err != ErrNoData {
		t.Errorf("nothing to read: %v", err)
	}
	if _, err := Reduce(tidb, Target{Preset: "mysqld"}, now); err == nil {
		t.Error("unknown preset accepted")
	}
}

// TestReduceReadsOnlyItsMetrics: lines of metrics the preset does not read
// are dropped before parsing, so a malformed one does not spoil the
// scrape; a malformed line of a metric it reads does.
func TestReduceReadsOnlyItsMetrics(t *testing.T) {
	now := time.Unix(1000, 0)
	text := "# HELP x odd\nx{a=\"b\" 3 {{{\n\tprocess_cpu_seconds_total 12\nprocess_cpu_seconds_total_other 99\n" +
		"process_resident_memory_bytes 5e8\ntidb_server_maxprocs 4\ntidb_server_memory_quota_bytes 1e9\n" +
		"# some comment naming process_cpu_seconds_total\ntidb_server_maxprocs_extra{x=\"y\"} 1" // no final newline
	s, err := Reduce([]byte(text), Target{}, now)
	if err != nil || s.CPUSeconds != 12 || s.CPUs != 4 || s.Mem != 0.5 {
		t.Fatalf("%+v %v", s, err)
	}
	if got := string(filter([]byte(text), wanted[PresetTiDB])); got != "\tprocess_cpu_seconds_total 12\n"+
		"process_resident_memory_bytes 5e8\ntidb_server_maxprocs 4\ntidb_server_memory_quota_bytes 1e9\n" {
		t.Errorf("filtered %q", got)
	}
	if _, err := Reduce([]byte("process_cpu_seconds_total twelve\ntidb_server_maxprocs 4\n"), Target{}, now); err == nil ||
		!strings.Contains(err.Error(), "not Prometheus text") {
		t.Errorf("malformed sample of a metric read: %v", err)
	}
	if _, err := Reduce([]byte("{{garbage"), Target{}, now); err != ErrNoData {
		t.Errorf("garbage: %v", err)
	}
}

// TestScraperPublishes: a real HTTP endpoint on 127.0.0.1 reporting a
// growing CPU counter; the scraper publishes the usage to the server.
func TestScraperPublishes(t *testing.T) {
	var mu sync.Mutex
	secs := 0.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		secs += 1.0 // scraped every 250 ms: 4 CPU-seconds a second of 8 CPUs = 50 %
		v := secs
		mu.Unlock()
		fmt.Fprintf(w, "process_cpu_seconds_total %g\ntidb_server_maxprocs 8\nprocess_resident_memory_bytes 3e9\ntidb_server_memory_quota_bytes 1e10\n", v)
	}))
	defer srv.Close()
	o := backend.DefaultOptions()
	reg := backend.NewRegistry(func() *backend.Options { return &o }, zerolog.Nop())
	defer reg.Close()
	reg.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "127.0.0.1", Port: 3306, Weight: 1, MaxConnections: 10}})
	target := map[string]Target{"127.0.0.1:3306": {URL: srv.URL, Preset: PresetTiDB}}
	sc := New(reg, func() Settings { return Settings{Targets: target, Interval: 250 * time.Millisecond} }, zerolog.Nop())
	defer sc.Close()
	s := reg.Hostgroup(0)[0]
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := s.Usage()
		if u != nil && !math.IsNaN(u.CPU) {
			if math.Abs(u.CPU-0.5) > 0.15 || math.Abs(u.Mem-0.3) > 1e-9 {
				t.Fatalf("usage %+v", u)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU usage published after 5 s: %+v", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuf is a log sink the scraper's goroutine and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScraperFaults: an endpoint on 127.0.0.1 that turns slow, sends
// garbage, an endless body, a 404, then restarts (its CPU counter goes
// back). Each failure is logged once, publishes nothing (what was
// published stays, to go stale), and the scraper recovers; a counter
// reset makes CPU unknown — neutral — until two new readings.
func TestScraperFaults(t *testing.T) {
	var mu sync.Mutex
	mode, secs := "ok", 0.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		if m == "ok" {
			secs += 0.6 // per scrape, 300 ms apart: 2 CPU-seconds a second of 8 CPUs, 25 %
		}
		v := secs
		mu.Unlock()
		switch m {
		case "slow":
			select { // past the scraper's timeout; ends when the test ends
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		case "garbage":
			fmt.Fprint(w, "process_cpu_seconds_total {{{ not metrics\n")
		case "huge":
			line := []byte("# HELP padding " + strings.Repeat("x", 1000) + "\n")
			for range 10 << 10 { // 10 MiB, past the 8 MiB bound
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		case "404":
			http.NotFound(w, r)
		default:
			fmt.Fprintf(w, "process_cpu_seconds_total %g\ntidb_server_maxprocs 8\nprocess_resident_memory_bytes 2e9\ntidb_server_memory_quota_bytes 1e10\n", v)
		}
	}))
	defer srv.Close()
	set := func(m string) {
		mu.Lock()
		mode = m
		if m == "restart" {
			mode, secs = "ok", 0
		}
		mu.Unlock()
	}
	o := backend.DefaultOptions()
	reg := backend.NewRegistry(func() *backend.Options { return &o }, zerolog.Nop())
	defer reg.Close()
	reg.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "127.0.0.1", Port: 3306, Weight: 1, MaxConnections: 10}})
	var logs syncBuf
	st := Settings{Targets: map[string]Target{"127.0.0.1:3306": {URL: srv.URL, Preset: PresetTiDB}},
		Interval: 300 * time.Millisecond, Timeout: 1500 * time.Millisecond}
	sc := New(reg, func() Settings { mu.Lock(); defer mu.Unlock(); return st }, zerolog.New(&logs))
	defer sc.Close()
	s := reg.Hostgroup(0)[0]

	waitFor(t, "CPU published", func() bool { u := s.Usage(); return u != nil && !math.IsNaN(u.CPU) })
	if u := s.Usage(); u.CPU <= 0 || u.CPU > 0.5 || math.Abs(u.Mem-0.2) > 1e-9 {
		t.Fatalf("usage %+v", u)
	}
	for _, c := range []struct{ mode, logged string }{
		{"slow", "deadline exceeded"},
		{"garbage", "not Prometheus text"},
		{"huge", "more than 8388608 bytes"},
		{"404", "HTTP 404"},
	} {
		before := s.Usage()
		start := time.Now()
		set(c.mode)
		waitFor(t, c.mode+" logged", func() bool { return logs.count(c.logged) > 0 })
		t.Logf("%s: failed scrape logged %v after the switch", c.mode, time.Since(start).Round(time.Millisecond))
		if s.Usage() != before {
			t.Errorf("%s: a failed scrape published %+v", c.mode, s.Usage())
		}
		// Logged once, not on every round.
		fails := logs.count("metrics_url scrape failed")
		time.Sleep(time.Second)
		if n := logs.count("metrics_url scrape failed"); n != fails {
			t.Errorf("%s: the same failure logged %d times", c.mode, n-fails+1)
		}
		set("ok")
		waitFor(t, c.mode+": recovered", func() bool { return s.Usage().At.After(before.At) })
	}
	if n := logs.count("metrics_url scrape works again"); n != 4 {
		t.Errorf("recoveries logged %d times, want 4", n)
	}
	// A restart: the counter goes back, the CPU history is dropped, and
	// the factor is neutral until a rate can be computed again.
	set("restart")
	waitFor(t, "counter reset seen", func() bool { return math.IsNaN(s.Usage().CPU) })
	if _, _, ok := s.Usage().CPUNow(0, time.Now()); ok {
		t.Error("CPU known right after a counter reset")
	}
	if s.Usage().MemRisk(time.Now()) != 0 || math.IsNaN(s.Usage().Mem) {
		t.Errorf("memory lost with the CPU history: %+v", s.Usage())
	}
	waitFor(t, "CPU after the reset", func() bool { return !math.IsNaN(s.Usage().CPU) })

	// The target removed at a LOAD: its usage is withdrawn.
	mu.Lock()
	st.Targets = nil
	mu.Unlock()
	waitFor(t, "usage withdrawn", func() bool { return s.Usage() == nil })
}
