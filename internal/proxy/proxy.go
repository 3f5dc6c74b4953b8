// Package proxy is the running Sluice as the admin plane sees it: the data
// plane (router), the backend registry and its monitor, the events log and
// the live counters, with the one runtime they all read. It implements
// admin.Applier: a LOAD … TO RUNTIME builds the next runtime aside
// (internal/live), prepares what can fail (the events-log file), updates
// the live server set, and publishes the runtime with one atomic store.
// It also renders the live stats_* and runtime_* tables (tables.go).
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/backend/monitor"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/scrape"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
	"github.com/sluice-proxy/sluice/router"
	"github.com/sluice-proxy/sluice/rules"
	"github.com/sluice-proxy/sluice/storage"
)

// Config is what a Proxy needs.
type Config struct {
	Datadir string         // events logs go here
	Store   *storage.Store // where the live tables are written (nil: none)
	Log     zerolog.Logger
	// ReopenLog reopens the error log (PROXYSQL FLUSH LOGS); may be nil.
	ReopenLog func() error
	// Monitor: StartDataPlane starts the backend monitor (not with
	// --no-monitor).
	Monitor bool
	// ReusePort opens the data port with SO_REUSEPORT (--reuseport).
	ReusePort bool
	// TLS is the certificate and key of the proxy's ports (the datadir's
	// proxysql-*.pem); may be nil: no TLS, no caching_sha2 RSA exchange.
	TLS *tlsconf.Store
}

// Proxy is the running proxy.
type Proxy struct {
	cfg Config
	log zerolog.Logger

	rt       *live.Holder
	registry *backend.Registry
	monitor  *monitor.Monitor // nil until StartMonitor (never with --no-monitor)
	// monitorCopies holds, per monitor log table, the monitor's LogSeq when
	// the table was last copied from it (MonitorLogEdited).
	monitorCopies sync.Map
	events        *eventlog.Writer
	audit         *eventlog.Writer // mysql-auditlog_filename
	scraper       *scrape.Scraper  // metrics_url, for the memory and CPU factors (nil until StartDataPlane)
	router        *router.Router
	stats         *stats.Collector

	pool           poolBaseline // stats_mysql_connection_pool_reset
	serversVersion atomic.Int64 // Servers_table_version: LOAD MYSQL SERVERS TO RUNTIME count

	http         *httpEndpoint        // admin-restapi_port: /metrics, /health
	web          *webEndpoint         // admin-web_port: the web UI (HTTPS, digest authentication)
	degraded     atomic.Value         // func() string: SetDegraded
	history      *historyTimer        // fills stats_history (nil without a Store)
	sched        *scheduler           // runs runtime_scheduler's jobs
	promRegistry *prometheus.Registry // what /metrics and SHOW PROMETHEUS METRICS render

	mu sync.Mutex // serializes Apply, START, STOP, PAUSE, RESUME
	// Written under mu, read anywhere (/health must not wait for a STOP).
	started atomic.Bool // the data plane runs (StartDataPlane; PROXYSQL STOP ends it)
	paused  atomic.Bool // PROXYSQL PAUSE: the data port is closed until RESUME

	done       chan struct{}
	doneOnce   sync.Once
	restarting atomic.Bool // Done was closed by PROXYSQL RESTART
	now        atomic.Bool // Done was closed by ShutdownNow: no graceful close
}

var (
	_ admin.Applier          = (*Proxy)(nil)
	_ admin.Killer           = (*Proxy)(nil)
	_ admin.Refresher        = (*Proxy)(nil)
	_ admin.Truncater        = (*Proxy)(nil)
	_ admin.Starter          = (*Proxy)(nil)
	_ admin.Restarter        = (*Proxy)(nil)
	_ admin.LiveServerser    = (*Proxy)(nil)
	_ admin.PrometheusTexter = (*Proxy)(nil)
	_ admin.DigestSaver      = (*Proxy)(nil)
	_ admin.TableNoter       = (*Proxy)(nil)
)

