package balance

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/usage"
)

// rebalance runs Rebalance over servers whose sessions are their conns
// field, all movable but the pinned ones.
func rebalance(p Policy[*fake], r Rates, servers ...*fake) (Move[*fake], bool) {
	return p.(*FactorPolicy[*fake]).Rebalance(servers, sessionsOf, r, time.Time{})
}

func sessionsOf(f *fake) (int, int) { return f.conns, f.conns - f.pinned }

func with(f *fake, sessions int) *fake {
	f.conns, f.max = sessions, 1000
	return f
}

func TestRebalanceConn(t *testing.T) {
	p := placed("resource", false)
	// TiProxy's example (tiproxy §1.5): 100 vs 20 → target 55 for the
	// idle one, narrowed in 120 s: 0.283 per second.
	m, ok := rebalance(p, Rates{}, with(srv("a", 1), 100), with(srv("b", 1), 20))
	if !ok || m.From.name != "a" || m.To.name != "b" || m.Reason != FactorConn {
		t.Fatalf("100 vs 20: %+v %v", m, ok)
	}
	if want := ((121.0 / 2.2) - 21) / 120; math.Abs(m.PerSecond-want) > 1e-9 {
		t.Fatalf("rate %v, want %v", m.PerSecond, want)
	}
	// Within the 1.2 ratio: balanced.
	if m, ok := rebalance(p, Rates{}, with(srv("a", 1), 24), with(srv("b", 1), 20)); ok {
		t.Fatalf("24 vs 20 moved: %+v", m)
	}
	// Per unit of weight: 40 sessions on weight 2 are as busy as 20 on 1.
	if m, ok := rebalance(p, Rates{}, with(srv("a", 2), 40), with(srv("b", 1), 20)); ok {
		t.Fatalf("weighted: %+v", m)
	}
	// Unequal weights: one session on a weight-1 server does not move to
	// an idle weight-1 server (it would move back at the next look), nor
	// does anything move while the weight-1000 server is far from busy.
	lone, idle, big := with(srv("lone", 1), 1), with(srv("idle", 1), 0), with(srv("big", 1000), 11)
	if m, ok := rebalance(p, Rates{}, lone, idle, big); ok {
		t.Fatalf("weights 1, 1, 1000 with 1, 0, 11 sessions moved: %+v", m)
	}
	lone.conns, idle.conns = 0, 1
	if m, ok := rebalance(p, Rates{}, lone, idle, big); ok {
		t.Fatalf("and back: %+v", m)
	}
	// A configured rate and ratio replace TiProxy's.
	m, ok = rebalance(p, Rates{Conn: 5}, with(srv("a", 1), 100), with(srv("b", 1), 20))
	if !ok || m.PerSecond != 5 {
		t.Fatalf("configured rate: %+v", m)
	}
	if m, ok := rebalance(p, Rates{ConnRatio: 6}, with(srv("a", 1), 100), with(srv("b", 1), 20)); ok {
		t.Fatalf("ratio 6 moved: %+v", m)
	}
	// One server, or none with sessions: nothing to do.
	if _, ok := rebalance(p, Rates{}, with(srv("a", 1), 100)); ok {
		t.Fatal("single server moved")
	}
	// The busiest may not be imbalanced enough against the idlest, but
	// the second is (tiproxy §1.7: [1,0],[0,100],[0,0]).
	hot := with(srv("hot", 1), 1)
	hot.fails, hot.ops = 2, 10 // health mid: neutral, and first in the order
	m, ok = rebalance(p, Rates{}, hot, with(srv("busy", 1), 100), with(srv("idle", 1), 0))
	if !ok || m.From.name != "busy" || m.To.name != "idle" {
		t.Fatalf("second busiest: %+v %v", m, ok)
	}
	// The busiest server's sessions are all pinned: the next busiest is
	// balanced against the idlest instead of nothing moving at all.
	pinned, busy, idle := with(srv("pinned", 1), 60), with(srv("busy", 1), 40), with(srv("idle", 1), 0)
	pinned.pinned = 60
	m, ok = rebalance(p, Rates{}, pinned, busy, idle)
	if !ok || m.From.name != "busy" || m.To.name != "idle" || m.Reason != FactorConn {
		t.Fatalf("pinned busiest: %+v %v", m, ok)
	}
	// One movable session among them is still a source.
	pinned.pinned = 59
	if m, ok = rebalance(p, Rates{}, pinned, busy, idle); !ok || m.From.name != "pinned" {
		t.Fatalf("one movable on the busiest: %+v %v", m, ok)
	}
	// Nothing movable anywhere: nothing to advise.
	pinned.pinned, busy.pinned = 60, 40
	if m, ok = rebalance(p, Rates{}, pinned, busy, idle); ok {
		t.Fatalf("all pinned: %+v", m)
	}
}

