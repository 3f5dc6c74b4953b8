package router

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// held is a backend connection while a session uses it, with the
// multiplexing state ProxySQL keeps per connection (reference §5.2).
type held struct {
	bc     *backend.BackendConn
	server *backend.Server
	hg     int
	addr   string
	dead   bool // discarded: closed, no longer usable

	flags rules.StatusFlags // multiplex-disabling status flags
	inTrx bool
	// maybeTrx: the last statement failed, and an ERR says nothing of
	// the transaction: it may have opened one (autocommit=0, a procedure's
	// START TRANSACTION: mayOpenTransaction). The connection stays with
	// its session, and its COMMIT or ROLLBACK goes to the server, until a
	// status says, as ProxySQL's unknown_transaction_status keeps
	// IsActiveTransaction().
	maybeTrx     bool
	warnings     bool      // the last query left warnings for SHOW WARNINGS
	autoIncDelay int       // queries left before an insert id may be lost (auto_increment_delay_multiplex)
	autoIncAt    time.Time // when autoIncDelay was set (auto_increment_delay_multiplex_timeout_ms)
	wrote        bool      // the session's last write that changed rows ran here: LAST_INSERT_ID() follows it
	cursors      int       // COM_STMT_EXECUTE cursors open on it (one per client statement at most)
	attached     bool      // in the session's heldConns
	untracked    string    // a SET the proxy could not parse ran here (why); the session cannot leave
	// nextTrx: a SET TRANSACTION for the next transaction only ran here,
	// and no statement has consumed it yet. Pooled, the connection would
	// give another session's next transaction that isolation level or
	// READ ONLY, and this session's transaction would start without it.
	nextTrx  bool
	handlers int // HANDLER … OPEN that ran here and were not closed
	// stranded: a migration off this connection's server found no other
	// server to go to (counted once in stats_mysql_migrations).
	stranded bool
}

// pinned reports whether the connection must stay with the session (one
// with state the proxy does not track, untracked, would carry it to
// another session from the pool).
func (h *held) pinned(rt *live.Runtime, s *session) bool {
	return h.inTrx || h.maybeTrx || h.nextTrx || h.flags.MultiplexDisabled() || h.warnings || h.autoIncDelay > 0 || h.cursors > 0 || h.untracked != "" ||
		!rt.Router.Multiplexing || s.lockedHG == h.hg || s.user.FastForward || rt.Router.NoMultiplex[h.hg]
}

// noteTrx records whether h is in a transaction after a response with the
// server status status: autocommit=0 counts as one
// (mysql-autocommit_false_is_transaction) where the connection has it, not
// on one a read ran on with autocommit=1.
func (h *held) noteTrx(rt *live.Runtime, status uint16) {
	h.inTrx = status&wire.StatusInTrans != 0 || (rt.Router.AutocommitFalseIsTrx && !h.bc.State().Autocommit)
}

// heldConns are the connections attached to a session: at most one per
// hostgroup, usually none (multiplexing returns them after every query).
type heldConns struct {
	list []*held
}

func (hc *heldConns) find(hg int) *held {
	for _, h := range hc.list {
		if h.hg == hg {
			return h
		}
	}
	return nil
}

func (hc *heldConns) attach(h *held) {
	if !h.attached {
		h.attached = true
		hc.list = append(hc.list, h)
	}
}

func (hc *heldConns) detach(h *held) {
	if !h.attached {
		return
	}
	h.attached = false
	for i, x := range hc.list {
		if x == h {
			hc.list = append(hc.list[:i], hc.list[i+1:]...)
			return
		}
	}
}

// inTransaction reports whether any attached connection is in a transaction.
func (hc *heldConns) inTransaction() bool {
	for _, h := range hc.list {
		if h.inTrx {
			return true
		}
	}
	return false
}

// mayBeInTransaction is inTransaction, counting the connections whose
// last statement failed with no status (held.maybeTrx): what must reach
// the server — a COMMIT, a ROLLBACK — or wait for it — a graceful close.
func (hc *heldConns) mayBeInTransaction() bool {
	for _, h := range hc.list {
		if h.inTrx || h.maybeTrx {
			return true
		}
	}
	return false
}

