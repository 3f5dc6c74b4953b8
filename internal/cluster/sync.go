package cluster

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// source is the peer a module is pulled from and what it announced.
type source struct {
	pe       *peer
	host     string
	port     int
	epoch    int64
	checksum string
}

// syncAll checks every module after a poll of pe, as ProxySQL does after
// set_checksums, and pulls those this peer wins. The pulls of different
// modules run side by side (each holds its module's lock; the imports
// themselves take the admin's lock one at a time), so that a peer whose
// servers, users and rules all changed is caught up in about the time of
// one pull rather than three. A module another poller is already pulling
// is skipped.
func (m *Manager) syncAll(ctx context.Context, from *peer) {
	rt := m.cfg.Runtime()
	if rt == nil {
		return
	}
	own, err := m.cfg.Store.Checksums()
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, s := range syncModules {
		diffs := rt.Int(s.diffsVar)
		if diffs <= 0 {
			continue
		}
		src, ok := m.pick(s.name, own[s.name], diffs, from)
		if !ok {
			continue
		}
		lock := m.syncing[s.name]
		if !lock.TryLock() {
			continue
		}
		save := rt.Bool(s.saveDiskVar)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lock.Unlock()
			if !m.pull(ctx, s.mod, s.name, src, save) {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		sleep(ctx, pullBackoff)
	}
}

// pullBackoff is the pause of a poller after a failed pull (ProxySQL's
// sleep(1) in pull_*_from_peer), so that a module that cannot be applied is
// retried, and logged, at most about once a second.
const pullBackoff = time.Second

// pick applies the conflict rule to checksum row name. The candidates are
// the peers (this node excluded) whose row has a version above 1 (version
// 1 is a node that only booted) and a checksum different from this node's.
// The winner has the newest epoch and, among equal epochs, the smallest
// name (hostname, then port). This node pulls from it when the winner's
// diff_check reached diffs and this node only booted (own version 1), or
// the winner's epoch is newer, or it is as new and the winner's name is
// smaller than this node's. ProxySQL stops at equal epochs and logs a
// conflict; the name makes every node choose the same configuration.
// Only the poller of the winner pulls, so that a pull happens once.
func (m *Manager) pick(name string, own storage.ModuleChecksum, diffs int64, from *peer) (source, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *peer
	var bc *peerChecksum
	for _, pe := range m.peers {
		if m.self != nil && pe.host == m.self.host && pe.port == m.self.port {
			continue
		}
		c := pe.checksums[name]
		if c == nil || c.checksum == own.Checksum {
			continue
		}
		if c.version <= 1 {
			if pe == from && c.diffCheck > 0 && c.diffCheck%(diffs*10) == 0 {
				// Both nodes booted with different configurations: neither
				// pulls, as in ProxySQL, which says so at the same pace.
				m.log.Warn().Str("peer", pe.name()).Str("module", name).Int64("diff_check", c.diffCheck).
					Msg("Cluster: the peer's configuration differs, but its version 1 (it only booted) does not allow sync: " +
						"run LOAD … TO RUNTIME for the module on the node whose configuration should win")
			}
			continue
		}
		if best == nil || c.epoch > bc.epoch || (c.epoch == bc.epoch && lessName(pe, best)) {
			best, bc = pe, c
		}
	}
	if best == nil || best != from || bc.diffCheck < diffs {
		return source{}, false
	}
	newer := own.Version == 1 || bc.epoch > own.Epoch
	if !newer && bc.epoch == own.Epoch {
		newer = m.self == nil || lessName(best, m.self)
	}
	if !newer {
		if bc.diffCheck%(diffs*10) == 0 {
			m.log.Info().Str("peer", best.name()).Str("module", name).Int64("epoch", bc.epoch).
				Msg("Cluster: peer has another configuration with an epoch not newer than ours; it will sync from us")
		}
		return source{}, false
	}
	return source{pe: best, host: best.host, port: best.port, epoch: bc.epoch, checksum: bc.checksum}, true
}

// pull is pull_<module>_from_peer: fetch the module with the queries a
// ProxySQL node sends, check that the rows give the checksum the peer
// announced (else the module changed meanwhile: the next check retries),
// and import them with the peer's epoch. It reports whether the module was
// applied.
func (m *Manager) pull(ctx context.Context, mod config.Module, name string, src source, save bool) bool {
	log := m.log.With().Str("peer", nodeName(src.host, src.port)).Str("module", name).Logger()
	log.Info().Str("expected_checksum", src.checksum).Int64("epoch", src.epoch).Msg("Cluster: fetching module from peer")
	start := time.Now()
	key := m.currentKey()
	db := openDB(src.host, src.port, key.user, key.pass)
	defer db.Close()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout+ioTimeout)
	conn, err := db.Conn(cctx)
	cancel()
	if err != nil {
		log.Warn().Err(err).Msg("Cluster: fetching module from peer failed")
		return false
	}
	defer conn.Close()
	qs := storage.ClusterQueries(name)
	results := make([][][]sql.NullString, len(qs))
	cols := make([][]string, len(qs))
	for i, q := range qs {
		c, rows, err := fetch(ctx, conn, q.Text)
		if err != nil && q.Optional {
			c, rows, err = nil, nil, nil // a ProxySQL peer: it has no such table
		}
		if err != nil {
			log.Warn().Err(err).Msg("Cluster: fetching module from peer failed")
			return false
		}
		cols[i], results[i] = c, rows
	}
	if got := storage.ClusterChecksum(name, results...); got != src.checksum {
		log.Info().Str("expected", src.checksum).Str("computed", got).
			Msg("Cluster: fetched module does not match the checksum announced by the peer (it changed meanwhile); not applied")
		return false
	}
	fetched := time.Since(start)
	tables := make(map[string][][]any, len(qs))
	for i, q := range qs {
		rows, err := m.memoryRows(q.Into, cols[i], results[i])
		if err != nil {
			log.Warn().Err(err).Msg("Cluster: cannot use the rows fetched from peer")
			return false
		}
		tables[q.Into] = rows
	}
	if err := m.cfg.Admin.ImportModuleAt(mod, tables, save, time.Unix(src.epoch, 0)); err != nil {
		log.Warn().Err(err).Msg("Cluster: loading module fetched from peer failed")
		return false
	}
	log.Info().Bool("saved_to_disk", save).Dur("fetch", fetched).Dur("took", time.Since(start)).
		Msg("Cluster: module fetched from peer loaded to runtime")
	return true
}

