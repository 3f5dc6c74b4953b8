package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScheduler: the scheduler table as ProxySQL runs it. An active job
// runs every interval_ms with argv = filename, arg1… up to the first NULL;
// LOAD with active=0 stops it; a run still going when the next is due is
// skipped (Sluice's bound), so runs never overlap; a job that cannot be
// executed is logged; the table survives SAVE and a restart.
func TestScheduler(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "runs")
	job := filepath.Join(dir, "job.sh")
	// Each run appends its arguments; a run that finds the lock of another
	// one still there records an overlap.
	script := fmt.Sprintf(`#!/bin/sh
if ! mkdir %[1]s/lock 2>/dev/null; then echo overlap >> %[2]s; exit 1; fi
echo "run $# $1 $2 $3" >> %[2]s
[ "$1" = slow ] && sleep 0.5
rmdir %[1]s/lock
`, dir, out)
	if err := os.WriteFile(job, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	lines := func() []string {
		b, _ := os.ReadFile(out)
		var l []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				l = append(l, strings.ReplaceAll(line, " ", "_"))
			}
		}
		return l
	}
	waitRuns := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			l := lines()
			if len(l) >= n {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d runs after 10 s, want %d: %q", len(l), n, l)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	s := startFresh(t, "")
	// arg3 is NULL: argv stops there, and arg4 is not passed.
	admin(t, s, fmt.Sprintf(`INSERT INTO scheduler (id, active, interval_ms, filename, arg1, arg2, arg4, comment)
		VALUES (1, 1, 200, '%s', 'fast', 'two words', 'never', 'test job');
		LOAD SCHEDULER TO RUNTIME`, job))
	if w := admin(t, s, "LOAD SCHEDULER TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("LOAD SCHEDULER TO RUNTIME warned: %q", w)
	}
	for _, l := range waitRuns(3) {
		if l != "run_2_fast_two_words" {
			t.Fatalf("a run's arguments: %q, want run_2_fast_two_words", l)
		}
	}

	// Inactive: no more runs.
	admin(t, s, "UPDATE scheduler SET active=0; LOAD SCHEDULER TO RUNTIME")
	// A run started before the LOAD may still write its line: wait until
	// the count holds for 300 ms (at most 3 s), then watch it for a second.
	for prev, i := len(lines()), 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		n := len(lines())
		if n == prev {
			break
		}
		prev = n
	}
	before := len(lines())
	time.Sleep(time.Second)
	if after := len(lines()); after != before {
		t.Fatalf("%d runs after the job was made inactive", after-before)
	}

	// A job slower than its interval: runs are skipped, never overlap.
	_ = os.Remove(out)
	admin(t, s, "UPDATE scheduler SET active=1, interval_ms=100, arg1='slow'; LOAD SCHEDULER TO RUNTIME")
	got := waitRuns(3)
	for _, l := range got {
		if l == "overlap" {
			t.Fatalf("runs overlapped: %q", got)
		}
	}
	if !strings.Contains(s.Output(), "previous run of the job has not ended") {
		t.Fatal("a skipped run was not logged")
	}

	// A filename that cannot be executed is logged with the job's id.
	admin(t, s, "INSERT INTO scheduler (id, interval_ms, filename) VALUES (2, 100, '/nonexistent/job'); LOAD SCHEDULER TO RUNTIME")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Output(), "Scheduler: Failed to run") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the job that cannot run:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Saved, it runs again after a restart.
	admin(t, s, "DELETE FROM scheduler WHERE id=2; UPDATE scheduler SET arg1='again'; SAVE SCHEDULER TO DISK")
	s.Restart()
	// The stop sent SIGTERM to a slow run that may have held the lock.
	_ = os.Remove(filepath.Join(dir, "lock"))
	if rt := admin(t, s, "SELECT id, active, interval_ms, arg1 FROM runtime_scheduler"); strings.TrimSpace(rt) != "1\t1\t100\tagain" {
		t.Fatalf("runtime_scheduler after a restart: %q", rt)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(lines(), " "), "run_2_again_two_words") {
		if time.Now().After(deadline) {
			t.Fatalf("the saved job did not run after a restart: %q", lines())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
