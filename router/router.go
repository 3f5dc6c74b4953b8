// Package router is Sluice's data plane: it accepts application
// connections on mysql-interfaces, authenticates them against the runtime
// mysql_users, and runs each session's commands on backend connections
// chosen by the query rules and the balancing policy, streaming results
// back without buffering them.
//
// The runtime configuration is one immutable value behind an atomic
// pointer; each command loads it once, so a LOAD … TO RUNTIME never shows a
// command half a configuration, and nothing on the per-query path takes a
// global lock.
package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/qcache"
	"github.com/sluice-proxy/sluice/internal/ratelog"

	"golang.org/x/sys/unix"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// Config wires a Router to the parts it uses.
type Config struct {
	Runtime  *live.Holder // the running configuration; each command loads it once
	Registry *backend.Registry
	Events   *eventlog.Writer // may be nil: no events log
	Stats    *stats.Collector // may be nil: the router makes its own
	Log      zerolog.Logger
	// ReusePort opens TCP interfaces with SO_REUSEPORT (--reuseport), so
	// several processes can share a port.
	ReusePort bool
	// Audit is the audit log (mysql-auditlog_filename); may be nil.
	Audit *eventlog.Writer
	// TLS is the certificate and key of the proxy's ports (the datadir's
	// proxysql-*.pem): offered to clients when mysql-have_ssl is true, and
	// its RSA key serves the caching_sha2_password exchange of clients
	// without TLS. nil: no TLS, no RSA exchange.
	TLS *tlsconf.Store
}

// Router is the data plane.
type Router struct {
	cfg Config
	log zerolog.Logger
	rt  *live.Holder

	mu        sync.Mutex     // guards listeners
	listeners []dataListener // in the order of mysql-interfaces
	wg        sync.WaitGroup
	closing   atomic.Bool
	// draining is set by Shutdown, and by Stop (PROXYSQL STOP) while it
	// runs: sessions end at their first safe point, and a client accepted
	// or logged in meanwhile is closed. After Stop the router can listen
	// again.
	draining atomic.Bool

	// schemas: schemas a server of a hostgroup accepted, schemaKey →
	// expiry (unix ns), so a USE of them is answered without asking again.
	schemas   sync.Map
	nextID    atomic.Uint64 // session ids are sessionIDBase + this
	sessions  sync.Map      // id → *session
	clients   atomic.Int64
	userConns sync.Map // username → *atomic.Int64
	stage1    sync.Map // username → []byte: SHA1(password) recovered from a client login
	sha2Cache sync.Map // username → sha2Entry: caching_sha2_password fast-auth cache

	mirror *mirrorer
	qcache *qcache.Cache
	stmts  stmtCache
	stats  *stats.Collector

	// mixed counts commands that saw a runtime other than the one they
	// started with (see session.checkRuntime); it must stay 0.
	mixed atomic.Uint64
	// versionNoted: the MariaDB-behind-MySQL-version warning was logged (noteServerVersion).
	versionNoted atomic.Bool
	// killedQueries and killedConns count the KILL QUERYs the proxy ran and
	// the backend connections it cut under a running query
	// (mysql_killed_backend_queries / _connections).
	killedQueries, killedConns atomic.Uint64

	migrations migrationStats
	errors     errorStats      // stats_mysql_errors
	handshakes handshakes      // clients not logged in yet
	loginLog   ratelog.Limiter // failed logins are logged at most 10 a second
	lostLog    ratelog.Limiter // backend connections lost under a statement, likewise
	// queryErrLog: servers' errors for queries ("Error during query"),
	// which a client looping on a bad statement makes at will; all of
	// them are counted in stats_mysql_errors.
	queryErrLog ratelog.Limiter
	// spare is a descriptor held in reserve (/dev/null) to refuse clients
	// with ERR 1040 while the proxy is out of file descriptors
	// (refuseOverLimit); spareMu serialises its use between listeners.
	spareMu sync.Mutex
	spare   *os.File
	fdLog   ratelog.Limiter
	// overOnlineLogged: when a hostgroup over its max_num_online_servers
	// was last logged (unix seconds; at most one line every 10 s).
	overOnlineLogged atomic.Int64
	hosts            hostCache // failed logins per client address (hostcache.go)
	balancer         *balancer
	watchdog         *watchdog
}

