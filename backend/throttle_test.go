package backend

import (
	"testing"
	"time"
)

func TestThrottleWindow(t *testing.T) {
	var th throttle
	base := time.Unix(1000, 200_000_000) // 0.2 s into a second
	for i := 0; i < 3; i++ {
		if ok, _ := th.allow(1, 3, base); !ok {
			t.Fatalf("connection %d of 3 refused", i+1)
		}
	}
	ok, wait := th.allow(1, 3, base)
	if ok || wait != 800*time.Millisecond {
		t.Fatalf("the 4th in the same second: %v, wait %v; want refused, 800ms", ok, wait)
	}
	if ok, _ := th.allow(2, 3, base); !ok {
		t.Fatal("another hostgroup shares the count")
	}
	if ok, _ := th.allow(1, 3, base.Add(800*time.Millisecond)); !ok {
		t.Fatal("refused in the next second")
	}
	for i := 0; i < 10; i++ {
		if ok, _ := th.allow(3, 1000000, base); !ok {
			t.Fatal("the default (1000000) throttled")
		}
	}
	o := DefaultOptions()
	o.ThrottlePerSec = 5
	o.Hostgroups = map[int]HostgroupOptions{7: {ThrottlePerSec: 2}}
	if o.throttleFor(1) != 5 || o.throttleFor(7) != 2 {
		t.Fatalf("throttleFor: %d, %d", o.throttleFor(1), o.throttleFor(7))
	}
}
