package router

import (
	"container/list"
	"sync"
)

// handshakes are the client connections that have not logged in yet. They
// do not count against mysql-max_connections — a flood of sockets that
// never send a handshake response must not lock real clients out — but
// they are bounded all the same: past the limit (mysql-max_connections
// again, a handshake taking milliseconds for a real client), the oldest
// pending handshake is closed to make room. A real client completes its
// login long before a flood can push it out; sockets that sit silent are
// the oldest, and go first. Each also ends at mysql-connect_timeout_client.
type handshakes struct {
	mu      sync.Mutex
	pending list.List // of *session, oldest first
	evicted uint64
}

// enter registers s as logging in, closing the oldest pending handshake
// when more than limit are pending.
func (h *handshakes) enter(s *session, limit int) *list.Element {
	h.mu.Lock()
	el := h.pending.PushBack(s)
	var victim *session
	if limit > 0 && h.pending.Len() > limit {
		front := h.pending.Front()
		victim = h.pending.Remove(front).(*session)
		h.evicted++
	}
	h.mu.Unlock()
	if victim != nil {
		victim.nc.Close() // its handshake read fails; leave finds it gone
	}
	return el
}

// leave ends s's handshake.
func (h *handshakes) leave(el *list.Element) {
	h.mu.Lock()
	h.pending.Remove(el) // no-op when evicted meanwhile
	h.mu.Unlock()
}

// HandshakeStats returns the pending handshakes and how many were closed
// to make room.
func (r *Router) HandshakeStats() (pending int, evicted uint64) {
	r.handshakes.mu.Lock()
	defer r.handshakes.mu.Unlock()
	return r.handshakes.pending.Len(), r.handshakes.evicted
}