// New returns a Router serving the runtime cfg.Runtime holds.
func New(cfg Config) *Router {
	r := &Router{cfg: cfg, log: cfg.Log.With().Str("component", "router").Logger(), stats: cfg.Stats, rt: cfg.Runtime}
	if r.stats == nil {
		r.stats = stats.New()
	}
	if r.rt == nil {
		r.rt = live.NewHolder()
	}
	r.mirror = newMirrorer(r)
	r.spare, _ = os.Open(os.DevNull)
	r.qcache = qcache.New(r.rt.Load().Router.QueryCacheBytes)
	r.startBalancer()
	r.startWatchdog()
	return r
}

// Rules returns the running rule set (for stats_mysql_query_rules).
func (r *Router) Rules() *rules.RuleSet { return r.rt.Load().Rules }

// dataListener is one interface of mysql-interfaces.
type dataListener struct {
	spec string // as written in mysql-interfaces
	ln   net.Listener
}

// Listen makes the data port listen on exactly ifaces, a ';'-separated
// list of host:port and Unix socket paths, at start-up and at every LOAD
// MYSQL VARIABLES that changes mysql-interfaces (ProxySQL needs a restart
// for that: its issue #440). New interfaces are bound first and accept at
// once; if one fails to bind, the ones just bound are closed and nothing
// else changes, so a typo never takes the data port down. Interfaces no
// longer listed are closed after; their sessions keep running.
func (r *Router) Listen(ifaces string) error {
	var want []string
	for _, a := range strings.Split(ifaces, ";") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(want, a) {
			want = append(want, a)
		}
	}
	if len(want) == 0 {
		return errors.New("router: mysql-interfaces is empty")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return errors.New("router: closing")
	}
	have := make(map[string]net.Listener, len(r.listeners))
	for _, l := range r.listeners {
		have[l.spec] = l.ln
	}
	var added []dataListener
	for _, a := range want {
		if _, ok := have[a]; ok {
			continue
		}
		network := "tcp"
		if strings.HasPrefix(a, "/") {
			network = "unix"
			if fi, err := os.Lstat(a); err == nil && fi.Mode()&os.ModeSocket != 0 {
				_ = os.Remove(a) // left by a previous run
			}
		}
		var lc net.ListenConfig
		if r.cfg.ReusePort && network == "tcp" {
			lc.Control = reusePort
		}
		l, err := lc.Listen(context.Background(), network, a)
		if err != nil {
			for _, l := range added {
				l.ln.Close()
			}
			return fmt.Errorf("router: listen on %s: %w", a, err)
		}
		added = append(added, dataListener{spec: a, ln: l})
	}
	next := make([]dataListener, 0, len(want))
	for _, a := range want {
		if l, ok := have[a]; ok {
			next = append(next, dataListener{spec: a, ln: l})
			delete(have, a)
			continue
		}
		for _, l := range added {
			if l.spec == a {
				next = append(next, l)
				r.log.Info().Str("addr", l.ln.Addr().String()).Msg("data port listening")
				r.wg.Add(1)
				go r.accept(l.ln)
			}
		}
	}
	for spec, l := range have {
		l.Close()
		r.log.Info().Str("iface", spec).Msg("data port interface closed; its sessions go on")
	}
	r.listeners = next
	return nil
}

// reusePort sets SO_REUSEPORT on a listening socket before it binds.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// Closing reports whether the data plane is stopping (Shutdown, Close).
func (r *Router) Closing() bool { return r.closing.Load() }

// Addrs returns the listening addresses, in the order of mysql-interfaces.
func (r *Router) Addrs() []net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]net.Addr, len(r.listeners))
	for i, l := range r.listeners {
		out[i] = l.ln.Addr()
	}
	return out
}

