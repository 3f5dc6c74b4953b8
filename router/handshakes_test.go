package router

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestHandshakesEviction pins who is closed when more handshakes are
// pending than the limit: only those pending for handshakeGrace, oldest
// first, unless a burst of young ones passes handshakeHardCap times the
// limit.
func TestHandshakesEviction(t *testing.T) {
	const limit = 3
	var h handshakes
	t0 := time.Now()
	type peer struct {
		s      *session
		remote net.Conn
	}
	newPeer := func() peer {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return peer{&session{nc: a}, b}
	}
	closed := func(p peer) bool {
		_ = p.remote.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := p.remote.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	// Young sockets over the limit stay, up to the hard cap.
	var young []peer
	for range limit * handshakeHardCap {
		p := newPeer()
		young = append(young, p)
		h.enterAt(p.s, limit, t0)
	}
	if n, ev := h.pending.Len(), h.evicted; n != limit*handshakeHardCap || ev != 0 {
		t.Fatalf("a burst of %d young handshakes: %d pending, %d closed; want all kept", limit*handshakeHardCap, n, ev)
	}
	// One more young one passes the hard cap: the oldest goes.
	p := newPeer()
	h.enterAt(p.s, limit, t0)
	if !closed(young[0]) || closed(young[1]) || h.evicted != 1 {
		t.Fatalf("past the hard cap: oldest closed %v, next closed %v, %d closed; want only the oldest", closed(young[0]), closed(young[1]), h.evicted)
	}
	// After the grace, the next arrival closes every aged one over the
	// limit at once, oldest first, and leaves the limit pending.
	later := t0.Add(handshakeGrace)
	fresh := newPeer()
	el := h.enterAt(fresh.s, limit, later)
	if n := h.pending.Len(); n != limit {
		t.Fatalf("after the grace: %d pending, want %d", n, limit)
	}
	for i, p := range young[1:] {
		if want := i < len(young)-1-(limit-2); closed(p) != want {
			t.Errorf("young[%d]: closed %v, want %v", i+1, !want, want)
		}
	}
	if closed(fresh) {
		t.Fatal("the newest handshake was closed")
	}
	h.leave(el)
	if n := h.pending.Len(); n != limit-1 {
		t.Fatalf("after leave: %d pending, want %d", n, limit-1)
	}
}