// currentKey is the credentials of the running configuration.
func (m *Manager) currentKey() peerKey {
	rt := m.cfg.Runtime()
	return peerKey{user: rt.Var("admin-cluster_username"), pass: rt.Var("admin-cluster_password")}
}

// memoryRows turns a fetched result into rows of MEMORY table table, in
// its column order: columns are matched by name (case-insensitively); a
// column the queries leave out gets its DDL default, as ProxySQL's INSERT
// of the fetched columns gives it, but "active", which ProxySQL sets to 1:
// only active rows reach RUNTIME. For global_variables the rows stay (variable_name,
// variable_value) pairs.
func (m *Manager) memoryRows(table string, cols []string, rows [][]sql.NullString) ([][]any, error) {
	if len(rows) == 0 {
		return [][]any{}, nil
	}
	var want []storage.Column
	if table == "global_variables" {
		want = []storage.Column{{Name: "variable_name"}, {Name: "variable_value"}}
	} else {
		var err error
		if want, err = m.cfg.Store.Columns(table); err != nil {
			return nil, err
		}
	}
	idx := make([]int, len(want))
	for i, w := range want {
		idx[i] = -1
		for j, c := range cols {
			if strings.EqualFold(c, w.Name) {
				idx[i] = j
				break
			}
		}
	}
	out := make([][]any, len(rows))
	for r, row := range rows {
		v := make([]any, len(want))
		for i, j := range idx {
			switch {
			case j < 0 && want[i].Name == "active":
				v[i] = 1 // ProxySQL binds active=1 (its DDL default is 0 for rules)
			case j < 0:
				v[i] = want[i].Default
			case row[j].Valid:
				v[i] = row[j].String
			default:
				v[i] = nil
			}
		}
		out[r] = v
	}
	return out, nil
}
