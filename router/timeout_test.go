package router

import (
	"math"
	"testing"
)

// TestWatchdogDue pins the contract between sessions and the watchdog: a
// time earlier than the next scan moves the scan and wakes the watchdog
// once; a later one costs nothing; during a scan (next = MaxInt64) every
// report counts.
func TestWatchdogDue(t *testing.T) {
	w := &watchdog{wake: make(chan struct{}, 1)}
	woken := func() bool {
		select {
		case <-w.wake:
			return true
		default:
			return false
		}
	}
	w.next.Store(1000)
	w.due(2000)
	if w.next.Load() != 1000 || woken() {
		t.Fatalf("a later time moved the scan (%d) or woke the watchdog", w.next.Load())
	}
	w.due(500)
	if w.next.Load() != 500 || !woken() {
		t.Fatalf("an earlier time: next %d, want 500, and a wake-up", w.next.Load())
	}
	w.due(400)
	w.due(300) // the wake-up is pending already: no block, one signal
	if w.next.Load() != 300 || !woken() || woken() {
		t.Fatalf("two earlier times: next %d, want 300, and one wake-up", w.next.Load())
	}
	w.next.Store(math.MaxInt64) // a scan is running
	w.due(1 << 62)
	if w.next.Load() != 1<<62 || !woken() {
		t.Fatalf("a time reported during a scan was lost: next %d", w.next.Load())
	}
	if w.lower(1<<62 + 1) {
		t.Fatal("the scan's own result overrode an earlier report")
	}
}
