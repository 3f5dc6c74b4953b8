// Package admin serves ProxySQL's admin interface: the MySQL-protocol port
// (admin-mysql_ifaces, 6032 by default) where operators edit the MEMORY
// tables with SQL and move modules between RUNTIME, MEMORY, DISK and the
// config file with LOAD/SAVE.
//
// One table generates every LOAD/SAVE alias (grammar.go); a short intercept
// chain answers SET, SHOW, CHECKSUM, PROXYSQL and the queries drivers send on
// connect (dispatch.go); everything else goes verbatim to SQLite through the
// storage package, and SQLite errors come back as ERR 1045 "ProxySQL Admin
// Error: …". Statements are serialized by one mutex, as in ProxySQL.
//
// Users come from the RUNTIME admin-admin_credentials (read-write) and
// admin-stats_credentials (read-only) variables, so a LOAD ADMIN VARIABLES
// TO RUNTIME changes who may log in without a restart. The users literally
// named "admin" and "stats" may only connect from the local host.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/ratelog"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/storage"
)

// ErrClosed is returned by Listen after Close.
var ErrClosed = errors.New("admin: server closed")

// maxAdminConns bounds the admin interface's connections: operators and
// tools need a handful; a flood of sockets must not take the proxy's memory
// or descriptors. ProxySQL's admin has no bound. When it is reached, the
// oldest connection that has not logged in yet makes room for the new one:
// sockets that never log in cannot lock the operators out. Only 512 logged
// in sessions refuse a new connection (ERR 1040).
const maxAdminConns = 512

// adminConn is what the accept loop knows of one admin connection.
type adminConn struct {
	since    time.Time
	loggedIn bool // past the login: never evicted
	evicted  bool // closed to make room: no longer counted
}

// makeRoom, called with lmu held and the bound reached, closes the oldest
// connection that has not logged in. It reports false when every
// connection is a logged-in session.
func (s *Server) makeRoom() bool {
	var oldest net.Conn
	var at time.Time
	for c, ac := range s.conns {
		if !ac.loggedIn && !ac.evicted && (oldest == nil || ac.since.Before(at)) {
			oldest, at = c, ac.since
		}
	}
	if oldest == nil {
		return false
	}
	s.conns[oldest].evicted = true
	s.live--
	_ = oldest.Close()
	return true
}

// markLoggedIn records that c's client logged in.
func (s *Server) markLoggedIn(c net.Conn) {
	s.lmu.Lock()
	if ac := s.conns[c]; ac != nil {
		ac.loggedIn = true
	}
	s.lmu.Unlock()
}

// refuseTooMany answers a connection over maxAdminConns with ERR 1040 and
// closes it.
func refuseTooMany(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	w := wire.NewConn(c)
	_ = w.WriteERR(1040, "08004", "Too many connections")
	_ = w.Flush()
	_ = c.Close()
}

// handshakeTimeout bounds how long a client may take to log in:
// mysql-connect_timeout_client, as on the data port.
func (s *Server) handshakeTimeout() time.Duration {
	return s.cfg.Applier.Runtime().Millis("mysql-connect_timeout_client")
}

// Config is what the admin server needs.
type Config struct {
	Store      *storage.Store
	Applier    Applier
	ConfigPath string // proxysql.cnf, for LOAD … FROM CONFIG; "" when Sluice runs without one
	Log        zerolog.Logger
	// TLS, when set and returning a configuration, lets clients upgrade
	// to TLS (CLIENT_SSL), as ProxySQL's admin does with the certificates
	// in its datadir; asked at each handshake. Optional.
	TLS func() *tls.Config
	// ExtraIfaces are served besides admin-mysql_ifaces, whatever it
	// becomes (the -S/--admin-socket flag).
	ExtraIfaces []string
	// Audit is the audit log (mysql-auditlog_filename) the admin's
	// connections are written to; may be nil.
	Audit *eventlog.Writer
}

// Server is the admin/stats listener set and the command processor behind it.
//
// Use: New, then Listen (which starts accepting at once), then Close. Listen
// may be called again with a new admin-mysql_ifaces value; the admin also
// does this itself after LOAD ADMIN VARIABLES TO RUNTIME changes it.
type Server struct {
	loginLog ratelog.Limiter // failed logins are logged at most 10 a second
	cfg      Config
	log      zerolog.Logger
	start    time.Time

	// mu serializes admin statements (ProxySQL's sql_query_global_mutex).
	mu sync.Mutex
	// big admits one large query (over bigQuery bytes) at a time, before
	// its text is copied and parsed: SQLite needs several times a query's
	// size to run it, and three stats sessions sending 60 MiB each at once
	// took 2.6 GB.
	big chan struct{}

	loadHook atomic.Pointer[func(config.Module)] // SetLoadHook
	// clusterClients: PROXYSQL CLUSTER_NODE_UUID registrations.
	clusterClients clusterClients
	peerVersion    atomic.Pointer[func(ip string) (string, bool)] // SetPeerVersion
	refreshHook    atomic.Pointer[func(names []string)]           // SetRefreshHook
	readOnly       atomic.Bool                                    // PROXYSQL READONLY / admin-read_only
	questions      atomic.Uint64                                  // statements served, for COM_STATISTICS
	connIDs        atomic.Uint32                                  // the last connection id a handshake announced

	ctx    context.Context
	cancel context.CancelFunc

	publisher Publisher // guarded by mu; see SetPublisher (admin/publish.go)

	lmu       sync.Mutex // guards everything below
	closed    bool
	listeners map[string]*listener // by interface spec as written in admin-mysql_ifaces
	conns     map[net.Conn]*adminConn
	live      int // conns not evicted
	wg        sync.WaitGroup
}

