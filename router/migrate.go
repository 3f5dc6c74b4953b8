package router

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// Session migration: a session pinned to a backend connection (it holds
// user variables, a text PREPARE… on it) moves to another server of the
// hostgroup at a safe point — between transactions, between commands —
// with its state replayed there (carry.go), as TiProxy moves sessions off
// a TiDB that shuts down (reference tiproxy §4).
//
// A session is migrated either by itself, at the end of a command, when a
// migration was requested for it or its server is no longer routable; or,
// when it is idle, by the balancer (balancer.go), which takes the session's
// command lock (the session goroutine holds it while it runs a command)
// only when the session is between commands, so the two never touch the
// session's connections at once.
//
// A session whose state cannot follow it stays where it is: rebalancing
// leaves it alone, and a server that is down keeps it until it can leave
// (a transaction ends there and the session moves after COMMIT). On
// OFFLINE_HARD, as in ProxySQL, its connection is closed instead, and its
// next statement is told what was lost.

// migration is a request for a session to leave a server.
type migration struct {
	from   *backend.Server
	to     *backend.Server // nil: the policy picks when the session moves
	reason string
}

// migrationKey identifies a row of stats_mysql_migrations.
type migrationKey struct {
	Hostgroup int
	From, To  string // host:port; To is "" when the migration did not happen
	Reason    string // status, health, memory, cpu, location, conn, label
	Outcome   string // success, failed (no target or no connection there), closed (OFFLINE_HARD: the connection was closed)
}

// migrationStats counts migrations by key (rare events: a mutex is fine).
type migrationStats struct {
	mu     sync.Mutex
	counts map[migrationKey]*MigrationCount
}

// MigrationCount is one row of stats_mysql_migrations.
type MigrationCount struct {
	migrationKey
	Count uint64
	Last  time.Time
}

func (m *migrationStats) add(k migrationKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = make(map[migrationKey]*MigrationCount)
	}
	c := m.counts[k]
	if c == nil {
		c = &MigrationCount{migrationKey: k}
		m.counts[k] = c
	}
	c.Count++
	c.Last = time.Now()
}

// Migrations returns the migration counters (stats_mysql_migrations), in a
// stable order.
func (r *Router) Migrations() []MigrationCount {
	r.migrations.mu.Lock()
	out := make([]MigrationCount, 0, len(r.migrations.counts))
	for _, c := range r.migrations.counts {
		out = append(out, *c)
	}
	r.migrations.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Hostgroup != b.Hostgroup {
			return a.Hostgroup < b.Hostgroup
		}
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		return a.Outcome < b.Outcome
	})
	return out
}

// routable reports whether sessions may stay on srv: it is ONLINE (or an
// automatic shun is over).
func routable(srv *backend.Server) bool { return srv.Healthy() }

// settle runs at the end of every command, with the command lock held:
// a session that was asked to leave a server, or whose server is no longer
// routable, migrates now if it is at a safe point.
func (s *session) settle(rt *live.Runtime) {
	m := s.pending.Load()
	keep := false // the move waits for the end of a transaction
	for i := 0; i < len(s.conns.list); i++ {
		h := s.conns.list[i]
		switch {
		case m != nil && h.server == m.from:
			if left, _ := s.migrate(rt, h, m.to, m.reason); left {
				i--
			} else if h.waitsForBoundary() {
				keep = true
			}
		case !routable(h.server):
			if left, _ := s.migrate(rt, h, nil, "status"); left {
				i--
			}
		}
	}
	if m != nil && !keep {
		s.pending.CompareAndSwap(m, nil)
	}
}

