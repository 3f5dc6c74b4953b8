package e2e

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdaptiveThreads: with mysql-threads_adaptive (the default) an idle
// Sluice runs one worker thread (MySQL_Thread_Workers), turning it off
// brings back mysql-threads' count at once, and turning it on again lets the
// count fall back.
func TestAdaptiveThreads(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: mysql-threads caps the workers at 1, nothing to adapt")
	}
	s := startFresh(t, "")
	workers := func() int {
		out := strings.TrimSpace(admin(t, s, `SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='MySQL_Thread_Workers'`))
		n, err := strconv.Atoi(out)
		if err != nil {
			t.Fatalf("MySQL_Thread_Workers: %q", out)
		}
		return n
	}
	waitWorkers := func(stage string, want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := workers()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: MySQL_Thread_Workers %d after %v, want %d", stage, got, within, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	max := min(4, runtime.NumCPU()) // mysql-threads' default, 4, capped by the CPUs
	if v := strings.TrimSpace(admin(t, s, `SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-threads_adaptive'`)); v != "true" {
		t.Fatalf("mysql-threads_adaptive = %q, want the default true", v)
	}
	// Idle: a sample a second, three in a row before each step down.
	waitWorkers("idle, adaptive", 1, time.Duration(max)*4*time.Second+6*time.Second)

	admin(t, s, `SET mysql-threads_adaptive='false'; LOAD MYSQL VARIABLES TO RUNTIME`)
	waitWorkers("adaptive off", max, 5*time.Second)
	time.Sleep(4 * time.Second) // off stays off
	if got := workers(); got != max {
		t.Fatalf("adaptive off: MySQL_Thread_Workers moved to %d", got)
	}

	admin(t, s, `SET mysql-threads_adaptive='true'; LOAD MYSQL VARIABLES TO RUNTIME`)
	waitWorkers("adaptive on again", 1, time.Duration(max)*4*time.Second+6*time.Second)
}