func TestRebalanceHealth(t *testing.T) {
	p := placed("resource", false)
	bad := with(srv("bad", 1), 30)
	bad.fails, bad.ops = 5, 10 // abnormal
	m, ok := rebalance(p, Rates{}, bad, with(srv("good", 1), 30))
	if !ok || m.From != bad || m.Reason != FactorHealth || m.PerSecond != 30.0/60 {
		t.Fatalf("abnormal → normal: %+v %v", m, ok)
	}
	// Mid is the hysteresis band: no health move, and the conn factor
	// decides (balanced here).
	bad.fails = 2
	if m, ok := rebalance(p, Rates{}, bad, with(srv("good", 1), 30)); ok {
		t.Fatalf("mid moved: %+v", m)
	}
	// Never toward the less healthy: the idle server is abnormal, the busy
	// one healthy; the opposite order of the health factor vetoes the conn
	// factor.
	bad.fails, bad.conns = 5, 0
	if m, ok := rebalance(p, Rates{}, bad, with(srv("good", 1), 100)); ok {
		t.Fatalf("moved to the unhealthy server: %+v", m)
	}
}

func TestRebalanceStatus(t *testing.T) {
	p := placed("resource", false)
	// Weight 0: healthy but not routable; its sessions leave at the status
	// rate, its sessions over 5 s.
	zero := with(srv("zero", 0), 10)
	m, ok := rebalance(p, Rates{}, zero, with(srv("b", 1), 10))
	if !ok || m.From != zero || m.Reason != FactorStatus || m.PerSecond != 2 {
		t.Fatalf("weight 0: %+v %v", m, ok)
	}
	// A server that is down is the caller's to drain, and never a target.
	down := with(srv("down", 1), 10)
	down.healthy = false
	if m, ok := rebalance(p, Rates{}, down, with(srv("b", 1), 10)); ok {
		t.Fatalf("down server in Rebalance: %+v", m)
	}
	if m, ok := rebalance(p, Rates{}, with(srv("b", 1), 100), with(down, 0)); ok {
		t.Fatalf("moved to a down server: %+v", m)
	}
}

// The seed's examples: label isolation (Order / BI) and location
// (east / west).
func TestRebalanceLabelAndLocation(t *testing.T) {
	p := placed("resource", true)
	other := with(srv("bi", 1), 5)
	other.place = OtherLabel
	m, ok := rebalance(p, Rates{}, other, with(srv("order", 1), 50))
	if !ok || m.From != other || m.Reason != FactorLabel || m.PerSecond != 1 {
		t.Fatalf("label: %+v %v", m, ok)
	}
	// Never onto another business's server, however idle.
	other.conns = 0
	if m, ok := rebalance(p, Rates{}, other, with(srv("order", 1), 500)); ok {
		t.Fatalf("moved across labels: %+v", m)
	}

	loc := placed("location", false)
	west := with(srv("west", 1), 10)
	west.place = Remote
	m, ok = rebalance(loc, Rates{}, west, with(srv("east", 1), 30))
	if !ok || m.From != west || m.Reason != FactorLocation || m.PerSecond != 1 {
		t.Fatalf("location: %+v %v", m, ok)
	}
	m, ok = rebalance(loc, Rates{Location: 3}, west, with(srv("east", 1), 30))
	if !ok || m.PerSecond != 3 {
		t.Fatalf("location rate: %+v", m)
	}
	// Under the resource policy the conn factor comes after location: a
	// busy local server does not send sessions to a remote one.
	res := placed("resource", false)
	west.conns = 0
	if m, ok := rebalance(res, Rates{}, west, with(srv("east", 1), 100)); ok {
		t.Fatalf("moved to the remote zone: %+v", m)
	}
	// The connection policy ignores location.
	conn := placed("connection", false)
	if m, ok := rebalance(conn, Rates{}, west, with(srv("east", 1), 100)); !ok || m.To != west {
		t.Fatalf("connection policy: %+v %v", m, ok)
	}
}

