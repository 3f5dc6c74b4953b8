package router

import (
	"slices"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/router/balance"
)

// The balancer is the one loop that moves existing sessions between
// servers, TiProxy's rebalanceLoop (tiproxy §1.7, §1.8) for any MySQL
// server. Every tick it
//
//   - drains servers that are down (not Healthy: OFFLINE_SOFT, SHUNNED,
//     OFFLINE_HARD, removed): every session attached to one leaves at the
//     status rate, its sessions when first seen down over 5 s;
//   - asks the policy, per hostgroup, which pair of servers is out of
//     balance, by which factor and at what rate (FactorPolicy.Rebalance:
//     health, memory, cpu, location, connection count, label), and moves
//     that many sessions from one to the other.
//
// A session is moved by the balancer itself when it is idle (it takes the
// session's command lock, which the session holds while it runs a
// command), or asked to move at the end of its current command. Either way
// it moves only at a safe point (migrate): a session whose state cannot
// follow it is not moved for rebalancing, and leaves a down server once it
// can (after COMMIT, say).

// balanceTick is how often the balancer looks at servers (TiProxy: 10 ms,
// with its rate control allowing up to 100 migrations per tick; 100 ms
// and the same rates lose nothing at the rates the factors produce, and
// cost a tenth of the wake-ups).
const balanceTick = 100 * time.Millisecond

// drainSeconds is TiProxy's balanceSeconds4Status: the sessions of a
// server that went down leave it within about this time.
const drainSeconds = 5.0

// refusedRetry is how long a session that could not move (its state pins
// it) is left alone by rebalancing (TiProxy's redirectFailMinInterval).
const refusedRetry = 3 * time.Second

type balancer struct {
	r    *Router
	stop chan struct{}
	done chan struct{}
	once sync.Once

	drains  map[*backend.Server]*drainState // down servers being drained
	groups  map[int]*groupState             // per hostgroup: the pair being balanced
	asked   map[*session]*migration         // asked to move at the end of their command
	refused map[*session]time.Time          // could not move (pinned), when

	// listed is the server list of the last tick; gone are the servers
	// removed from it since that still have connections in use.
	listed []*backend.Server
	gone   map[*backend.Server]struct{}
}

type drainState struct {
	rate  float64 // sessions per second, frozen when the server was first seen down
	quota float64
}

// groupState is TiProxy's per-group rate control: the pair advised this
// tick and the migrations the group is owed.
type groupState struct {
	move  balance.Move[*backend.Server]
	quota float64
}

func (r *Router) startBalancer() {
	b := &balancer{
		r: r, stop: make(chan struct{}), done: make(chan struct{}),
		drains: make(map[*backend.Server]*drainState), groups: make(map[int]*groupState),
		asked: make(map[*session]*migration), refused: make(map[*session]time.Time),
	}
	r.balancer = b
	go b.loop()
}

func (b *balancer) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *balancer) loop() {
	defer close(b.done)
	t := time.NewTicker(balanceTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.tick(now, now.Sub(last).Seconds())
			last = now
		}
	}
}

// tick does one round of draining and rebalancing, for dt seconds.
func (b *balancer) tick(now time.Time, dt float64) {
	rt := b.r.rt.Load()
	for s, m := range b.asked {
		if s.pending.Load() != m || !b.live(s) {
			delete(b.asked, s) // done, dropped, replaced or gone
		}
	}
	for s, at := range b.refused {
		if now.Sub(at) >= refusedRetry || !b.live(s) {
			delete(b.refused, s)
		}
	}
	servers := b.r.cfg.Registry.Servers()
	b.noteGone(servers)
	moves := b.advise(rt, servers, now, dt)
	if len(moves) == 0 && !b.stranded(servers) {
		// No session can be attached to a server that matters this tick:
		// the session scan below would find nothing, at a cost that grows
		// with the number of clients (10 000 mostly idle ones).
		clear(b.drains)
		return
	}
	// The sessions attached to the servers that matter this tick, from
	// what each session publishes (a pointer load per session).
	var attached map[*backend.Server][]*session
	b.r.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		if srvs := s.pub.servers.Load(); srvs != nil {
			for _, srv := range *srvs {
				if _, ok := moves[srv]; ok || !routable(srv) {
					if attached == nil {
						attached = make(map[*backend.Server][]*session)
					}
					attached[srv] = append(attached[srv], s)
				}
			}
		}
		return true
	})
	if len(attached) == 0 && len(b.drains) == 0 {
		return
	}
	b.drain(rt, attached, dt)
	for from, g := range moves {
		for _, s := range attached[from] {
			if g.quota < 1 {
				break
			}
			if s.pending.Load() != nil {
				continue
			}
			if _, no := b.refused[s]; no {
				continue
			}
			ok, failed := b.ask(rt, s, &migration{from: from, to: g.move.To, reason: g.move.Reason.String()}, false)
			if ok || failed {
				// A move that failed on its target (a server that died
				// before the monitor saw it) counts against the rate too:
				// the next session does not try the same target at once.
				g.quota--
			}
			if !ok {
				b.refused[s] = now
			}
		}
	}
}

// noteGone adds the servers that left the registry's list since the last
// tick to b.gone: their sessions must leave them all the same.
func (b *balancer) noteGone(servers []*backend.Server) {
	if len(servers) == len(b.listed) && (len(servers) == 0 || &servers[0] == &b.listed[0]) {
		return // the same list (the registry replaces it on every change)
	}
	for _, old := range b.listed {
		if !slices.Contains(servers, old) {
			if b.gone == nil {
				b.gone = make(map[*backend.Server]struct{})
			}
			b.gone[old] = struct{}{}
		}
	}
	b.listed = servers
}

