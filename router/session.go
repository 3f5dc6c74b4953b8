package router

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// session is one client connection. It is owned by one goroutine (run);
// other goroutines only call kill.
type session struct {
	r   *Router
	id  uint64
	nc  net.Conn
	c   *wire.Conn
	log zerolog.Logger

	clientAddr string // ip:port
	clientIP   string
	proxyAddr  string
	proxyPort  int

	user     *config.User // the frontend row the client logged in as
	username string
	caps     uint32 // capabilities both sides agreed on
	depr     bool   // CLIENT_DEPRECATE_EOF towards the client

	state backend.State // what the client believes its session looks like
	// readState is state with autocommit=1, for a read that
	// mysql-enforce_autocommit_on_reads=false runs outside a transaction.
	readState backend.State
	// beforeSet is the state before the SETs the proxy answered itself
	// that no backend has accepted yet (unconfirmed): restored if the
	// server refuses them.
	beforeSet   backend.State
	unconfirmed bool
	// bytesCounted: the client connection's bytes read and written already
	// added to Queries_frontends_bytes_recv/_sent.
	bytesCounted [2]uint64
	salt         []byte // the handshake salt (COM_CHANGE_USER scrambles with it)

	// Routing state (reference §4.5).
	lockedHG int // locked_on_hostgroup after an unparseable SET, or -1
	// completionRelease: the session set completion_type=RELEASE, so a
	// COMMIT or ROLLBACK ends it (releasesSession).
	completionRelease bool
	aiTimer           *time.Timer // armAutoIncTimer
	aiArmed           bool        // aiTimer is set (a session that once inserted stops no timer per command)
	trxHG             int         // transaction_persistent hostgroup while a transaction is open, or -1
	nextFlagIN        int         // next_query_flagIN, or -1
	lastWrite         int         // hostgroup of the last write that produced an insert id, or -1
	lastID            uint64
	warningsHG        int // hostgroup whose connection has pending warnings, or -1

	conns  heldConns            // backend connections attached to the session
	spare  *held                // a released held, reused by the next acquire
	avoid  *backend.Server      // refused or failed the command being retried: another server is picked if one can be
	cred   *backend.Credentials // backend login of the session user, for credRT
	credRT *live.Runtime

	digester     *sqlscan.Digester
	digesterOpts sqlscan.Options
	digest       sqlscan.Digest
	query        rules.Query
	decision     rules.Decision
	req          request     // the command's backend request (exec.go), reused
	carry        []*carried  // state of pinned connections the proxy can replay (carry.go)
	lostOn       []lostState // connections closed outside a command, to report (migrate.go)
	// trxLost: a transaction the session had open was lost with its
	// backend connection, and the client was told (ERR 1927). Until the
	// client ends it, its statements are refused (lostTransaction).
	trxLost *lostState
	// diagErr and diagWarnings are what the session's previous statement
	// ended with: its error (nil: none) and its warning count (diag.go).
	diagErr      *wire.SQLError
	diagWarnings uint16
	diag         diagStmt // what this command is to them (diag.go)
	// rowCount is ROW_COUNT() after the session's previous statement: the
	// rows an OK reported, -1 after a result set or an error.
	rowCount int64
	// foundRows is FOUND_ROWS() after the previous statement, when the
	// proxy read it (foundRowsKnown) before reading back the user
	// variables that statement set.
	foundRows      uint64
	foundRowsKnown bool

	// cmdMu is held while the session runs a command; the drain loop takes
	// it (TryLock) to migrate an idle session (migrate.go).
	cmdMu    sync.Mutex
	pending  atomic.Pointer[migration] // a migration asked of the session
	varNames []string                  // scratch for captureUserVars
	sink     backend.Sink              // where backend responses go: the client, or nowhere
	stmts    stmtMap
	scratch  []byte
	tee      wire.Tee // the query cache's copy of a response (qcache.go)
	cacheKey []byte
	longData []byte // a COM_STMT_SEND_LONG_DATA packet being replayed

	// headless sessions run the mirror's copies: no client, errors are
	// kept in lastErr instead of being sent.
	headless bool
	lastErr  *wire.SQLError

	killed  atomic.Bool
	running runningSlot // the backend query in flight, for KILL QUERY
	// killCut: a KILL QUERY cut the running query's backend connection
	// (its server could not be reached to stop it): the query ends with
	// 1317, as a killed query, and is not repeated elsewhere.
	killCut atomic.Bool
	// killAt is the start (pub.since) of the command the proxy killed, as
	// ProxySQL's killed_at: a KILL QUERY that reached it before it ran on
	// a server stops it with 1317 instead of it being sent; the 1317 of one
	// killed on its server is the proxy's error in
	// proxysql_mysql_error_total.
	killAt atomic.Int64
	// deadline is when the backend query in flight times out (unix ns; 0:
	// none in flight); timedOut is the deadline the watchdog acted on.
	deadline atomic.Int64
	timedOut atomic.Int64

	cmdRT *live.Runtime // the runtime the current command runs under

	// Stats tables (router/stats.go).
	cmdStart time.Time // when the current command began
	armed    time.Time // when the wait_timeout read deadline was last set (zero: none is)
	// modeFlags are the status bits the session's sql_mode sets
	// (SERVER_STATUS_NO_BACKSLASH_ESCAPES, SERVER_STATUS_ANSI_QUOTES):
	// drivers escape strings by them (mysql_real_escape_string), so every
	// status the proxy writes itself must carry them as the server would.
	modeFlags uint16
	// csMemo remembers the Dialect of the session's client character set
	// (dialect) for the state it was worked out from.
	csMemo csMemo
	// csServer is the client character set a server reported after a
	// statement that changed it out of the proxy's sight
	// (readClientCharset); "" when the tracked state says it.
	csServer string
	ownMode  bool        // the session set sql_mode (else it has the servers' default)
	cs       cmdStats    // the current query, recorded when its command ends
	sq       stats.Query // reused record passed to the collector
	pub      procInfo    // this session's stats_mysql_processlist row
	pubDB    string      // the schema and user last published in pub
	pubUser  string
	pubTrx   bool      // counted in Active_Transactions
	quit     bool      // the client sent COM_QUIT (else the session counts as aborted)
	created  time.Time // when the client logged in
}

