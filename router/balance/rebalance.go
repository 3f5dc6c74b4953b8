package balance

import (
	"math"
	"sort"
	"time"

	"github.com/sluice-proxy/sluice/internal/usage"
)

// Rebalancing existing sessions (tiproxy §1.7, §1.8). Pick chooses the
// server of a new request; Rebalance looks at a hostgroup as a whole and
// advises moving sessions from one server to another at a rate, for the
// first factor (in priority order) that finds the pair out of balance —
// with TiProxy's per-factor rules, thresholds and rates, so that sessions
// move fast off an unhealthy server and slowly between loaded ones, and
// never back and forth.

// Rates are the migration rates of the factors: a positive value replaces
// the factor's adaptive rate (TiProxy's balance.<factor>.migrations-per-second;
// 0 keeps the adaptive one). ConnRatio is the conn factor's imbalance
// threshold (balance.conn-count.count-ratio-threshold, > 1; 0 means 1.2).
type Rates struct {
	Status, Health, Memory, CPU, Location, Conn float64
	ConnRatio                                   float64
}

// TiProxy's constants (tiproxy §1.4, §1.5).
const (
	statusSeconds   = 5.0   // balanceSeconds4Status
	healthSeconds   = 60.0  // balanceSeconds4Health
	connSeconds     = 120.0 // balanceSeconds4Conn
	connRatio       = 1.2   // countRatioThreshold
	labelPerSecond  = 1.0   // balanceCount4Label
	locationPerSec  = 1.0   // balanceCount4Location
	minBalanceCount = 0.0001
)

// Move is Rebalance's advice: move sessions From → To, PerSecond of them
// per second, because of Reason.
type Move[B Backend] struct {
	From, To  B
	PerSecond float64
	Reason    Factor
}

// advice is a factor's opinion on moving sessions between a pair.
type advice uint8

const (
	neutral  advice = iota // this factor has nothing to say: ask the next one
	negative               // do not move this pair, whatever later factors say
	positive               // move now
)

// scored is one server with its factor scores.
type scored[B Backend] struct {
	b        B
	scores   [maxFactors]uint64 // by Factor
	packed   uint64
	sessions int  // what the conn factor compares for migration
	movable  int  // of sessions, those a move may take now
	routable bool // a session may move to it
	down     bool // not Healthy: the caller drains it (see Rebalance)
}

// Rebalance implements TiProxy's BackendsToBalance over one hostgroup.
// sessions(b) gives the sessions on b (the conn factor balances those)
// and how many of them a move may take now: a server whose sessions are
// all pinned (temporary tables, locks: they refused to move) is passed
// over for the next busiest one, where TiProxy would advise the same
// impossible move for good and leave the others unbalanced. r are the
// configured rates. ok is
// false when the hostgroup is balanced enough. Servers that are not
// Healthy (OFFLINE_SOFT, SHUNNED…) are never a target, and never a source
// either: the caller drains every session off them at the status rate
// whatever the other servers look like; a Healthy server the status
// factor rejects (weight 0, over its latency limit) is a source at that
// rate.
func (p *FactorPolicy[B]) Rebalance(servers []B, sessions func(B) (n, movable int), r Rates, now time.Time) (m Move[B], ok bool) {
	if len(servers) <= 1 {
		return m, false
	}
	maxWeight, usable := 0, 0
	for _, b := range servers {
		if classify(&p.Options, b) != skip {
			usable++
			maxWeight = max(maxWeight, b.Weight())
		}
	}
	all := make([]scored[B], len(servers))
	for i, b := range servers {
		s := &all[i]
		n, movable := sessions(b)
		s.b, s.sessions, s.movable = b, max(n, 0), min(max(movable, 0), max(n, 0))
		p.factorScores(s, maxWeight, usable > 1, now)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].packed < all[j].packed })
	to := &all[0]
	if !to.routable || to.packed == all[len(all)-1].packed {
		return m, false
	}
	for i := len(all) - 1; i > 0; i-- {
		from := &all[i]
		if from.movable <= 0 || from.down {
			continue
		}
		for _, f := range p.order[:p.n] {
			s1, s2 := from.scores[f], to.scores[f]
			if s1 < s2 {
				break // opposite order: a later factor must not undo this one
			}
			adv, count := p.balanceCount(f, from, to, maxWeight, r, now)
			if adv == negative {
				break
			}
			if s1 > s2 && adv == positive && count > minBalanceCount {
				return Move[B]{From: from.b, To: to.b, PerSecond: count, Reason: f}, true
			}
		}
	}
	return m, false
}

