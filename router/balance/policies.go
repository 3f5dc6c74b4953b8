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
	if len(servers) == 1 {
		return servers[0] // the one server is in the wanted state: nothing to draw
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

// Compile-time check that the policy implements Policy.
var _ Policy[Backend] = (*WeightedRandom[Backend])(nil)