func newSession(r *Router, nc net.Conn) *session {
	s := &session{
		r: r, id: sessionIDBase + r.nextID.Add(1), nc: nc,
		lockedHG: -1, trxHG: -1, nextFlagIN: -1, lastWrite: -1, warningsHG: -1,
	}
	s.clientAddr = nc.RemoteAddr().String()
	s.clientIP = s.clientAddr
	if h, _, err := net.SplitHostPort(s.clientAddr); err == nil {
		s.clientIP = h
	}
	s.proxyAddr = nc.LocalAddr().String()
	if h, p, err := net.SplitHostPort(s.proxyAddr); err == nil {
		s.proxyAddr = h
		s.proxyPort, _ = strconv.Atoi(p)
	}
	s.log = r.log.With().Uint64("session", s.id).Str("client", s.clientAddr).Logger()
	return s
}

// proxied takes the client's address from a PROXY protocol header (read
// before the handshake response) when the peer that sent it is one of
// mysql-proxy_protocol_networks: query rules (client_addr), the processlist,
// the events and audit logs and error messages then name the relayed
// client. A header from another peer, one that names no client (UNKNOWN,
// LOCAL) or one that does not parse is skipped, and the connection's own
// peer stands, as in ProxySQL; the skip is logged (at most 10 lines a
// second with failed logins).
func (s *session) proxied(rt *live.Runtime, h *wire.ProxyHeader) {
	why := ""
	switch {
	case !rt.Router.ProxyNetworks.Contains(s.nc.RemoteAddr()):
		why = "the peer is not in mysql-proxy_protocol_networks"
	case h.Err != nil:
		why = h.Err.Error()
	case !h.Source.IsValid():
		return // UNKNOWN / LOCAL: the balancer's own connection
	}
	if why != "" {
		s.r.loginLog.Event(time.Now(), s.log.Warn, "more_not_logged").Int("version", h.Version).Str("reason", why).
			Msg("PROXY protocol header skipped")
		return
	}
	s.clientAddr = h.Source.String()
	s.clientIP = h.Source.Addr().Unmap().String()
	s.log = s.log.With().Str("proxied_client", s.clientAddr).Logger()
}