func cpuAt(v float64, conns int, upc float64) *usage.Usage {
	return &usage.Usage{At: time.Now(), CPU: v, CPUAvg: v, CPUConns: conns, PerConn: upc, Mem: math.NaN(), TimeToOOM: math.MaxInt64}
}

// TestCPUFactor: TiProxy's documented examples (tiproxy §1.5 "CPU").
func TestCPUFactor(t *testing.T) {
	p := placed("resource", false)
	hot, cold := with(srv("hot", 1), 30), with(srv("cold", 1), 30)
	hot.use, cold.use = cpuAt(0.95, 30, 0.01), cpuAt(0.10, 30, 0.01)
	// New requests avoid the hot server.
	for range 100 {
		if p.Pick([]*fake{hot, cold}) != cold {
			t.Fatal("a new request went to the server at 95 % CPU")
		}
	}
	// Existing sessions move at 1/usagePerConn/600: 0.167/s at 1 %.
	m, ok := p.(*FactorPolicy[*fake]).Rebalance([]*fake{hot, cold}, sessionsOf, Rates{}, time.Now())
	if !ok || m.From != hot || m.Reason != FactorCPU || math.Abs(m.PerSecond-1.0/0.01/600) > 1e-9 {
		t.Fatalf("95 %% vs 10 %%: %+v %v", m, ok)
	}
	// 80 % vs 60 % is imbalanced, 30 % vs 15 % is not.
	hot.use, cold.use = cpuAt(0.80, 30, 0.01), cpuAt(0.60, 30, 0.01)
	if m, ok := rebalance(p, Rates{}, hot, cold); !ok || m.Reason != FactorCPU {
		t.Fatalf("80 %% vs 60 %%: %+v %v", m, ok)
	}
	hot.use, cold.use = cpuAt(0.30, 30, 0.01), cpuAt(0.15, 30, 0.01)
	if m, ok := rebalance(p, Rates{}, hot, cold); ok {
		t.Fatalf("30 %% vs 15 %% moved: %+v", m)
	}
	// Missing or stale data is neutral: the conn factor decides.
	hot.use = nil
	if m, ok := rebalance(p, Rates{}, hot, cold); ok {
		t.Fatalf("no data moved: %+v", m)
	}
}

func TestMemoryFactor(t *testing.T) {
	p := placed("resource", false)
	risky, fine := with(srv("risky", 1), 30), with(srv("fine", 1), 30)
	risky.use = &usage.Usage{At: time.Now(), CPU: math.NaN(), CPUAvg: math.NaN(), Mem: 0.8, TimeToOOM: math.MaxInt64}
	fine.use = &usage.Usage{At: time.Now(), CPU: math.NaN(), CPUAvg: math.NaN(), Mem: 0.3, TimeToOOM: math.MaxInt64}
	m, ok := rebalance(p, Rates{}, risky, fine)
	if !ok || m.From != risky || m.Reason != FactorMemory || m.PerSecond != 30.0/60 {
		t.Fatalf("OOM risk: %+v %v", m, ok)
	}
	risky.use.TimeToOOM = 20 * time.Second
	if m, _ := rebalance(p, Rates{}, risky, fine); m.PerSecond != 30.0/10 {
		t.Fatalf("OOM within 45 s: %v/s, want 3", m.PerSecond)
	}
	if p.Pick([]*fake{risky, fine}) != fine {
		t.Fatal("a new request went to the server at OOM risk")
	}
	// The rate is the one frozen at the reading (30 connections then, in
	// 10 s): it does not slow as the sessions leave.
	risky.use.MemRate, risky.conns = 3, 4
	if m, _ := rebalance(p, Rates{}, risky, fine); m.PerSecond != 3 {
		t.Fatalf("4 sessions left: %v/s, want the frozen 3", m.PerSecond)
	}
	if m, _ := rebalance(p, Rates{Memory: 7}, risky, fine); m.PerSecond != 7 {
		t.Fatalf("configured: %v/s, want 7", m.PerSecond)
	}
}
