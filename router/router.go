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
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/router/balance"
	"github.com/sluice-proxy/sluice/rules"
)

// Config wires a Router to the parts it uses.
type Config struct {
	Registry *backend.Registry
	Events   *eventlog.Writer // may be nil: no events log
	Stats    *stats.Collector // may be nil: the router makes its own
	Log      zerolog.Logger
}

// Router is the data plane.
type Router struct {
	cfg Config
	log zerolog.Logger
	rt  atomic.Pointer[runtimeConfig]

	mu        sync.Mutex // guards listeners
	listeners []net.Listener
	wg        sync.WaitGroup
	closing   atomic.Bool

	nextID    atomic.Uint64
	sessions  sync.Map // id → *session
	clients   atomic.Int64
	userConns sync.Map // username → *atomic.Int64
	stage1    sync.Map // username → []byte: SHA1(password) recovered from a client login

	mirror *mirrorer
	stmts  stmtCache
	stats  *stats.Collector
}

// New returns a Router with an empty configuration; call Apply before Listen.
func New(cfg Config) *Router {
	r := &Router{cfg: cfg, log: cfg.Log.With().Str("component", "router").Logger(), stats: cfg.Stats}
	if r.stats == nil {
		r.stats = stats.New(stats.DefaultOptions())
	}
	r.rt.Store(compileRuntime(&config.Snapshot{}, nil))
	r.mirror = newMirrorer(r)
	return r
}

// runtimeConfig is everything the data plane reads per command, derived once
// per LOAD from a snapshot.
type runtimeConfig struct {
	snap         *config.Snapshot
	frontend     map[string]*config.User
	backendUsers map[string]*config.User
	rules        *rules.RuleSet
	digestOpts   rules.Options

	serverVersion        string
	maxConnections       int64
	defaultSchema        string
	connectTimeoutMax    time.Duration
	connectTimeout       time.Duration
	eventsDefaultLog     bool
	multiplexing         bool
	deprecateEOF         bool
	maxAllowedPacket     int
	autocommitFalseIsTrx bool
	keepVars             rules.KeepVars
	autoIncDelay         int
	maxStmtsPerConn      int
	maxStmtsCache        int
	queryRetries         int
	waitTimeout          time.Duration
	pollTimeout          time.Duration
	mirrorMaxConcurrency int
	mirrorMaxQueue       int
	versionComment       string
	policy               balance.Policy[*backend.Server]
	statsTimeQP          bool // mysql-stats_time_query_processor
	statsTimeBackend     bool // mysql-stats_time_backend_query
}

func varInt(s *config.Snapshot, name string, def int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s.Var(name)), 10, 64)
	if err != nil {
		return def
	}
	return n
}

func varBool(s *config.Snapshot, name string, def bool) bool {
	if b, ok := config.ParseBool(s.Var(name)); ok {
		return b
	}
	return def
}

func compileRuntime(snap *config.Snapshot, rs *rules.RuleSet) *runtimeConfig {
	rt := &runtimeConfig{
		snap:         snap,
		frontend:     make(map[string]*config.User, len(snap.Users)),
		backendUsers: make(map[string]*config.User, len(snap.Users)),
		rules:        rs,
		digestOpts:   rules.OptionsFromVars(snap.Var),
	}
	for i := range snap.Users {
		u := &snap.Users[i]
		if !u.Active {
			continue
		}
		if u.Frontend {
			rt.frontend[u.Username] = u
		}
		if u.Backend {
			rt.backendUsers[u.Username] = u
		}
	}
	if rt.rules == nil {
		rt.rules, _ = rules.Compile(nil, nil)
	}
	rt.serverVersion = snap.Var("mysql-server_version")
	rt.maxConnections = varInt(snap, "mysql-max_connections", 10000)
	rt.defaultSchema = snap.Var("mysql-default_schema")
	rt.connectTimeoutMax = time.Duration(varInt(snap, "mysql-connect_timeout_server_max", 10000)) * time.Millisecond
	rt.connectTimeout = time.Duration(varInt(snap, "mysql-connect_timeout_server", 1000)) * time.Millisecond
	rt.eventsDefaultLog = varInt(snap, "mysql-eventslog_default_log", 0) == 1 || varBool(snap, "mysql-eventslog_default_log", false)
	rt.multiplexing = varBool(snap, "mysql-multiplexing", true)
	rt.deprecateEOF = varBool(snap, "mysql-enable_client_deprecate_eof", true)
	rt.maxAllowedPacket = int(varInt(snap, "mysql-max_allowed_packet", 64<<20))
	rt.autocommitFalseIsTrx = varBool(snap, "mysql-autocommit_false_is_transaction", false)
	rt.keepVars = rules.ParseKeepVars(snap.Var("mysql-keep_multiplexing_variables"))
	rt.autoIncDelay = int(varInt(snap, "mysql-auto_increment_delay_multiplex", 5))
	rt.maxStmtsPerConn = int(varInt(snap, "mysql-max_stmts_per_connection", 20))
	rt.maxStmtsCache = int(varInt(snap, "mysql-max_stmts_cache", 10000))
	rt.queryRetries = int(varInt(snap, "mysql-query_retries_on_failure", 1))
	rt.waitTimeout = time.Duration(varInt(snap, "mysql-wait_timeout", 28800000)) * time.Millisecond
	rt.pollTimeout = time.Duration(varInt(snap, "mysql-poll_timeout", 2000)) * time.Millisecond
	rt.mirrorMaxConcurrency = int(varInt(snap, "mysql-mirror_max_concurrency", 16))
	rt.mirrorMaxQueue = int(varInt(snap, "mysql-mirror_max_queue_length", 32000))
	rt.versionComment = "(ProxySQL)"
	rt.policy = choosePolicy(snap)
	rt.statsTimeQP = varBool(snap, "mysql-stats_time_query_processor", false)
	rt.statsTimeBackend = varBool(snap, "mysql-stats_time_backend_query", false)
	if rt.serverVersion == "" {
		rt.serverVersion = "8.0.11"
	}
	if rt.defaultSchema == "" {
		rt.defaultSchema = "information_schema"
	}
	return rt
}

