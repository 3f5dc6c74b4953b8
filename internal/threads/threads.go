// Package threads owns GOMAXPROCS once Sluice manages it (mysql-threads,
// mysql-threads_adaptive): the adaptive loop chooses a base count, and admin
// work in progress (an admin-port statement, a cluster import) adds one
// thread above it for its duration, so that the data plane never waits
// behind the admin on a single P. Go preempts a running goroutine only every
// 10 ms, and with one busy P the network poller is rarely looked at, so a
// 0.5 s LOAD on the only P delays every client packet by up to tens of ms;
// ProxySQL runs its admin on a thread of its own.
//
// GOMAXPROCS is a stop-the-world call: the controller makes it only when the
// effective count changes (base changed, first admin job in, last one out),
// never per data-plane query.
package threads

import (
	"runtime"
	"sync"
	"time"
)

// Controller is the one writer of GOMAXPROCS. The zero value is not usable:
// see New. Until Manage is called it changes nothing (GOMAXPROCS from the
// environment, or a cap of 1).
type Controller struct {
	set func(int)

	mu      sync.Mutex
	max     int // the cap (mysql-threads); 0: not managed
	base    int // the adaptive loop's choice
	applied int // what set was last given
	admin   int // admin jobs in progress
	since   time.Time
	busy    time.Duration // wall time with at least one admin job, up to since
}

// New returns a controller that applies its count with set.
func New(set func(int)) *Controller { return &Controller{set: set} }

// Default is the process's controller, applying runtime.GOMAXPROCS.
var Default = New(func(n int) { runtime.GOMAXPROCS(n) })

// Manage hands GOMAXPROCS to the controller with cap limit and base count
// base (clamped to 1..limit). A cap under 2 leaves it unmanaged: with one
// thread allowed there is nothing to add.
func (c *Controller) Manage(limit, base int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit < 2 {
		c.max = 0
		return
	}
	c.max = limit
	c.base = min(max(base, 1), limit)
	c.applyLocked()
}

// SetBase sets the adaptive loop's count (clamped to 1..cap); while admin
// work runs the effective count follows it, one above.
func (c *Controller) SetBase(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max == 0 {
		return
	}
	c.base = min(max(n, 1), c.max)
	c.applyLocked()
}

// Base is the adaptive loop's count, without the admin's extra thread; 0
// when unmanaged.
func (c *Controller) Base() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max == 0 {
		return 0
	}
	return c.base
}

// Admin marks admin work in progress until the returned function is called
// (once). The first one in raises GOMAXPROCS to base+1 when that is within
// the cap; the last one out puts it back to the base of that moment.
func (c *Controller) Admin() (done func()) {
	c.mu.Lock()
	c.admin++
	if c.admin == 1 {
		c.since = time.Now()
		c.applyLocked()
	}
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(c.adminDone) }
}

func (c *Controller) adminDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.admin--
	if c.admin == 0 {
		c.busy += time.Since(c.since)
		c.applyLocked()
	}
}

// AdminBusy is the total wall time during which admin work ran, for the
// adaptive loop to leave its CPU out of the data plane's load.
func (c *Controller) AdminBusy() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin > 0 {
		return c.busy + time.Since(c.since)
	}
	return c.busy
}

// want is the effective count: the base, plus one while admin work runs
// and the cap allows it.
func (c *Controller) want() int {
	if c.admin > 0 && c.base < c.max {
		return c.base + 1
	}
	return c.base
}

func (c *Controller) applyLocked() {
	if c.max == 0 {
		return
	}
	if n := c.want(); n != c.applied {
		c.set(n)
		c.applied = n
	}
}
