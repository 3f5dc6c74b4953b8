package main

import (
	"testing"
	"time"
)

func TestThreadsDecision(t *testing.T) {
	for _, c := range []struct {
		name     string
		used     float64
		idle     float64
		cur, max int
		want     int
	}{
		{"idle proxy on an idle machine: one thread", 0.05, 1.9, 2, 2, -1},
		{"at one thread already", 0.05, 1.9, 1, 2, 0},
		{"busy proxy, saturated machine (the shared 2-core sysbench box)", 0.72, 0.05, 2, 2, -1},
		{"the same at one thread: stays", 0.70, 0.11, 1, 2, 0},
		{"one thread full, machine has idle CPU: grow", 0.95, 0.9, 1, 2, +1},
		{"one thread full, no idle CPU to gain: stay", 0.95, 0.1, 1, 2, 0},
		{"at the cap", 1.9, 0.1, 2, 2, 0},
		{"two threads needed on a dedicated box", 1.3, 0.6, 2, 2, 0},
		{"two threads needed on a saturated box", 1.3, 0.0, 2, 2, 0},
		{"four-CPU cap, three filled, no idle", 2.5, 0.1, 4, 4, -1},
		{"four-CPU cap at three, three filled: stay", 2.5, 0.1, 3, 4, 0},
		{"four-CPU cap at three, full, machine idle: grow", 2.8, 1.0, 3, 4, +1},
	} {
		if got := threadsDecision(c.used, c.idle, c.cur, c.max); got != c.want {
			t.Errorf("%s: threadsDecision(used %.2f, idle %.2f, %d of %d) = %+d, want %+d", c.name, c.used, c.idle, c.cur, c.max, got, c.want)
		}
	}
}

func TestCPUSampler(t *testing.T) {
	var s cpuSampler
	if _, _, ok := s.sample(); ok {
		t.Fatal("the first sample has nothing to compare with")
	}
	// Burn CPU for 300 ms on this goroutine: the process used about one CPU.
	end := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	used, idle, ok := s.sample()
	if !ok {
		t.Skip("no /proc/stat here")
	}
	if used < 0.3 || used > float64(s.cpus)+0.5 {
		t.Errorf("used %.2f CPUs while spinning one goroutine", used)
	}
	if idle < 0 || idle > float64(s.cpus)+0.01 {
		t.Errorf("idle %.2f CPUs of %d", idle, s.cpus)
	}
	t.Logf("used %.2f CPUs, machine idle %.2f of %d", used, idle, s.cpus)
}
