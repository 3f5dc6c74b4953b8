package backend

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/ratelog"
)

// maintenanceTick is how often idle connections are trimmed and pinged.
const maintenanceTick = time.Second

// maxConcurrentPings bounds the pings one maintenance round runs at once.
const maxConcurrentPings = 8

// Registry holds every configured server, keyed by (hostgroup, host, port).
// Reads (Hostgroup, Servers, Lookup) are lock-free loads of immutable
// slices; Reconcile and SetOptions replace them copy-on-write.
type Registry struct {
	log  zerolog.Logger
	opts func() *Options

	mu      sync.Mutex // serializes Reconcile and Close; guards servers
	servers map[Key]*Server
	closed  bool
	// Servers taken out, whose counters still count (Totals).
	retired    []retiredServer
	retiredSum Totals

	byHG atomic.Pointer[map[int][]*Server]
	all  atomic.Pointer[[]*Server]

	stop chan struct{}
	done chan struct{}

	throttle   throttle        // new connections per hostgroup and second
	connectLog ratelog.Limiter // failed connects are logged at most 10 a second
	delayed    atomic.Uint64   // connects that waited for the throttle (Server_Connections_delayed)
}

// ConnectionsDelayed counts the new connections that waited for
// mysql-throttle_connections_per_sec_to_hostgroup (ProxySQL's
// Server_Connections_delayed).
func (r *Registry) ConnectionsDelayed() uint64 { return r.delayed.Load() }

// NewRegistry returns an empty registry and starts its maintenance
// goroutine (idle trimming and pings); Close stops it. opts returns the
// options of the running configuration; maintenance and health reads call
// it each time, so a LOAD applies at the next round. Commands pass their own
// runtime's options to Pool.Get instead.
func NewRegistry(opts func() *Options, log zerolog.Logger) *Registry {
	r := &Registry{
		log:     log.With().Str("component", "backend").Logger(),
		opts:    opts,
		servers: make(map[Key]*Server),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	empty := map[int][]*Server{}
	r.byHG.Store(&empty)
	var none []*Server
	r.all.Store(&none)
	go r.maintenanceLoop()
	return r
}

// FixedOptions returns an options function for NewRegistry that always
// returns o (tests, tools).
func FixedOptions(o Options) func() *Options { return func() *Options { return &o } }

// Options returns the current options.
func (r *Registry) Options() Options { return *r.options() }

func (r *Registry) options() *Options {
	if o := r.opts(); o != nil {
		return o
	}
	d := DefaultOptions()
	return &d
}

// Reconcile applies a mysql_servers table: servers whose key stays are
// updated in place (their pools, health and counters survive), new keys get
// a server and an empty pool, and servers no longer listed become
// OFFLINE_HARD: their idle connections are closed now and those in use when
// they come back. Within a hostgroup, servers keep the order of servers.
func (r *Registry) Reconcile(servers []config.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	next := make(map[Key]*Server, len(servers))
	byHG := make(map[int][]*Server)
	all := make([]*Server, 0, len(servers))
	for i := range servers {
		cs := &servers[i]
		k := Key{Hostgroup: cs.HostgroupID, Host: cs.Hostname, Port: cs.Port}
		if _, dup := next[k]; dup {
			continue
		}
		s, ok := r.servers[k]
		if ok {
			s.update(cs)
		} else {
			s = newServer(cs, r)
		}
		next[k] = s
		byHG[k.Hostgroup] = append(byHG[k.Hostgroup], s)
		all = append(all, s)
	}
	var removed []*Server
	for k, s := range r.servers {
		if _, ok := next[k]; !ok {
			removed = append(removed, s)
		}
	}
	sortServers(all)
	r.servers = next
	r.byHG.Store(&byHG)
	r.all.Store(&all)
	now := time.Now()
	for _, s := range removed {
		r.retireLocked(s, now)
		s.SetStatus(StatusOfflineHard)
		s.pool.drainFree()
		r.log.Info().Str("server", s.addr).Int("hostgroup", s.key.Hostgroup).Msg("server removed: OFFLINE_HARD")
	}
	// Servers the new configuration takes out of ONLINE lose their idle
	// connections at once rather than at the next maintenance round.
	for _, s := range all {
		if st := s.Status(); st == StatusOfflineSoft || st == StatusOfflineHard {
			s.pool.drainFree()
		}
	}
}

// Hostgroup returns the servers of a hostgroup, in configuration order. The
// slice is shared and immutable: do not modify it.
func (r *Registry) Hostgroup(id int) []*Server { return (*r.byHG.Load())[id] }

// Servers returns every server sorted by hostgroup, host and port (shared,
// immutable).
func (r *Registry) Servers() []*Server { return *r.all.Load() }

// Lookup returns the server with key k, or nil.
func (r *Registry) Lookup(k Key) *Server {
	for _, s := range r.Hostgroup(k.Hostgroup) {
		if s.key == k {
			return s
		}
	}
	return nil
}

// Close stops maintenance and closes every pool: idle connections now,
// connections in use when they are returned.
func (r *Registry) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	servers := r.servers
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	for _, s := range servers {
		s.pool.close()
	}
}

func (r *Registry) maintenanceLoop() {
	defer close(r.done)
	t := time.NewTicker(maintenanceTick)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.maintainOnce(now)
		}
	}
}

// maintainOnce runs one round of pool maintenance over every server and
// pings the idle connections that are due, a few at a time.
func (r *Registry) maintainOnce(now time.Time) {
	r.foldRetired(now)
	o := r.options()
	var due []*BackendConn
	for _, s := range r.Servers() {
		due = append(due, s.pool.maintain(now, o)...)
	}
	if len(due) == 0 {
		return
	}
	timeout := o.PingTimeout
	if timeout <= 0 {
		timeout = DefaultOptions().PingTimeout
	}
	sem := make(chan struct{}, maxConcurrentPings)
	var wg sync.WaitGroup
	for _, c := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				// Usually the server's wait_timeout: not a health signal.
				r.log.Debug().Str("server", c.srv.addr).Err(err).Msg("idle connection failed its ping")
				_ = c.Close()
				return
			}
			c.pool.put(c, true)
		}()
	}
	wg.Wait()
}
