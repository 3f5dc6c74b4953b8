package scrape

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

func TestReducePresets(t *testing.T) {
	now := time.Unix(1000, 0)
	tidb := []byte(`# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 123.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 4e+09
# TYPE tidb_server_maxprocs gauge
tidb_server_maxprocs 8
# TYPE tidb_server_memory_quota_bytes gauge
tidb_server_memory_quota_bytes 1.6e+10
`)
	s, err := Reduce(tidb, Target{Preset: PresetTiDB}, now)
	if err != nil || s.CPUSeconds != 123.5 || s.CPUs != 8 || s.Mem != 0.25 {
		t.Fatalf("tidb: %+v %v", s, err)
	}
	node := []byte(`# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="user"} 30
node_cpu_seconds_total{cpu="0",mode="system"} 10
node_cpu_seconds_total{cpu="1",mode="idle"} 120
node_cpu_seconds_total{cpu="1",mode="user"} 20
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1000
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 250
`)
	s, err = Reduce(node, Target{Preset: PresetNode}, now)
	if err != nil || s.CPUSeconds != 60 || s.CPUs != 2 || s.Mem != 0.75 {
		t.Fatalf("node: %+v %v", s, err)
	}
	proc := []byte("process_cpu_seconds_total 10\nprocess_resident_memory_bytes 512\n")
	s, err = Reduce(proc, Target{Preset: PresetProcess, CPUs: 4, MemLimit: 1024}, now)
	if err != nil || s.CPUs != 4 || s.Mem != 0.5 {
		t.Fatalf("process: %+v %v", s, err)
	}
	// Without a CPU count, CPU is unknown; memory still counts.
	s, err = Reduce(proc, Target{Preset: PresetProcess, MemLimit: 1024}, now)
	if err != nil || !math.IsNaN(s.CPUSeconds) || s.Mem != 0.5 {
		t.Fatalf("process without cpus: %+v %v", s, err)
	}
	if _, err := Reduce([]byte("up 1\n"), Target{Preset: PresetTiDB}, now); err != ErrNoData {
		t.Fatalf("nothing to read: %v", err)
	}
	if _, err := Reduce([]byte("{{garbage"), Target{}, now); err == nil {
		t.Fatal("garbage parsed")
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
