package monitor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/backend"
)

// Group Replication hostgroups (mysql_group_replication_hostgroups,
// ProxySQL's MySQL Group Replication / InnoDB Cluster support): every
// server of a row's four hostgroups gets ProxySQL's check,
// mysql-monitor_groupreplication_healthcheck_interval apart, reading the
// sys.gr_member_routing_candidate_status view that ProxySQL's setup
// installs on the members (viable_candidate, read_only,
// transactions_behind). The placement is Galera's (galeraPlan, converged
// every tick from the last answers):
//   - a member whose check failed (at once; a timeout only after
//     mysql-monitor_groupreplication_healthcheck_max_timeout_count in a
//     row), or that is not a viable candidate (not ONLINE in the primary
//     partition), goes to offline_hostgroup;
//   - a read_only member is a reader, unless it has had more than
//     max_transactions_behind transactions to apply in
//     mysql-monitor_groupreplication_max_transactions_behind_count checks
//     in a row, which takes it offline until it catches up;
//   - the read_only=NO members (the primary; several in multi-primary mode)
//     fill writer_hostgroup up to max_writers, by weight, host and port,
//     the others are backup writers, and writer_is_also_reader puts them in
//     reader_hostgroup as for Galera.
// Unlike Galera, no member is made the writer as a last resort: with no
// read_only=NO member the group has no primary, and writes fail until it
// elects one.

// GRState is what one Group Replication check read (a row of
// monitor.mysql_server_group_replication_log).
type GRState struct {
	Viable   bool // viable_candidate = YES
	ReadOnly bool // read_only = YES
	Behind   int  // transactions_behind
}

// grQuery is ProxySQL's Group Replication check.
const grQuery = "SELECT viable_candidate,read_only,transactions_behind FROM sys.gr_member_routing_candidate_status"

// parseGR reads the row of grQuery: a flag is set only by YES (a NULL
// keeps the pessimistic value: not viable, read-only).
func parseGR(res *backend.Result) (GRState, error) {
	st := GRState{ReadOnly: true}
	if len(res.Rows) != 1 || len(res.Rows[0]) < 3 {
		return st, fmt.Errorf("%w: the Group Replication check returned %d rows", backend.ErrProtocol, len(res.Rows))
	}
	r := res.Rows[0]
	yes := func(i int) bool { return r[i].Valid && strings.EqualFold(strings.TrimSpace(r[i].String), "YES") }
	st.Viable = yes(0)
	if r[1].Valid {
		st.ReadOnly = yes(1)
	}
	if r[2].Valid {
		st.Behind, _ = strconv.Atoi(strings.TrimSpace(r[2].String))
	}
	return st, nil
}

// grVerdict is the role a member's last check gives it; lagging is how
// many checks in a row found a read_only member behind by more than
// maxBehind.
func grVerdict(st GRState, maxBehind, lagging, maxCount int) (galeraRole, string) {
	switch {
	case !st.Viable:
		return galeraOffline, "viable_candidate=NO"
	case st.ReadOnly && st.Behind > maxBehind && lagging >= maxCount:
		return galeraOffline, fmt.Sprintf("transactions_behind=%d > max_transactions_behind=%d in %d checks", st.Behind, maxBehind, lagging)
	case st.ReadOnly:
		return galeraReader, ""
	}
	return galeraWriter, ""
}

// checkGR runs the Group Replication check on t and converges row g.
func (m *Monitor) checkGR(t *monTarget, o *Options, g GaleraHostgroup) {
	start := time.Now()
	var st GRState
	took, err := m.clusterQuery(t, o, o.GRTimeout, grQuery, func(res *backend.Result) (err error) {
		st, err = parseGR(res)
		return err
	})
	if m.ctx.Err() != nil {
		return
	}
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: -1, ReplLag: -1, GR: &st}
	if err == nil {
		e.Success = took
	} else {
		e.Error, e.GR = errorText(err, t.host), nil
	}
	m.record(t.addr, checkGroupRepl, e)
	m.galeraMu.Lock()
	defer m.galeraMu.Unlock()
	ns := m.nodeState(t.addr)
	prev := ns.role
	if err != nil {
		if !ns.failed(err, o.GRMaxTimeoutCount, "Group Replication") {
			return
		}
	} else {
		ns.timeouts = 0
		if st.ReadOnly && st.Behind > g.MaxTransactionsBehind {
			ns.behind++
		} else {
			ns.behind = 0
		}
		ns.role, ns.reason = grVerdict(st, g.MaxTransactionsBehind, ns.behind, o.GRMaxBehindCount)
	}
	m.place(t, g, ns, prev)
}

// GroupReplicationLog returns monitor.mysql_server_group_replication_log
// (see ConnectLog).
func (m *Monitor) GroupReplicationLog() []LogEntry { return m.snapshot(checkGroupRepl) }