// reviewHeld runs before every command. A connection on a server that is
// OFFLINE_HARD (or was removed from mysql_servers) serves no further
// command, as ProxySQL drops such connections at once: the session moves
// now if its state can follow it; otherwise the connection is closed and
// the command is told what was lost. A session's own commands reach this
// before the balancer's next tick. A connection kept after an insert for
// longer than mysql-auto_increment_delay_multiplex_timeout_ms goes back to
// the pool unless something else pins it.
func (s *session) reviewHeld(rt *live.Runtime, now time.Time) {
	for i := 0; i < len(s.conns.list); i++ {
		h := s.conns.list[i]
		if h.server.Status() == backend.StatusOfflineHard {
			if left, _ := s.migrate(rt, h, nil, "status"); left {
				i--
			}
			continue
		}
		if h.autoIncDelay > 0 && rt.Router.AutoIncDelayTimeout > 0 && now.Sub(h.autoIncAt) > rt.Router.AutoIncDelayTimeout {
			h.autoIncDelay = 0
			if !h.pinned(rt, s) {
				s.release(rt, h)
				i--
			}
		}
	}
}

// armAutoIncTimer sets the session's timer for the first connection kept
// after an insert (auto_increment_delay_multiplex) to go back to the pool
// when mysql-auto_increment_delay_multiplex_timeout_ms has passed, even if
// the session sends nothing more: an application that inserts and then
// sits idle held one backend connection per session until wait_timeout.
// Called with the command lock held; no allocation once the timer exists.
func (s *session) armAutoIncTimer(rt *live.Runtime) {
	var first time.Time
	for _, h := range s.conns.list {
		if h.autoIncDelay > 0 && (first.IsZero() || h.autoIncAt.Before(first)) {
			first = h.autoIncAt
		}
	}
	if first.IsZero() || rt.Router.AutoIncDelayTimeout <= 0 {
		if s.aiTimer != nil && s.aiArmed {
			s.aiTimer.Stop()
			s.aiArmed = false
		}
		return
	}
	s.aiArmed = true
	d := time.Until(first.Add(rt.Router.AutoIncDelayTimeout)) + time.Millisecond
	if s.aiTimer == nil {
		s.aiTimer = time.AfterFunc(d, s.autoIncExpired)
	} else {
		s.aiTimer.Reset(d)
	}
}

// autoIncExpired runs reviewHeld for an idle session whose kept connection
// timed out; a session running a command does it itself first.
func (s *session) autoIncExpired() {
	if !s.cmdMu.TryLock() {
		return // a command runs, or the session ended
	}
	defer s.cmdMu.Unlock()
	s.aiArmed = false // it fired
	rt := s.r.rt.Load()
	s.reviewHeld(rt, time.Now())
	s.publishServers()
	s.armAutoIncTimer(rt)
}

