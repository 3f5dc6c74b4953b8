// Package cluster is Sluice's ProxySQL Cluster poller: one goroutine per
// row of runtime proxysql_servers polls that peer's admin port with the
// queries a ProxySQL node sends (storage.ClusterQueries and the check loop
// of ProxySQL_Cluster_Monitor_thread), fills stats_proxysql_servers_*, and
// pulls a module whose checksum differs from the peer that wins the
// deterministic conflict rule (newest epoch, then the smallest node name),
// applying it through the admin's ImportModuleAt — the path of a local
// LOAD. docs/cluster.md describes the protocol and the rule.
package cluster

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// Importer applies a module fetched from a peer (admin.Server).
type Importer interface {
	ImportModuleAt(m config.Module, tables map[string][][]any, saveToDisk bool, epoch time.Time) error
}

// Config is what the poller needs.
type Config struct {
	Store   *storage.Store
	Admin   Importer
	Runtime func() *config.Snapshot // the running configuration
	Log     zerolog.Logger
	// UUID identifies this node in PROXYSQL CLUSTER_NODE_UUID.
	UUID string
}

// syncModules are the checksum rows a node syncs, with their module and
// their admin-cluster_<module>_diffs_before_sync / _save_to_disk variables
// (spelled out, so that a test can check every variable the code reads
// exists), in ProxySQL's order of checks.
var syncModules = []struct {
	name        string
	mod         config.Module
	diffsVar    string
	saveDiskVar string
}{
	{"admin_variables", config.ModAdminVariables, "admin-cluster_admin_variables_diffs_before_sync", "admin-cluster_admin_variables_save_to_disk"},
	{"mysql_query_rules", config.ModMySQLQueryRules, "admin-cluster_mysql_query_rules_diffs_before_sync", "admin-cluster_mysql_query_rules_save_to_disk"},
	{"mysql_servers_v2", config.ModMySQLServers, "admin-cluster_mysql_servers_diffs_before_sync", "admin-cluster_mysql_servers_save_to_disk"},
	{"mysql_users", config.ModMySQLUsers, "admin-cluster_mysql_users_diffs_before_sync", "admin-cluster_mysql_users_save_to_disk"},
	{"mysql_variables", config.ModMySQLVariables, "admin-cluster_mysql_variables_diffs_before_sync", "admin-cluster_mysql_variables_save_to_disk"},
	{"proxysql_servers", config.ModProxySQLServers, "admin-cluster_proxysql_servers_diffs_before_sync", "admin-cluster_proxysql_servers_save_to_disk"},
}

// Manager runs the pollers. Use New, Reload after every LOAD (cheap when
// nothing relevant changed), Close at shutdown.
type Manager struct {
	cfg    Config
	log    zerolog.Logger
	reload chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	peers map[string]*peer // by name (host:port)
	self  *peer            // this node's row (name only), nil when not listed

	// syncing guards each module's pull: one at a time, as ProxySQL's
	// update_<module>_mutex.
	syncing map[string]*sync.Mutex
}

// New starts the supervisor; pollers start with the first Reload.
func New(cfg Config) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Log.With().Str("module", "cluster").Logger(),
		reload:  make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[string]*peer),
		syncing: make(map[string]*sync.Mutex),
	}
	for _, s := range syncModules {
		m.syncing[s.name] = new(sync.Mutex)
	}
	m.wg.Add(1)
	go m.supervise()
	m.Reload()
	return m
}

// Reload makes the supervisor compare the runtime's proxysql_servers and
// cluster credentials with the running pollers. It never blocks: it is
// called from the admin's load hook, under the admin mutex.
func (m *Manager) Reload() {
	select {
	case m.reload <- struct{}{}:
	default:
	}
}

// Close stops every poller and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// peerKey identifies what a poller was started for: a change of any part
// restarts it.
type peerKey struct {
	host, user, pass string
	port             int
}

