package balance

// WeightedRandom is ProxySQL's MyHGC::get_random_MySrvC (reference §4.2):
// among the candidates, pick at random with probability proportional to
// weight.
//
// One deliberate difference: when every healthy server is at
// max_connections, ProxySQL finds no candidate and retries until
// mysql-connect_timeout_server_max; WeightedRandom picks among the full
// servers instead, so the caller waits in that server's pool (bounded by its
// context) for a slot. Either way the request succeeds as soon as a
// connection frees up, or fails with ERR 9001 at the deadline.
type WeightedRandom[B Backend] struct {
	Options
}

// Pick implements Policy.
func (p *WeightedRandom[B]) Pick(servers []B) B {
	var zero B
	openBits, fullBits, openSum, fullSum := classifyAll(&p.Options, servers)
	want, sum := open, openSum
	if sum == 0 {
		want, sum = full, fullSum
	}
	if sum == 0 {
		return zero
	}
	k := p.intN(sum)
	last := -1
	for i, b := range servers {
		if stateAt(&p.Options, servers, i, openBits, fullBits) != want {
			continue
		}
		last = i
		if k -= b.Weight(); k < 0 {
			return b
		}
	}
	// Only reachable when a server beyond the 64th changed state between
	// the two passes.
	if last >= 0 {
		return servers[last]
	}
	return zero
}

// LeastConnections picks the candidate with the fewest connections in use
// per unit of weight (ConnScore/Weight), breaking ties at random so that
// idle servers share the first requests. The candidates and the
// all-servers-full fallback are those of WeightedRandom.
type LeastConnections[B Backend] struct {
	Options
}

// Pick implements Policy.
func (p *LeastConnections[B]) Pick(servers []B) B {
	var zero B
	openBits, fullBits, openSum, fullSum := classifyAll(&p.Options, servers)
	want := open
	if openSum == 0 {
		want = full
		if fullSum == 0 {
			return zero
		}
	}
	best := -1
	var bestScore, bestWeight, ties int
	for i, b := range servers {
		if stateAt(&p.Options, servers, i, openBits, fullBits) != want {
			continue
		}
		score, w := b.ConnScore(), b.Weight()
		if w <= 0 {
			continue
		}
		if best < 0 {
			best, bestScore, bestWeight, ties = i, score, w, 1
			continue
		}
		// score/w < bestScore/bestWeight, without division.
		switch l, r := score*bestWeight, bestScore*w; {
		case l < r:
			best, bestScore, bestWeight, ties = i, score, w, 1
		case l == r:
			ties++
			if p.intN(ties) == 0 {
				best, bestScore, bestWeight = i, score, w
			}
		}
	}
	if best < 0 {
		return zero
	}
	return servers[best]
}

// Compile-time checks that the policies implement Policy.
var (
	_ Policy[Backend] = (*WeightedRandom[Backend])(nil)
	_ Policy[Backend] = (*LeastConnections[Backend])(nil)
)

// ByName returns the policy named by mysql-balance_policy, for the policies
// this package has: "random" (ProxySQL's weighted random) and "connection"
// (weighted least-connections). ok is false for other names.
func ByName[B Backend](name string, o Options) (p Policy[B], ok bool) {
	switch name {
	case "random":
		return &WeightedRandom[B]{Options: o}, true
	case "connection":
		return &LeastConnections[B]{Options: o}, true
	}
	return nil, false
}
