package monitor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/backend"
)

// Galera hostgroups (mysql_galera_hostgroups, ProxySQL's Galera support):
// every server of a row's four hostgroups gets the Galera health check,
// mysql-monitor_galera_healthcheck_interval apart, on its own connection.
// From the last answer of each node, converge places the row's nodes, as
// ProxySQL's monitor and converge_galera_config do:
//   - a node that cannot serve goes to offline_hostgroup only: its check
//     failed (at once; a timeout only after
//     mysql-monitor_galera_healthcheck_max_timeout_count in a row), or it is
//     not in the primary component, desynced, not Synced (wsrep_local_state
//     ≠ 4, except a donor that serves: state 2 without
//     wsrep_sst_donor_rejects_queries), rejecting queries, in PXC
//     maintenance, or it is read_only with more than max_transactions_behind
//     write sets to apply ("slave is lagging");
//   - a node with read_only=1 is a reader: reader_hostgroup only;
//   - the nodes with read_only=0, by weight, host name and port (all
//     descending, as ProxySQL orders them), fill writer_hostgroup up to
//     max_writers; the others are backup writers (backup_writer_hostgroup).
//     writer_is_also_reader=1 puts writers and backup writers in
//     reader_hostgroup too, 2 only the backup writers, 0 neither;
//   - with no node fit to write, the first node in that order whose last
//     check answered without read_only, wsrep_reject_queries or
//     wsrep_sst_donor_rejects_queries is made the writer anyway, as
//     ProxySQL's last resort (galera_find_possible_last_nodes).
// ProxySQL keeps writers beyond max_writers in writer_hostgroup as SHUNNED
// (and copies them to backup_writer_hostgroup); Sluice only moves them:
// either way they get no new traffic there.
// A node moves by being added to its new hostgroups before it leaves the
// old ones (Registry.AddToHostgroup, RemoveFromHostgroup), so it is never
// without a template, and a LOAD MYSQL SERVERS TO RUNTIME that puts the
// configured hostgroups back is converged again at the next tick.

// GaleraHostgroup is one active row of mysql_galera_hostgroups.
type GaleraHostgroup struct {
	WriterHostgroup       int
	BackupWriterHostgroup int
	ReaderHostgroup       int
	OfflineHostgroup      int
	MaxWriters            int
	WriterIsAlsoReader    int // 0, 1 or 2
	MaxTransactionsBehind int
	// GR: a mysql_group_replication_hostgroups row (the Group Replication
	// check, grouprepl.go), not a Galera one.
	GR bool
}

// kind names the row's kind in log lines.
func (g *GaleraHostgroup) kind() string {
	if g.GR {
		return "Group Replication"
	}
	return "Galera"
}

func (g *GaleraHostgroup) hostgroups() [4]int {
	return [4]int{g.WriterHostgroup, g.BackupWriterHostgroup, g.ReaderHostgroup, g.OfflineHostgroup}
}

// GaleraState is what one Galera check read (a row of
// monitor.mysql_server_galera_log).
type GaleraState struct {
	Primary       bool   // wsrep_cluster_status = 'Primary'
	ReadOnly      bool   // @@read_only
	RecvQueue     int    // wsrep_local_recv_queue: write sets received, not applied
	LocalState    int    // wsrep_local_state: 4 is Synced
	Desync        bool   // @@wsrep_desync
	RejectQueries bool   // @@wsrep_reject_queries other than NONE
	DonorRejects  bool   // @@wsrep_sst_donor_rejects_queries
	MaintMode     string // pxc_maint_mode (MariaDB: DISABLED)
}

// galeraQuery is ProxySQL's check for MariaDB (INFORMATION_SCHEMA status).
const galeraQuery = "SELECT (SELECT VARIABLE_VALUE FROM INFORMATION_SCHEMA.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE') wsrep_local_state, " +
	"@@read_only read_only, " +
	"(SELECT VARIABLE_VALUE FROM INFORMATION_SCHEMA.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_RECV_QUEUE') wsrep_local_recv_queue, " +
	"@@wsrep_desync wsrep_desync, @@wsrep_reject_queries wsrep_reject_queries, " +
	"@@wsrep_sst_donor_rejects_queries wsrep_sst_donor_rejects_queries, " +
	"(SELECT VARIABLE_VALUE FROM INFORMATION_SCHEMA.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATUS') wsrep_cluster_status, " +
	"(SELECT 'DISABLED') pxc_maint_mode"

