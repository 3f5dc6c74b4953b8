package balance

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrUnknownPolicy is returned by New for a mysql-balance_policy value it
// does not know.
var ErrUnknownPolicy = errors.New("balance: unknown balance policy")

// Factor is one criterion of FactorPolicy (tiproxy §1.4). A higher score
// means busier or less suitable.
type Factor uint8

// The factors, with the bit widths TiProxy gives them (tiproxy §1.2).
const (
	FactorLabel    Factor = iota // 1 bit: the server lacks the proxy's value of mysql-balance_label_name
	FactorStatus                 // 1 bit: not healthy, weight 0, or over its latency limit
	FactorHealth                 // 2 bits: error ratio the proxy observed, 0 normal, 1 mid, 2 abnormal
	FactorMemory                 // 2 bits: memory risk; no data source yet, always 0
	FactorCPU                    // 5 bits: CPU usage in 5 % steps; no data source yet, always 0
	FactorLocation               // 1 bit: the server's zone differs from the proxy's
	FactorConn                   // 32 bits: commands running per unit of weight, then connections in use (16 bits each)
)

var factorNames = [...]string{"label", "status", "health", "memory", "cpu", "location", "conn"}
var factorBits = [...]int{1, 1, 2, 2, 5, 1, 32}

func (f Factor) String() string {
	if int(f) < len(factorNames) {
		return factorNames[f]
	}
	return fmt.Sprintf("Factor(%d)", int(f))
}

// Bits returns the width of the factor's score in the packed score.
func (f Factor) Bits() int { return factorBits[f] }

// FactorOrder returns the factors of a policy in priority order, exactly as
// TiProxy orders them (tiproxy §1.3): label first when a label name is set
// (never route to another business's servers), then status, then per
// policy:
//
//	resource:   health, memory, cpu, location, conn
//	location:   location, health, memory, cpu, conn
//	connection: conn
//
// An empty name is "resource", TiProxy's default. ok is false for other
// names, including "random", which is not factor-based.
func FactorOrder(policy string, labelName bool) (order []Factor, ok bool) {
	var tail []Factor
	switch policy {
	case "", "resource":
		tail = []Factor{FactorHealth, FactorMemory, FactorCPU, FactorLocation, FactorConn}
	case "location":
		tail = []Factor{FactorLocation, FactorHealth, FactorMemory, FactorCPU, FactorConn}
	case "connection":
		tail = []Factor{FactorConn}
	default:
		return nil, false
	}
	if labelName {
		order = append(order, FactorLabel)
	}
	order = append(order, FactorStatus)
	return append(order, tail...), true
}

// Placement is what the label and location factors know about a server:
// its labels compared with the proxy's, once per configuration load (see
// Place), so that no label is looked at while picking.
type Placement uint8

const (
	// OtherLabel: a label name is set, the proxy has a value for it, and
	// the server's labels lack that value. Such a server is never routed to.
	OtherLabel Placement = 1 << iota
	// Remote: the proxy and the server both have a "zone" label, and they
	// differ.
	Remote
)

// ZoneLabel is the label the location factor compares, as in TiProxy
// (config.LocationLabelName).
const ZoneLabel = "zone"

// Place compares a server's labels with the proxy's. labelName is
// mysql-balance_label_name ("" disables the label factor); proxy holds
// mysql-proxy_labels; server holds the server's mysql_servers_balance.labels
// (nil when it has no row). A factor with nothing to compare stays neutral.
func Place(labelName string, proxy, server map[string]string) Placement {
	var p Placement
	if want := proxy[labelName]; labelName != "" && want != "" && server[labelName] != want {
		p |= OtherLabel
	}
	if mine, theirs := proxy[ZoneLabel], server[ZoneLabel]; mine != "" && theirs != "" && mine != theirs {
		p |= Remote
	}
	return p
}

// The health factor's thresholds (tiproxy §1.5 "Health"). TiProxy rates
// two failure ratios, PD TSO (fail 0.5) and TiKV RPC (fail 0.3), both
// recovering at 0.1. Sluice's ratio — failed operations over all operations
// on the server, as the proxy itself observes them — is a data-path ratio
// like TiKV's, so it takes TiKV's thresholds. Between the two a server is
// "mid": worse than a normal one, better than an abnormal one, which is the
// hysteresis band that keeps a server near a threshold from flapping
// between the extremes.
const (
	HealthFailThreshold    = 0.3
	HealthRecoverThreshold = 0.1
)

// HealthMinFailures is the fewest failures in the window that rate a
// server worse than normal. TiProxy's ratios come from the servers' own
// metrics over busy clusters; the proxy's own count of one lost
// connection (a DBA's KILL, a client's oversized packet) on a quiet server
// is a ratio of 100 %, and a server ranked last gets no traffic to dilute
// it: it would sit out the whole two minutes. ProxySQL shuns a server on
// 5 connect errors in a second (mysql-shun_on_failures).
const HealthMinFailures = 5