// loginFailed counts a failed login against the client's address in the
// client host error cache (hostcache.go).
func (s *session) loginFailed(rt *live.Runtime) {
	s.r.hosts.failed(s.clientIP, int(rt.Router.HostCacheSize), int(rt.Router.HostErrorCounts), time.Now())
}

// kill ends the session from another goroutine: closing the socket makes the
// owner's blocked read fail, and it cleans up.
func (s *session) kill() {
	if s.killed.CompareAndSwap(false, true) {
		s.nc.Close()
	}
}

// cut ends the session now (kill) and cuts the backend connection of the
// query it waits on, if any, so that its goroutine ends at once rather
// than when the server answers: the proxy's own stop (SIGTERM after the
// graceful timeout, PROXYSQL KILL / SHUTDOWN / RESTART / STOP) does not
// wait for the slowest query.
func (s *session) cut() {
	s.kill()
	if run := s.running.get(); run.server != nil && run.bc.AbortLease(run.lease) {
		s.r.killedConns.Add(1)
	}
}

// headless returns a session without a client, for a mirror worker.
func (r *Router) headless() *session {
	// No session id: ids are the clients' (KILL, CONNECTION_ID()), and a
	// headless session is never listed or killed.
	s := &session{r: r, headless: true,
		lockedHG: -1, trxHG: -1, nextFlagIN: -1, lastWrite: -1, warningsHG: -1}
	s.log = r.log.With().Str("session", "mirror").Logger()
	s.pub.hg.Store(-1)
	return s
}

// resetHeadless readies a headless session for a job of user u with the
// session state st.
func (s *session) resetHeadless(u *config.User, st *backend.State) {
	s.user, s.username = u, u.Username
	s.state = *st
	s.lockOn(-1)
	s.trxHG, s.warningsHG = -1, -1
	s.lastErr, s.trxLost = nil, nil
}

func (s *session) serve() {
	s.c = wire.NewClientConn(s.nc)
	s.sink.Client = s.c
	defer func() {
		// Taken for good: the drain loop must not touch the connections
		// being closed (its TryLock fails from now on).
		s.cmdMu.Lock()
		s.conns.closeAll(s)
		s.stmts.closeAll()
		s.countFrontendBytes()
		s.c.Close()
	}()
	rt := s.r.rt.Load()
	st := s.r.stats
	st.Add(s.id, stats.ClientConnectionsCreated, 1)
	st.Add(s.id, stats.ClientConnectionsConnected, 1)
	defer st.Add(s.id, stats.ClientConnectionsConnected, -1)
	// Until it logs in, a client holds a handshake slot, not one of
	// mysql-max_connections: sockets that never log in cannot lock real
	// clients out (handshakes.go).
	el := s.r.handshakes.enter(s, int(rt.Router.MaxConnections))
	ok := s.handshake(rt)
	s.r.handshakes.leave(el)
	if !ok {
		st.Add(s.id, stats.ClientConnectionsAborted, 1)
		return
	}
	s.r.hosts.succeeded(s.clientIP)
	defer s.r.clients.Add(-1)
	s.audit(eventlog.AuditClientConnectOK, "")
	created := time.Now()
	s.created = created
	defer func() { s.auditClose(created) }()
	s.pub.hg.Store(-1)
	s.pub.command.Store(cmdSleep)
	s.pub.since.Store(time.Now().UnixNano())
	s.publishIdentity()
	s.r.sessions.Store(s.id, s)
	defer s.r.sessions.Delete(s.id)
	if s.r.draining.Load() || s.r.closing.Load() {
		// Logged in while the data plane stops: Close and Stop end the
		// sessions they find in the map, and this one was not there yet.
		return
	}
	// The user the session ends as: a COM_CHANGE_USER moved the count to
	// its new user (changeuser.go).
	defer func() { s.r.userCounter(s.username).Add(-1) }()
	defer s.endSession()
	s.loop()
}

// loginMaxPayload bounds what a client that has not logged in can make the
// proxy read.
const loginMaxPayload = 64 << 10

