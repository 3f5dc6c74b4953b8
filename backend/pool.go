package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// Pool holds one server's connections: free ones ready for reuse and a
// count of those handed out. Get prefers the free connection that needs the
// least work for the request, as ProxySQL's connection quality levels do
// (reference §5.1), and respects max_connections by waiting.
type Pool struct {
	srv *Server
	reg *Registry

	mu      sync.Mutex
	free    []*BackendConn  // least recently used first
	used    int             // handed out, being opened, or being pinged
	inUse   *BackendConn    // handed out or being pinged: a list through BackendConn.prevUsed/nextUsed
	waiters []chan struct{} // requests waiting for a slot, oldest first
	opening int             // connects in flight (counted in used too)
	closed  bool

	// The pool's share of stats_mysql_global's MyHGM_myconnpoll_* rows
	// (ProxySQL's MySQL_HostGroups_Manager status): gets are lookups of a
	// free connection for a request, getsOK those that took one, pushes
	// the connections given back (Put, and after a keep-alive ping),
	// destroys the connections handed out that were closed instead.
	gets, getsOK, pushes, destroys atomic.Uint64
}

// PoolCounts are a pool's MyHGM_myconnpoll_* counters (Pool.Counts).
type PoolCounts struct {
	Get, GetOK, Push, Destroy uint64
}

// Counts returns the pool's MyHGM_myconnpoll_* counters.
func (p *Pool) Counts() PoolCounts {
	return PoolCounts{Get: p.gets.Load(), GetOK: p.getsOK.Load(), Push: p.pushes.Load(), Destroy: p.destroys.Load()}
}

// FreeBufferBytes returns the bytes of the read and write buffers the idle
// connections hold (stats_mysql_global's ConnPool_memory_bytes; those of
// connections in use are the rest of wire.BackendBuffers).
func (p *Pool) FreeBufferBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, c := range p.free {
		n += c.w.BufferBytes()
	}
	return n
}

// maxOpening bounds the connects in flight to one server. A burst of
// requests that find no free connection would otherwise each dial one at
// once: hundreds of simultaneous logins make a busy server (or a loaded
// machine) slow enough that they time out, and the timeouts shun the server
// for everyone. Past the bound a request waits for whichever comes first, a
// connection given back or a connect finished; 16 in flight still open
// thousands of connections per second to a server that answers in
// milliseconds.
const maxOpening = 16

func newPool(srv *Server, reg *Registry) *Pool { return &Pool{srv: srv, reg: reg} }

// Server returns the pool's server.
func (p *Pool) Server() *Server { return p.srv }

// quality grades how well c fits a request (reference §5.1). tc is the
// TLS configuration a new connection for the request would use (nil: clear
// text): a connection made with another one (use_ssl or the p2s settings
// changed since, or another user's mysql_servers_ssl_params) does not fit.
func (c *BackendConn) quality(user string, want *State, fp uint64, tc *tls.Config) Quality {
	switch {
	case c.state.Caps != want.Caps || c.tlsConf != tc:
		return QualityNone
	case c.cred.User != user || c.dirty || !VarsSubset(c.state.Vars, want.Vars):
		return QualityChangeUser
	case c.known == knownAll && c.fp == fp:
		return QualityPerfect
	}
	return QualitySync
}

// pickLocked returns the best free connection for the request, scanning
// from the most recently used (the warmest) and stopping at a perfect one.
func (p *Pool) pickLocked(o *Options, user string, want *State, fp uint64) (int, Quality) {
	best, bestQ := -1, QualityNone
	tc := p.srv.clientTLS(o, user)
	for i := len(p.free) - 1; i >= 0; i-- {
		if q := p.free[i].quality(user, want, fp, tc); q > bestQ {
			best, bestQ = i, q
			if q == QualityPerfect {
				break
			}
		}
	}
	return best, bestQ
}

func (p *Pool) countersLocked() {
	p.srv.connUsed.Store(int64(p.used))
	p.srv.connFree.Store(int64(len(p.free)))
	p.srv.noteUsed(int64(p.used))
}

