package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	now := time.Unix(100, 0)
	allowed := 0
	for range 1000 {
		if ok, _ := l.Allow(now); ok {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("%d of 1000 allowed in one second, want 10", allowed)
	}
	ok, sup := l.Allow(now.Add(time.Second))
	if !ok || sup != 990 {
		t.Fatalf("next second: %v, %d suppressed, want true, 990", ok, sup)
	}
	if _, sup := l.Allow(now.Add(time.Second)); sup != 0 {
		t.Fatalf("suppressed reported twice: %d", sup)
	}
}

func TestClip(t *testing.T) {
	if got := Clip("héllo", 2); got != "h…" {
		t.Fatalf("%q", got) // the cut never splits é
	}
	if got := Clip("abc", 3); got != "abc" {
		t.Fatalf("%q", got)
	}
}