func (r *Router) accept(l net.Listener) {
	defer r.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if r.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if backend.LocalShortage(err) && r.refuseOverLimit(l) {
				continue
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		if r.draining.Load() || r.closing.Load() {
			nc.Close() // accepted as the listener was being closed
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
			keepAlive(tc, &r.rt.Load().Router)
		}
		s := newSession(r, nc)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s.serve()
		}()
	}
}

// refuseOverLimit answers one client waiting on l with ERR 1040 while the
// proxy is out of file descriptors, with the descriptor held in reserve
// (the way servers such as nginx do): without it the client sits in the
// listen queue until its own timeout. The descriptor freed may be taken by
// another goroutine first (a session opening a backend connection): then
// it tries again, a few times. It reports whether it refused a client; it
// waits for one at most refuseWait.
func (r *Router) refuseOverLimit(l net.Listener) bool {
	dl, ok := l.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return false
	}
	r.spareMu.Lock()
	defer r.spareMu.Unlock()
	_ = dl.SetDeadline(time.Now().Add(refuseWait))
	defer dl.SetDeadline(time.Time{})
	var nc net.Conn
	for range 3 {
		if r.spare == nil {
			// Taken after the last try: opened again once one is free.
			if r.spare, _ = os.Open(os.DevNull); r.spare == nil {
				return false
			}
		}
		r.spare.Close()
		r.spare = nil
		c, err := l.Accept()
		r.spare, _ = os.Open(os.DevNull)
		if err == nil {
			nc = c
			break
		}
		if !backend.LocalShortage(err) {
			return false
		}
	}
	if nc == nil {
		return false
	}
	const msg = "Too many connections: Sluice is out of file descriptors; raise its limit (ulimit -n, LimitNOFILE)"
	if ok, held := r.fdLog.Allow(time.Now()); ok {
		r.log.Error().Str("client", nc.RemoteAddr().String()).Uint64("more_not_logged", held).
			Msg("client refused with ERR 1040: the proxy is out of file descriptors")
	}
	_ = nc.SetWriteDeadline(time.Now().Add(refuseWait))
	c := wire.NewConn(nc)
	if c.WriteERR(1040, "08004", msg) == nil {
		_ = c.Flush()
	}
	nc.Close()
	return true
}

// refuseWait bounds the wait for a client to refuse, and the write of its
// ERR.
const refuseWait = 100 * time.Millisecond

// Close stops accepting, closes every client session (their backend
// connections are closed, not pooled) and waits for them to end.
func (r *Router) Close() error {
	r.closing.Store(true)
	r.balancer.close()
	r.watchdog.close()
	r.closeListeners()
	r.sessions.Range(func(_, v any) bool {
		v.(*session).cut()
		return true
	})
	r.wg.Wait()
	r.mirror.close()
	return nil
}

func (r *Router) closeListeners() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.listeners {
		l.ln.Close()
	}
	r.listeners = nil
}

// Shutdown stops the data plane gracefully, as TiProxy's graceful close:
// it stops accepting, lets every session finish its transaction — a
// session ends when it is between commands and not in a transaction (an
// idle one at once, a busy one after its command) — and after timeout
// closes what is left (Close). It returns how many sessions were still
// open at the timeout.
func (r *Router) Shutdown(timeout time.Duration) int {
	r.closing.Store(true)
	r.draining.Store(true)
	r.closeListeners()
	left := r.drain(timeout)
	r.Close()
	return left
}

// Pause closes the data port's listeners (PROXYSQL PAUSE): new clients are
// refused, every open session goes on. Listen opens them again (PROXYSQL
// RESUME).
func (r *Router) Pause() {
	r.closeListeners()
	r.log.Info().Msg("data port closed (PROXYSQL PAUSE): open sessions go on")
}