// noteHandler counts the handlers open on h after a HANDLER statement
// (digest), ok when it succeeded: the connection stays with the session
// while one is open (rules.FlagHandler), and goes back to the pool once the
// last is closed (it never did: a session that had used HANDLER held its
// connection for good, and a few such sessions ran the pool dry).
func (h *held) noteHandler(digest []byte, ok bool) {
	if ok {
		switch handlerVerb(digest) {
		case "OPEN":
			h.handlers++
		case "CLOSE":
			h.handlers = max(h.handlers-1, 0)
		}
	}
	if h.handlers > 0 {
		h.flags |= rules.FlagHandler
	} else {
		h.flags &^= rules.FlagHandler
	}
}

// handlerVerb returns the word after the table of "HANDLER t …" (OPEN,
// READ, CLOSE), upper-cased; "" when there is none.
func handlerVerb(q []byte) string {
	i := len("HANDLER ")
	for i < len(q) && q[i] == ' ' {
		i++
	}
	for i < len(q) && q[i] != ' ' { // the table: name, db.name, `quoted`
		if q[i] == '`' {
			for i++; i < len(q) && q[i] != '`'; i++ {
			}
		}
		i++
	}
	for i < len(q) && q[i] == ' ' {
		i++
	}
	j := i
	for j < len(q) && q[j] != ' ' && q[j] != ';' {
		j++
	}
	return strings.ToUpper(string(q[i:j]))
}

// nextTransactionSet reports whether a SET TRANSACTION for the next
// transaction waits on one of the session's connections.
func (hc *heldConns) nextTransactionSet() bool {
	for _, h := range hc.list {
		if h.nextTrx {
			return true
		}
	}
	return false
}

// closeAll closes every attached connection: they hold session state that
// must not leak into the pool (reference §5.2, #1107).
func (hc *heldConns) closeAll(s *session) {
	for _, h := range hc.list {
		h.attached = false
		_ = h.bc.Close()
	}
	hc.list = hc.list[:0]
}

// credentials returns how to log in to backends as user: the backend row's
// clear-text password, or SHA1(password) recovered from a client login when
// only the hash is stored.
func (r *Router) credentials(rt *live.Runtime, user string) (*backend.Credentials, *wire.SQLError) {
	u := rt.BackendUsers[user]
	if u == nil {
		return nil, errNoBackendUser(user)
	}
	cred := &backend.Credentials{User: user}
	if stage2, ok := wire.ParseNativeHash(u.Password); ok || wire.IsCachingSha2Hash(u.Password) {
		// Hashed: SHA1(password) from a client's login (native scramble or
		// caching_sha2 full authentication).
		v, found := r.stage1.Load(user)
		if !found || (ok && len(stage2) == 0) {
			return nil, errNoStage1(user)
		}
		cred.Stage1 = v.([]byte)
	} else {
		cred.Password = u.Password
	}
	return cred, nil
}

// acquire returns a connection of hostgroup hg synced to the session state:
// the one already attached to the session for hg, or one from a server's
// pool chosen by the balancing policy. Errors are ready for the client.
//
// With autocommitRead (a read of a session with autocommit=0 under
// mysql-enforce_autocommit_on_reads=false) the connection is synced with
// autocommit=1 instead, as ProxySQL leaves it for such reads, unless the
// hostgroup's connection is already in a transaction (autocommit=0 on it).
func (s *session) acquire(rt *live.Runtime, hg int, createNew, autocommitRead bool) (*held, *wire.SQLError) {
	h, e := s.acquireSynced(rt, hg, createNew, autocommitRead)
	switch {
	case e == nil:
		s.unconfirmed = false // a backend took the session state
	case s.unconfirmed && e.Code == 1049:
		// The schema of a USE the proxy answered itself does not exist:
		// the session is back in its schema, as after a failed USE on a
		// server; SETs answered since are still to be confirmed.
		s.state.Schema = s.beforeSet.Schema
	case s.unconfirmed && e.Code != 9001 && e.Code != 1045:
		// The server refused state the session set with a SET the proxy
		// answered itself (an unknown variable, a bad value). MySQL would
		// have failed that SET; here the next statement carries the error,
		// and the session drops those settings instead of failing every
		// statement from now on.
		s.state, s.unconfirmed = s.beforeSet, false
	}
	return h, e
}

