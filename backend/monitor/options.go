package monitor

import (
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// Options are the mysql-monitor_* variables and the replication
// hostgroups the monitor works from (reference §8), built from the running
// configuration by internal/live. The monitor reads them at every tick, so
// LOAD MYSQL VARIABLES / SERVERS TO RUNTIME apply at once.
type Options struct {
	Enabled  bool   // mysql-monitor_enabled: false pauses every check
	Username string // mysql-monitor_username
	Password string // mysql-monitor_password (clear text)

	ConnectInterval time.Duration // mysql-monitor_connect_interval
	ConnectTimeout  time.Duration // mysql-monitor_connect_timeout
	PingInterval    time.Duration // mysql-monitor_ping_interval
	PingTimeout     time.Duration // mysql-monitor_ping_timeout
	PingMaxFailures int           // mysql-monitor_ping_max_failures: consecutive failures that shun

	ReadOnlyInterval time.Duration // mysql-monitor_read_only_interval
	ReadOnlyTimeout  time.Duration // mysql-monitor_read_only_timeout
	// ReadOnlyMaxTimeoutCount is mysql-monitor_read_only_max_timeout_count:
	// consecutive read_only checks that time out before the server is taken
	// for read_only=1.
	ReadOnlyMaxTimeoutCount int
	WriterIsAlsoReader      bool // mysql-monitor_writer_is_also_reader

	// The replication lag check (reference §4.3), for servers with
	// mysql_servers.max_replication_lag > 0.
	ReplLagInterval time.Duration // mysql-monitor_replication_lag_interval
	ReplLagTimeout  time.Duration // mysql-monitor_replication_lag_timeout
	ReplLagCount    int           // mysql-monitor_replication_lag_count: consecutive checks over the limit that shun
	// HeartbeatTable is mysql-monitor_replication_lag_use_percona_heartbeat:
	// when set, the lag is read from this pt-heartbeat table instead of
	// SHOW SLAVE STATUS (a table name, checked by config.Validate).
	HeartbeatTable string
	// SlaveLagWhenNull is mysql-monitor_slave_lag_when_null: the lag in
	// seconds taken for a replica whose Seconds_Behind_Master is NULL
	// (replication stopped). 0 is a valid value (DefaultOptions has 60).
	SlaveLagWhenNull int
	// SlaveLagWhenNullHG overrides SlaveLagWhenNull per hostgroup
	// (mysql_hostgroup_attributes.hostgroup_settings
	// "monitor_slave_lag_when_null").
	SlaveLagWhenNullHG map[int]int

	History time.Duration // mysql-monitor_history: older log rows are dropped

	// ReplicationHostgroups is mysql_replication_hostgroups: the servers of
	// these hostgroups get the read_only check and its moves.
	ReplicationHostgroups []config.ReplicationHostgroup

	// ClusterHostgroups are the active rows of mysql_galera_hostgroups and
	// of mysql_group_replication_hostgroups (GR set): the servers of their
	// hostgroups get the Galera check (galera.go) or the Group Replication
	// check (grouprepl.go), and the same placement.
	ClusterHostgroups     []GaleraHostgroup
	GaleraInterval        time.Duration // mysql-monitor_galera_healthcheck_interval
	GaleraTimeout         time.Duration // mysql-monitor_galera_healthcheck_timeout
	GaleraMaxTimeoutCount int           // mysql-monitor_galera_healthcheck_max_timeout_count: failed checks in a row that take a node offline

	GRInterval        time.Duration // mysql-monitor_groupreplication_healthcheck_interval
	GRTimeout         time.Duration // mysql-monitor_groupreplication_healthcheck_timeout
	GRMaxTimeoutCount int           // mysql-monitor_groupreplication_healthcheck_max_timeout_count
	GRMaxBehindCount  int           // mysql-monitor_groupreplication_max_transactions_behind_count: lagging checks in a row that take a reader out
}

// DefaultOptions returns ProxySQL's defaults.
func DefaultOptions() Options {
	return Options{
		Enabled: true, Username: "monitor", Password: "monitor",
		ConnectInterval: 120000 * time.Millisecond, ConnectTimeout: 600 * time.Millisecond,
		PingInterval: 8000 * time.Millisecond, PingTimeout: 1000 * time.Millisecond, PingMaxFailures: 3,
		ReadOnlyInterval: 1000 * time.Millisecond, ReadOnlyTimeout: 800 * time.Millisecond, ReadOnlyMaxTimeoutCount: 3,
		WriterIsAlsoReader: true,
		ReplLagInterval:    10000 * time.Millisecond, ReplLagTimeout: 1000 * time.Millisecond, ReplLagCount: 1,
		SlaveLagWhenNull: 60,
		GaleraInterval:   5000 * time.Millisecond, GaleraTimeout: 800 * time.Millisecond, GaleraMaxTimeoutCount: 3,
		GRInterval: 5000 * time.Millisecond, GRTimeout: 800 * time.Millisecond, GRMaxTimeoutCount: 3, GRMaxBehindCount: 3,
		History: 7200000 * time.Millisecond,
	}
}

// normalized returns o with unset intervals and limits at their defaults,
// so a hand-built Options (or a zero value) never schedules a busy loop.
func (o Options) normalized() Options {
	d := DefaultOptions()
	fix := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fix(&o.ConnectInterval, d.ConnectInterval)
	fix(&o.ConnectTimeout, d.ConnectTimeout)
	fix(&o.PingInterval, d.PingInterval)
	fix(&o.PingTimeout, d.PingTimeout)
	fix(&o.ReadOnlyInterval, d.ReadOnlyInterval)
	fix(&o.ReadOnlyTimeout, d.ReadOnlyTimeout)
	fix(&o.ReplLagInterval, d.ReplLagInterval)
	fix(&o.ReplLagTimeout, d.ReplLagTimeout)
	fix(&o.GaleraInterval, d.GaleraInterval)
	fix(&o.GaleraTimeout, d.GaleraTimeout)
	fix(&o.GRInterval, d.GRInterval)
	fix(&o.GRTimeout, d.GRTimeout)
	if o.GRMaxTimeoutCount <= 0 {
		o.GRMaxTimeoutCount = d.GRMaxTimeoutCount
	}
	if o.GRMaxBehindCount <= 0 {
		o.GRMaxBehindCount = d.GRMaxBehindCount
	}
	fix(&o.History, d.History)
	if o.ReadOnlyMaxTimeoutCount <= 0 {
		o.ReadOnlyMaxTimeoutCount = d.ReadOnlyMaxTimeoutCount
	}
	if o.GaleraMaxTimeoutCount <= 0 {
		o.GaleraMaxTimeoutCount = d.GaleraMaxTimeoutCount
	}
	if o.PingMaxFailures <= 0 {
		o.PingMaxFailures = d.PingMaxFailures
	}
	if o.ReplLagCount <= 0 {
		o.ReplLagCount = d.ReplLagCount
	}
	if o.SlaveLagWhenNull < 0 {
		o.SlaveLagWhenNull = d.SlaveLagWhenNull
	}
	return o
}

// lagWhenNull returns the lag taken for a NULL Seconds_Behind_Master in
// hostgroup hg.
func (o *Options) lagWhenNull(hg int) int {
	if v, ok := o.SlaveLagWhenNullHG[hg]; ok && v >= 0 {
		return v
	}
	return o.SlaveLagWhenNull
}

// readOnlyQuery returns the statement of a check_type (reference §4.3).
func readOnlyQuery(checkType string) string {
	switch strings.ToLower(strings.TrimSpace(checkType)) {
	case "innodb_read_only":
		return "SELECT @@global.innodb_read_only read_only"
	case "super_read_only":
		return "SELECT @@global.super_read_only read_only"
	case "read_only|innodb_read_only":
		return "SELECT @@global.read_only|@@global.innodb_read_only read_only"
	case "read_only&innodb_read_only":
		return "SELECT @@global.read_only&@@global.innodb_read_only read_only"
	}
	return "SELECT @@global.read_only read_only"
}