// New builds the proxy with the empty runtime; LOAD every module before
// Start.
func New(cfg Config) *Proxy {
	p := &Proxy{cfg: cfg, log: cfg.Log, rt: live.NewHolder(), done: make(chan struct{})}
	p.registry = backend.NewRegistry(p.rt.BackendOptions, cfg.Log)
	p.events = eventlog.New(cfg.Datadir, cfg.Log)
	p.audit = eventlog.New(cfg.Datadir, cfg.Log)
	p.stats = stats.New()
	p.sched = newScheduler(cfg.Log)
	p.http = &httpEndpoint{p: p, scripts: make(chan struct{}, restMaxScripts)}
	p.web = newWebEndpoint(p)
	p.promRegistry = prometheus.NewRegistry()
	p.promRegistry.MustRegister(collector{p}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.router = router.New(router.Config{Runtime: p.rt, Registry: p.registry, Events: p.events, Stats: p.stats, Log: cfg.Log,
		ReusePort: cfg.ReusePort, Audit: p.audit, TLS: cfg.TLS})
	if cfg.Store != nil {
		p.history = startHistory(p)
	}
	return p
}

// AdminTLS is the TLS configuration the admin port offers: the proxy's
// certificate when mysql-have_ssl is true, as on the data port; nil
// otherwise.
func (p *Proxy) AdminTLS() *tls.Config {
	if p.cfg.TLS == nil || !p.rt.Load().Router.HaveSSL {
		return nil
	}
	return p.cfg.TLS.Config()
}

// Runtime returns the running snapshot.
func (p *Proxy) Runtime() *config.Snapshot { return p.rt.Load().Snap }

// Live returns the running runtime.
func (p *Proxy) Live() *live.Runtime { return p.rt.Load() }

// Apply makes snap, in which module m changed, the running configuration.
// Everything that can fail is done before anything visible changes: the
// runtime is built and validated aside, the events log opens its new file
// (keeping the old one on failure). Then the live server set takes the new
// mysql_servers (pools are kept by identity) and the runtime is published
// with one atomic store; sessions pick it up at their next command, workers
// at their next step.
func (p *Proxy) Apply(m config.Module, snap *config.Snapshot) error {
	_, err := p.ApplyWarn(m, snap, false)
	return err
}

// ApplyWarn is Apply that also returns the warnings of the LOAD: the
// settings of module m that Sluice accepts but does not act on
// (live.Unsupported). A setting whose absence would weaken security fails
// the LOAD, except atStart: start-up loads it and returns it as a warning.
func (p *Proxy) ApplyWarn(m config.Module, snap *config.Snapshot, atStart bool) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next, err := live.Build(p.rt.Load(), snap, m)
	if err != nil {
		return nil, err
	}
	if err := next.Refusal(); err != nil && !atStart {
		return nil, err
	}
	if atStart && m == config.ModMySQLQueryRules {
		// Rules that do not compile run at start-up without them (a LOAD
		// refuses them): snap, which the runtime_mysql_query_rules table
		// is written from, lists what runs.
		var bad []int
		for _, n := range next.Notices {
			if n.Err != nil {
				bad = append(bad, rules.BadRuleIDs(n.Err)...)
			}
		}
		if len(bad) > 0 {
			snap.QueryRules = slices.DeleteFunc(slices.Clone(snap.QueryRules), func(r config.QueryRule) bool {
				return slices.Contains(bad, r.RuleID)
			})
		}
	}
	var logErr error
	if m == config.ModMySQLVariables {
		// A log file that cannot be created (its directory missing) fails
		// a LOAD; at start-up, as in ProxySQL, the proxy serves without
		// that log, and says so.
		if err := p.events.Configure(next.Events); err != nil {
			err = fmt.Errorf("global_variables (mysql-eventslog_filename): %w", err)
			if !atStart {
				return nil, err
			}
			logErr = fmt.Errorf("%w: the events log is off", err)
		}
		if err := p.audit.Configure(next.Audit); err != nil {
			err = fmt.Errorf("global_variables (mysql-auditlog_filename): %w", err)
			if !atStart {
				return nil, err
			}
			logErr = errors.Join(logErr, fmt.Errorf("%w: the audit log is off", err))
		}
		// Paused or stopped, the new interfaces are bound at RESUME or START.
		if ifaces := snap.Var("mysql-interfaces"); p.started.Load() && !p.paused.Load() && ifaces != p.Runtime().Var("mysql-interfaces") {
			// Bound before the runtime is published: a LOAD whose new
			// interface cannot be bound fails and changes nothing.
			if err := p.router.Listen(ifaces); err != nil {
				return nil, fmt.Errorf("global_variables (mysql-interfaces): %w", err)
			}
		}
	}
	var httpErr error
	if m == config.ModAdminVariables {
		// Bound before the runtime is published, as mysql-interfaces; at
		// start-up a port in use must not keep Sluice from serving.
		if err := p.http.configure(restAddr(snap)); err != nil {
			if !atStart {
				return nil, fmt.Errorf("global_variables: %w", err)
			}
			httpErr = fmt.Errorf("%w: the HTTP endpoint (/metrics, /health) is off", err)
		}
		if err := p.web.configure(webAddr(snap)); err != nil {
			if !atStart {
				return nil, fmt.Errorf("global_variables: %w", err)
			}
			httpErr = errors.Join(httpErr, fmt.Errorf("%w: the web UI is off", err))
		}
	}
	if m == config.ModMySQLServers {
		p.registry.Reconcile(snap.Servers)
		p.serversVersion.Add(1)
	}
	if err := p.rt.Store(next); err != nil {
		return nil, err
	}
	if m == config.ModMySQLVariables && !atStart {
		p.router.ApplyClientLimits(next)
	}
	if m == config.ModScheduler {
		p.sched.load(snap.Scheduler)
	}
	warnings := next.Warnings(atStart)
	if (m == config.ModMySQLServers || m == config.ModMySQLVariables) && (!p.cfg.Monitor || !next.Monitor.Enabled) {
		if len(snap.ReplicationHostgroups)+len(next.Monitor.ClusterHostgroups) > 0 {
			why := "--no-monitor"
			if p.cfg.Monitor {
				why = "mysql-monitor_enabled=false"
			}
			warnings = append(warnings, "mysql_replication_hostgroups / mysql_galera_hostgroups / mysql_group_replication_hostgroups have rows, but the monitor is off "+
				"("+why+"): servers stay in the hostgroups of mysql_servers, whatever their read_only")
		}
	}
	if httpErr != nil {
		p.log.Error().Err(httpErr).Msg("an HTTP endpoint could not listen")
		warnings = append(warnings, strings.ReplaceAll(httpErr.Error(), "\n", "; "))
	}
	if logErr != nil {
		p.log.Error().Err(logErr).Msg("a query log could not be opened")
		warnings = append(warnings, strings.ReplaceAll(logErr.Error(), "\n", "; "))
	}
	return warnings, nil
}

