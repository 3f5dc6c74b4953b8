package threads

import (
	"slices"
	"sync"
	"testing"
)

// recorder stands in for runtime.GOMAXPROCS.
type recorder struct {
	mu   sync.Mutex
	sets []int
}

func (r *recorder) set(n int) {
	r.mu.Lock()
	r.sets = append(r.sets, n)
	r.mu.Unlock()
}

func (r *recorder) take() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sets
	r.sets = nil
	return s
}

func expect(t *testing.T, r *recorder, what string, want ...int) {
	t.Helper()
	if got := r.take(); !slices.Equal(got, want) {
		t.Errorf("%s: GOMAXPROCS set to %v, want %v", what, got, want)
	}
}

func TestAdminBoost(t *testing.T) {
	var r recorder
	c := New(r.set)
	c.Manage(4, 1)
	expect(t, &r, "manage", 1)

	done := c.Admin()
	expect(t, &r, "first admin job in", 2)
	if c.Base() != 1 {
		t.Errorf("Base() = %d while boosted, want the adaptive count 1", c.Base())
	}
	done2 := c.Admin()
	expect(t, &r, "second admin job in") // no second thread, no call
	done()
	done() // a second call of the same done is a no-op
	expect(t, &r, "one of two out")
	done2()
	expect(t, &r, "last out", 1)
}

func TestAdaptiveWhileBoosted(t *testing.T) {
	var r recorder
	c := New(r.set)
	c.Manage(3, 1)
	r.take()

	done := c.Admin()
	expect(t, &r, "boost", 2)
	c.SetBase(2) // the adaptive loop grows meanwhile
	expect(t, &r, "base 2 while boosted", 3)
	c.SetBase(3) // at the cap: no room for the admin's extra one
	expect(t, &r, "base at the cap while boosted")
	c.SetBase(2)
	expect(t, &r, "back under the cap while boosted")
	done()
	expect(t, &r, "last out: the base of now", 2)

	done = c.Admin()
	expect(t, &r, "boost again", 3)
	c.SetBase(1) // the adaptive loop shrinks meanwhile
	expect(t, &r, "base 1 while boosted", 2)
	done()
	expect(t, &r, "last out after the shrink", 1)
	c.SetBase(1)
	expect(t, &r, "same base: no call")
	c.SetBase(9)
	expect(t, &r, "clamped to the cap", 3)
	c.SetBase(0)
	expect(t, &r, "clamped to 1", 1)
}

func TestAtTheCapOrUnmanaged(t *testing.T) {
	var r recorder
	c := New(r.set)
	done := c.Admin() // not managed yet (GOMAXPROCS from the environment)
	done()
	c.SetBase(2)
	expect(t, &r, "unmanaged")
	if c.Base() != 0 {
		t.Errorf("Base() = %d unmanaged, want 0", c.Base())
	}

	c.Manage(1, 1) // mysql-threads=1
	c.Admin()()
	expect(t, &r, "cap 1")

	c.Manage(2, 2) // adaptive off, or grown to the cap
	expect(t, &r, "cap 2", 2)
	c.Admin()()
	expect(t, &r, "at the cap")
}

func TestConcurrentAdmin(t *testing.T) {
	var r recorder
	c := New(r.set)
	c.Manage(2, 1)
	r.take()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				done := c.Admin()
				if (i+j)%7 == 0 {
					c.SetBase(1 + j%2)
				}
				_ = c.AdminBusy()
				done()
			}
		}()
	}
	wg.Wait()
	c.SetBase(1)
	sets := r.take()
	// Every call changed the count, and it ends on the base with no
	// admin job left.
	for i, n := range sets {
		if n < 1 || n > 2 || i > 0 && n == sets[i-1] {
			t.Fatalf("GOMAXPROCS calls %v: out of range or repeated", sets)
		}
	}
	if c.want() != 1 || c.admin != 0 {
		t.Errorf("after the jobs: want %d with %d admin jobs, want 1 and 0", c.want(), c.admin)
	}
	if len(sets) > 0 && sets[len(sets)-1] != 1 {
		t.Errorf("last GOMAXPROCS %d, want the base 1", sets[len(sets)-1])
	}
}