// parseGalera reads the row of galeraQuery as ProxySQL does: a NULL leaves
// the pessimistic starting value (not primary, read-only, desynced, state
// 0, rejecting), so a server without Galera is taken offline with a reason
// that says so; a flag is off only for NO, OFF or 0.
func parseGalera(res *backend.Result) (GaleraState, error) {
	st := GaleraState{ReadOnly: true, Desync: true, RejectQueries: true, DonorRejects: true, MaintMode: "DISABLED"}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 8 {
		return st, fmt.Errorf("%w: the Galera check returned %d rows", backend.ErrProtocol, len(res.Rows))
	}
	r := res.Rows[0]
	str := func(i int) string { return strings.TrimSpace(r[i].String) }
	flag := func(i int, v *bool) {
		if r[i].Valid {
			switch strings.ToUpper(str(i)) {
			case "NO", "OFF", "0":
				*v = false
			default:
				*v = true
			}
		}
	}
	if r[0].Valid {
		st.LocalState, _ = strconv.Atoi(str(0))
	}
	flag(1, &st.ReadOnly)
	if r[2].Valid {
		st.RecvQueue, _ = strconv.Atoi(str(2))
	}
	flag(3, &st.Desync)
	if r[4].Valid {
		st.RejectQueries = !strings.EqualFold(str(4), "NONE")
	}
	flag(5, &st.DonorRejects)
	st.Primary = r[6].Valid && strings.EqualFold(str(6), "Primary")
	if r[7].Valid && !strings.HasPrefix(strings.ToUpper(str(7)), "DISABLED") {
		st.MaintMode = strings.ToUpper(str(7))
	}
	return st, nil
}

// galeraRole is where converge puts a node.
type galeraRole int

const (
	galeraUnknown galeraRole = iota // not checked yet: left where it is
	galeraOffline
	galeraReader
	galeraWriter // read_only=0: a writer or a backup writer
)

// galeraVerdict is the role a node's last check gives it, with the reason
// when it is offline.
func galeraVerdict(st GaleraState, maxBehind int) (galeraRole, string) {
	switch {
	case !st.Primary:
		return galeraOffline, "primary_partition=NO"
	case st.Desync:
		return galeraOffline, "wsrep_desync=YES"
	case st.LocalState != 4 && (st.LocalState != 2 || st.DonorRejects):
		return galeraOffline, fmt.Sprintf("wsrep_local_state=%d", st.LocalState)
	case st.RejectQueries:
		return galeraOffline, "wsrep_reject_queries=true"
	case st.MaintMode != "DISABLED":
		return galeraOffline, "pxc_maint_mode=" + st.MaintMode
	case st.ReadOnly && st.RecvQueue > maxBehind:
		return galeraOffline, fmt.Sprintf("slave is lagging (wsrep_local_recv_queue=%d > max_transactions_behind=%d)", st.RecvQueue, maxBehind)
	case st.ReadOnly:
		return galeraReader, ""
	}
	return galeraWriter, ""
}

// galeraLastResort reports whether a node may be made the writer when no
// node is fit to write: its last check answered, and the node is neither
// read-only nor rejecting queries (ProxySQL's galera_find_possible_last_nodes).
func galeraLastResort(st *GaleraState) bool {
	return st != nil && !st.RejectQueries && !st.ReadOnly && !st.DonorRejects
}

// galeraNode is one host:port of a Galera hostgroup row, as converge sees it.
type galeraNode struct {
	host       string
	port       int
	weight     int
	role       galeraRole
	lastResort bool // may write when no node is fit to (galeraLastResort)
}