// handshake runs the initial handshake and authentication. It reports
// whether the client is logged in.
func (s *session) handshake(rt *live.Runtime) bool {
	_ = s.nc.SetDeadline(time.Now().Add(rt.Router.ConnectTimeoutClient))
	defer s.nc.SetDeadline(time.Time{})
	salt := wire.NewSalt()
	s.salt = salt
	caps := wire.ServerCapabilities(rt.Router.DeprecateEOF)
	if rt.Router.HaveCompress {
		caps |= wire.ClientCompress
	}
	hs := &wire.InitialHandshake{
		ServerVersion: rt.Router.ServerVersion, ConnID: uint32(s.id), Salt: salt,
		Capabilities: caps, Charset: rt.Router.DefaultCollation, Status: wire.StatusAutocommit | backend.DefaultMode(),
		AuthPlugin: rt.Router.AuthPlugin,
	}
	if rt.Router.MariaDBCacheMetadata {
		// Presented as MariaDB, the proxy speaks as one: its clients may
		// cache prepared statements' metadata.
		hs.ExtCapabilities = wire.MariaDBCacheMetadata
	}
	// Bounded before login: a handshake response is far below 64 KiB, and a
	// peer's announced length earns no buffer it does not fill.
	s.c.SetMaxPayload(loginMaxPayload)
	defer s.c.SetMaxPayload(wire.DefaultMaxPayload)
	var tc *tls.Config
	if rt.Router.HaveSSL && s.r.cfg.TLS != nil {
		tc = s.r.cfg.TLS.Config()
	}
	resp, err := wire.ServerHandshake(s.c, hs, tc)
	if resp != nil && resp.Proxy != nil {
		s.proxied(rt, resp.Proxy)
	}
	switch {
	case errors.Is(err, wire.ErrTLSNotSupported):
		s.writeErr(errNoTLS())
		return false
	case errors.Is(err, wire.ErrRead) || errors.Is(err, wire.ErrWrite):
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.loginFailed(rt) // not done within mysql-connect_timeout_client
		}
		return false
	case err != nil:
		s.log.Debug().Err(err).Msg("bad handshake response")
		s.loginFailed(rt)
		s.writeErr(errBadHandshake())
		return false
	}
	if s.r.hosts.blocked(s.clientIP, int(rt.Router.HostCacheSize), int(rt.Router.HostErrorCounts)) {
		// mysql-client_host_error_counts failed logins: cut off, as
		// ProxySQL does, before the password is looked at.
		s.r.loginLog.Event(time.Now(), s.log.Info, "more_failures_not_logged").Int64("client_host_error_counts", rt.Router.HostErrorCounts).
			Msg("client host blocked after too many failed logins (PROXYSQL FLUSH MYSQL CLIENT HOSTS unblocks)")
		s.r.stats.Add(s.id, stats.ClientHostErrorKilledConnections, 1)
		return false
	}
	s.caps = resp.Capabilities & hs.Capabilities
	s.depr = s.caps&wire.ClientDeprecateEOF != 0
	s.c.MetaFollows = resp.ExtCapabilities&hs.ExtCapabilities&wire.MariaDBCacheMetadata != 0
	s.username = resp.User
	// Clients that opened with another plugin (MySQL 8's
	// caching_sha2_password) were switched to mysql_native_password, which
	// lets the proxy recover SHA1(password) for backend logins.
	reply := resp.AuthResponse
	u := rt.Frontend[resp.User]
	usingPassword := len(reply) > 0
	_, encrypted := s.c.TLSState()
	var verified bool
	if u != nil && resp.AuthPlugin != wire.AuthCachingSha2 && wire.IsCachingSha2Hash(u.Password) {
		// A user stored as a caching_sha2_password hash: a native
		// scramble cannot be checked against it, so the client is
		// switched to that plugin, as a MySQL 8 server switches to the
		// account's (MariaDB Connector/J 2.x answers with native).
		salt = wire.NewSalt()
		s.salt = salt
		r, err := s.c.AuthSwitch(wire.AuthCachingSha2, salt)
		if err != nil {
			return false
		}
		reply, resp.AuthPlugin = r, wire.AuthCachingSha2
		usingPassword = len(reply) > 0
	}
	if u != nil {
		if resp.AuthPlugin == wire.AuthCachingSha2 {
			verified = s.verifySha2(u, salt, reply, encrypted)
		} else {
			verified = s.verify(u, salt, reply)
		}
	}
	if !verified {
		s.r.stats.Add(s.id, stats.AccessDeniedWrongPassword, 1)
		s.audit(eventlog.AuditClientConnectERR, "access denied")
		s.r.loginLog.Event(time.Now(), s.log.Info, "more_failures_not_logged").Str("user", clip(resp.User, maxEchoedName)).
			Msg("access denied")
		s.loginFailed(rt)
		s.writeErr(errAccessDenied(resp.User, s.clientIP, usingPassword))
		return false
	}
	// mysql_users.use_ssl=1: the password was right, the link is not
	// encrypted — refused, as ProxySQL does.
	if u.UseSSL && !encrypted {
		s.loginFailed(rt)
		s.r.stats.Add(s.id, stats.AccessDeniedWrongPassword, 1)
		s.audit(eventlog.AuditClientConnectERR, "SSL is required")
		s.writeErr(errSSLRequired(resp.User, s.clientIP, usingPassword))
		return false
	}
	// A character set statements cannot be parsed in: refused as the
	// servers do (the session could not send a query in it).
	if e := loginCharsetRefused(resp.Charset); e != nil {
		s.audit(eventlog.AuditClientConnectERR, e.Message)
		s.writeErr(e)
		return false
	}
	if e := schemaLockedRefused(u, resp.DB); e != nil {
		s.audit(eventlog.AuditClientConnectERR, e.Message)
		s.writeErr(e)
		return false
	}
	// mysql-max_connections counts logged-in clients only.
	if n := s.r.clients.Add(1); n > rt.Router.MaxConnections {
		s.r.clients.Add(-1)
		s.r.stats.Add(s.id, stats.AccessDeniedMaxConnections, 1)
		s.audit(eventlog.AuditClientConnectERR, "mysql-max_connections reached")
		s.writeErr(errTooManyConnections())
		return false
	}
	uc := s.r.userCounter(u.Username)
	// max_connections=0 admits nobody, as in ProxySQL (a slot is handed
	// out only while max_connections > connections used).
	if n := uc.Add(1); n > int64(u.MaxConnections) {
		s.r.clients.Add(-1)
		uc.Add(-1)
		s.r.stats.Add(s.id, stats.AccessDeniedMaxUserConnections, 1)
		s.audit(eventlog.AuditClientConnectERR, "max_connections of the user reached")
		s.writeErr(errUserConnections(u.Username, u.MaxConnections))
		return false
	}
	s.user = u
	s.keepLoginCredentials(rt)
	s.state = initialState(rt, u, resp)
	s.modeFlags = backend.DefaultMode()
	s.digester, s.digesterOpts = sqlscan.NewDigester(rt.Digest), rt.Digest
	if err := s.c.WriteOK(0, 0, s.status(), 0, ""); err != nil {
		uc.Add(-1)
		s.r.clients.Add(-1)
		return false
	}
	if err := s.c.Flush(); err != nil {
		uc.Add(-1)
		s.r.clients.Add(-1)
		return false
	}
	if s.caps&wire.ClientCompress != 0 {
		// Everything after the login's OK is compressed.
		_ = s.c.StartCompression(rt.Router.CompressionLevel)
	}
	return true
}