// HealthScore rates a server's error window: 0 normal, 1 mid, 2 abnormal,
// as TiProxy's calcValueRange.
func HealthScore(failures, total uint64) uint64 {
	switch {
	case failures < HealthMinFailures:
		return 0
	case total == 0:
		return 2
	}
	switch r := float64(failures) / float64(total); {
	case r <= HealthRecoverThreshold:
		return 0
	case r >= HealthFailThreshold:
		return 2
	}
	return 1
}

// The two bits above the factors in a packed score. Unroutable servers
// (status or label 1: TiProxy's CanBeRouted) are never picked; full ones
// (at max_connections) lose to every routable server with room but are
// still picked when no server has room, so the request waits in that pool,
// as WeightedRandom does.
const (
	unroutableBit = uint64(1) << 63
	fullBit       = uint64(1) << 62
)

// maxFactors is the number of factors; FactorPolicy keeps its order in an
// array of this size so that a Pick reads no slice header.
const maxFactors = len(factorNames)

// FactorPolicy is TiProxy's factor-based choice of a server for a new
// connection request (tiproxy §1.2, §3.1), for any MySQL server. For every
// server of the hostgroup it computes each factor's score, packs the scores
// into one uint64 in priority order (each factor shifted by its bit width,
// clamped to it), and picks the lowest. Servers tied at the lowest score are
// chosen by weighted random on mysql_servers.weight, so ProxySQL weights
// still matter; weight 0 is never chosen.
//
// Create it with New; it is immutable and safe for concurrent use. A Pick
// of up to 64 servers allocates nothing and takes no lock.
type FactorPolicy[B Backend] struct {
	Options
	order  [maxFactors]Factor
	n      int
	health bool // the order has a factor that needs the time (health, memory, cpu): read the clock
	place  func(B) Placement
}

// Config selects and parameterises a policy.
type Config[B Backend] struct {
	Options
	// Policy is mysql-balance_policy: resource ("" too), location,
	// connection or random.
	Policy string
	// LabelName is mysql-balance_label_name; "" leaves the label factor
	// out.
	LabelName string
	// Place returns a server's Placement, resolved when the configuration
	// was loaded; nil means every server is Placement 0.
	Place func(B) Placement
}

// New returns the policy c names: "random" is ProxySQL's weighted random,
// the others a FactorPolicy.
func New[B Backend](c Config[B]) (Policy[B], error) {
	if c.Policy == "random" {
		return &WeightedRandom[B]{Options: c.Options}, nil
	}
	order, ok := FactorOrder(c.Policy, c.LabelName != "")
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPolicy, c.Policy)
	}
	p := &FactorPolicy[B]{Options: c.Options, n: len(order), place: c.Place}
	copy(p.order[:], order)
	for _, f := range order {
		p.health = p.health || f == FactorHealth || f == FactorMemory || f == FactorCPU
	}
	return p, nil
}

// Order returns the policy's factors in priority order.
func (p *FactorPolicy[B]) Order() []Factor { return append([]Factor(nil), p.order[:p.n]...) }

// Score returns the packed score of server b, as Pick computes it: the
// factor scores in priority order, plus the unroutable and full bits above
// them. maxWeight is the largest weight among the candidates (the conn
// factor compares connections per unit of weight relative to it) and many
// tells whether there is more than one candidate (the location factor is
// neutral otherwise).
func (p *FactorPolicy[B]) Score(b B, now time.Time, maxWeight int, many bool) uint64 {
	return p.score(b, classify(&p.Options, b), now, maxWeight, many)
}

func (p *FactorPolicy[B]) score(b B, st state, now time.Time, maxWeight int, many bool) uint64 {
	place, conns := p.placement(b), b.ConnScore()
	var bits uint64
	for _, f := range p.order[:p.n] {
		w := f.Bits()
		var v uint64
		if f == FactorConn {
			// A command goes where the fewest commands run per unit of
			// weight; among equals, where the fewest connections are in
			// use (held by sessions between commands too), so new sessions
			// spread evenly. Held connections alone decided before: they
			// are no load when idle, and a server with none (new, or of a
			// larger weight) took every command while the others' idle
			// sessions stayed. Sessions themselves are balanced by
			// Rebalance, on the connections they hold.
			v = min(connScore(b.Busy(), b.Weight(), maxWeight), 0xffff)<<16 | min(connScore(conns, b.Weight(), maxWeight), 0xffff)
		} else {
			v = p.value(f, b, st, place, now, conns, maxWeight, many)
		}
		bits = bits<<w | min(v, uint64(1)<<w-1)
	}
	switch {
	case st == skip || place&OtherLabel != 0 && p.hasLabel():
		bits |= unroutableBit
	case st == full:
		bits |= fullBit
	}
	return bits
}

