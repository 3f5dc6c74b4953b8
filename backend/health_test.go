package backend

import (
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestErrorWindow checks the health factor's input: failures and operations
// over the last two minutes, in 10-second buckets marked by the readers.
func TestErrorWindow(t *testing.T) {
	s := newServer(&config.Server{Hostname: "h", Port: 1, Weight: 1, MaxConnections: 10}, nil)
	t0 := time.Unix(1_700_000_000, 0) // a bucket boundary
	if f, n := s.ErrorWindow(t0); f != 0 || n != 0 {
		t.Fatalf("fresh server: %d/%d", f, n)
	}
	for range 8 {
		s.CountQuery(time.Millisecond)
	}
	s.CountError()
	s.CountError()
	if f, n := s.ErrorWindow(t0.Add(5 * time.Second)); f != 2 || n != 10 {
		t.Fatalf("same bucket: %d/%d, want 2/10", f, n)
	}
	// A minute later (bucket marked on the way), more queries: the window
	// still starts at t0.
	if f, n := s.ErrorWindow(t0.Add(60 * time.Second)); f != 2 || n != 10 {
		t.Fatalf("a minute later: %d/%d", f, n)
	}
	for range 10 {
		s.CountQuery(0)
	}
	if f, n := s.ErrorWindow(t0.Add(115 * time.Second)); f != 2 || n != 20 {
		t.Fatalf("within two minutes: %d/%d, want 2/20", f, n)
	}
	// Past two minutes the t0 bucket has aged out: the window starts at
	// the mark taken at t0+60s, after the errors.
	if f, n := s.ErrorWindow(t0.Add(125 * time.Second)); f != 0 || n != 10 {
		t.Fatalf("after two minutes: %d/%d, want 0/10", f, n)
	}
	// Nobody read for ten minutes: the window starts afresh.
	s.CountError()
	if f, n := s.ErrorWindow(t0.Add(10 * time.Minute)); f != 0 || n != 0 {
		t.Fatalf("after a long gap: %d/%d", f, n)
	}
	s.CountError()
	if f, n := s.ErrorWindow(t0.Add(10*time.Minute + time.Second)); f != 1 || n != 1 {
		t.Fatalf("new window: %d/%d, want 1/1", f, n)
	}
}