// ProxySQLCommand serves the PROXYSQL commands that act on the data plane
// (admin.Commander): PAUSE, RESUME, STOP, FLUSH QUERY CACHE, FLUSH MYSQL
// CLIENT HOSTS, RELOAD TLS.
func (p *Proxy) ProxySQLCommand(cmd string) (bool, error) {
	switch cmd {
	case "PAUSE", "RESUME", "STOP":
		return true, p.dataPlaneCommand(cmd)
	case "RELOAD TLS":
		if p.cfg.TLS == nil {
			return false, nil
		}
		m, err := p.cfg.TLS.Reload()
		if err != nil {
			p.log.Error().Err(err).Msg("PROXYSQL RELOAD TLS: the certificate in use is kept")
			return true, err
		}
		p.log.Info().Str("subject", m.Subject).Time("not_after", m.NotAfter).Msg("PROXYSQL RELOAD TLS: new handshakes use the reloaded certificate")
		return true, nil
	case "FLUSH MYSQL CLIENT HOSTS":
		n := len(p.router.ClientHosts(true))
		p.log.Info().Int("entries", n).Msg("client host error cache flushed")
		return true, nil
	case "FLUSH QUERY CACHE":
		n := p.router.QueryCache().Flush()
		p.log.Info().Int("entries", n).Msg("query cache flushed")
		return true, nil
	}
	return false, nil
}

// dataPlaneCommand serves PROXYSQL PAUSE, RESUME and STOP, with ProxySQL's
// refusals. PAUSE closes the data port and leaves every session running;
// RESUME binds mysql-interfaces as the runtime has them now; STOP ends the
// sessions as a graceful shutdown does (mysql-graceful_close_conn_timeout)
// and leaves the admin, the monitor and the pools running, for PROXYSQL
// START.
func (p *Proxy) dataPlaneCommand(cmd string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	verb := strings.ToLower(cmd)
	if !p.started.Load() {
		return admin.CommandRefusal("ProxySQL MySQL module not running, impossible to " + verb)
	}
	switch cmd {
	case "PAUSE":
		if p.paused.Load() {
			return admin.CommandRefusal("ProxySQL MySQL module is already paused, impossible to pause")
		}
		p.router.Pause()
		p.paused.Store(true)
	case "RESUME":
		if !p.paused.Load() {
			return admin.CommandRefusal("ProxySQL MySQL module is not paused, impossible to resume")
		}
		if err := p.router.Listen(p.Runtime().Var("mysql-interfaces")); err != nil {
			return fmt.Errorf("PROXYSQL RESUME: %w (still paused)", err)
		}
		p.paused.Store(false)
	case "STOP":
		p.router.Stop(p.rt.Load().Router.GracefulCloseTimeout)
		p.started.Store(false)
		p.paused.Store(false)
	}
	return nil
}

