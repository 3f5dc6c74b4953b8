package main

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/router"
	"github.com/sluice-proxy/sluice/rules"
	"github.com/sluice-proxy/sluice/storage"
)

// proxy is the running Sluice as the admin plane sees it: it implements
// admin.Applier. Apply validates a snapshot, makes every part that depends
// on the module take it (backend registry, events log, router), then
// publishes it; a failure leaves RUNTIME as it was.
type proxy struct {
	log     zerolog.Logger
	datadir string
	sink    *logSink

	registry *backend.Registry
	monitor  *backend.Monitor // nil with --no-monitor; set by main before the admin listens
	events   *eventlog.Writer
	router   *router.Router
	stats    *stats.Collector
	store    *storage.Store // for the live tables (RefreshTables); set by main

	pool           poolBaseline // stats_mysql_connection_pool_reset
	serversVersion atomic.Int64 // Servers_table_version: LOAD MYSQL SERVERS TO RUNTIME count

	mu      sync.Mutex // serializes Apply
	current atomic.Pointer[config.Snapshot]
	rules   *rules.RuleSet // guarded by mu

	done     chan struct{}
	doneOnce sync.Once
}

var (
	_ admin.Applier = (*proxy)(nil)
	_ admin.Killer  = (*proxy)(nil)
)

func newProxy(datadir string, sink *logSink, log zerolog.Logger) *proxy {
	p := &proxy{log: log, datadir: datadir, sink: sink, done: make(chan struct{})}
	p.registry = backend.NewRegistry(backend.DefaultOptions(), log)
	p.events = eventlog.New(datadir, log)
	p.stats = stats.New(stats.DefaultOptions())
	p.router = router.New(router.Config{Registry: p.registry, Events: p.events, Stats: p.stats, Log: log})
	p.current.Store(&config.Snapshot{})
	return p
}

// Runtime returns the running snapshot.
func (p *proxy) Runtime() *config.Snapshot { return p.current.Load() }

// Apply makes snap the running configuration for module m. Everything that
// can fail is checked before anything changes.
func (p *proxy) Apply(m config.Module, snap *config.Snapshot) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := snap.Validate(m); err != nil {
		return err
	}
	rs := p.rules
	if m == config.ModMySQLQueryRules || rs == nil {
		var err error
		rs, err = rules.Compile(snap.QueryRules, snap.FastRouting, rules.CompileOptionsFromVars(snap.Var))
		if err != nil {
			return fmt.Errorf("mysql_query_rules: %w", err)
		}
	}
	if m == config.ModMySQLVariables {
		size, _ := strconv.ParseInt(snap.Var("mysql-eventslog_filesize"), 10, 64)
		format, _ := strconv.Atoi(snap.Var("mysql-eventslog_format"))
		if err := p.events.Configure(snap.Var("mysql-eventslog_filename"), format, size); err != nil {
			return fmt.Errorf("global_variables (mysql-eventslog_filename): %w", err)
		}
		p.registry.SetOptions(backend.OptionsFromSnapshot(snap))
	}
	if m == config.ModMySQLServers {
		p.registry.Reconcile(snap.Servers)
		p.serversVersion.Add(1)
	}
	// The monitor reads mysql-monitor_* (variables) and
	// mysql_replication_hostgroups (servers); the server list itself it
	// reads from the registry at every tick.
	if p.monitor != nil && (m == config.ModMySQLVariables || m == config.ModMySQLServers) {
		p.monitor.SetOptions(backend.MonitorOptionsFromSnapshot(snap))
	}
	p.rules = rs
	p.router.Apply(snap, rs)
	p.current.Store(snap)
	return nil
}

// Start opens the data-plane listeners (mysql-interfaces is read at start
// only, as in ProxySQL).
func (p *proxy) Start(snap *config.Snapshot) error {
	return p.router.Listen(snap.Var("mysql-interfaces"))
}

// FlushLogs serves PROXYSQL FLUSH LOGS: reopen the error log, rotate the
// events log.
func (p *proxy) FlushLogs() error {
	if err := p.sink.Reopen(); err != nil {
		return err
	}
	return p.events.Rotate()
}

// KillSession serves KILL CONNECTION on the admin port.
func (p *proxy) KillSession(id uint64) bool { return p.router.Kill(id) }

// Shutdown serves PROXYSQL SHUTDOWN: main returns and closes everything.
func (p *proxy) Shutdown() { p.doneOnce.Do(func() { close(p.done) }) }

// Done is closed by Shutdown.
func (p *proxy) Done() <-chan struct{} { return p.done }

// StartMonitor starts the backend monitor on the running configuration
// (not called with --no-monitor; mysql-monitor_enabled=false pauses it).
func (p *proxy) StartMonitor() {
	p.monitor = backend.NewMonitor(p.registry, backend.MonitorOptionsFromSnapshot(p.Runtime()), p.log)
}

// Close stops the data plane: monitor, sessions, then pools, then the
// events log.
func (p *proxy) Close() error {
	if p.monitor != nil {
		p.monitor.Close()
	}
	p.router.Close()
	p.registry.Close()
	return p.events.Close()
}
