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
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/rules"
)

// Config wires a Router to the parts it uses.
type Config struct {
	Runtime  *live.Holder // the running configuration; each command loads it once
	Registry *backend.Registry
	Events   *eventlog.Writer // may be nil: no events log
	Stats    *stats.Collector // may be nil: the router makes its own
	Log      zerolog.Logger
}

// Router is the data plane.
type Router struct {
	cfg Config
	log zerolog.Logger
	rt  *live.Holder

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

	// mixed counts commands that saw a runtime other than the one they
	// started with (see session.checkRuntime); it must stay 0.
	mixed atomic.Uint64

	migrations migrationStats
	balancer   *balancer
	watchdog   *watchdog
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
	r.startBalancer()
	r.startWatchdog()
	return r
}

// Rules returns the running rule set (for stats_mysql_query_rules).
func (r *Router) Rules() *rules.RuleSet { return r.rt.Load().Rules }

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
			s.serve()
		}()
	}
}

// Close stops accepting, closes every client session (their backend
// connections are closed, not pooled) and waits for them to end.
func (r *Router) Close() error {
	r.closing.Store(true)
	r.balancer.close()
	r.watchdog.close()
	r.closeListeners()
	r.sessions.Range(func(_, v any) bool {
		v.(*session).kill()
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
		l.Close()
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
	r.closeListeners()
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
				if s.conns.inTransaction() {
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
	if left > 0 {
		r.log.Warn().Int("sessions", left).Dur("timeout", timeout).Msg("graceful close timed out: closing the sessions still in a transaction")
	}
	r.Close()
	return left
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