// dataPlane reports whether the data plane runs, and whether PROXYSQL
// PAUSE closed its port.
func (p *Proxy) dataPlane() (started, paused bool) { return p.started.Load(), p.paused.Load() }

// ErrAlreadyStarted: PROXYSQL START when the data plane runs.
var ErrAlreadyStarted = errors.New("ProxySQL already started")

// StartDataPlane starts the backend monitor (Config.Monitor) and opens the
// data-plane listeners: at start-up, or at PROXYSQL START after
// --no-start. A LOAD MYSQL VARIABLES that changes mysql-interfaces later
// rebinds them (Apply).
func (p *Proxy) StartDataPlane() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.Load() {
		return ErrAlreadyStarted
	}
	if err := p.router.Listen(p.Runtime().Var("mysql-interfaces")); err != nil {
		return err
	}
	if p.scraper == nil {
		p.scraper = scrape.New(p.registry, func() scrape.Settings { return p.rt.Load().Scrape }, p.log)
	}
	if p.cfg.Monitor && p.monitor == nil {
		p.monitor = monitor.New(p.registry, func() *monitor.Options { return p.rt.Load().Monitor }, p.log)
	}
	p.started.Store(true)
	return nil
}

// FlushLogs serves PROXYSQL FLUSH LOGS: reopen the error log, rotate the
// events log.
func (p *Proxy) FlushLogs() error {
	if p.cfg.ReopenLog != nil {
		if err := p.cfg.ReopenLog(); err != nil {
			return err
		}
	}
	if err := p.events.Rotate(); err != nil {
		return err
	}
	return p.audit.Rotate()
}

// Audit returns the audit log writer (the admin logs its connections
// there too).
func (p *Proxy) Audit() *eventlog.Writer { return p.audit }

// KillSession serves KILL CONNECTION on the admin port.
func (p *Proxy) KillSession(id uint64) bool { return p.router.Kill(id) }

// Shutdown serves PROXYSQL SHUTDOWN: Done is closed, and the caller closes
// everything.
func (p *Proxy) Shutdown() { p.doneOnce.Do(func() { close(p.done) }) }

// ShutdownNow serves PROXYSQL SHUTDOWN and KILL (admin.Stopper):
// Shutdown, and Close ends the client sessions at once, as ProxySQL exits
// at once, instead of waiting for their transactions.
func (p *Proxy) ShutdownNow() {
	p.now.Store(true)
	p.Shutdown()
}

// Restart serves PROXYSQL RESTART (admin.Restarter): Shutdown, with
// Restarting true, so the caller starts Sluice again once all is closed.
func (p *Proxy) Restart() {
	p.restarting.Store(true)
	p.Shutdown()
}

// Restarting reports whether Done was closed by Restart.
func (p *Proxy) Restarting() bool { return p.restarting.Load() }

// Done is closed by Shutdown.
func (p *Proxy) Done() <-chan struct{} { return p.done }

// Router returns the data plane (tests, tools).
func (p *Proxy) Router() *router.Router { return p.router }

// Close stops the data plane: sessions first, gracefully (new ones are
// refused, each ends once it is outside a transaction, the rest after
// mysql-graceful_close_conn_timeout), then the monitor, the pools and the
// events log.
func (p *Proxy) Close() error {
	if p.now.Load() {
		p.router.Shutdown(0)
	} else {
		p.router.Shutdown(p.rt.Load().Router.GracefulCloseTimeout)
	}
	p.http.close()
	p.web.close()
	p.sched.close()
	if p.history != nil {
		p.history.close()
	}
	if p.monitor != nil {
		p.monitor.Close()
	}
	if p.scraper != nil {
		p.scraper.Close()
	}
	p.registry.Close()
	_ = p.audit.Close()
	return p.events.Close()
}