// syncHeld gives the connections attached to the session the session
// state now, for a SET or USE the proxy answers itself: a server that
// refuses it (1049 no such schema, 1298 a bad time zone…) fails the SET or
// USE, as a direct connection does. Answered lazily, the refusal came with
// the next statement, and the connection — its transaction, temporary
// tables, locks — was reset to clear the state it refused. A connection
// that died is left to the next statement, which tells what was lost.
func (s *session) syncHeld(rt *live.Runtime) *wire.SQLError {
	if len(s.conns.list) == 0 {
		return nil
	}
	cred, e := s.credentials(rt)
	if e != nil {
		return e
	}
	for _, h := range s.conns.list {
		err := h.bc.Sync(context.Background(), rt.Backend, cred, &s.state)
		if se, ok := backend.IsSQLError(err); ok {
			return se
		}
		if err == nil {
			h.noteTrx(rt, h.bc.Status()) // autocommit=1 commits an open transaction
		}
	}
	return nil
}

// syncHeldFor is syncHeld for a tracked SET that a server may refuse: a
// variable set to a value only the server can judge (time_zone,
// sql_mode…), a character set. autocommit and the transaction's isolation
// and access mode take only values the proxy parsed, so they stay lazy:
// drivers toggle them around every transaction (Connector/J's
// setAutoCommit, setTransactionIsolation), and applied one by one they
// cost a round trip each that the next statement's sync folds away.
func (s *session) syncHeldFor(rt *live.Runtime, set *sqlscan.SetStatement) *wire.SQLError {
	for i := range set.Assignments {
		switch set.Assignments[i].Kind {
		case sqlscan.AssignVariable, sqlscan.AssignNames, sqlscan.AssignCharset:
			return s.syncHeld(rt)
		}
	}
	return nil
}

// noteUnconfirmed records prev, the session state before a SET or USE the
// proxy answers itself, until a backend connection accepts the new one.
func (s *session) noteUnconfirmed(prev *backend.State) {
	if !s.unconfirmed {
		s.beforeSet, s.unconfirmed = *prev, true
	}
}

func (s *session) acquireSynced(rt *live.Runtime, hg int, createNew, autocommitRead bool) (*held, *wire.SQLError) {
	ctx := context.Background()
	want := &s.state
	if autocommitRead {
		if h := s.conns.find(hg); h == nil || h.bc.State().Autocommit {
			s.readState = s.state
			s.readState.Autocommit = true
			want = &s.readState
		}
	}
	for i, l := range s.lostOn {
		if l.hg == hg {
			// The proxy closed this hostgroup's connection between commands
			// (OFFLINE_HARD) with state it could not carry: say so, once.
			s.lostOn = append(s.lostOn[:i], s.lostOn[i+1:]...)
			if l.what != "" {
				return nil, errLostState(hg, l.addr, l.what)
			}
			break
		}
	}
	if h := s.conns.find(hg); h != nil {
		cred, e := s.credentials(rt)
		if e != nil {
			return nil, e
		}
		err := h.bc.Sync(ctx, rt.Backend, cred, want)
		if err == nil {
			// The session's own connection: no pool get, as in ProxySQL,
			// whose ConnPool_get_conn_* count neither.
			return h, nil
		}
		if se, ok := backend.IsSQLError(err); ok {
			return nil, se
		}
		// The attached connection died. What the proxy can carry goes on
		// with another connection (replayed below); what it cannot is lost,
		// and the client is told what.
		if e := s.lose(h); e != nil {
			return nil, e
		}
	}
	cred, e := s.credentials(rt)
	if e != nil {
		return nil, e
	}
	spare := s.spare
	s.spare = nil
	h, e := s.borrow(rt, hg, cred, want, createNew, spare)
	if e != nil {
		s.spare = spare
		s.r.stats.Add(s.id, stats.ConnPoolGetConnFailure, 1)
		return nil, e
	}
	s.r.stats.Add(s.id, stats.ConnPoolGetConnSuccess, 1)
	if c := s.carryFor(hg, false); c != nil && !c.empty() && !h.attached {
		// The session's connection of this hostgroup was lost: this one
		// takes over the state the proxy carries for it.
		if err := s.replay(rt, h, c); err != nil {
			s.discard(h)
			s.dropCarry(hg)
			s.log.Warn().Err(err).Int("hostgroup", hg).Msg("session state could not be replayed on a new backend connection")
			return nil, errLostState(hg, h.addr, err.Error())
		}
		s.conns.attach(h)
	}
	return h, nil
}

