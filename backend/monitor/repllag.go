package monitor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/backend"
)

// The replication lag check (reference §4.3; ProxySQL's
// monitor_replication_lag_thread and
// MySQL_HostGroups_Manager::replication_lag_action_inner). Every
// mysql-monitor_replication_lag_interval, each address with a server whose
// max_replication_lag is > 0 gets SHOW SLAVE STATUS on the monitor's own
// connection; Seconds_Behind_Master is applied to every server at that
// address, each against its own max_replication_lag and with its own count
// of consecutive checks over it:
//
//   - a lag over max_replication_lag in mysql-monitor_replication_lag_count
//     consecutive checks makes an ONLINE server SHUNNED_REPLICATION_LAG
//     (not routable: Server.Healthy is false; connections in use finish,
//     the router moves pinned sessions off, free ones stay pooled);
//   - a lag <= max_replication_lag brings a SHUNNED_REPLICATION_LAG server
//     back ONLINE, and resets the count;
//   - NULL (replication stopped) counts as mysql-monitor_slave_lag_when_null
//     seconds (or the hostgroup's hostgroup_settings
//     "monitor_slave_lag_when_null");
//   - a server that is not a replica (empty SHOW SLAVE STATUS) is never
//     shunned, and one shunned for lag comes back ONLINE (ProxySQL's -2
//     override, issue 959: a replica promoted to primary);
//   - a failed check (connect error, timeout, SQL error) changes nothing.
//
// A server whose max_replication_lag becomes 0, or any server while the
// monitor is disabled, is no longer checked: one left
// SHUNNED_REPLICATION_LAG is brought back ONLINE.
//
// With mysql-monitor_replication_lag_use_percona_heartbeat set, the lag is
// the age of the newest row of that pt-heartbeat table (ProxySQL's query),
// which a replica receives by replication: it measures the whole chain, not
// only this replica's SQL thread; an empty table is a NULL lag.

// replLagQuery is ProxySQL's statement (MariaDB and MySQL before 8.4
// accept it).
const replLagQuery = "SHOW SLAVE STATUS"

// heartbeatQuery is ProxySQL's query of a pt-heartbeat table.
func heartbeatQuery(table string) string {
	return "SELECT MIN(ROUND(TIMESTAMPDIFF(MICROSECOND, ts, SYSDATE(6))/1000000)) AS Seconds_Behind_Master FROM " + table
}

// lagNotReplica is the lag of a server that is not a replica (ProxySQL's
// -2).
const lagNotReplica = -2

// slaveStatus is what SHOW SLAVE STATUS said.
type slaveStatus struct {
	replica bool // a row came back
	null    bool // Seconds_Behind_Master is NULL
	lag     int  // Seconds_Behind_Master when not NULL
}

// parseSlaveStatus reads Seconds_Behind_Master from the first row. No row,
// or no such column, is a server that is not a replica.
func parseSlaveStatus(res *backend.Result) (slaveStatus, error) {
	col := -1
	for i, c := range res.Columns {
		if strings.EqualFold(c, "Seconds_Behind_Master") {
			col = i
		}
	}
	if col < 0 || len(res.Rows) == 0 || col >= len(res.Rows[0]) {
		return slaveStatus{}, nil
	}
	v := res.Rows[0][col]
	if !v.Valid {
		return slaveStatus{replica: true, null: true}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.String))
	if err != nil {
		return slaveStatus{}, fmt.Errorf("%w: Seconds_Behind_Master is %q", backend.ErrProtocol, v.String)
	}
	return slaveStatus{replica: true, lag: n}, nil
}

// lagOf returns the lag a server of hostgroup hg gets from st: seconds, or
// lagNotReplica.
func (st slaveStatus) lagOf(o *Options, hg int) int {
	switch {
	case !st.replica:
		return lagNotReplica
	case st.null:
		return o.lagWhenNull(hg)
	}
	return st.lag
}

// lagAction is what a lag check does to one server.
type lagAction int

const (
	lagKeep    lagAction = iota // no change of status
	lagShun                     // ONLINE → SHUNNED_REPLICATION_LAG
	lagRecover                  // SHUNNED_REPLICATION_LAG → ONLINE
)

// lagDecide is the state machine of one server (replication_lag_action_inner):
// from its status, the lag just measured (seconds, or lagNotReplica), its
// max_replication_lag, its count of consecutive checks over the limit and
// mysql-monitor_replication_lag_count, it returns the new count and the
// action.
func lagDecide(st backend.Status, lag, maxLag, count, threshold int) (int, lagAction) {
	switch st {
	case backend.StatusOnline:
		if lag >= 0 && maxLag > 0 && lag > maxLag {
			count++
			if count >= threshold {
				return count, lagShun
			}
			return count, lagKeep
		}
		return 0, lagKeep
	case backend.StatusShunnedReplicationLag:
		if lag == lagNotReplica || (lag >= 0 && lag <= maxLag) {
			return 0, lagRecover
		}
	}
	return count, lagKeep
}

