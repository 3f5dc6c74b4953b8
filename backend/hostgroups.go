package backend

import (
	"sort"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// The runtime changes of the server set that the monitor's read_only check
// (package backend/monitor) makes (reference §4.3): a server found
// writable is added to the writer hostgroup, one found read-only leaves it.
// They change only the registry, not the configuration: the next LOAD MYSQL
// SERVERS TO RUNTIME starts from mysql_servers again, and the next
// read_only check redoes the moves.

// AddToHostgroup ensures that a server with src's host and port is in
// hostgroup hg, copying src's settings (weight, max_connections, …) with
// status ONLINE, as ProxySQL copies a reader into the writer hostgroup. It
// returns the server and whether it was added (false: it was there already,
// or the registry is closed, then nil).
func (r *Registry) AddToHostgroup(src *Server, hg int) (*Server, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	k := Key{Hostgroup: hg, Host: src.key.Host, Port: src.key.Port}
	if s, ok := r.servers[k]; ok {
		return s, false
	}
	cs := config.Server{
		HostgroupID: hg, Hostname: k.Host, Port: k.Port, GTIDPort: src.GTIDPort(), Status: StatusOnline.String(),
		Weight: src.Weight(), Compression: src.Compression(), MaxConnections: src.MaxConnections(),
		MaxReplicationLag: src.MaxReplicationLag(), UseSSL: src.UseSSL(), MaxLatencyMs: src.MaxLatencyMs(),
		Comment: src.Comment(),
	}
	s := newServer(&cs, r)
	s.latencyUs.Store(src.latencyUs.Load())
	s.readOnly.Store(src.readOnly.Load())
	r.servers[k] = s
	r.publishLocked()
	return s, true
}

// RemoveFromHostgroup takes the server with key k out of its hostgroup: it
// becomes OFFLINE_HARD, its idle connections are closed now and those in
// use when they come back (as a server removed by Reconcile). It reports
// whether the server was there.
func (r *Registry) RemoveFromHostgroup(k Key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[k]
	if !ok || r.closed {
		return false
	}
	delete(r.servers, k)
	r.publishLocked()
	r.retireLocked(s, time.Now())
	s.SetStatus(StatusOfflineHard)
	s.pool.drainFree()
	return true
}

// publishLocked rebuilds the lock-free views from r.servers: hostgroups
// keep their current order with new servers at the end, and the full list
// is sorted by (hostgroup, host, port). Called with r.mu held.
func (r *Registry) publishLocked() {
	old := *r.byHG.Load()
	byHG := make(map[int][]*Server, len(old)+1)
	seen := make(map[Key]bool, len(r.servers))
	for hg, list := range old {
		for _, s := range list {
			if cur, ok := r.servers[s.key]; ok && cur == s {
				byHG[hg] = append(byHG[hg], s)
				seen[s.key] = true
			}
		}
	}
	all := make([]*Server, 0, len(r.servers))
	for k, s := range r.servers {
		all = append(all, s)
		if !seen[k] {
			byHG[k.Hostgroup] = append(byHG[k.Hostgroup], s)
		}
	}
	sortServers(all)
	r.byHG.Store(&byHG)
	r.all.Store(&all)
}

func sortServers(all []*Server) {
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].key, all[j].key
		if a.Hostgroup != b.Hostgroup {
			return a.Hostgroup < b.Hostgroup
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Port < b.Port
	})
}