// lose discards h, a connection that failed, and settles what it held: the
// state the proxy carries stays with the session for the next connection;
// an error naming the rest is returned when there was any (nil when nothing
// is lost).
func (s *session) lose(h *held) *wire.SQLError {
	pinned := h.pinnedBy()
	trx := h.inTrx || h.maybeTrx && !s.state.Autocommit
	if h.inTrx {
		s.trxHG = -1
	}
	s.discard(h)
	if pinned == "" {
		return nil
	}
	if trx {
		// The client ends it (lostTransaction) before anything else runs.
		s.trxLost = &lostState{hg: h.hg, addr: h.addr, what: pinned, trx: true}
	}
	s.log.Warn().Str("backend", h.addr).Int("hostgroup", h.hg).Str("lost", pinned).Msg("backend connection lost with session state the proxy cannot carry")
	return errLostState(h.hg, h.addr, pinned)
}

// dropCarry forgets the carried state of hostgroup hg (the client was told
// it is lost).
func (s *session) dropCarry(hg int) {
	for i, c := range s.carry {
		if c.hg == hg {
			s.carry = append(s.carry[:i], s.carry[i+1:]...)
			return
		}
	}
}

// credentials returns the session user's backend credentials, cached until
// the runtime configuration changes.
func (s *session) credentials(rt *live.Runtime) (*backend.Credentials, *wire.SQLError) {
	if s.cred != nil && s.credRT == rt && s.cred.User == s.username {
		return s.cred, nil
	}
	cred, e := s.r.credentials(rt, s.username)
	if e != nil {
		if s.cred != nil && s.cred.User == s.username {
			// The user was removed or deactivated since the session logged
			// in, or given a hashed password no client has logged in with
			// yet: the session goes on with the credentials it had, as a
			// ProxySQL session keeps those it logged in with — a LOAD
			// changes who may log in, not the sessions in progress (their
			// ROLLBACK among them).
			s.credRT = rt
			return s.cred, nil
		}
		return nil, e
	}
	s.cred, s.credRT = cred, rt
	return cred, nil
}

// keepLoginCredentials records the backend credentials of the user the
// session has just logged in (or changed to) as, for credentials to fall
// back on.
func (s *session) keepLoginCredentials(rt *live.Runtime) {
	s.cred, s.credRT = nil, nil
	_, _ = s.credentials(rt)
}