// migrate moves the session's connection h to another server of its
// hostgroup — to, when it is still a routable server of that hostgroup,
// else the one the policy picks — if the session is at a safe point
// there. It reports whether h left the session (moved, or closed on
// OFFLINE_HARD), and whether a move was tried and failed on its target (no
// connection there, or the session state refused). The caller holds the
// command lock.
func (s *session) migrate(rt *live.Runtime, h *held, to *backend.Server, reason string) (left, failed bool) {
	k := migrationKey{Hostgroup: h.hg, From: h.addr, Reason: reason}
	hard := h.server.Status() == backend.StatusOfflineHard
	var target *backend.Server
	if h.pins() == 0 {
		target = to
		if target == nil || target.Key().Hostgroup != h.hg || !routable(target) || s.r.cfg.Registry.Lookup(target.Key()) != target {
			target = rt.Policy.Pick(s.r.cfg.Registry.Hostgroup(h.hg))
		}
		if overOnline(rt, h.hg, s.r.cfg.Registry.Hostgroup(h.hg)) {
			// More ONLINE servers than max_num_online_servers (a second
			// writer after a failover): the hostgroup takes no new
			// traffic, and a move is new traffic for its target.
			target = nil
		}
	}
	if target == nil || target == h.server {
		if hard {
			// As ProxySQL does on OFFLINE_HARD and removal: the connection
			// is closed. What the proxy carries waits for the next
			// connection; the session's next statement learns what else it
			// lost, if anything.
			what := h.pinnedBy()
			s.lostOn = append(s.lostOn, lostState{hg: h.hg, addr: h.addr, what: what, trx: h.inTrx})
			if h.inTrx {
				s.trxHG = -1
			}
			s.discard(h)
			k.Outcome = "closed"
			s.r.migrations.add(k)
			s.log.Info().Str("from", k.From).Int("hostgroup", h.hg).Str("reason", reason).Str("lost", what).
				Msg("session's backend connection closed: server OFFLINE_HARD")
			return true, false
		}
		if h.pins() == 0 && target == nil && !routable(h.server) && !h.stranded {
			// Nowhere to go: the session stays, and tries again after its
			// commands and at the balancer's ticks; counted and logged
			// once, not at each try.
			h.stranded = true
			k.Outcome = "failed"
			s.r.migrations.add(k)
			s.log.Info().Str("from", k.From).Int("hostgroup", h.hg).Str("reason", reason).
				Msg("session cannot leave its server: no other server of its hostgroup can take it")
		}
		return false, false // not at a safe point (or nowhere better): try again after a later command
	}
	cred, e := s.credentials(rt)
	if e != nil {
		return false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
	defer cancel()
	bc, err := target.Pool().Get(ctx, rt.Backend, cred, &s.state)
	k.To = target.Addr()
	if err != nil {
		k.Outcome = "failed"
		s.r.migrations.add(k)
		s.r.lostLog.Event(time.Now(), s.log.Warn, "more_not_logged").Err(err).Str("from", k.From).Str("to", k.To).
			Msg("migration failed: no connection on the target; the session stays")
		return false, true
	}
	nh := fillHeld(nil, bc, target, h.hg)
	nh.flags, nh.autoIncDelay, nh.wrote = h.flags, h.autoIncDelay, h.wrote
	if err := s.replayHeld(rt, h, nh); err != nil {
		_ = bc.Close()
		k.Outcome = "failed"
		s.r.migrations.add(k)
		s.log.Warn().Err(err).Str("from", k.From).Str("to", k.To).Msg("migration: replaying the session state failed; the session stays")
		return false, true
	}
	// Swap: the new connection serves the session from its next command;
	// the old one holds session state and is closed, not pooled.
	s.conns.detach(h)
	h.bc.MarkBroken()
	_ = h.bc.Close()
	s.conns.attach(nh)
	s.r.stats.Add(s.id, stats.ConnPoolGetConnSuccess, 1)
	k.Outcome = "success"
	s.r.migrations.add(k)
	s.log.Info().Str("from", k.From).Str("to", k.To).Int("hostgroup", h.hg).Str("reason", reason).Msg("session migrated")
	return true, false
}

// replayHeld gives nh, the connection taking h's place, what the session
// holds on h: the carried state, and LAST_INSERT_ID() as h has it when the
// session's last write ran on h or its insert id is still to be read
// (auto_increment_delay_multiplex): an expression such as
// LAST_INSERT_ID() + 0 runs on the server, where the proxy does not answer
// it. The value is read from h (the OK packets' insert id is not it: an
// explicit id in an INSERT is reported there, and LAST_INSERT_ID() keeps
// the last generated one).
func (s *session) replayHeld(rt *live.Runtime, h, nh *held) error {
	if c := s.carryFor(h.hg, false); c != nil {
		if err := s.replay(rt, nh, c); err != nil {
			return err
		}
	}
	if h.wrote || h.autoIncDelay > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
		defer cancel()
		// A server that does not answer any more (it is why the session
		// moves) took the id with it, as it would any connection's.
		var id string
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		if res, err := h.bc.Query(rctx, "SELECT LAST_INSERT_ID()"); err == nil && len(res.Rows) == 1 && len(res.Rows[0]) == 1 {
			id = res.Rows[0][0].String
		}
		rcancel()
		if _, err := strconv.ParseUint(id, 10, 64); err == nil && id != "0" {
			if err := nh.bc.Exec(ctx, "DO LAST_INSERT_ID("+id+")"); err != nil {
				return fmt.Errorf("LAST_INSERT_ID: %w", err)
			}
		}
	}
	return nil
}