type listener struct {
	spec string // as written in admin-mysql_ifaces
	ln   net.Listener
}

// New returns a server that is not listening yet.
func New(cfg Config) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Log.With().Str("module", "admin").Logger(),
		start:     time.Now(),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[string]*listener),
		conns:     make(map[net.Conn]*adminConn),
		big:       make(chan struct{}, 1),
	}
	if rt := cfg.Applier.Runtime(); rt != nil {
		b, _ := config.ParseBool(rt.Var("admin-read_only"))
		s.readOnly.Store(b)
	}
	s.ensureCollations()
	return s
}

// wantIfaces are the interfaces to serve for an admin-mysql_ifaces value
// ("host:port;/path/sock"): its own and Config.ExtraIfaces.
func (s *Server) wantIfaces(ifaces string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, f := range append(strings.Split(ifaces, ";"), s.cfg.ExtraIfaces...) {
		f = strings.TrimSpace(f)
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	return out
}

func isUnixSpec(spec string) bool { return strings.HasPrefix(spec, "/") }

// Listen makes the set of listening interfaces equal to ifaces, a
// `;`-separated list of host:port and Unix socket paths. New interfaces are
// bound first and start accepting at once; interfaces no longer listed are
// closed afterwards (their open sessions keep running). If any new interface
// fails to bind, nothing is closed, so a typo in admin-mysql_ifaces never
// locks the operator out; the bind errors are returned, joined.
func (s *Server) Listen(ifaces string) error {
	want := s.wantIfaces(ifaces)
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var errs []error
	keep := make(map[string]bool, len(want))
	for _, spec := range want {
		keep[spec] = true
		if _, ok := s.listeners[spec]; ok {
			continue
		}
		l, err := bind(spec)
		if err != nil {
			errs = append(errs, err)
			s.log.Error().Err(err).Str("iface", spec).Msg("cannot listen on admin interface")
			continue
		}
		s.listeners[spec] = l
		s.wg.Add(1)
		go s.accept(l)
		s.log.Info().Str("iface", spec).Str("addr", l.ln.Addr().String()).Msg("admin interface listening")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for spec, l := range s.listeners {
		if !keep[spec] {
			_ = l.ln.Close()
			delete(s.listeners, spec)
			s.log.Info().Str("iface", spec).Msg("admin interface closed")
		}
	}
	return nil
}

// closeUnwanted closes the listeners ifaces does not name, so that a new
// address on the same port (0.0.0.0:6032 → 127.0.0.1:6032) can be bound.
func (s *Server) closeUnwanted(ifaces string) {
	keep := make(map[string]bool)
	for _, spec := range s.wantIfaces(ifaces) {
		keep[spec] = true
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	for spec, l := range s.listeners {
		if !keep[spec] {
			_ = l.ln.Close()
			delete(s.listeners, spec)
			s.log.Info().Str("iface", spec).Msg("admin interface closed")
		}
	}
}

func bind(spec string) (*listener, error) {
	if isUnixSpec(spec) {
		// A socket file left by a previous run would make bind fail.
		if fi, err := os.Lstat(spec); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(spec)
		}
		ln, err := net.Listen("unix", spec)
		if err != nil {
			return nil, fmt.Errorf("admin: listen on %s: %w", spec, err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(true) // the socket file goes with the listener
		}
		return &listener{spec: spec, ln: ln}, nil
	}
	ln, err := net.Listen("tcp", spec)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", spec, err)
	}
	return &listener{spec: spec, ln: ln}, nil
}

// Addrs returns the addresses the server listens on, for tests and logs.
func (s *Server) Addrs() []net.Addr {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// Close stops every listener, closes every admin session and waits for
// their goroutines. Safe to call more than once.
func (s *Server) Close() error {
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for spec, l := range s.listeners {
		_ = l.ln.Close()
		delete(s.listeners, spec)
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.lmu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE…): back off as net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.log.Warn().Err(err).Str("iface", l.spec).Msg("admin accept failed")
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		s.lmu.Lock()
		if s.closed {
			s.lmu.Unlock()
			_ = c.Close()
			return
		}
		if s.live >= maxAdminConns && !s.makeRoom() {
			s.lmu.Unlock()
			// Past the bound, a connection gets ERR 1040 without a handshake
			// (as a server at max_connections) and costs nothing more.
			refuseTooMany(c)
			continue
		}
		s.conns[c] = &adminConn{since: time.Now()}
		s.live++
		s.wg.Add(1)
		s.lmu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.lmu.Lock()
				if ac := s.conns[c]; ac != nil && !ac.evicted {
					s.live--
				}
				delete(s.conns, c)
				s.lmu.Unlock()
				_ = c.Close()
			}()
			s.serveConn(c)
		}()
	}
}