// Apply publishes a new runtime configuration. The rule set was compiled
// (and its errors reported) by the caller.
func (r *Router) Apply(snap *config.Snapshot, rs *rules.RuleSet) {
	r.stats.Configure(stats.OptionsFromVars(snap.Var))
	r.rt.Store(compileRuntime(snap, rs))
}

// Rules returns the running rule set (for stats_mysql_query_rules).
func (r *Router) Rules() *rules.RuleSet { return r.rt.Load().rules }

// Listen opens the mysql-interfaces listeners (a ';'-separated list of
// host:port or Unix socket paths) and serves them until Close.
func (r *Router) Listen(ifaces string) error {
	var ls []net.Listener
	for _, a := range strings.Split(ifaces, ";") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		network := "tcp"
		if strings.HasPrefix(a, "/") {
			network = "unix"
			_ = os.Remove(a)
		}
		l, err := net.Listen(network, a)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("router: listen on %s: %w", a, err)
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return errors.New("router: mysql-interfaces is empty")
	}
	r.mu.Lock()
	r.listeners = append(r.listeners, ls...)
	r.mu.Unlock()
	for _, l := range ls {
		r.log.Info().Str("addr", l.Addr().String()).Msg("data port listening")
		r.wg.Add(1)
		go r.accept(l)
	}
	return nil
}

// Addrs returns the listening addresses.
func (r *Router) Addrs() []net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]net.Addr, len(r.listeners))
	for i, l := range r.listeners {
		out[i] = l.Addr()
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
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
			_ = tc.SetKeepAlive(true)
		}
		s := newSession(r, nc)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s.run()
		}()
	}
}

// Close stops accepting, closes every client session (their backend
// connections are closed, not pooled) and waits for them to end.
func (r *Router) Close() error {
	r.closing.Store(true)
	r.mu.Lock()
	for _, l := range r.listeners {
		l.Close()
	}
	r.listeners = nil
	r.mu.Unlock()
	r.sessions.Range(func(_, v any) bool {
		v.(*session).kill()
		return true
	})
	r.wg.Wait()
	r.mirror.close()
	return nil
}

// Kill ends the session with the given id (KILL CONNECTION on the admin or
// data port). It reports whether the session existed.
func (r *Router) Kill(id uint64) bool {
	v, ok := r.sessions.Load(id)
	if ok {
		v.(*session).kill()
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

// choosePolicy maps mysql-balance_policy to a policy: "random" is
// ProxySQL's weighted random; "resource" (the default), "location" and
// "connection" are TiProxy's factor orders.
//
// The label and location factors compare labels, which are known only at
// LOAD time, so they are compared here, once: every server with a
// mysql_servers_balance row gets its Placement in a map keyed by host:port
// (the table's key; the same server in two hostgroups shares it), and
// servers without a row get the Placement of no labels. The policy reads it
// through a closure over that map, so a pick does one map lookup per server
// and no label comparison. Keying by host:port rather than *backend.Server
// keeps the map right when a reload replaces a server object.
func choosePolicy(snap *config.Snapshot) balance.Policy[*backend.Server] {
	o := balance.Options{DefaultMaxLatencyMs: int(varInt(snap, "mysql-default_max_latency_ms", 1000))}
	labelName := strings.TrimSpace(snap.Var("mysql-balance_label_name"))
	// Unparsable labels are treated as none: the factors stay neutral
	// rather than guess.
	var proxy map[string]string
	if v := strings.TrimSpace(snap.Var("mysql-proxy_labels")); v != "" {
		_ = json.Unmarshal([]byte(v), &proxy)
	}
	places := make(map[string]balance.Placement, len(snap.ServersBalance))
	for _, sb := range snap.ServersBalance {
		var labels map[string]string
		if sb.Labels != "" {
			_ = json.Unmarshal([]byte(sb.Labels), &labels)
		}
		places[net.JoinHostPort(sb.Hostname, strconv.Itoa(sb.Port))] = balance.Place(labelName, proxy, labels)
	}
	unlabelled := balance.Place(labelName, proxy, nil)
	c := balance.Config[*backend.Server]{
		Options:   o,
		Policy:    strings.ToLower(strings.TrimSpace(snap.Var("mysql-balance_policy"))),
		LabelName: labelName,
		Place: func(s *backend.Server) balance.Placement {
			if p, ok := places[s.Addr()]; ok {
				return p
			}
			return unlabelled
		},
	}
	p, err := balance.New(c)
	if err != nil {
		// Validation rejects other values; an unset variable is the default.
		c.Policy = "resource"
		p, _ = balance.New(c)
	}
	return p
}