// factorScores fills s's factor scores and packed score, with the conn
// factor on movable sessions per unit of weight.
func (p *FactorPolicy[B]) factorScores(s *scored[B], maxWeight int, many bool, now time.Time) {
	st := classify(&p.Options, s.b)
	place := p.placement(s.b)
	s.routable = st != skip && !(place&OtherLabel != 0 && p.hasLabel())
	s.down = !s.b.Healthy()
	for _, f := range p.order[:p.n] {
		w := f.Bits()
		v := min(p.value(f, s.b, st, place, now, s.sessions, maxWeight, many), uint64(1)<<w-1)
		s.scores[f] = v
		s.packed = s.packed<<w | v
	}
}

// balanceCount is TiProxy's Factor.BalanceCount for the pair (from → to).
func (p *FactorPolicy[B]) balanceCount(f Factor, from, to *scored[B], maxWeight int, r Rates, now time.Time) (advice, float64) {
	rate := func(configured, adaptive float64) float64 {
		if configured > 0 {
			return configured
		}
		return adaptive
	}
	switch f {
	case FactorLabel:
		// Label isolation: a session on another business's server goes
		// home; none ever moves to one (it is not routable).
		return positive, labelPerSecond
	case FactorStatus:
		return positive, rate(r.Status, float64(from.sessions)/statusSeconds)
	case FactorHealth:
		// Only abnormal → normal moves: "mid" is the hysteresis band.
		if from.scores[f]-to.scores[f] <= 1 {
			return neutral, 0
		}
		return positive, rate(r.Health, float64(from.sessions)/healthSeconds)
	case FactorMemory:
		// Only OOM risk 2 against 0 moves (1 is the hysteresis band); all
		// the sessions leave, within 10 s when OOM is under 45 s away, else
		// within a minute: at the rate frozen when the risk was read
		// (usage.KeepMemRate), so the pace does not slow as they leave.
		if from.scores[f]-to.scores[f] <= 1 {
			return neutral, 0
		}
		u := from.b.Usage()
		if u == nil { // dropped since it was scored (its metrics_url removed)
			return neutral, 0
		}
		secs := 60.0
		if u.TimeToOOM < 45*time.Second {
			secs = 10
		}
		// A session that came after the reading counts too.
		return positive, rate(r.Memory, max(u.MemRate, float64(from.sessions)/secs))
	case FactorCPU:
		return p.cpuBalance(from, to, r, now)
	case FactorLocation:
		return positive, rate(r.Location, locationPerSec)
	case FactorConn:
		ratio := r.ConnRatio
		if ratio <= 1 {
			ratio = connRatio
		}
		// The target is judged as it would be with one more session, in
		// the same units of weight as the source (TiProxy's to+1, which
		// assumes equal weights): a session on a weight-1 server facing an
		// idle weight-1 server beside a weight-1000 one would otherwise
		// move back and forth between the two for good.
		fc := float64(connScore(from.sessions, from.b.Weight(), maxWeight))
		tcNext := float64(connScore(to.sessions+1, to.b.Weight(), maxWeight))
		if fc <= tcNext*ratio {
			return neutral, 0
		}
		if r.Conn > 0 {
			return positive, r.Conn
		}
		// Narrow the gap to the ratio in about two minutes: TiProxy's
		// ((from+to+1)/(1+ratio) − (to+1)) / 120 per second.
		target := (fc + tcNext) / (1 + ratio)
		return positive, max(0, (target-tcNext)/connSeconds)
	}
	return neutral, 0
}

// cpuBalance is TiProxy's CPU BalanceCount with headroom h(x) = 1.3 − x:
// never if moving one session would leave the target busier than the
// source (that also vetoes later factors), nothing while the two are
// within 20 % of headroom, else 1/usagePerConn/600 sessions a second
// (narrowing a 30 % gap to 20 % in about 30 s).
func (p *FactorPolicy[B]) cpuBalance(from, to *scored[B], r Rates, now time.Time) (advice, float64) {
	fu, tu := from.b.Usage(), to.b.Usage()
	fLatest, fAvg, ok1 := fu.CPUNow(from.sessions, now)
	tLatest, tAvg, ok2 := tu.CPUNow(to.sessions, now)
	if !ok1 || !ok2 {
		return neutral, 0
	}
	upc := math.Max(fu.PerConn, usage.MinCPUPerConn)
	h := func(x float64) float64 { return 1.3 - x }
	if h(tAvg+upc)*cpuUnbalancedRatio < h(fAvg-upc) || h(tLatest+upc)*cpuUnbalancedRatio < h(fLatest-upc) {
		return negative, 0
	}
	if h(tAvg) < h(fAvg)*cpuBalancedRatio || h(tLatest) < h(fLatest)*cpuBalancedRatio {
		return neutral, 0
	}
	if r.CPU > 0 {
		return positive, r.CPU
	}
	return positive, 1 / upc / 600
}

// TiProxy's CPU ratios (factor_cpu.go).
const (
	cpuBalancedRatio   = 1.2
	cpuUnbalancedRatio = 1.1
)
