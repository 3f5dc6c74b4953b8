package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/threads"
)

// Adaptive worker threads (mysql-threads_adaptive). mysql-threads caps the
// threads that run Go code at once (GOMAXPROCS); within that cap Sluice runs
// as many as its load keeps busy. Fewer threads than the cap matter on a
// machine the proxy shares with busy processes (an application host, a
// database host): there a second thread adds no CPU the proxy can get, but it
// splits the sessions into two run queues, so a session queued behind one
// that never parks waits for it (docs/benchmarks.md measures a 32-thread
// sysbench p95 of 1.7–2.0× HAProxy's with two threads and 1.0–1.15× with
// one, at the same QPS), and every idle thread is woken and put back to sleep
// as work comes and goes.

const (
	adaptTick   = time.Second
	adaptStreak = 3 // samples in a row that agree before the count changes
)

// threadsDecision is the adaptive rule, kept pure for its test. used is the
// CPU the process spent in the last sample, in CPUs; idle is the machine's
// idle CPU in that sample, in CPUs; cur the threads now, max the cap.
// It returns +1, -1 or 0.
//   - One more thread when the current ones are nearly full (85 %) and the
//     machine has half a CPU idle to give it.
//   - One fewer when the remaining threads could carry the load with room
//     to spare (under half full), or when the machine has no idle CPU
//     (under a quarter of one) and they could still carry it (under 90 %).
func threadsDecision(used, idle float64, cur, max int) int {
	switch {
	case cur < max && used >= 0.85*float64(cur) && idle >= 0.5:
		return +1
	case cur > 1 && used < 0.5*float64(cur-1):
		return -1
	case cur > 1 && used < 0.9*float64(cur-1) && idle < 0.25:
		return -1
	}
	return 0
}

// cpuSampler reads the process's CPU time and the machine's idle time.
type cpuSampler struct {
	wall        time.Time
	proc        time.Duration
	idle, total uint64 // /proc/stat jiffies
	cpus        int    // CPUs /proc/stat lists
	haveHost    bool
	statBuf     []byte
}

func procCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostCPU returns the idle and total jiffies of /proc/stat's "cpu" line and
// the number of "cpuN" lines.
func (s *cpuSampler) hostCPU() (idle, total uint64, cpus int, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("cpu")) {
			break
		}
		if len(line) > 3 && line[3] != ' ' {
			cpus++
			continue
		}
		for i, fld := range bytes.Fields(line[3:]) {
			if i >= 8 { // guest time is already in user
				break
			}
			n, err := strconv.ParseUint(string(fld), 10, 64)
			if err != nil {
				return 0, 0, 0, false
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		ok = true
	}
	return idle, total, cpus, ok && cpus > 0
}

// sample returns the CPUs the process used and the machine left idle since
// the previous call; ok is false on the first call and without /proc/stat.
func (s *cpuSampler) sample() (used, idle float64, ok bool) {
	now, proc := time.Now(), procCPU()
	hi, ht, cpus, hok := s.hostCPU()
	prevWall, prevProc, prevIdle, prevTotal, prevOK := s.wall, s.proc, s.idle, s.total, s.haveHost
	s.wall, s.proc, s.idle, s.total, s.cpus, s.haveHost = now, proc, hi, ht, cpus, hok
	if prevWall.IsZero() || !hok || !prevOK || ht <= prevTotal {
		return 0, 0, false
	}
	wall := now.Sub(prevWall)
	if wall <= 0 {
		return 0, 0, false
	}
	used = float64(proc-prevProc) / float64(wall)
	idle = float64(hi-prevIdle) / float64(ht-prevTotal) * float64(cpus)
	return used, idle, true
}

// adaptThreads runs until ctx ends, moving the base thread count of ctl
// between 1 and max while enabled() says so; disabled, it puts the cap back.
// It reads and sets ctl's base, never GOMAXPROCS itself: the extra thread
// admin work adds while it runs (threads.Controller.Admin) is neither
// counted as the current count nor undone here. A sample in which the admin
// was busy for more than a tenth of the tick is left out (the streak neither
// grows nor resets): the CPU of a LOAD or of a large stats SELECT is not
// data-plane load, and runs on the thread the admin added.
func adaptThreads(ctx context.Context, log zerolog.Logger, ctl *threads.Controller, max int, enabled func() bool) {
	if max <= 1 {
		return
	}
	t := time.NewTicker(adaptTick)
	defer t.Stop()
	var s cpuSampler
	streak := 0
	adminBusy := ctl.AdminBusy()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := ctl.Base()
		if !enabled() {
			if cur != max {
				ctl.SetBase(max)
				log.Info().Int("gomaxprocs", max).Msg("worker threads: adaptive off; back to mysql-threads")
			}
			streak = 0
			continue
		}
		used, idle, ok := s.sample()
		prevBusy := adminBusy
		adminBusy = ctl.AdminBusy()
		if !ok || adminBusy-prevBusy > adaptTick/10 {
			continue
		}
		d := threadsDecision(used, idle, cur, max)
		switch {
		case d == 0:
			streak = 0
			continue
		case (d > 0) != (streak > 0):
			streak = d
		default:
			streak += d
		}
		if streak >= adaptStreak || streak <= -adaptStreak {
			ctl.SetBase(cur + d)
			log.Debug().Int("gomaxprocs", cur+d).Float64("cpu_used", used).Float64("cpu_idle", idle).Msg("worker threads: adapted")
			streak = 0
		}
	}
}
