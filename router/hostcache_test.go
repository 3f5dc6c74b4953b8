package router

import (
	"testing"
	"time"
)

func TestHostCache(t *testing.T) {
	var c hostCache
	now := time.Unix(5000, 0)
	// Disabled unless both variables are set.
	c.failed("10.0.0.1", 0, 3, now)
	c.failed("10.0.0.1", 3, 0, now)
	if n := len(c.snapshot(false)); n != 0 {
		t.Fatalf("%d entries while disabled", n)
	}
	for i := 0; i < 3; i++ {
		if c.blocked("10.0.0.1", 3, 3) {
			t.Fatalf("blocked after %d failures of 3", i)
		}
		c.failed("10.0.0.1", 3, 3, now.Add(time.Duration(i)*time.Second))
	}
	if !c.blocked("10.0.0.1", 3, 3) {
		t.Fatal("not blocked after 3 failures")
	}
	if c.blocked("10.0.0.1", 3, 4) {
		t.Fatal("blocked under a raised limit")
	}
	// A full cache evicts the least recently updated address.
	c.failed("10.0.0.2", 3, 3, now.Add(10*time.Second))
	c.failed("10.0.0.3", 3, 3, now.Add(11*time.Second))
	c.failed("10.0.0.4", 3, 3, now.Add(12*time.Second))
	got := c.snapshot(false)
	if len(got) != 3 || got[0].Address != "10.0.0.2" || got[2].Address != "10.0.0.4" {
		t.Fatalf("after eviction: %+v", got)
	}
	// A smaller size applies at the next failure.
	c.failed("10.0.0.4", 1, 3, now.Add(13*time.Second))
	if got := c.snapshot(false); len(got) != 1 || got[0].Address != "10.0.0.4" || got[0].ErrorCount != 2 {
		t.Fatalf("after shrinking to 1: %+v", got)
	}
	c.succeeded("10.0.0.4")
	if got := c.snapshot(true); len(got) != 0 {
		t.Fatalf("after a successful login: %+v", got)
	}
}