// stranded reports whether a session may be attached to a server it must
// leave: one that is down, or removed, with connections in use (a session
// is attached to a server only through a connection it holds). Removed
// servers with none left are forgotten.
func (b *balancer) stranded(servers []*backend.Server) bool {
	found := false
	for srv := range b.gone {
		if srv.ConnScore() == 0 {
			delete(b.gone, srv)
		} else {
			found = true
		}
	}
	for _, srv := range servers {
		if !routable(srv) && srv.ConnScore() > 0 {
			found = true
		}
	}
	return found
}

// live reports whether s is still a session of the router.
func (b *balancer) live(s *session) bool {
	v, ok := b.r.sessions.Load(s.id)
	return ok && v == s
}

// advise asks the policy for each hostgroup's most needed move and
// returns, by source server, the moves owed this tick.
func (b *balancer) advise(rt *live.Runtime, servers []*backend.Server, now time.Time, dt float64) map[*backend.Server]*groupState {
	fp, ok := rt.Policy.(*balance.FactorPolicy[*backend.Server])
	if !ok || len(servers) < 2 {
		clear(b.groups)
		return nil
	}
	// Connections in use per server, counting the moves already asked
	// for as done (TiProxy moves the score when it asks).
	var delta map[*backend.Server]int
	if len(b.asked) > 0 {
		delta = make(map[*backend.Server]int, 2*len(b.asked))
		for _, m := range b.asked {
			delta[m.from]--
			if m.to != nil {
				delta[m.to]++
			}
		}
	}
	// Of those, the sessions that refused to move lately (pinned) cannot
	// be taken: a server with nothing else is passed over as a source.
	var refused map[*backend.Server]int
	for s := range b.refused {
		if srvs := s.pub.servers.Load(); srvs != nil {
			if refused == nil {
				refused = make(map[*backend.Server]int)
			}
			for _, srv := range *srvs {
				refused[srv]++
			}
		}
	}
	sessions := func(srv *backend.Server) (int, int) {
		n := srv.ConnScore() + delta[srv]
		return n, n - refused[srv]
	}
	byHG := make(map[int][]*backend.Server)
	for _, srv := range servers {
		hg := srv.Key().Hostgroup
		byHG[hg] = append(byHG[hg], srv)
	}
	var moves map[*backend.Server]*groupState
	for hg, list := range byHG {
		m, ok := fp.Rebalance(list, sessions, rt.Rates, now)
		if !ok {
			delete(b.groups, hg)
			continue
		}
		g := b.groups[hg]
		if g == nil {
			// A group out of balance again: its first migration is due
			// now, as TiProxy's (its last redirect is long past).
			g = &groupState{quota: 1}
			b.groups[hg] = g
		} else {
			// Owed m.PerSecond·dt more, whichever pair is advised now (the
			// rate is the group's, as TiProxy's lastRedirectTime); what was
			// not used (no movable session) does not pile up into a burst.
			g.quota = min(g.quota+m.PerSecond*dt, max(1, m.PerSecond*dt))
		}
		g.move = m
		if g.quota >= 1 {
			if moves == nil {
				moves = make(map[*backend.Server]*groupState)
			}
			moves[m.From] = g
		}
	}
	for hg := range b.groups {
		if _, ok := byHG[hg]; !ok {
			delete(b.groups, hg)
		}
	}
	return moves
}

// drain moves the sessions of servers that are down, at the status rate.
func (b *balancer) drain(rt *live.Runtime, attached map[*backend.Server][]*session, dt float64) {
	for srv := range b.drains {
		if _, still := attached[srv]; !still || routable(srv) {
			delete(b.drains, srv)
		}
	}
	for srv, ss := range attached {
		if routable(srv) {
			continue
		}
		st := b.drains[srv]
		if st == nil {
			rate := rt.Rates.Status
			if rate <= 0 {
				rate = max(float64(len(ss))/drainSeconds, 1)
			}
			st = &drainState{rate: rate, quota: 1}
			b.drains[srv] = st
		}
		st.quota = min(st.quota+st.rate*dt, float64(len(ss)))
		for _, s := range ss {
			if st.quota < 1 {
				break
			}
			if s.pending.Load() != nil {
				continue // already asked
			}
			st.quota--
			b.ask(rt, s, &migration{from: srv, reason: "status"}, true)
		}
	}
}

// ask moves session s as m says: now if it is idle, else at the end of its
// command. It reports false when the idle session could not move (its
// state pins it, or the move failed: failed then says the target gave no
// connection or refused the state); a session that must leave (insist: its
// server is down) is then asked again at the end of its next command.
func (b *balancer) ask(rt *live.Runtime, s *session, m *migration, insist bool) (ok, failed bool) {
	if !s.cmdMu.TryLock() {
		s.pending.Store(m)
		b.asked[s] = m
		return true, false
	}
	defer s.cmdMu.Unlock()
	if s.killed.Load() {
		return false, false
	}
	moved, wait := false, false
	for _, h := range s.conns.list {
		if h.server == m.from {
			moved, failed = s.migrate(rt, h, m.to, m.reason)
			wait = !moved && h.waitsForBoundary()
			break
		}
	}
	s.publishServers()
	if !moved && (insist || wait) {
		// It leaves at the end of a later command: a server that is down
		// must be left as soon as the session can; a session between two
		// statements of a transaction moves when the transaction ends,
		// as TiProxy's redirect waits for it (asked again only after
		// refusedRetry, a session running back-to-back transactions was
		// seldom found between two and never moved).
		s.pending.Store(m)
		b.asked[s] = m
		return true, failed
	}
	return moved, failed
}
