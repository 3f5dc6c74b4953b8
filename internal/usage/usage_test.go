package usage

import (
	"math"
	"testing"
	"time"
)

func TestCPUFromCounter(t *testing.T) {
	var h History
	t0 := time.Unix(1000, 0)
	// 4 CPUs, 2 CPU-seconds a second: 50 %.
	for i := range 6 {
		h.Add(Sample{At: t0.Add(time.Duration(i) * 5 * time.Second), CPUSeconds: float64(i) * 10, CPUs: 4, Mem: math.NaN()})
	}
	u := h.Usage(10, 0.01)
	if math.Abs(u.CPU-0.5) > 1e-9 || math.Abs(u.CPUAvg-0.5) > 1e-9 {
		t.Fatalf("cpu %v avg %v, want 0.5", u.CPU, u.CPUAvg)
	}
	now := u.At
	if l, a, ok := u.CPUNow(20, now); !ok || math.Abs(l-0.6) > 1e-9 || math.Abs(a-0.6) > 1e-9 {
		t.Fatalf("10 more connections at 1 %% each: %v %v %v", l, a, ok)
	}
	if _, _, ok := u.CPUNow(10, now.Add(3*time.Minute)); ok {
		t.Fatal("stale CPU data used")
	}
	// A restart (the counter goes back) drops the CPU history.
	h.Add(Sample{At: t0.Add(35 * time.Second), CPUSeconds: 1, CPUs: 4, Mem: math.NaN()})
	if u := h.Usage(0, 0.01); !math.IsNaN(u.CPU) {
		t.Fatalf("after a restart: %v", u.CPU)
	}
}

func TestMemRisk(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steady := []Sample{{At: t0, Mem: 0.5, CPUSeconds: math.NaN()}, {At: t0.Add(20 * time.Second), Mem: 0.5, CPUSeconds: math.NaN()}}
	if u := (&History{samples: steady}).Usage(0, 0); u.MemRisk(u.At) != 0 {
		t.Fatalf("steady 50 %%: risk %d", u.MemRisk(u.At))
	}
	high := []Sample{{At: t0, Mem: 0.8, CPUSeconds: math.NaN()}}
	if u := (&History{samples: high}).Usage(0, 0); u.MemRisk(u.At) != 2 || u.MemRisk(u.At.Add(2*time.Minute)) != 0 {
		t.Fatal("80 % is risk 2, and stale data is neutral")
	}
	// 0.5 → 0.7 in 20 s: OOM (0.9) in 20·0.2/0.2 = 20 s, scaled by 0.6/0.7: 17 s → risk 2.
	growing := []Sample{{At: t0, Mem: 0.5, CPUSeconds: math.NaN()}, {At: t0.Add(20 * time.Second), Mem: 0.7, CPUSeconds: math.NaN()}}
	u := (&History{samples: growing}).Usage(0, 0)
	if u.TimeToOOM > 20*time.Second || u.MemRisk(u.At) != 2 {
		t.Fatalf("growing: time to OOM %v, risk %d", u.TimeToOOM, u.MemRisk(u.At))
	}
	mid := []Sample{{At: t0, Mem: 0.65, CPUSeconds: math.NaN()}}
	if u := (&History{samples: mid}).Usage(0, 0); u.MemRisk(u.At) != 1 {
		t.Fatal("65 % is risk 1")
	}
}

func TestPerConn(t *testing.T) {
	if upc := PerConn([]float64{0.5, 0.3}, []int{40, 40}, 0); math.Abs(upc-0.01) > 1e-9 {
		t.Fatalf("0.8 over 80 connections: %v", upc)
	}
	if upc := PerConn([]float64{0.01}, []int{1000}, 0.005); upc != 0.005 {
		t.Fatalf("start-up keeps the previous value: %v", upc)
	}
	if upc := PerConn(nil, nil, 0); upc != MinCPUPerConn {
		t.Fatalf("no data: %v", upc)
	}
}

// TestMemRateFrozen: TiProxy's memory balance count is the connections at
// the reading over 60 s (10 s when OOM is under 45 s away), and a later
// reading with fewer connections keeps the larger rate while the risk
// lasts, so every session leaves within the minute.
func TestMemRateFrozen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, mem float64, conns int, toOOM time.Duration) *Usage {
		return &Usage{At: t0.Add(d), CPU: math.NaN(), CPUAvg: math.NaN(), CPUConns: conns, Mem: mem, TimeToOOM: toOOM}
	}
	for _, c := range []struct {
		name string
		prev *Usage
		u    *Usage
		want float64
	}{
		{"risk 2 by usage", nil, at(0, 0.8, 30, math.MaxInt64), 0.5},
		{"OOM within 45 s", nil, at(0, 0.7, 30, 20*time.Second), 3},
		{"risk 1 does not move", nil, at(0, 0.65, 30, math.MaxInt64), 0},
		{"fewer connections keep the rate", at(0, 0.8, 30, math.MaxInt64), at(5*time.Second, 0.8, 12, math.MaxInt64), 0.5},
		{"more connections raise it", at(0, 0.8, 30, math.MaxInt64), at(5*time.Second, 0.8, 60, math.MaxInt64), 1},
		{"a risk that ended starts over", at(0, 0.5, 30, math.MaxInt64), at(5*time.Second, 0.8, 12, math.MaxInt64), 0.2},
		{"a stale reading starts over", at(0, 0.8, 30, math.MaxInt64), at(2*time.Minute, 0.8, 12, math.MaxInt64), 0.2},
	} {
		if c.prev != nil {
			c.prev.KeepMemRate(nil)
		}
		c.u.KeepMemRate(c.prev)
		if math.Abs(c.u.MemRate-c.want) > 1e-9 {
			t.Errorf("%s: %v/s, want %v", c.name, c.u.MemRate, c.want)
		}
	}
}