// notifyLocked hands a freed slot (or free connection) to the oldest
// waiting request. Waking one waiter per freed slot, in arrival order, keeps
// a crowd of sessions from starving one another when the server is at
// max_connections; a closed pool wakes them all to fail.
func (p *Pool) notifyLocked() {
	if p.closed {
		for _, ch := range p.waiters {
			close(ch)
		}
		p.waiters = nil
		return
	}
	if len(p.waiters) > 0 {
		close(p.waiters[0])
		p.waiters = p.waiters[1:]
	}
}

// waitLocked queues the request (at the front when it had been woken
// already and still found no room) and waits for notifyLocked. It is called
// with p.mu held and returns with it released.
func (p *Pool) waitLocked(ctx context.Context, front bool) error {
	ch := make(chan struct{})
	if front {
		p.waiters = append([]chan struct{}{ch}, p.waiters...)
	} else {
		p.waiters = append(p.waiters, ch)
	}
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		// Leave the queue; a slot handed to us meanwhile goes to the next.
		found := false
		for i, w := range p.waiters {
			if w == ch {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			p.notifyLocked()
		}
		limit := p.srv.MaxConnections()
		p.mu.Unlock()
		return fmt.Errorf("%w: %s (max_connections %d): %w", ErrPoolFull, p.srv.addr, limit, ctx.Err())
	}
}