// borrow takes a connection from the pool of a server of hostgroup hg,
// retrying other servers (and the same ones) until
// mysql-connect_timeout_server_max, then ERR 9001 as ProxySQL. A connection
// already in the wanted state is taken without I/O or allocation
// (Pool.TryGet); only a miss pays for a deadline, a sync or a new
// connection. spare, if not nil, is reused for the result. Each failed
// connect is an error of its server in stats_mysql_errors and
// mysql_error_total, as in ProxySQL.
func (s *session) borrow(rt *live.Runtime, hg int, cred *backend.Credentials, st *backend.State, createNew bool, spare *held) (*held, *wire.SQLError) {
	r, avoid := s.r, s.avoid
	if !createNew {
		if srv := r.pick(rt, hg, avoid); srv != nil {
			if bc := srv.Pool().TryGet(rt.Backend, cred.User, st, st.Fingerprint()); bc != nil {
				return fillHeld(spare, bc, srv, hg), nil
			}
		}
	}
	start := time.Now()
	deadline := start.Add(rt.Router.ConnectTimeoutMax)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var lastErr, tlsErr error
	var tlsSrv *backend.Server
	failures := 0                 // failed connects (mysql-connect_retries_on_failure)
	var refused []*backend.Server // servers that refused the credentials
	var authErr *wire.SQLError
	for {
		srv := r.pickFrom(rt, hg, avoid, refused)
		if srv == nil && refused != nil {
			return nil, authErr
		}
		pause := 10 * time.Millisecond // no server to try: look again soon
		if srv != nil {
			bc, err := srv.Pool().Get(ctx, rt.Backend, cred, st)
			if err == nil {
				r.noteServerVersion(rt, bc)
				return fillHeld(spare, bc, srv, hg), nil
			}
			if se, ok := backend.IsSQLError(err); ok && !errors.Is(err, backend.ErrConnect) && !errors.Is(err, backend.ErrAuth) {
				return nil, se // the server refused the session state (unknown schema…)
			}
			if se, ok := backend.IsSQLError(err); ok && errors.Is(err, backend.ErrAuth) {
				// Wrong credentials for this server: retrying it will not
				// help, but another server of the hostgroup may take them
				// (a password changed on one server first, in a rolling
				// change; ProxySQL picks again after a failed connect too).
				refused, authErr = append(refused, srv), se
				s.noteError(hg, srv, se.Code, se.Message)
				continue
			}
			if backend.LocalShortage(err) {
				// Out of file descriptors (or ports): said at once, not
				// after connect_timeout_server_max of vain retries.
				r.log.Error().Err(err).Int("hostgroup", hg).Msg("no backend connection: the proxy is out of resources")
				return nil, errLocalShortage(err)
			}
			lastErr = err
			if errors.Is(err, backend.ErrTLS) && ctx.Err() == nil {
				// Said to the client if nothing connects; a handshake cut
				// short by this command's own deadline says nothing of
				// the server and does not replace an earlier reason.
				tlsErr, tlsSrv = err, srv
			}
			s.noteConnectError(hg, srv, err)
			if failures++; failures > rt.Backend.ConnectRetries {
				// mysql-connect_retries_on_failure spent: ProxySQL's 9002,
				// before connect_timeout_server_max if that comes later;
				// a TLS failure says why.
				r.log.Debug().Err(err).Int("hostgroup", hg).Int("attempts", failures).Msg("no backend connection")
				e := errMaxConnectFailure(hg)
				if tlsErr != nil {
					e.Message += ": " + tlsReason(tlsSrv, tlsErr)
				}
				return nil, e
			}
			pause = rt.Router.ConnectRetriesDelay // mysql-connect_retries_delay
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if authErr != nil {
				return nil, authErr // the one answer a server gave
			}
			if lastErr != nil {
				r.log.Debug().Err(lastErr).Int("hostgroup", hg).Msg("no backend connection")
			}
			r.stats.Add(uint64(hg), stats.MaxConnectTimeouts, 1)
			e := errMaxConnectTimeout(hg, rt.Router.ConnectTimeoutMax.Milliseconds())
			if tlsErr != nil {
				e.Message += ": " + tlsReason(tlsSrv, tlsErr)
			}
			if fp, ok := rt.Policy.(interface {
				LabelRefusesAll([]*backend.Server) bool
			}); ok && fp.LabelRefusesAll(r.cfg.Registry.Hostgroup(hg)) {
				e.Message += ": label isolation — no usable server of the hostgroup carries this proxy's value of " +
					"mysql-balance_label_name (mysql-proxy_labels, mysql_servers_balance.labels)"
			}
			return nil, e
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
}

// fillHeld wraps bc, reusing h when it is not nil.
func fillHeld(h *held, bc *backend.BackendConn, srv *backend.Server, hg int) *held {
	if h == nil {
		h = new(held)
	}
	*h = held{bc: bc, server: srv, hg: hg, addr: srv.Addr()}
	return h
}

// pick chooses a server of hostgroup hg with the configured policy. A
// hostgroup with more ONLINE servers than its mysql_hostgroup_attributes
// max_num_online_servers gets none, as in ProxySQL (a guard against a
// misconfigured writer hostgroup): its queries wait, then ERR 9001.
// A server to avoid (nil: none) is passed over while another can be used.
// When none can be used, an automatically shunned server is tried again
// after a tenth of its recovery time (Server.UnshunEarly).
func (r *Router) pick(rt *live.Runtime, hg int, avoid *backend.Server) *backend.Server {
	return r.pickFrom(rt, hg, avoid, nil)
}

// pickFrom is pick never choosing a server of refused (servers that
// refused the session's credentials); nil when no other can be picked.
func (r *Router) pickFrom(rt *live.Runtime, hg int, avoid *backend.Server, refused []*backend.Server) *backend.Server {
	servers := r.cfg.Registry.Hostgroup(hg)
	if overOnline(rt, hg, servers) {
		r.logOverOnline(rt, hg, servers)
		return nil
	}
	if len(refused) > 0 {
		// A retry after a refused login (this copy is made on that error
		// path only).
		servers = slices.DeleteFunc(slices.Clone(servers), func(s *backend.Server) bool { return slices.Contains(refused, s) })
	}
	if i := slices.Index(servers, avoid); avoid != nil && i >= 0 && len(servers) > 1 {
		// A retry after a refusal: another server if one can be used (this
		// copy is made on that error path only).
		others := append(slices.Clip(servers[:i]), servers[i+1:]...)
		if srv := rt.Policy.Pick(others); srv != nil {
			return srv
		}
	}
	if srv := rt.Policy.Pick(servers); srv != nil {
		return srv
	}
	// No server can be used: ProxySQL's desperate pass (#531) brings back
	// a shunned one after a tenth of its recovery time.
	back := false
	for _, srv := range servers {
		if srv.Status() == backend.StatusShunned && srv.UnshunEarly() {
			back = true
		}
	}
	if back {
		return rt.Policy.Pick(servers)
	}
	return nil
}

// overOnline reports whether hostgroup hg has more ONLINE servers than
// its max_num_online_servers: it then takes no traffic, moves included.
func overOnline(rt *live.Runtime, hg int, servers []*backend.Server) bool {
	limit, ok := rt.Router.MaxOnline[hg]
	return ok && onlineCount(servers) > limit
}

// logOverOnline says why a hostgroup takes no traffic, at most every 10 s
// (as ProxySQL): its queries end in 9001 with every server healthy.
func (r *Router) logOverOnline(rt *live.Runtime, hg int, servers []*backend.Server) {
	now := time.Now().Unix()
	last := r.overOnlineLogged.Load()
	if now-last < 10 || !r.overOnlineLogged.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn().Int("hostgroup", hg).Int("num_online_servers", onlineCount(servers)).
		Int("max_online_servers", rt.Router.MaxOnline[hg]).
		Msg("more ONLINE servers in the hostgroup than its max_num_online_servers (mysql_hostgroup_attributes): it takes no traffic")
}

func onlineCount(servers []*backend.Server) int {
	n := 0
	for _, s := range servers {
		if s.Status() == backend.StatusOnline {
			n++
		}
	}
	return n
}

// release returns the connection to its pool, or keeps it attached to the
// session when ProxySQL would (reference §5.2).
func (s *session) release(rt *live.Runtime, h *held) {
	if h.pinned(rt, s) {
		s.conns.attach(h)
		return
	}
	s.conns.detach(h)
	if rt.Router.AutocommitFalseNotReusable && !h.bc.State().Autocommit {
		// mysql-autocommit_false_not_reusable: no other session gets a
		// connection left with autocommit=0.
		_ = h.bc.Close()
		return
	}
	if h.bc.Statements() > rt.Router.MaxStmtsPerConn {
		// Too many statements prepared on one connection (ProxySQL's
		// mysql-max_stmts_per_connection): close them so the server's
		// max_prepared_stmt_count is not exhausted; they are prepared again
		// where they are next executed.
		s.r.stats.Add(s.id, stats.ComBackendStmtClose, int64(h.bc.Statements()))
		if err := h.bc.CloseStatements(); err != nil {
			_ = h.bc.Close()
			return
		}
	}
	h.server.Pool().Put(h.bc)
	if s.spare == nil {
		*h = held{}
		s.spare = h
	}
}

// discard closes a connection whose state is unknown or broken.
func (s *session) discard(h *held) {
	s.conns.detach(h)
	h.dead = true
	h.bc.MarkBroken()
	_ = h.bc.Close()
}

// noteServerVersion warns, once, when a server is MariaDB and the proxy
// presents itself as MySQL (mysql-server_version, ProxySQL's default
// 8.0.11): drivers then speak MySQL 8 to a MariaDB server — MariaDB
// Connector/J reads and sets @@transaction_isolation, which MariaDB before
// 11.1 does not have, so its getTransactionIsolation() and connection
// pools that set the isolation fail.
func (r *Router) noteServerVersion(rt *live.Runtime, bc *backend.BackendConn) {
	if r.versionNoted.Load() {
		return
	}
	v := bc.ServerVersion()
	if !live.MariaDBVersion(v) || live.MariaDBVersion(rt.Router.ServerVersion) || !r.versionNoted.CompareAndSwap(false, true) {
		return
	}
	r.log.Warn().Str("server", bc.Server().Addr()).Str("server_version", v).Str("mysql-server_version", rt.Router.ServerVersion).
		Msg("the servers are MariaDB but clients are told MySQL " + rt.Router.ServerVersion + " (mysql-server_version): MySQL 8 drivers' " +
			"behaviour may fail on MariaDB (MariaDB Connector/J's @@transaction_isolation before MariaDB 11.1); " +
			"set mysql-server_version to the servers' version, e.g. '" + v + "'")
}
