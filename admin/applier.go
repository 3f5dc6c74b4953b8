package admin

import "github.com/sluice-proxy/sluice/internal/config"

// Applier is the running proxy as the admin sees it. The composition root
// (cmd/sluice) implements it; the admin never imports the data plane.
type Applier interface {
	Apply(m config.Module, snap *config.Snapshot) error // RUNTIME unchanged on error
	Runtime() *config.Snapshot
	FlushLogs() error
	Shutdown()
}

// The interfaces below are optional: an Applier may implement any of them,
// and the admin finds out with a type assertion. They cover the parts of
// ProxySQL's admin that need live state the snapshot does not hold.

// Warner is an Applier whose LOAD can succeed with warnings: settings it
// accepts but does not act on. The admin shows them in SHOW WARNINGS and
// logs them. A setting it refuses fails the LOAD, except atStart (the
// loads of start-up), which load it and return it as a warning: a stored
// configuration never keeps Sluice from starting.
type Warner interface {
	ApplyWarn(m config.Module, snap *config.Snapshot, atStart bool) (warnings []string, err error)
}

// Refresher regenerates live tables (stats_*, runtime_*, monitor.*) just
// before a statement that names them runs, as ProxySQL's
// GenericRefreshStatistics does. names are the lower-case table names the
// statement mentions; monitor tables carry their "monitor." prefix.
type Refresher interface {
	RefreshTables(names []string) error
}

// MonitorLogEditor applies a statement that wrote a monitor log table
// (DELETE FROM monitor.mysql_server_ping_log …) to the monitor's log the
// table is copied from; table is the bare lower-case name.
type MonitorLogEditor interface {
	MonitorLogEdited(table string) error
}

// Killer ends a data-port session for KILL CONNECTION <id>. It reports
// false when no session has that id.
type Killer interface {
	KillSession(id uint64) bool
}

// Truncater empties the live statistics behind a stats table for
// TRUNCATE [TABLE] [stats.]<table> (ProxySQL accepts it for
// stats_mysql_query_digest and stats_mysql_query_digest_reset, and clears
// its digest map). table is the lower-case bare name. handled=false means
// the proxy keeps no such statistics; the admin empties the SQLite tables
// and answers OK either way.
type Truncater interface {
	TruncateStats(table string) (handled bool, err error)
}

// PrometheusTexter serves SHOW PROMETHEUS METRICS: the Prometheus text
// exposition, in one row of one column, Data, as ProxySQL.
type PrometheusTexter interface {
	PrometheusText() ([]byte, error)
}

// Starter serves PROXYSQL START: it starts the data plane of a proxy run
// with --no-start, or returns an error saying it already runs.
type Starter interface {
	StartDataPlane() error
}

// LiveServerser gives SAVE MYSQL SERVERS FROM RUNTIME the servers as they
// run (runtime_mysql_servers: with the monitor's moves), rather than as
// they were loaded.
type LiveServerser interface {
	LiveServers() []config.Server
}

// Restarter serves PROXYSQL RESTART: after the OK, everything closes and
// the process starts again with the DISK configuration.
type Restarter interface {
	Restart()
}

// Stopper is an Applier that can stop at once (PROXYSQL SHUTDOWN and
// KILL, ProxySQL's immediate exit since 2.1): client sessions are closed
// without the graceful close's wait; Shutdown is PROXYSQL SHUTDOWN SLOW.
type Stopper interface {
	ShutdownNow()
}

// Commander handles PROXYSQL commands that act on the data plane
// (for example "FLUSH QUERY CACHE", "PAUSE", "RESUME", "RELOAD TLS").
// cmd is the upper-case command without the PROXYSQL keyword. handled=false
// means the proxy does not support it, and the client gets a clear ERR.
type Commander interface {
	ProxySQLCommand(cmd string) (handled bool, err error)
}

// CommandRefusal is an error a Commander words as ProxySQL does ("ProxySQL
// MySQL module is already paused, impossible to pause"): the client gets it
// as it is, without the "ProxySQL Admin Error: " of other errors.
type CommandRefusal string

func (e CommandRefusal) Error() string { return string(e) }

// DigestSaver serves SAVE MYSQL DIGEST TO DISK: the digest map is moved
// into stats_history.history_mysql_query_digest and emptied, as ProxySQL
// does; n is the number of digests written (the OK's affected rows).
type DigestSaver interface {
	SaveDigestsToDisk() (n int, err error)
}

// TableNoter names the admin tables a statement reads that Sluice keeps
// for compatibility but never fills, because the feature behind them is
// not implemented (or, as in ProxySQL, only exists with a plugin): the
// statement answers its (empty) rows with one warning per such table, so
// an empty result is never mistaken for "nothing happened". ids are the
// lower-case identifiers the statement names (possibly schema-qualified).
type TableNoter interface {
	TableWarnings(ids []string) []string
}