// Get returns a connection logged in as cred and synced to want (see
// BackendConn.Sync), reusing a free one when it can and opening one
// otherwise. o are the options of the runtime the caller runs under: a
// command uses one runtime from start to end, so it passes them down rather
// than the pool reading the newest. When the server is at max_connections it waits for a slot
// until ctx ends (ErrPoolFull). A *wire.SQLError means the server refused
// part of the state (unknown schema, bad variable); other errors mean the
// server is unavailable or unreachable. Return the connection with Put, or
// Close it.
func (p *Pool) Get(ctx context.Context, o *Options, cred *Credentials, want *State) (*BackendConn, error) {
	if o == nil {
		o = p.reg.options()
	}
	fp := want.Fingerprint()
	woken := false // this request was handed a slot by notifyLocked
	for {
		if !p.srv.Healthy() {
			if woken {
				p.mu.Lock()
				p.notifyLocked() // pass the slot on
				p.mu.Unlock()
			}
			return nil, fmt.Errorf("%w: %s is %s", ErrServerUnavailable, p.srv.addr, p.srv.Status())
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if len(p.waiters) > 0 && !woken {
			// Others were here first: queue behind them.
			if err := p.waitLocked(ctx, false); err != nil {
				return nil, err
			}
			woken = true
			continue
		}
		front := woken
		woken = false
		limit := p.srv.MaxConnections()
		total := p.used + len(p.free)
		i, q := p.pickLocked(o, cred.User, want, fp)
		p.gets.Add(1)
		if i >= 0 && o.needsWarming(p.srv.key.Hostgroup, total, limit) {
			i = -1 // mysql-connection_warming: grow the pool first
		}
		// A connection that needs COM_CHANGE_USER is reused unless the pool
		// is mostly busy (more connections used than free) and can grow:
		// then a new one is opened (ProxySQL's get_random_MyConn).
		if i >= 0 && p.used >= limit {
			// max_connections was lowered below what is in use: no more
			// is handed out until enough come back (the branch below
			// closes idle ones that do not fit), as ProxySQL picks a
			// server only while its used connections are under the limit.
			i = -1
		}
		if i >= 0 && (q >= QualitySync || !(p.used > len(p.free) && total < limit)) {
			p.getsOK.Add(1)
			c := p.free[i]
			p.free = append(p.free[:i], p.free[i+1:]...)
			p.used++
			p.linkLocked(c)
			p.countersLocked()
			p.mu.Unlock()
			if c.aborted.Load() || c.closedWhileIdle(time.Now()) {
				// Nothing was sent on it: take another, whatever the
				// command (a write included) is, with no sync wasted on it.
				// (An abort that raced with Put left it here, unusable.)
				_ = c.Close()
				continue
			}
			if q == QualityPerfect {
				c.opts = o
				return c, nil
			}
			err := c.Sync(ctx, o, cred, want)
			if err == nil {
				return c, nil
			}
			if _, ok := IsSQLError(err); ok {
				if errors.Is(err, ErrAuth) {
					// A refused COM_CHANGE_USER is a refused login: worth
					// the line a refused connect gets.
					p.connectEvent(time.Now()).Str("user", cred.User).Err(err).Msg("backend refused the login")
				}
				p.Put(c)
				return nil, err
			}
			// The idle connection was dead (the server closed it, say):
			// drop it and try again; the free list only shrinks.
			_ = c.Close()
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		if total < limit && p.opening < maxOpening {
			hg := p.srv.key.Hostgroup
			if ok, wait := p.reg.throttle.allow(hg, o.throttleFor(hg), time.Now()); !ok {
				// The hostgroup opened its connections for this second
				// (mysql-throttle_connections_per_sec_to_hostgroup): wait
				// for the next, or for a connection given back meanwhile.
				p.mu.Unlock()
				p.reg.delayed.Add(1)
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, fmt.Errorf("%w: %s: new connections to hostgroup %d are throttled to %d a second: %w",
						ErrPoolFull, p.srv.addr, hg, o.throttleFor(hg), ctx.Err())
				case <-t.C:
				}
				woken = true // keep this request's turn: it was at the front
				continue
			}
			p.used++
			p.opening++
			p.countersLocked()
			p.mu.Unlock()
			return p.open(ctx, o, cred, want)
		}
		if total < limit {
			// Enough connects in flight: wait for one of them, or for a
			// connection given back.
			if err := p.waitLocked(ctx, front); err != nil {
				return nil, err
			}
			woken = true
			continue
		}
		if len(p.free) > 0 {
			// Full of idle connections that do not fit: make room.
			victim := p.free[0]
			p.free = p.free[1:]
			p.countersLocked()
			p.mu.Unlock()
			victim.pool = nil
			_ = victim.Close()
			continue
		}
		if err := p.waitLocked(ctx, front); err != nil {
			return nil, err
		}
		woken = true
	}
}

// TryGet returns a free connection of user that is already in state want
// (fp is want.Fingerprint()), or nil. It does no I/O, never waits and
// allocates nothing: the common case of the per-query path. When it returns
// nil, Get does the rest (sync, open, wait).
func (p *Pool) TryGet(o *Options, user string, want *State, fp uint64) *BackendConn {
	if !p.srv.Healthy() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.waiters) > 0 {
		return nil // queued requests go first
	}
	limit := p.srv.MaxConnections()
	if p.used >= limit {
		return nil // max_connections lowered below what is in use: Get waits
	}
	if o.needsWarming(p.srv.key.Hostgroup, p.used+len(p.free), limit) {
		return nil // Get opens a new one
	}
	i, q := p.pickLocked(o, user, want, fp)
	if i < 0 || q != QualityPerfect || time.Since(p.free[i].lastSent) >= awaitWindow {
		return nil // Get syncs it, opens one, or looks whether the server closed it
	}
	// A hit is a lookup that took a connection; a miss is not counted:
	// the caller's Get looks again, and counts that.
	p.gets.Add(1)
	p.getsOK.Add(1)
	c := p.free[i]
	p.free = append(p.free[:i], p.free[i+1:]...)
	p.used++
	p.linkLocked(c)
	p.countersLocked()
	c.opts = o
	return c
}

// failed counts err, a failed connect or a server's refusal of a command,
// towards shunning the server, and logs the shun it causes. It reports
// whether it shunned the server.
func (p *Pool) failed(err error, now time.Time, o *Options) bool {
	n := p.srv.connectFailed(err, now, o.shunThreshold())
	if n > 0 {
		p.reg.log.Warn().Str("server", p.srv.addr).Int("hostgroup", p.srv.key.Hostgroup).Int64("errors_per_sec", n).
			Dur("shun_for", o.shunWait()).Err(err).Msg("shunning server")
	}
	return n > 0
}

// connectEvent starts a WARN line about a failed login or refused command
// on the server, through the registry's limiter (a few a second: peers
// cause these at will), or returns nil when the limiter holds it back.
func (p *Pool) connectEvent(now time.Time) *zerolog.Event {
	return p.reg.connectLog.Event(now, p.reg.log.Warn, "more_not_logged").Str("server", p.srv.addr).Int("hostgroup", p.srv.key.Hostgroup)
}

