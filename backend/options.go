package backend

import (
	"context"
	"net"
	"time"
)

// Options are the mysql-* variables (and hostgroup attributes) that govern
// backend connections. The registry holds them behind an atomic pointer;
// SetOptions replaces them as a whole.
type Options struct {
	ConnectTimeout     time.Duration // mysql-connect_timeout_server: dial + handshake + login
	PingInterval       time.Duration // mysql-ping_interval_server_msec: idle connections older than this are pinged
	PingTimeout        time.Duration // mysql-ping_timeout_server
	FreeConnectionsPct int           // mysql-free_connections_pct: idle connections kept per server, % of max_connections
	ConnectionMaxAge   time.Duration // mysql-connection_max_age_ms: 0 keeps connections forever
	InitConnect        string        // mysql-init_connect: run on every new (or reset) connection
	DeprecateEOF       bool          // mysql-enable_server_deprecate_eof: ask servers for CLIENT_DEPRECATE_EOF
	ShunOnFailures     int           // mysql-shun_on_failures: connect errors per second that shun a server
	ConnectRetries     int           // mysql-connect_retries_on_failure (caps the shun threshold at retries+1)
	ShunRecoveryTime   time.Duration // mysql-shun_recovery_time_sec: an auto-shunned server is retried after this
	ConnectTimeoutMax  time.Duration // mysql-connect_timeout_server_max: caps ShunRecoveryTime like ProxySQL
	// ThrottlePerSec is mysql-throttle_connections_per_sec_to_hostgroup:
	// new connections a hostgroup's servers may open within one second,
	// together; a request past it waits for the next second.
	ThrottlePerSec int
	// ConnectionWarming is mysql-connection_warming: while a server has
	// fewer connections than free_connections_pct of its max_connections,
	// a request opens a new one rather than reuse a free one.
	ConnectionWarming bool
	// Warming is set when warming applies to any hostgroup (the variable
	// or an attributes row): TryGet, the per-query path, looks no further
	// when it is not.
	Warming bool

	// TLS encrypts the connections to servers with use_ssl=1
	// (mysql-ssl_p2s_*, mysql_servers_ssl_params); nil encrypts them
	// without verifying the server.
	TLS *ClientTLS

	// Hostgroups holds mysql_hostgroup_attributes overrides by hostgroup id.
	Hostgroups map[int]HostgroupOptions

	// Dial opens the TCP connection; nil uses a net.Dialer. Tests inject
	// faults here.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// HostgroupOptions are the per-hostgroup overrides of
// mysql_hostgroup_attributes that the pool applies.
type HostgroupOptions struct {
	FreeConnectionsPct int    // replaces mysql-free_connections_pct for the hostgroup
	InitConnect        string // replaces mysql-init_connect when not empty
	ThrottlePerSec     int    // throttle_connections_per_sec: replaces mysql-throttle_connections_per_sec_to_hostgroup
	ConnectionWarming  bool   // connection_warming: replaces mysql-connection_warming
}

// DefaultOptions returns ProxySQL's defaults (reference §10.1).
func DefaultOptions() Options {
	return Options{
		ConnectTimeout:     1000 * time.Millisecond,
		PingInterval:       10000 * time.Millisecond,
		PingTimeout:        200 * time.Millisecond,
		FreeConnectionsPct: 10,
		DeprecateEOF:       true,
		ShunOnFailures:     5,
		ConnectRetries:     10,
		ShunRecoveryTime:   10 * time.Second,
		ConnectTimeoutMax:  10000 * time.Millisecond,
		ThrottlePerSec:     1000000,
	}
}

// needsWarming reports whether a pool of hostgroup hg with total
// connections out of limit should open a new one rather than reuse one
// (ProxySQL's needs_warming); the attributes row, when there is one,
// replaces the variables.
func (o *Options) needsWarming(hg, total, limit int) bool {
	if !o.Warming {
		return false
	}
	on := o.ConnectionWarming
	if h, ok := o.Hostgroups[hg]; ok {
		on = h.ConnectionWarming
	}
	return on && total < o.freePct(hg)*limit/100
}

// throttleFor returns the new connections per second a hostgroup may
// open: its mysql_hostgroup_attributes row when it has one, as ProxySQL.
func (o *Options) throttleFor(hg int) int {
	if h, ok := o.Hostgroups[hg]; ok {
		return h.ThrottlePerSec
	}
	return o.ThrottlePerSec
}

// freePct returns the free-connection percentage for a hostgroup.
func (o *Options) freePct(hg int) int {
	if h, ok := o.Hostgroups[hg]; ok {
		return h.FreeConnectionsPct
	}
	return o.FreeConnectionsPct
}

// initConnect returns the init_connect statement for a hostgroup.
func (o *Options) initConnect(hg int) string {
	if h, ok := o.Hostgroups[hg]; ok && h.InitConnect != "" {
		return h.InitConnect
	}
	return o.InitConnect
}

// shunThreshold is min(shun_on_failures, connect_retries_on_failure+1)
// (reference §4.1); connectFailed shuns at no fewer than 2 errors in a
// second, as ProxySQL.
func (o *Options) shunThreshold() int {
	return min(o.ShunOnFailures, o.ConnectRetries+1)
}

// shunWait is how long an automatically shunned server stays out: the
// recovery time, capped at connect_timeout_server_max-1s, at least 1s.
func (o *Options) shunWait() time.Duration {
	w := o.ShunRecoveryTime
	if c := o.ConnectTimeoutMax - time.Second; c > 0 && w > c {
		w = c
	}
	return max(w, time.Second)
}

func (o *Options) dial(ctx context.Context, k Key) (net.Conn, error) {
	network, addr := k.dialAddr()
	if o.Dial != nil {
		return o.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