// galeraPlan returns the hostgroups each node of row g belongs in, indexed
// as nodes; a node of unknown role gets nil (left alone).
func galeraPlan(g GaleraHostgroup, nodes []galeraNode) [][]int {
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		na, nb := nodes[a], nodes[b]
		if na.weight != nb.weight {
			return nb.weight - na.weight
		}
		if c := strings.Compare(nb.host, na.host); c != 0 {
			return c
		}
		return nb.port - na.port
	})
	var writers []int
	for _, i := range order {
		if nodes[i].role == galeraWriter {
			writers = append(writers, i)
		}
	}
	if len(writers) == 0 && g.MaxWriters > 0 {
		for _, i := range order {
			if nodes[i].role != galeraUnknown && nodes[i].lastResort {
				nodes[i].role = galeraWriter
				writers = append(writers, i)
				break
			}
		}
	}
	active := make(map[int]bool, g.MaxWriters)
	for i, w := range writers {
		if i < g.MaxWriters {
			active[w] = true
		}
	}
	plan := make([][]int, len(nodes))
	for i, n := range nodes {
		switch n.role {
		case galeraOffline:
			plan[i] = []int{g.OfflineHostgroup}
		case galeraReader:
			plan[i] = []int{g.ReaderHostgroup}
		case galeraWriter:
			if active[i] {
				plan[i] = []int{g.WriterHostgroup}
				if g.WriterIsAlsoReader == 1 {
					plan[i] = append(plan[i], g.ReaderHostgroup)
				}
			} else {
				plan[i] = []int{g.BackupWriterHostgroup}
				if g.WriterIsAlsoReader == 1 || g.WriterIsAlsoReader == 2 {
					plan[i] = append(plan[i], g.ReaderHostgroup)
				}
			}
		}
	}
	return plan
}

// galeraNodeState is the Galera health of one monitored address. Guarded by
// Monitor.galeraMu.
type galeraNodeState struct {
	role     galeraRole
	reason   string       // why offline
	last     *GaleraState // the last check's answer; nil after an error
	timeouts int          // consecutive checks that timed out
	behind   int          // Group Replication: consecutive checks a read_only member was behind
}

// checkGalera runs the Galera health check on t and converges its row
// (a Group Replication row's check is checkGR).
func (m *Monitor) checkGalera(t *monTarget, o *Options, writerHG int) {
	g, ok := o.galeraRow(writerHG)
	if ok && g.GR {
		m.checkGR(t, o, g)
		return
	}
	start := time.Now()
	var st GaleraState
	took, err := m.clusterQuery(t, o, o.GaleraTimeout, galeraQuery, func(res *backend.Result) (err error) {
		st, err = parseGalera(res)
		return err
	})
	if m.ctx.Err() != nil {
		return
	}
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: -1, ReplLag: -1, Galera: &st}
	if err == nil {
		e.Success = took
	} else {
		e.Error, e.Galera = errorText(err, t.host), nil
	}
	m.record(t.addr, checkGalera, e)
	if !ok {
		return
	}
	m.galeraMu.Lock()
	defer m.galeraMu.Unlock()
	ns := m.nodeState(t.addr)
	prev := ns.role
	if err != nil {
		ns.last = nil
		if !ns.failed(err, o.GaleraMaxTimeoutCount, "Galera") {
			return // a slow answer or two must not take a node out
		}
	} else {
		ns.timeouts = 0
		ns.last = &st
		ns.role, ns.reason = galeraVerdict(st, g.MaxTransactionsBehind)
	}
	m.place(t, g, ns, prev)
}

// clusterQuery runs query on t's Galera / Group Replication connection,
// bounded by timeout, and hands the answer to parse; took is the query's
// time.
func (m *Monitor) clusterQuery(t *monTarget, o *Options, timeout time.Duration, query string, parse func(*backend.Result) error) (took time.Duration, err error) {
	err = m.withConn(t, o, &t.galeraConn, func(c *backend.BackendConn) error {
		ctx, cancel := context.WithTimeout(m.ctx, timeout)
		defer cancel()
		q := time.Now()
		res, err := c.Query(ctx, query)
		took = max(time.Since(q), time.Microsecond)
		if err != nil {
			return err
		}
		return parse(res)
	})
	return took, err
}

// nodeState returns the health of the node at addr (m.galeraMu held).
func (m *Monitor) nodeState(addr string) *galeraNodeState {
	ns := m.galera[addr]
	if ns == nil {
		ns = &galeraNodeState{}
		m.galera[addr] = ns
	}
	return ns
}

// failed applies a failed check to ns: offline at once, a timeout only
// after maxTimeouts in a row. It reports false when the timeout is
// forgiven and nothing changes.
func (ns *galeraNodeState) failed(err error, maxTimeouts int, kind string) bool {
	if isTimeout(err) {
		ns.timeouts++
		if ns.timeouts < maxTimeouts {
			return false
		}
		err = fmt.Errorf("missed %d %s checks in a row: %w", ns.timeouts, kind, err)
	}
	ns.role, ns.reason = galeraOffline, err.Error()
	return true
}

