package main

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/rules"
)

// proxy is the running Sluice as the admin plane sees it: it implements
// admin.Applier. Apply validates a snapshot, makes every part that depends
// on the module take it, then publishes it; a failure leaves RUNTIME as it
// was.
type proxy struct {
	log     zerolog.Logger
	datadir string
	admin   *admin.Server

	mu      sync.Mutex // serializes Apply
	current atomic.Pointer[config.Snapshot]
	rules   atomic.Pointer[rules.RuleSet]

	done     chan struct{}
	doneOnce sync.Once
}

var _ admin.Applier = (*proxy)(nil)

func newProxy(datadir string, log zerolog.Logger) *proxy {
	p := &proxy{log: log, datadir: datadir, done: make(chan struct{})}
	p.current.Store(&config.Snapshot{})
	return p
}

// Runtime returns the running snapshot.
func (p *proxy) Runtime() *config.Snapshot { return p.current.Load() }

// Apply makes snap the running configuration for module m.
func (p *proxy) Apply(m config.Module, snap *config.Snapshot) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := snap.Validate(m); err != nil {
		return err
	}
	if m == config.ModMySQLQueryRules {
		rs, err := rules.Compile(snap.QueryRules, snap.FastRouting, rules.CompileOptionsFromVars(snap.Var))
		if err != nil {
			return fmt.Errorf("mysql_query_rules: %w", err)
		}
		p.rules.Store(rs)
	}
	p.current.Store(snap)
	return nil
}

// Start opens the data-plane listeners for the snapshot loaded at boot.
func (p *proxy) Start(snap *config.Snapshot) error { return nil }

// FlushLogs serves PROXYSQL FLUSH LOGS.
func (p *proxy) FlushLogs() error { return nil }

// Shutdown serves PROXYSQL SHUTDOWN: main returns and closes everything.
func (p *proxy) Shutdown() { p.doneOnce.Do(func() { close(p.done) }) }

// Done is closed by Shutdown.
func (p *proxy) Done() <-chan struct{} { return p.done }

// Close stops the data plane.
func (p *proxy) Close() error { return nil }
