// Package ratelog bounds what peers can make the proxy log: lines they
// cause at will (failed logins) get through a few per second, the next one
// saying how many were held back, and their text is clipped.
package ratelog

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Limiter lets at most PerSecond events a second through. The zero value
// lets 10 through. Safe for concurrent use.
type Limiter struct {
	PerSecond int

	mu         sync.Mutex
	sec        int64
	n          int
	suppressed uint64
}

// Allow reports whether an event at now may be logged, and how many were
// held back since the last one that was (to be logged with it).
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed uint64) {
	per := l.PerSecond
	if per <= 0 {
		per = 10
	}
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.sec {
		l.sec, l.n = sec, 0
	}
	if l.n >= per {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Event is Allow for a log line: the event level() starts when l lets one
// through at now, carrying heldKey with the count held back since the last
// one when there were any; nil otherwise. zerolog's methods do nothing on a
// nil event, so callers chain fields and Msg either way.
func (l *Limiter) Event(now time.Time, level func() *zerolog.Event, heldKey string) *zerolog.Event {
	ok, held := l.Allow(now)
	if !ok {
		return nil
	}
	ev := level()
	if held > 0 {
		ev = ev.Uint64(heldKey, held)
	}
	return ev
}

// Clip shortens s, a peer's text bound for a log line or an error message,
// to at most n bytes (cut on a UTF-8 boundary), marking the cut with "…".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