// place logs a node that has just become unfit and converges its row
// (m.galeraMu held).
func (m *Monitor) place(t *monTarget, g GaleraHostgroup, ns *galeraNodeState, prev galeraRole) {
	if ns.role != prev && ns.role == galeraOffline {
		m.log.Warn().Str("server", t.addr).Int("writer_hostgroup", g.WriterHostgroup).Str("reason", ns.reason).
			Msgf("%s node %s is not healthy (%s): moving it to offline hostgroup %d", g.kind(), t.addr, ns.reason, g.OfflineHostgroup)
	}
	m.convergeGaleraLocked(g)
}

// convergeGaleraLocked places every checked node of row g in the hostgroups
// galeraPlan gives it (m.galeraMu held).
func (m *Monitor) convergeGaleraLocked(g GaleraHostgroup) {
	hgs := g.hostgroups()
	type entry struct {
		addr  string
		node  galeraNode
		have  map[int]*backend.Server
		first *backend.Server
	}
	var entries []*entry
	byAddr := map[string]*entry{}
	for _, s := range m.reg.Servers() {
		k := s.Key()
		if !slices.Contains(hgs[:], k.Hostgroup) {
			continue
		}
		addr := s.Addr()
		e := byAddr[addr]
		if e == nil {
			e = &entry{addr: addr, node: galeraNode{host: k.Host, port: k.Port}, have: map[int]*backend.Server{}}
			if ns := m.galera[addr]; ns != nil {
				e.node.role, e.node.lastResort = ns.role, galeraLastResort(ns.last)
			}
			byAddr[addr] = e
			entries = append(entries, e)
		}
		e.have[k.Hostgroup] = s
	}
	nodes := make([]galeraNode, len(entries))
	for i, e := range entries {
		// The weight and the template of the node: its entry in the first
		// of writer, backup writer, reader, offline hostgroup it is in.
		for _, hg := range hgs {
			if s := e.have[hg]; s != nil && e.first == nil {
				e.first = s
			}
		}
		st := e.first.Status()
		if st == backend.StatusOfflineSoft || st == backend.StatusOfflineHard {
			e.node.role = galeraUnknown // an administrator's OFFLINE: left alone
		}
		e.node.weight = e.first.Weight()
		nodes[i] = e.node
	}
	plan := galeraPlan(g, nodes)
	for i, e := range entries {
		want := plan[i]
		if want == nil {
			continue
		}
		addr := e.addr
		for _, hg := range want {
			if e.have[hg] == nil {
				if _, added := m.reg.AddToHostgroup(e.first, hg); added {
					m.log.Info().Str("server", addr).Int("hostgroup", hg).
						Msgf("%s: adding %s to hostgroup %d", g.kind(), addr, hg)
				}
			}
		}
		for hg, s := range e.have {
			if !slices.Contains(want, hg) && m.reg.RemoveFromHostgroup(s.Key()) {
				m.log.Info().Str("server", addr).Int("hostgroup", hg).
					Msgf("%s: removing %s from hostgroup %d", g.kind(), addr, hg)
			}
		}
	}
}

// convergeGalera re-applies every row's plan from the nodes' last checks:
// a LOAD MYSQL SERVERS TO RUNTIME puts the configured hostgroups back, and
// the next tick puts the nodes where their health says.
func (m *Monitor) convergeGalera(o *Options) {
	if len(o.ClusterHostgroups) == 0 {
		return
	}
	m.galeraMu.Lock()
	defer m.galeraMu.Unlock()
	if len(m.galera) == 0 {
		return
	}
	for _, g := range o.ClusterHostgroups {
		m.convergeGaleraLocked(g)
	}
}

// galeraRow returns the Galera or Group Replication row whose writer
// hostgroup is hg.
func (o *Options) galeraRow(hg int) (GaleraHostgroup, bool) {
	for _, g := range o.ClusterHostgroups {
		if g.WriterHostgroup == hg {
			return g, true
		}
	}
	return GaleraHostgroup{}, false
}

// GaleraLog returns monitor.mysql_server_galera_log (see ConnectLog).
func (m *Monitor) GaleraLog() []LogEntry { return m.snapshot(checkGalera) }
