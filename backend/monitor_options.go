package backend

import (
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// MonitorOptions are the mysql-monitor_* variables and the replication
// hostgroups the monitor works from (reference §8). The monitor reads them
// at every tick, so LOAD MYSQL VARIABLES / SERVERS TO RUNTIME apply at once.
type MonitorOptions struct {
	Enabled  bool   // mysql-monitor_enabled: false pauses every check
	Username string // mysql-monitor_username
	Password string // mysql-monitor_password (clear text)

	ConnectInterval time.Duration // mysql-monitor_connect_interval
	ConnectTimeout  time.Duration // mysql-monitor_connect_timeout
	PingInterval    time.Duration // mysql-monitor_ping_interval
	PingTimeout     time.Duration // mysql-monitor_ping_timeout
	PingMaxFailures int           // mysql-monitor_ping_max_failures: consecutive failures that shun

	ReadOnlyInterval   time.Duration // mysql-monitor_read_only_interval
	ReadOnlyTimeout    time.Duration // mysql-monitor_read_only_timeout
	WriterIsAlsoReader bool          // mysql-monitor_writer_is_also_reader

	History time.Duration // mysql-monitor_history: older log rows are dropped

	// ReplicationHostgroups is mysql_replication_hostgroups: the servers of
	// these hostgroups get the read_only check and its moves.
	ReplicationHostgroups []config.ReplicationHostgroup
}

// DefaultMonitorOptions returns ProxySQL's defaults.
func DefaultMonitorOptions() MonitorOptions {
	return MonitorOptions{
		Enabled: true, Username: "monitor", Password: "monitor",
		ConnectInterval: 120000 * time.Millisecond, ConnectTimeout: 600 * time.Millisecond,
		PingInterval: 8000 * time.Millisecond, PingTimeout: 1000 * time.Millisecond, PingMaxFailures: 3,
		ReadOnlyInterval: 1000 * time.Millisecond, ReadOnlyTimeout: 800 * time.Millisecond,
		WriterIsAlsoReader: true,
		History:            7200000 * time.Millisecond,
	}
}

// MonitorOptionsFromSnapshot reads MonitorOptions from a runtime snapshot;
// variables it lacks or cannot parse keep their defaults.
func MonitorOptionsFromSnapshot(s *config.Snapshot) MonitorOptions {
	o := DefaultMonitorOptions()
	ms := func(name string, d time.Duration) time.Duration {
		if n, ok := varInt(s, name); ok && n > 0 {
			return time.Duration(n) * time.Millisecond
		}
		return d
	}
	if b, ok := config.ParseBool(s.Var("mysql-monitor_enabled")); ok {
		o.Enabled = b
	}
	o.Username = s.Var("mysql-monitor_username")
	o.Password = s.Var("mysql-monitor_password")
	o.ConnectInterval = ms("mysql-monitor_connect_interval", o.ConnectInterval)
	o.ConnectTimeout = ms("mysql-monitor_connect_timeout", o.ConnectTimeout)
	o.PingInterval = ms("mysql-monitor_ping_interval", o.PingInterval)
	o.PingTimeout = ms("mysql-monitor_ping_timeout", o.PingTimeout)
	if n, ok := varInt(s, "mysql-monitor_ping_max_failures"); ok && n > 0 {
		o.PingMaxFailures = int(n)
	}
	o.ReadOnlyInterval = ms("mysql-monitor_read_only_interval", o.ReadOnlyInterval)
	o.ReadOnlyTimeout = ms("mysql-monitor_read_only_timeout", o.ReadOnlyTimeout)
	if b, ok := config.ParseBool(s.Var("mysql-monitor_writer_is_also_reader")); ok {
		o.WriterIsAlsoReader = b
	}
	o.History = ms("mysql-monitor_history", o.History)
	o.ReplicationHostgroups = append([]config.ReplicationHostgroup(nil), s.ReplicationHostgroups...)
	return o
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