// Refused records that the server refused a command on c as a server
// (Response.Refused): counted as a failed connect, as ProxySQL counts it,
// so a server that keeps refusing is shunned. The caller discards c.
func (c *BackendConn) Refused(e *wire.SQLError) {
	p := c.pool
	if p == nil {
		return
	}
	now := time.Now()
	if !p.failed(e, now, c.opts) {
		p.connectEvent(now).Err(e).Msg("server refused a command; retrying it on another connection")
	}
}

// open dials a new connection into a slot already counted in p.used and
// p.opening.
func (p *Pool) open(ctx context.Context, o *Options, cred *Credentials, want *State) (*BackendConn, error) {
	c, err := connect(ctx, p.srv, o, cred, want)
	p.mu.Lock()
	p.opening--
	if err == nil {
		p.notifyLocked() // room for another connect
	}
	p.mu.Unlock()
	if err != nil {
		p.release(nil)
		now := time.Now()
		if !p.failed(err, now, o) && ctx.Err() == nil {
			// Every failed connect is worth a line (a refused TLS
			// certificate, a wrong password…), a few a second at most.
			p.connectEvent(now).Str("user", cred.User).Err(err).Msg("backend connect failed")
		}
		return nil, err
	}
	c.pool, c.opts = p, o
	c.w.CountBuffers(&wire.BackendBuffers)
	p.mu.Lock()
	p.linkLocked(c)
	p.mu.Unlock()
	p.srv.connOK.Add(1)
	p.srv.NoteVersion(c.version)
	if err := c.do(ctx, c.runInitConnect); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := c.Sync(ctx, o, cred, want); err != nil {
		if _, ok := IsSQLError(err); ok {
			p.Put(c)
		} else {
			_ = c.Close()
		}
		return nil, err
	}
	return c, nil
}

// release frees the slot of a connection that is gone (nil: one that
// failed to open).
func (p *Pool) release(c *BackendConn) {
	if c != nil {
		p.destroys.Add(1) // handed out, then closed instead of given back
	}
	p.mu.Lock()
	p.used--
	if c != nil {
		p.unlinkLocked(c)
	}
	p.countersLocked()
	p.notifyLocked()
	p.mu.Unlock()
}

// Put returns a connection obtained from Get. It goes back to the free list
// unless it is broken, half-synced, holds unread data, is older than
// mysql-connection_max_age_ms, or the server is no longer ONLINE; then it is
// closed. The caller must not Put a connection that holds session state
// outside its State (an open transaction, user variables, temporary tables,
// locks: reference §5.2): reset it first (ResetConnection) or Close it.
func (p *Pool) Put(c *BackendConn) { p.put(c, false) }

// put is Put; pinged says c comes back from the pool's keep-alive ping,
// which leaves lastUsed as it was: an idle connection pinged every second
// (mysql-ping_interval_server_msec=1000) was never idle long enough for
// free_connections_pct to trim it.
func (p *Pool) put(c *BackendConn, pinged bool) {
	if c.closed {
		return
	}
	p.pushes.Add(1)
	c.lease.Add(1) // the use ends: a late AbortLease for it is a no-op
	if c.pool != p {
		_ = c.Close()
		return
	}
	c.flushStats()
	now := time.Now()
	o := c.opts
	if o == nil {
		o = p.reg.options()
	}
	if c.broken || c.dirty || c.aborted.Load() || c.w.Buffered() > 0 || p.srv.Status() != StatusOnline ||
		(o.ConnectionMaxAge > 0 && now.Sub(c.created) >= o.ConnectionMaxAge) {
		_ = c.Close()
		return
	}
	if c.status&wire.StatusInTrans != 0 {
		// The server says a transaction is open on it: never another
		// session's (as ProxySQL pools no connection whose
		// IsActiveTransaction()). Closing it rolls the transaction back.
		p.reg.log.Warn().Str("server", p.srv.addr).Uint32("thread_id", c.threadID).
			Msg("a backend connection with an open transaction was given back: closed, not pooled")
		_ = c.Close()
		return
	}
	if pinged {
		c.lastPinged = now
	} else {
		c.lastUsed = now
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	over := p.used > p.srv.MaxConnections() // max_connections lowered: this one goes
	p.used--
	p.unlinkLocked(c)
	if !over {
		p.free = append(p.free, c)
	}
	p.countersLocked()
	p.notifyLocked()
	p.mu.Unlock()
	if over {
		c.pool = nil
		_ = c.Close()
	}
}

// Free returns the number of idle connections.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// Used returns the number of connections handed out (or being opened).
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// linkLocked adds c to the connections in use.
func (p *Pool) linkLocked(c *BackendConn) {
	c.prevUsed, c.nextUsed = nil, p.inUse
	if p.inUse != nil {
		p.inUse.prevUsed = c
	}
	p.inUse = c
	c.linked = true
}

// unlinkLocked takes c out of the connections in use.
func (p *Pool) unlinkLocked(c *BackendConn) {
	if !c.linked {
		return
	}
	if c.prevUsed != nil {
		c.prevUsed.nextUsed = c.nextUsed
	} else {
		p.inUse = c.nextUsed
	}
	if c.nextUsed != nil {
		c.nextUsed.prevUsed = c.prevUsed
	}
	c.prevUsed, c.nextUsed, c.linked = nil, nil, false
}

// abortUsed aborts every connection in use (see BackendConn.abort) and
// returns how many there were.
func (p *Pool) abortUsed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := p.inUse; c != nil; c = c.nextUsed {
		c.abort()
		n++
	}
	return n
}

