package backend

import (
	"sync"
	"time"
)

// throttle counts the new connections of each hostgroup within the current
// wall-clock second (ProxySQL's new_connections_now per hostgroup), for
// mysql-throttle_connections_per_sec_to_hostgroup. It is asked only when a
// pool is about to open a connection, never on the path that reuses one.
type throttle struct {
	mu  sync.Mutex
	sec map[int]window
}

type window struct {
	sec int64 // Unix second
	n   int   // connections opened in it
}

// allow takes one new connection for hg within limit per second. When the
// second is used up it returns false and how long until the next.
func (t *throttle) allow(hg, limit int, now time.Time) (bool, time.Duration) {
	if limit <= 0 || limit >= 1000000 {
		return true, 0 // ProxySQL's default: no throttling
	}
	sec := now.Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sec == nil {
		t.sec = make(map[int]window)
	}
	w := t.sec[hg]
	if w.sec != sec {
		w = window{sec: sec}
	}
	if w.n >= limit {
		return false, time.Unix(sec+1, 0).Sub(now)
	}
	w.n++
	t.sec[hg] = w
	return true, 0
}