func (p *FactorPolicy[B]) placement(b B) Placement {
	if p.place == nil {
		return 0
	}
	return p.place(b)
}

// LabelRefusesAll reports whether label isolation alone leaves servers
// without a candidate: some are usable (healthy, weighted, under their
// latency limit), and none of those carries the proxy's label — Pick finds
// nothing, as TiProxy never routes to another business's servers. The
// proxy says so in the error the client waits for.
func (p *FactorPolicy[B]) LabelRefusesAll(servers []B) bool {
	if !p.hasLabel() {
		return false
	}
	usable := false
	for _, b := range servers {
		if classify(&p.Options, b) == skip {
			continue
		}
		if p.placement(b)&OtherLabel == 0 {
			return false
		}
		usable = true
	}
	return usable
}

// hasLabel reports whether the policy has the label factor.
func (p *FactorPolicy[B]) hasLabel() bool { return p.n > 0 && p.order[0] == FactorLabel }

// value is factor f's score of server b (unclamped): the one definition
// of every factor, shared by Pick (conns is the server's connections in
// use) and Rebalance (conns is its movable sessions).
func (p *FactorPolicy[B]) value(f Factor, b B, st state, place Placement, now time.Time, conns, maxWeight int, many bool) uint64 {
	switch f {
	case FactorLabel:
		if place&OtherLabel != 0 {
			return 1
		}
	case FactorStatus:
		if st == skip {
			return 1
		}
	case FactorHealth:
		return HealthScore(b.ErrorWindow(now))
	case FactorMemory:
		return uint64(b.Usage().MemRisk(now))
	case FactorCPU:
		// 5 % steps of the CPU usage estimated now; no (or stale) data is
		// neutral.
		if latest, _, ok := b.Usage().CPUNow(conns, now); ok {
			return uint64(int(latest*100) / 5)
		}
	case FactorLocation:
		if many && place&Remote != 0 {
			return 1
		}
	case FactorConn:
		return connScore(conns, b.Weight(), maxWeight)
	}
	return 0
}

// connScore is connections in use per unit of weight, scaled so that the
// heaviest candidate's score is its connection count: ConnScore·maxWeight /
// weight. Equal weights compare plain counts; a server of twice the weight
// scores as busy with twice the connections.
func connScore(conns, weight, maxWeight int) uint64 {
	if weight <= 0 {
		return math.MaxUint64
	}
	if conns <= 0 {
		return 0
	}
	return uint64(int64(conns) * int64(max(maxWeight, weight)) / int64(weight))
}

// Pick implements Policy.
func (p *FactorPolicy[B]) Pick(servers []B) B {
	var zero B
	if len(servers) == 0 {
		return zero
	}
	var buf [64]uint64
	var scores []uint64
	if len(servers) <= len(buf) {
		scores = buf[:len(servers)]
	} else {
		scores = make([]uint64, len(servers))
	}
	// Pass 1: classify once (Healthy may bring a shunned server back, so
	// it is asked once per pick) and find the weight scale and the number
	// of candidates.
	maxWeight, usable := 0, 0
	for i, b := range servers {
		st := classify(&p.Options, b)
		scores[i] = uint64(st)
		if st != skip {
			usable++
			maxWeight = max(maxWeight, b.Weight())
		}
	}
	if usable == 0 {
		return zero
	}
	var now time.Time
	if p.health {
		now = time.Now()
	}
	// Pass 2: the packed scores, their minimum and the weight sum of the
	// servers at the minimum.
	best, sum, at, n := uint64(math.MaxUint64), 0, -1, 0
	for i, b := range servers {
		s := p.score(b, state(scores[i]), now, maxWeight, usable > 1)
		scores[i] = s
		switch {
		case s < best:
			best, sum, at, n = s, b.Weight(), i, 1
		case s == best:
			sum += b.Weight()
			n++
		}
	}
	if best&unroutableBit != 0 || sum <= 0 {
		return zero
	}
	if n == 1 {
		return servers[at] // one server at the best score: nothing to draw
	}
	k := p.intN(sum)
	last := -1
	for i, b := range servers {
		if scores[i] != best {
			continue
		}
		last = i
		if k -= b.Weight(); k < 0 {
			return b
		}
	}
	// Only reachable if a weight changed under a concurrent reload.
	return servers[last]
}

// Compile-time check that the policy implements Policy.
var _ Policy[Backend] = (*FactorPolicy[Backend])(nil)