// lostState is state a connection took with it when the proxy closed it
// outside a command (OFFLINE_HARD): the session's next statement is told.
type lostState struct {
	hg   int
	addr string
	what string // "" when all of it is carried (nothing to report)
	trx  bool   // an open transaction was lost: the session's next command fails, whatever it is
}

// lostTransaction gates command p of a session whose transaction was
// lost with its backend connection: it returns the error to answer
// instead, or nil to run p.
//
// A transaction the proxy lost between commands (its server went
// OFFLINE_HARD or left the hostgroup) fails the next command, whatever it
// is: a COMMIT the proxy would answer itself, a read routed to another
// hostgroup must not succeed as if the transaction were still there. From
// then on, and after a statement that lost it (ERR 1927), the session's
// statements are refused until the client ends the transaction: ROLLBACK
// runs as usual (nothing is open any more); COMMIT, BEGIN and SET
// autocommit=1 fail, since they would commit it and nothing of it
// committed. Run in autocommit, the rest of the transaction's statements
// committed one by one, and a ROLLBACK after them undid nothing; on a
// direct connection nothing more of the transaction can run either (the
// connection is gone). A reset or a change of user ends it too.
func (s *session) lostTransaction(p []byte) *wire.SQLError {
	for _, l := range s.lostOn {
		if l.trx {
			s.lostOn = nil
			s.trxLost = &l
			return errLostTransaction(l.hg, l.addr, l.what)
		}
	}
	l := s.trxLost
	if l == nil {
		return nil
	}
	var kind sqlscan.StmtKind
	var text []byte
	switch p[0] {
	case wire.ComQuery:
		s.digester.Digest(&s.digest, p[1:], s.dialect())
		kind, text = s.digest.Kind, p[1:]
	case wire.ComStmtExecute:
		cs, _, e := s.lookupStmt(p)
		if e != nil {
			return nil // an unknown statement: answered as such
		}
		kind, text = cs.g.kind, []byte(cs.g.sql)
	case wire.ComResetConnection, wire.ComChangeUser:
		s.trxLost = nil
		return nil
	default: // COM_QUIT, COM_PING, COM_STMT_PREPARE/CLOSE…: no statement runs
		return nil
	}
	switch kind {
	case sqlscan.KindRollback:
		s.trxLost = nil
		return nil
	case sqlscan.KindCommit, sqlscan.KindBegin:
		s.trxLost = nil
		return errLostTransaction(l.hg, l.addr, l.what)
	case sqlscan.KindSet:
		set := sqlscan.ParseSet(text, s.dialect())
		for _, a := range set.Assignments {
			if a.Kind == sqlscan.AssignAutocommit && a.Value == "1" {
				s.trxLost = nil
				return errLostTransaction(l.hg, l.addr, l.what)
			}
		}
	}
	return errTransactionAborted(l.hg, l.addr)
}

// publishServers publishes the servers of the connections the session
// keeps (for the drain loop), when they changed.
func (s *session) publishServers() {
	cur := s.pub.servers.Load()
	n := len(s.conns.list)
	if cur == nil && n == 0 {
		return
	}
	if cur != nil && len(*cur) == n {
		same := true
		for i, h := range s.conns.list {
			if (*cur)[i] != h.server {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	if n == 0 {
		s.pub.servers.Store(nil)
		return
	}
	srvs := make([]*backend.Server, n)
	for i, h := range s.conns.list {
		srvs[i] = h.server
	}
	s.pub.servers.Store(&srvs)
}