// verify checks the client's mysql_native_password reply against the stored
// password, clear or hashed. With a hashed password it also recovers
// SHA1(password) from the reply and keeps it for backend logins of the user.
func (s *session) verify(u *config.User, salt, reply []byte) bool {
	if u.Password == "" {
		return len(reply) == 0
	}
	if len(reply) == 0 {
		return false
	}
	if stage2, ok := wire.ParseNativeHash(u.Password); ok {
		stage1, ok := wire.RecoverStage1(salt, reply, stage2)
		if ok {
			s.r.stage1.Store(u.Username, stage1)
		}
		return ok
	}
	return wire.VerifyNativeClear(salt, reply, u.Password)
}

func (s *session) writeErr(e *wire.SQLError) {
	if s.headless {
		s.lastErr = e
		return
	}
	s.r.stats.Add(s.id, stats.GeneratedErrorPackets, 1)
	s.noteOutcome(e, 0, -1)
	_ = s.c.WriteError(e)
	_ = s.c.Flush()
}

// status is the server status the client should see now.
func (s *session) status() uint16 {
	st := s.modeFlags
	if s.state.Autocommit {
		st |= wire.StatusAutocommit
	}
	if s.conns.inTransaction() {
		st |= wire.StatusInTrans
	}
	return st
}