func (m *Manager) supervise() {
	defer m.wg.Done()
	running := make(map[string]*poller)
	defer func() {
		for _, p := range running {
			p.stop()
		}
	}()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.reload:
		}
		rt := m.cfg.Runtime()
		if rt == nil {
			continue
		}
		user, pass := rt.Var("admin-cluster_username"), rt.Var("admin-cluster_password")
		want := make(map[string]config.ProxySQLServer, len(rt.ProxySQLServers))
		for _, ps := range rt.ProxySQLServers {
			want[nodeName(ps.Hostname, ps.Port)] = ps
		}
		self := selfName(rt)
		for name, p := range running {
			ps, ok := want[name]
			if ok && p.key == (peerKey{ps.Hostname, user, pass, ps.Port}) {
				continue
			}
			p.stop()
			delete(running, name)
			m.mu.Lock()
			delete(m.peers, name)
			m.mu.Unlock()
			m.log.Info().Str("peer", name).Msg("Cluster: closing thread for peer")
		}
		m.mu.Lock()
		m.self = self
		for name, ps := range want {
			if pe, ok := m.peers[name]; ok {
				pe.weight, pe.comment = ps.Weight, ps.Comment
			}
		}
		m.mu.Unlock()
		for name, ps := range want {
			if _, ok := running[name]; ok {
				continue
			}
			pe := newPeer(ps)
			m.mu.Lock()
			m.peers[name] = pe
			m.mu.Unlock()
			p := m.startPoller(pe, peerKey{ps.Hostname, user, pass, ps.Port})
			running[name] = p
			m.log.Info().Str("peer", name).Msg("Cluster: starting thread for peer")
		}
	}
}

// nodeName is how a node is named in logs and in the conflict rule.
func nodeName(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// lessName orders node names for the conflict rule: by hostname as
// written in proxysql_servers, then by port as a number.
func lessName(a, b *peer) bool {
	if a.host != b.host {
		return a.host < b.host
	}
	return a.port < b.port
}

// selfName finds this node among the runtime's proxysql_servers rows: the
// row whose port is one the admin listens on and whose host is that
// interface's, or a local address when the admin listens on a wildcard or
// on loopback. nil when this node is not listed.
// A row may name this node by a host name, as ProxySQL's tutorials write
// them (proxysql-1): it is resolved, and this host's own name is local.
func selfName(rt *config.Snapshot) *peer {
	local := localAddrs()
	resolved := map[string][]string{}
	addrsOf := func(host string) []string {
		if a, ok := resolved[host]; ok {
			return a
		}
		var a []string
		if net.ParseIP(host) == nil {
			ctx, cancel := context.WithTimeout(context.Background(), selfLookupTimeout)
			a, _ = net.DefaultResolver.LookupHost(ctx, host)
			cancel()
		}
		resolved[host] = a
		return a
	}
	for _, spec := range strings.Split(rt.Var("admin-mysql_ifaces"), ";") {
		h, p, err := net.SplitHostPort(strings.TrimSpace(spec))
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		for _, ps := range rt.ProxySQLServers {
			if ps.Port != port {
				continue
			}
			wild := h == "" || h == "0.0.0.0" || h == "::"
			if ps.Hostname == h || ((wild || isLoopback(h)) && local[strings.ToLower(ps.Hostname)]) {
				return &peer{host: ps.Hostname, port: ps.Port}
			}
			for _, a := range addrsOf(ps.Hostname) {
				if a == h || ((wild || isLoopback(h)) && local[a]) {
					return &peer{host: ps.Hostname, port: ps.Port}
				}
			}
		}
	}
	return nil
}

// selfLookupTimeout bounds the resolution of one proxysql_servers host
// name when this node looks for itself (at LOAD PROXYSQL SERVERS).
const selfLookupTimeout = time.Second

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// localAddrs are the names this host answers to without DNS: localhost,
// the loopback addresses and the addresses of its interfaces.
func localAddrs() map[string]bool {
	out := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	if h, err := os.Hostname(); err == nil && h != "" {
		out[strings.ToLower(h)] = true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}