// Stop ends the data plane's sessions for PROXYSQL STOP, as Shutdown does —
// listeners closed, each session ended at its first safe point, those still
// in a transaction after timeout closed — but the router stays whole:
// Listen starts it again (PROXYSQL START). It returns when every session
// has ended, with how many were still open at the timeout.
func (r *Router) Stop(timeout time.Duration) int {
	r.draining.Store(true)
	defer r.draining.Store(false)
	r.closeListeners()
	left := r.drain(timeout)
	// A cut session's goroutine ends at once, whether it waits for its
	// client or for its backend.
	r.sessions.Range(func(_, v any) bool {
		v.(*session).cut()
		return true
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		r.sessions.Range(func(_, v any) bool {
			n++
			return true
		})
		if n == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			r.log.Warn().Int("sessions", n).Msg("PROXYSQL STOP: sessions still ending after 5 s")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.log.Info().Msg("data plane stopped (PROXYSQL STOP): PROXYSQL START starts it again")
	return left
}

// Draining reports whether Shutdown or PROXYSQL STOP is ending the
// sessions.
func (r *Router) Draining() bool { return r.draining.Load() }

// drain ends every session at its first safe point — between commands and
// not in a transaction — and returns once none is left or timeout has
// passed, with how many are left. The caller has closed the listeners and
// set draining, so a session in a command ends itself after it
// (session.loop).
func (r *Router) drain(timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	left := 0
	for {
		left = 0
		r.sessions.Range(func(_, v any) bool {
			s := v.(*session)
			if s.killed.Load() {
				return true
			}
			if s.cmdMu.TryLock() {
				// Between commands: end it unless a transaction is open.
				if s.conns.mayBeInTransaction() {
					left++
				} else {
					s.kill()
				}
				s.cmdMu.Unlock()
				return true
			}
			left++ // running a command: it ends itself after it (session.loop)
			return true
		})
		if left == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left > 0 && timeout > 0 {
		r.log.Warn().Int("sessions", left).Dur("timeout", timeout).Msg("graceful close timed out: closing the sessions still in a transaction or a command")
	}
	return left
}

// ApplyClientLimits gives the sessions waiting for a command now the
// limits rt sets, as ProxySQL checks them when a command arrives: the
// largest packet they may send (mysql-max_allowed_packet), and the read
// deadline of mysql-wait_timeout (none when it is 0), counted from when they
// went idle — a LOAD MYSQL VARIABLES that lowers it closes those idle
// longer at once, one that raises it or turns it off keeps them. A session
// sets both again itself before its next command.
func (r *Router) ApplyClientLimits(rt *live.Runtime) {
	wt := rt.Router.WaitTimeout
	r.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		if s.headless || s.pub.command.Load() != cmdSleep {
			return true
		}
		s.c.SetMaxPayload(rt.Router.MaxAllowedPacket)
		var deadline time.Time
		if wt > 0 {
			deadline = time.Unix(0, s.pub.since.Load()).Add(wt)
		}
		_ = s.nc.SetReadDeadline(deadline)
		return true
	})
}

// Kill ends the session with the given id (KILL CONNECTION on the admin or
// data port). It reports whether the session existed.
func (r *Router) Kill(id uint64) bool {
	v, ok := r.sessions.Load(id)
	if ok {
		s := v.(*session)
		r.stop(r.rt.Load(), s, s.running.get(), "session killed (KILL CONNECTION on the admin port)")
	}
	return ok
}

func (r *Router) userCounter(name string) *atomic.Int64 {
	if v, ok := r.userConns.Load(name); ok {
		return v.(*atomic.Int64)
	}
	v, _ := r.userConns.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// keepAlive applies mysql-use_tcp_keepalive and mysql-tcp_keepalive_time
// to a client connection: probes after that many idle seconds (0: the
// system's idle time), or none.
func keepAlive(tc *net.TCPConn, rt *live.Router) {
	if !rt.TCPKeepAlive {
		_ = tc.SetKeepAlive(false)
		return
	}
	idle := rt.TCPKeepAliveTime
	if idle == 0 {
		idle = -1 // leave the system's setting
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: -1, Count: -1})
}

// sessionIDBase is where session ids (CONNECTION_ID(), KILL, the
// handshake's connection id, stats_mysql_processlist.SessionID) start:
// above the thread ids a server hands out in its lifetime, so that an id
// read from a server's processlist is never also a session's, and KILL
// can tell which one it was given. It stays below 2^31 for clients that
// read the connection id as a signed 32-bit number.
const sessionIDBase = 1 << 30