func (m *Monitor) checkReplLag(t *monTarget, o *Options) {
	start := time.Now()
	var took time.Duration
	var st slaveStatus
	err := m.withConn(t, o, &t.lagConn, func(c *backend.BackendConn) error {
		ctx, cancel := context.WithTimeout(m.ctx, o.ReplLagTimeout)
		defer cancel()
		query := replLagQuery
		if o.HeartbeatTable != "" {
			query = heartbeatQuery(o.HeartbeatTable)
		}
		q := time.Now()
		res, err := c.Query(ctx, query)
		took = max(time.Since(q), time.Microsecond)
		if err != nil {
			return err
		}
		st, err = parseSlaveStatus(res)
		return err
	})
	if m.ctx.Err() != nil {
		return
	}
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: -1, ReplLag: -1}
	switch {
	case err != nil:
		e.Error = errorText(err, t.host)
	case st.replica:
		e.Success = took
		e.ReplLag = st.lagOf(o, -1)
	default:
		e.Success = took
	}
	m.record(t.addr, checkReplLag, e)
	if err != nil {
		m.log.Debug().Str("server", t.addr).Err(err).Msg("monitor replication lag check failed")
		return
	}
	if st.null {
		m.log.Warn().Str("server", t.addr).
			Msgf("Replication lag on server %s:%d is NULL, using the value %d (mysql-monitor_slave_lag_when_null)", t.host, t.port, o.SlaveLagWhenNull)
	}
	m.replLagAction(t, o, st)
}

// replLagAction applies a check's result to every server at t's address.
func (m *Monitor) replLagAction(t *monTarget, o *Options, st slaveStatus) {
	if t.lagCount == nil {
		t.lagCount = make(map[int]int)
	}
	seen := make(map[int]bool)
	for _, s := range m.serversAt(t.addr) {
		hg := s.Hostgroup()
		seen[hg] = true
		lag := st.lagOf(o, hg)
		if lag >= 0 {
			s.SetReplicationLag(int64(lag))
		} else {
			s.SetReplicationLag(-1)
		}
		maxLag := s.MaxReplicationLag()
		var act lagAction
		t.lagCount[hg], act = lagDecide(s.Status(), lag, maxLag, t.lagCount[hg], o.ReplLagCount)
		switch act {
		case lagShun:
			if s.CompareAndSwapStatus(backend.StatusOnline, backend.StatusShunnedReplicationLag) {
				m.log.Info().Str("server", t.addr).Int("hostgroup", hg).Int("lag", lag).Int("max_replication_lag", maxLag).
					Msgf("Shunning server %s:%d from HG %d with replication lag of %d second, count number: '%d'", t.host, t.port, hg, lag, t.lagCount[hg])
			}
		case lagRecover:
			if s.CompareAndSwapStatus(backend.StatusShunnedReplicationLag, backend.StatusOnline) {
				m.log.Info().Str("server", t.addr).Int("hostgroup", hg).Int("lag", lag).Int("max_replication_lag", maxLag).
					Msgf("Re-enabling server %s:%d from HG %d with replication lag of %d second", t.host, t.port, hg, lag)
			}
		default:
			if lag > maxLag && maxLag > 0 && s.Status() == backend.StatusOnline {
				m.log.Info().Str("server", t.addr).Int("hostgroup", hg).Int("lag", lag).
					Msgf("Not shunning server %s:%d from HG %d with replication lag of %d second, count number: '%d' < replication_lag_count: '%d'",
						t.host, t.port, hg, lag, t.lagCount[hg], o.ReplLagCount)
			}
		}
	}
	for hg := range t.lagCount {
		if !seen[hg] {
			delete(t.lagCount, hg)
		}
	}
}

// lagCheckOff brings back ONLINE a server shunned for lag that is no
// longer checked (max_replication_lag now 0, or the monitor disabled).
func (m *Monitor) lagCheckOff(s *backend.Server) {
	if s.CompareAndSwapStatus(backend.StatusShunnedReplicationLag, backend.StatusOnline) {
		m.log.Info().Str("server", s.Addr()).Int("hostgroup", s.Hostgroup()).
			Msgf("Re-enabling server %s from HG %d: its replication lag is no longer checked", s.Addr(), s.Hostgroup())
	}
}