// loop reads and runs commands until the client quits or fails.
func (s *session) loop() {
	for {
		s.c.ResetSeq()
		cur := s.r.rt.Load()
		// mysql-max_allowed_packet bounds what the client may send: a
		// larger packet is read to its end, dropped, and answered 1153.
		s.c.SetMaxPayload(cur.Router.MaxAllowedPacket)
		// mysql-wait_timeout closes idle clients. Moving the socket deadline
		// costs a timer update, so it is re-armed only once it has aged by a
		// hundredth of the timeout (at most a second): the deadline is then
		// late by no more than that, and the hot path skips the work. A LOAD
		// that changes the timeout moves idle sessions' deadlines itself
		// (Router.ApplyClientLimits), as it does the packet bound.
		if wt := cur.Router.WaitTimeout; wt > 0 {
			if now := time.Now(); now.Sub(s.armed) > min(wt/100, time.Second) {
				_ = s.nc.SetReadDeadline(now.Add(wt))
				s.armed = now
			}
		} else if !s.armed.IsZero() {
			_ = s.nc.SetReadDeadline(time.Time{})
			s.armed = time.Time{}
		}
		s.c.Idle() // no write buffer held while the client thinks
		p, err := s.c.ReadPacket()
		if err != nil {
			if errors.Is(err, wire.ErrPacketTooLarge) {
				s.writeErr(errPacketTooLarge())
				continue
			}
			if errors.Is(err, wire.ErrBadSequence) {
				// As MariaDB: said, then the connection closes (what
				// follows the packet cannot be trusted).
				s.writeErr(&wire.SQLError{Code: 1156, State: "08S01", Message: "Got packets out of order"})
				return
			}
			if !errors.Is(err, io.EOF) && !s.killed.Load() {
				s.log.Debug().Err(err).Msg("client read failed")
			}
			return
		}
		if len(p) == 0 {
			s.r.stats.Add(s.id, stats.MySQLUnexpectedFrontendPackets, 1)
			s.writeErr(errUnknownCommand())
			continue
		}
		// The command runs under the runtime published when it arrived,
		// from start to end.
		rt := s.r.rt.Load()
		s.cmdRT = rt
		// mysql-throttle_max_bytes_per_second_to_client, as the runtime
		// has it now (one comparison when there is no limit).
		if err := s.c.SetWriteLimit(rt.Router.ThrottleToClient); err != nil {
			return
		}
		s.cmdMu.Lock()
		s.beginCommand(p)
		s.reviewHeld(rt, s.cmdStart)
		ok := true
		if e := s.lostTransaction(p); e != nil {
			s.writeErr(e)
		} else {
			ok = s.dispatch(rt, p)
		}
		if ok {
			s.settle(rt)
		}
		s.endCommand()
		s.armAutoIncTimer(rt)
		s.publishServers()
		closing := s.r.draining.Load() && !s.conns.mayBeInTransaction()
		s.cmdMu.Unlock()
		if !ok || closing {
			// The proxy is closing: a session ends at its first safe point
			// (its response is out, no transaction open).
			return
		}
	}
}

// audit writes a connection event to the audit log (mysql-auditlog_filename).
func (s *session) audit(event, extra string) {
	a := s.r.cfg.Audit
	if a == nil || s.headless {
		return
	}
	// Before the login succeeds the user name is the client's choice:
	// clipped as in errors and logs.
	a.Log(&eventlog.Event{Audit: event, ThreadID: s.id, Username: clip(s.username, maxEchoedName), Schemaname: s.state.Schema,
		Client: s.clientAddr, ProxyAddr: s.nc.LocalAddr().String(), Start: time.Now(), ExtraInfo: extra})
}

// auditClose writes the session's close event, with its creation time.
func (s *session) auditClose(created time.Time) {
	a := s.r.cfg.Audit
	if a == nil {
		return
	}
	a.Log(&eventlog.Event{Audit: eventlog.AuditClientClose, ThreadID: s.id, Username: s.username,
		Schemaname: s.state.Schema, Client: s.clientAddr, ProxyAddr: s.nc.LocalAddr().String(),
		Start: time.Now(), Created: created})
}
