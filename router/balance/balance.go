// Package balance chooses the backend server that serves a connection
// request, among the servers of one hostgroup.
//
// Policies see servers through the small Backend interface, which
// *backend.Server satisfies, so this package imports neither the router nor
// the backend package. Policies are generic over the concrete backend type
// so that picking from a []*backend.Server neither converts the slice nor
// allocates: the router uses Policy[*backend.Server].
//
// Two policies exist: ProxySQL's weighted random (reference §4.2), and
// TiProxy's factor-based choice (DESIGN.md §3 "Balancing", tiproxy §1),
// which scores every server per factor, packs the scores into one integer
// in priority order and takes the lowest. Both choose a server for a new
// connection request only; moving existing sessions between servers is not
// done here.
package balance

import (
	"math/rand/v2"
	"time"

	"github.com/sluice-proxy/sluice/internal/usage"
)

// Backend is what a policy reads about a server. Every method must be cheap
// and lock-free: policies run on every connection request.
type Backend interface {
	// Healthy reports whether the server may be picked now (ONLINE, or
	// automatically shunned and due for recovery, which it then is).
	Healthy() bool
	// Weight is mysql_servers.weight; 0 means never picked.
	Weight() int
	// ConnScore is the number of connections in use on the server (handed
	// out: running a command, or held by a session between commands).
	ConnScore() int
	// Busy is the number of connections running a command now: what Pick
	// compares for the conn factor.
	Busy() int
	// MaxConnections is mysql_servers.max_connections.
	MaxConnections() int
	// LatencyUs is the last measured latency in µs, 0 when unknown.
	LatencyUs() int64
	// MaxLatencyMs is mysql_servers.max_latency_ms, 0 for the default.
	MaxLatencyMs() int
	// ErrorWindow returns the failures the proxy observed on the server
	// and all its operations (failures included) over about the last two
	// minutes: the health factor's input.
	ErrorWindow(now time.Time) (failures, total uint64)
	// Usage is what the server's metrics say of its CPU and memory
	// (mysql_servers_balance.metrics_url), nil when nothing is known: the
	// memory and CPU factors' input.
	Usage() *usage.Usage
}

// Policy picks one server of a hostgroup for a new connection request. It
// returns the zero B (nil for pointer types) when no server can be used.
// Implementations are safe for concurrent use and must not keep servers.
type Policy[B Backend] interface {
	Pick(servers []B) B
}

// Options are the settings shared by the built-in policies.
type Options struct {
	// DefaultMaxLatencyMs is mysql-default_max_latency_ms: the latency
	// limit of servers whose max_latency_ms is 0. A limit of 0 means none.
	DefaultMaxLatencyMs int
	// Rand returns a uniform int in [0, n); nil uses math/rand/v2.
	Rand func(n int) int
}

func (o *Options) intN(n int) int {
	if o.Rand != nil {
		return o.Rand(n)
	}
	return rand.IntN(n)
}

// state classifies a server for one pick.
type state uint8

const (
	skip state = iota // unhealthy, weight 0, or too slow
	full              // usable but at max_connections
	open              // usable with room for a connection
)

// classify applies ProxySQL's candidate rules (reference §4.2): healthy,
// weight > 0, latency under max_latency_ms (or the default), and room below
// max_connections.
func classify[B Backend](o *Options, b B) state {
	w := b.Weight()
	if w <= 0 || !b.Healthy() {
		return skip
	}
	limit := b.MaxLatencyMs()
	if limit == 0 {
		limit = o.DefaultMaxLatencyMs
	}
	if lat := b.LatencyUs(); limit > 0 && lat > 0 && lat >= int64(limit)*1000 {
		return skip
	}
	if b.ConnScore() >= b.MaxConnections() {
		return full
	}
	return open
}

// classifyAll classifies every server, recording the result in a bit set
// for up to 64 servers (beyond that, pass two classifies again: Healthy is
// idempotent once it has unshunned a server). It returns the weight sums of
// open and full servers.
func classifyAll[B Backend](o *Options, servers []B) (openBits, fullBits uint64, openSum, fullSum int) {
	for i, b := range servers {
		switch classify(o, b) {
		case open:
			openSum += b.Weight()
			if i < 64 {
				openBits |= 1 << i
			}
		case full:
			fullSum += b.Weight()
			if i < 64 {
				fullBits |= 1 << i
			}
		}
	}
	return openBits, fullBits, openSum, fullSum
}

func stateAt[B Backend](o *Options, servers []B, i int, openBits, fullBits uint64) state {
	if i < 64 {
		switch {
		case openBits&(1<<i) != 0:
			return open
		case fullBits&(1<<i) != 0:
			return full
		}
		return skip
	}
	return classify(o, servers[i])
}
