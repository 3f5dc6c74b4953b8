package balance

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/usage"
)

// The router picks among *backend.Server.
var _ Backend = (*backend.Server)(nil)

type fake struct {
	name       string
	healthy    bool
	weight     int
	conns, max int
	idle       int // of conns, held by sessions between commands (not Busy)
	pinned     int // of conns, held by sessions that cannot move
	latUs      int64
	maxLatMs   int
	fails, ops uint64
	place      Placement
	use        *usage.Usage
}

func (f *fake) Usage() *usage.Usage { return f.use }

func (f *fake) Healthy() bool       { return f.healthy }
func (f *fake) Weight() int         { return f.weight }
func (f *fake) ConnScore() int      { return f.conns }
func (f *fake) Busy() int           { return f.conns - f.idle }
func (f *fake) MaxConnections() int { return f.max }
func (f *fake) LatencyUs() int64    { return f.latUs }
func (f *fake) MaxLatencyMs() int   { return f.maxLatMs }
func (f *fake) ErrorWindow(time.Time) (failures, total uint64) {
	return f.fails, f.ops
}

func srv(name string, weight int) *fake {
	return &fake{name: name, healthy: true, weight: weight, max: 100}
}

func seeded() Options {
	r := rand.New(rand.NewPCG(1, 2))
	return Options{DefaultMaxLatencyMs: 1000, Rand: r.IntN}
}

func TestWeightedRandomDistribution(t *testing.T) {
	servers := []*fake{srv("a", 1), srv("b", 2), srv("c", 7), srv("zero", 0)}
	p := &WeightedRandom[*fake]{Options: seeded()}
	counts := map[string]int{}
	const n = 100_000
	for range n {
		counts[p.Pick(servers).name]++
	}
	for name, w := range map[string]float64{"a": 0.1, "b": 0.2, "c": 0.7} {
		if got := float64(counts[name]) / n; math.Abs(got-w) > 0.01 {
			t.Fatalf("%s picked %.3f of the time, want %.2f", name, got, w)
		}
	}
	if counts["zero"] != 0 {
		t.Fatal("weight 0 picked")
	}
}

func TestCandidateRules(t *testing.T) {
	for _, name := range []string{"random", "resource", "location", "connection"} {
		p, err := New(Config[*fake]{Options: seeded(), Policy: name})
		if err != nil {
			t.Fatal(name, err)
		}
		sick := srv("sick", 100)
		sick.healthy = false
		slow := srv("slow", 100)
		slow.latUs = 1_500_000 // over the 1000 ms default
		slowOwn := srv("slowOwn", 100)
		slowOwn.latUs, slowOwn.maxLatMs = 30_000, 20
		busy := srv("busy", 100)
		busy.conns = 100
		ok1 := srv("ok", 1)
		ok1.latUs = 900_000
		for range 200 {
			if got := p.Pick([]*fake{sick, slow, slowOwn, busy, ok1}); got != ok1 {
				t.Fatalf("%s picked %v", name, got)
			}
		}
		// Everything full: pick among the full servers (the caller waits
		// in that pool).
		full2 := srv("full2", 1)
		full2.conns = 100
		if got := p.Pick([]*fake{sick, busy, full2}); got != busy && got != full2 {
			t.Fatalf("%s all full: %v", name, got)
		}
		if got := p.Pick([]*fake{sick, slow}); got != nil {
			t.Fatalf("%s no candidate: %v", name, got)
		}
		if got := p.Pick(nil); got != nil {
			t.Fatalf("%s empty: %v", name, got)
		}
		// No latency limit at all when both limits are 0.
		noLimit := seeded()
		noLimit.DefaultMaxLatencyMs = 0
		q, _ := New(Config[*fake]{Options: noLimit, Policy: name})
		if got := q.Pick([]*fake{slow}); got != slow {
			t.Fatalf("%s without a latency limit: %v", name, got)
		}
	}
	if _, err := New(Config[*fake]{Policy: "leastconn"}); !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("unknown policy: %v", err)
	}
}

func TestManyServers(t *testing.T) {
	// More than 64 servers takes the path without the bit set.
	servers := make([]*fake, 100)
	for i := range servers {
		servers[i] = srv("s", 1)
		servers[i].healthy = i >= 90
	}
	p := &WeightedRandom[*fake]{Options: seeded()}
	seen := map[*fake]bool{}
	for range 2000 {
		got := p.Pick(servers)
		if got == nil || !got.healthy {
			t.Fatal("picked an unhealthy server")
		}
		seen[got] = true
	}
	if len(seen) != 10 {
		t.Fatalf("picked %d distinct servers, want 10", len(seen))
	}
}

func BenchmarkPick(b *testing.B) {
	servers := []*fake{srv("a", 1), srv("b", 2), srv("c", 7)}
	wr := &WeightedRandom[*fake]{Options: Options{DefaultMaxLatencyMs: 1000}}
	fp, _ := New(Config[*fake]{Options: Options{DefaultMaxLatencyMs: 1000}, Policy: "resource"})
	b.Run("WeightedRandom", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if wr.Pick(servers) == nil {
				b.Fatal("nil")
			}
		}
	})
	b.Run("Factor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if fp.Pick(servers) == nil {
				b.Fatal("nil")
			}
		}
	})
}
