package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay is a TCP forwarder in front of a real backend that a test can take
// down and bring back: the fault injector for "a server dies" that does not
// stop a MariaDB instance other tests share. While down, every open
// connection is cut and new ones are closed as soon as they are accepted
// (a dead server whose port still answers the TCP handshake).
type Relay struct {
	l     net.Listener
	down  atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
	// toClient counts the bytes relayed from the target to clients.
	toClient atomic.Int64
}

// BytesToClient returns how many bytes went from the target to clients.
func (r *Relay) BytesToClient() int64 { return r.toClient.Load() }

// counting is an io.Writer that adds what it writes to n.
type counting struct {
	w io.Writer
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// NewRelay listens on a free 127.0.0.1 port and forwards to target; it is
// closed at the end of the test.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	return NewRelayAt(t, "127.0.0.1:0", target)
}

// NewRelayAt is NewRelay listening on addr.
func NewRelayAt(t testing.TB, addr, target string) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if r.down.Load() {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, s)
			r.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(counting{c, &r.toClient}, s); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); r.SetDown(true) })
	return r
}

// Port returns the port the relay listens on.
func (r *Relay) Port() int { return r.l.Addr().(*net.TCPAddr).Port }

// SetDown takes the "server" down (closing every open connection) or
// brings it back.
func (r *Relay) SetDown(down bool) {
	r.down.Store(down)
	if !down {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// Cut takes the server down for good.
func (r *Relay) Cut() { r.SetDown(true) }