// drainFree closes every idle connection (the server left ONLINE).
func (p *Pool) drainFree() {
	p.mu.Lock()
	free := p.free
	p.free = nil
	p.countersLocked()
	p.mu.Unlock()
	for _, c := range free {
		c.pool = nil
		_ = c.Close()
	}
}

// close closes idle connections and refuses new work; connections in use
// are closed when they come back.
func (p *Pool) close() {
	p.mu.Lock()
	p.closed = true
	p.notifyLocked()
	p.mu.Unlock()
	p.drainFree()
}

// maintain applies the periodic rules to idle connections (reference §5.1):
// close them all when the server is not ONLINE, close those older than
// connection_max_age_ms, keep at most free_connections_pct% of
// max_connections, and take out those idle for ping_interval_server_msec to
// be pinged (returned counted as used).
// trimIdle is how long a free connection must sit unused before the trim
// may close it.
const trimIdle = 2 * time.Second

func (p *Pool) maintain(now time.Time, o *Options) (toPing []*BackendConn) {
	var toClose []*BackendConn
	p.mu.Lock()
	online := p.srv.Status() == StatusOnline && !p.closed
	keep := make([]*BackendConn, 0, len(p.free))
	for _, c := range p.free {
		if !online || (o.ConnectionMaxAge > 0 && now.Sub(c.created) >= o.ConnectionMaxAge) {
			toClose = append(toClose, c)
		} else {
			keep = append(keep, c)
		}
	}
	// Trim the free list to free_connections_pct of max_connections, but
	// only with connections that sat idle for a whole trimIdle: under
	// steady load every free connection is about to be reused, and closing
	// it only to open another costs a handshake and briefly shows the server
	// more connections than max_connections while the old one shuts down.
	// Idle connections over max_connections (lowered at LOAD) go at once.
	if extra := p.used + len(keep) - p.srv.MaxConnections(); extra > 0 {
		extra = min(extra, len(keep))
		toClose = append(toClose, keep[:extra]...)
		keep = keep[extra:]
	}
	maxFree := o.freePct(p.srv.key.Hostgroup) * p.srv.MaxConnections() / 100
	if extra := len(keep) - maxFree; extra > 0 {
		j := 0
		for _, c := range keep {
			if extra > 0 && now.Sub(c.lastUsed) >= trimIdle {
				toClose = append(toClose, c)
				extra--
				continue
			}
			keep[j] = c
			j++
		}
		keep = keep[:j]
	}
	if o.PingInterval > 0 {
		j := 0
		for _, c := range keep {
			if now.Sub(c.lastUsed) >= o.PingInterval && now.Sub(c.lastPinged) >= o.PingInterval {
				toPing = append(toPing, c)
				p.used++
				p.linkLocked(c)
			} else {
				keep[j] = c
				j++
			}
		}
		keep = keep[:j]
	}
	p.free = keep
	p.countersLocked()
	p.mu.Unlock()
	for _, c := range toClose {
		c.pool = nil
		_ = c.Close()
	}
	return toPing
}
