package backend

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"
)

// What the monitor (package backend/monitor) and other checkers of server
// health use: connections of their own, and the health state of servers.

// Dial opens a connection to host:port that belongs to no pool and counts
// against no configured server (the monitor's own connections), logged in
// as cred with the server's defaults. opts give the timeouts and dialer;
// init_connect is not run.
func Dial(ctx context.Context, host string, port int, opts *Options, cred *Credentials) (*BackendConn, error) {
	return DialSSL(ctx, host, port, false, opts, cred)
}

// DialSSL is Dial over TLS when useSSL (a server with use_ssl=1), with
// the p2s settings of opts.
func DialSSL(ctx context.Context, host string, port int, useSSL bool, opts *Options, cred *Credentials) (*BackendConn, error) {
	k := Key{Hostgroup: -1, Host: host, Port: port}
	srv := &Server{key: k, addr: net.JoinHostPort(host, strconv.Itoa(port))}
	if useSSL {
		srv.useSSL.Store(1)
	}
	return connect(ctx, srv, opts, cred, &State{})
}

// CountsAgainstServer tells whether a failed connect or check says the
// server is unhealthy. Like ProxySQL (MySrvC::connect_error), a server that
// answers and refuses this login or schema is alive: those errors do not
// count, and neither does a login the proxy cannot complete for lack of
// the clear-text password or of an auth plugin, nor a proxy out of file
// descriptors (countsAsConnectError).
func CountsAgainstServer(err error) bool {
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrNeedClearPassword) || errors.Is(err, ErrUnsupportedAuth) {
		return false
	}
	return countsAsConnectError(err)
}

// AutoShunned reports whether the server is SHUNNED by errors or failed
// pings (and so comes back by itself), not by the configuration.
func (s *Server) AutoShunned() bool {
	return s.Status() == StatusShunned && s.shunnedAuto.Load()
}

// CloseIdle closes the server's idle pooled connections (those in use are
// closed when they come back, if the server is no longer ONLINE).
func (s *Server) CloseIdle() { s.pool.drainFree() }

// KillConnections closes the server's idle connections and aborts those
// in use (a command waiting on them fails now, and its owner closes the
// connection), as ProxySQL does when it shuns a server that stopped
// answering pings. It returns how many were in use.
func (s *Server) KillConnections() int {
	s.pool.drainFree()
	return s.pool.abortUsed()
}

// Credentials returns the login the connection was opened (or last
// changed) with.
func (c *BackendConn) Credentials() Credentials { return c.cred }

// Lease identifies the connection's current use: it changes each time the
// connection goes back to the pool.
func (c *BackendConn) Lease() uint64 { return c.lease.Load() }

// AbortLease makes the I/O of a connection in use fail now, from any
// goroutine (a query the proxy timed out on a server that does not answer
// KILL QUERY, a killed session's query) — if the connection is still in the
// use lease identifies. A connection its session already gave back, idle in
// the pool or in another session's hands, is left alone: it reports false.
// See KillConnections.
func (c *BackendConn) AbortLease(lease uint64) bool {
	if c.lease.Load() != lease {
		return false
	}
	c.abort()
	return true
}

// FreeConn describes an idle pooled connection (stats_mysql_free_connections).
type FreeConn struct {
	FD                 int
	User               string
	State              State
	Idle               time.Duration
	Created            time.Time
	ThreadID           uint32
	ServerVersion      string
	BytesSent, BytesIn uint64
}

// FreeConns lists the server's idle pooled connections.
func (s *Server) FreeConns(now time.Time) []FreeConn {
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]FreeConn, 0, len(p.free))
	for _, c := range p.free {
		out = append(out, FreeConn{FD: c.fd(), User: c.cred.User, State: c.state.Clone(), Idle: now.Sub(c.lastUsed),
			Created: c.created, ThreadID: c.threadID, ServerVersion: c.version,
			BytesSent: c.w.BytesWritten(), BytesIn: c.w.BytesRead()})
	}
	return out
}

// fd returns the connection's socket descriptor, -1 if unknown.
func (c *BackendConn) fd() int {
	fd := -1
	if sc, ok := c.w.NetConn().(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}
