package router

import (
	"sort"
	"sync"
	"time"
)

// hostCache is ProxySQL's client host error cache. With
// mysql-client_host_cache_size and mysql-client_host_error_counts both
// above 0, every failed login of a client address (wrong user or password,
// TLS required, a handshake that is malformed or not done in
// mysql-connect_timeout_client) counts against it, and an address that has
// reached mysql-client_host_error_counts is disconnected before its
// password is even checked: the client sees its connection lost (2013), as
// with ProxySQL. A successful login removes the address. The cache holds
// at most mysql-client_host_cache_size addresses: a new one evicts the
// least recently updated, and a smaller size takes effect at the next
// failure. stats_mysql_client_host_cache shows it (_reset empties it), and
// PROXYSQL FLUSH MYSQL CLIENT HOSTS empties it.
type hostCache struct {
	mu sync.Mutex
	m  map[string]hostEntry
}

type hostEntry struct {
	errors  int
	updated time.Time
}

// HostCacheEntry is one row of stats_mysql_client_host_cache.
type HostCacheEntry struct {
	Address     string
	ErrorCount  int
	LastUpdated time.Time
}

// blocked reports whether ip has used up its failed logins.
func (c *hostCache) blocked(ip string, size, limit int) bool {
	if size <= 0 || limit <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[ip]
	return ok && e.errors >= limit
}

// failed counts a failed login of ip.
func (c *hostCache) failed(ip string, size, limit int, now time.Time) {
	if size <= 0 || limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]hostEntry)
	}
	e, ok := c.m[ip]
	for !ok && len(c.m) >= size || len(c.m) > size {
		c.evictOldest()
	}
	e.errors++
	e.updated = now
	c.m[ip] = e
}

// evictOldest drops the least recently updated address (c.mu held).
func (c *hostCache) evictOldest() {
	var oldest string
	var at time.Time
	for ip, e := range c.m {
		if oldest == "" || e.updated.Before(at) {
			oldest, at = ip, e.updated
		}
	}
	delete(c.m, oldest)
}

// succeeded forgets ip's failures after a successful login.
func (c *hostCache) succeeded(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, ip)
}

// snapshot returns the entries by address; reset empties the cache.
func (c *hostCache) snapshot(reset bool) []HostCacheEntry {
	c.mu.Lock()
	out := make([]HostCacheEntry, 0, len(c.m))
	for ip, e := range c.m {
		out = append(out, HostCacheEntry{Address: ip, ErrorCount: e.errors, LastUpdated: e.updated})
	}
	if reset {
		clear(c.m)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// ClientHosts returns the client host error cache
// (stats_mysql_client_host_cache); reset empties it (_reset, PROXYSQL FLUSH
// MYSQL CLIENT HOSTS).
func (r *Router) ClientHosts(reset bool) []HostCacheEntry { return r.hosts.snapshot(reset) }
