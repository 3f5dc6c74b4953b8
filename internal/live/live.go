// Package live builds the typed runtime configuration of a running Sluice:
// everything a LOAD … TO RUNTIME changes, derived once from one snapshot —
// compiled query rules evaluated with their variables, the data plane's
// settings, the balancing policy, the pool, monitor, events-log and stats
// options, mirror sizing — validated, and published with one atomic store.
//
// A command loads the Runtime once and uses only that value from start to
// end, so it never sees the router settings of one LOAD with the pool
// options of another. Long-lived workers (pool maintenance, the monitor,
// mirror workers, the events-log writer) read the newest Runtime at each
// step. Live state — servers, pools, health, counters — is not here: it is
// keyed by identity in the backend registry and survives every LOAD.
//
// This package is the one place where global variables become typed
// settings (vars.go); the packages that use the settings never read
// variables themselves.
package live

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/backend/monitor"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/scrape"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/router/balance"
	"github.com/sluice-proxy/sluice/rules"
)

// Runtime is the running configuration. It is immutable once published.
type Runtime struct {
	// Gen counts the runtimes published since start: every LOAD … TO
	// RUNTIME makes a new one with the next number.
	Gen  uint64
	Snap *config.Snapshot

	// Rules are the compiled mysql_query_rules, evaluated with the
	// mysql-query_processor_* variables of this runtime.
	Rules *rules.RuleSet
	// Firewall is the compiled mysql_firewall_whitelist_users and _rules
	// (LOAD MYSQL FIREWALL TO RUNTIME); Router.FirewallEnabled turns it on.
	Firewall *rules.Firewall
	// Digest shapes the digest text (mysql-query_digests_*).
	Digest sqlscan.Options

	// Frontend and BackendUsers are the active mysql_users rows by name.
	Frontend     map[string]*config.User
	BackendUsers map[string]*config.User

	Router Router
	Mirror Mirror
	Policy balance.Policy[*backend.Server]
	// Rates are the migration rates and thresholds of the rebalance
	// loop (mysql-balance_*_migrations_per_second…).
	Rates balance.Rates
	// Scrape are the metrics endpoints the memory and CPU factors read.
	Scrape  scrape.Settings
	Backend *backend.Options
	Monitor *monitor.Options
	Events  eventlog.Settings
	Audit   eventlog.Settings // mysql-auditlog_filename, _filesize
	Stats   *stats.Options

	// Notices are the settings of the loaded module that Sluice accepts
	// but does not act on (unsupported.go): Apply refuses the refused ones.
	Notices []Notice

	compiled *rules.RuleSet // Rules with default options, reused until the rules change
	// p2s are the backend TLS configurations by the fingerprint of their
	// settings and files (tls.go), reused by the next runtime.
	p2s map[string]*tls.Config
}

// Router holds the data plane's settings.
type Router struct {
	ServerVersion              string        // mysql-server_version (handshake)
	MariaDBCacheMetadata       bool          // mysql-mariadb_cache_metadata with a MariaDB ServerVersion: a MariaDB handshake offering MARIADB_CLIENT_CACHE_METADATA
	VersionComment             string        // @@version_comment answered by the proxy
	MaxConnections             int64         // mysql-max_connections
	ConnectTimeoutClient       time.Duration // mysql-connect_timeout_client: the login must be done by then
	DefaultSchema              string        // mysql-default_schema
	ConnectTimeout             time.Duration // mysql-connect_timeout_server
	ConnectTimeoutMax          time.Duration // mysql-connect_timeout_server_max: ERR 9001 after it
	EventsDefaultLog           bool          // mysql-eventslog_default_log
	Multiplexing               bool          // mysql-multiplexing
	DeprecateEOF               bool          // mysql-enable_client_deprecate_eof
	LoadDataLocal              bool          // mysql-enable_load_data_local_infile: the server's request for a client file goes to the client
	LogWarnings                bool          // mysql-log_mysql_warnings_enabled: the warnings of a query are logged with it
	AutocommitFalseNotReusable bool          // mysql-autocommit_false_not_reusable: a connection left with autocommit=0 is closed, not pooled
	// Per-hostgroup mysql_hostgroup_attributes the router applies (nil
	// when no row sets them): multiplex=0, and max_num_online_servers
	// (a hostgroup with more ONLINE servers gets no traffic).
	NoMultiplex map[int]bool
	MaxOnline   map[int]int
	// HandleWarnings is mysql-handle_warnings: a query that leaves
	// warnings keeps its connection for SHOW WARNINGS; a hostgroup's
	// hostgroup_settings {"handle_warnings": 0|1} overrides it there.
	HandleWarnings   bool
	HandleWarningsHG map[int]bool
	// TCPKeepAlive and TCPKeepAliveTime are mysql-use_tcp_keepalive and
	// mysql-tcp_keepalive_time: keepalive probes on client connections
	// after that much idle time (0: the system's).
	TCPKeepAlive     bool
	TCPKeepAliveTime time.Duration
	// ConnectRetriesDelay is mysql-connect_retries_delay: the pause after
	// a failed connect before the next attempt.
	ConnectRetriesDelay time.Duration
	VerboseQueryError   bool // mysql-verbose_query_error: every query error is logged with user, client, schema and digest
	// KillBackendOnDisconnect is mysql-kill_backend_connection_when_disconnect:
	// a query whose client went away is killed on its server.
	KillBackendOnDisconnect bool
	// DefaultCollation is the collation the data port announces and gives
	// a client whose handshake names none (mysql-default_charset,
	// mysql-default_collation_connection).
	DefaultCollation     uint8
	SetQueryLock         bool            // mysql-set_query_lock_on_hostgroup=1: an unparsable SET locks the session on its hostgroup (0: it only pins its connection)
	FirewallEnabled      bool            // mysql-firewall_whitelist_enabled
	QueryDigests         bool            // mysql-query_digests: false leaves the rules without a digest (digest and match_digest conditions skipped, no first-comment annotations)
	DetectSQLi           bool            // mysql-automatic_detect_sqli: text queries libinjection flags close the connection
	FirewallErrMsg       string          // mysql-firewall_whitelist_errormsg
	HostCacheSize        int64           // mysql-client_host_cache_size: client addresses whose failed logins are counted
	HostErrorCounts      int64           // mysql-client_host_error_counts: failed logins that block an address
	ProxyNetworks        config.Networks // mysql-proxy_protocol_networks: whose PROXY protocol headers are believed
	MaxAllowedPacket     int             // mysql-max_allowed_packet
	AutocommitFalseIsTrx bool            // mysql-autocommit_false_is_transaction
	// EnforceAutocommitOnReads is mysql-enforce_autocommit_on_reads: when
	// false (ProxySQL's default), a SELECT of a session with autocommit=0
	// runs with autocommit=1 on its server unless its hostgroup's
	// connection is already in a transaction, so reads start none (and
	// read/write splitting keeps the writes on the writer).
	EnforceAutocommitOnReads bool
	KeepVars                 rules.KeepVars
	AutoIncDelay             int           // mysql-auto_increment_delay_multiplex
	AutoIncDelayTimeout      time.Duration // mysql-auto_increment_delay_multiplex_timeout_ms (0: none)
	MaxStmtsPerConn          int           // mysql-max_stmts_per_connection
	MaxStmtsCache            int           // mysql-max_stmts_cache
	QueryRetries             int           // mysql-query_retries_on_failure
	WaitTimeout              time.Duration // mysql-wait_timeout: idle clients are closed
	QueryTimeout             time.Duration // mysql-default_query_timeout: a rule's timeout replaces it
	QueryDelay               time.Duration // mysql-default_query_delay: before every query sent to a backend; a rule's delay adds to it
	// The query cache: mysql-query_cache_size_MB (in bytes), _soft_ttl_pct,
	// _stores_empty_result, _handle_warnings.
	QueryCacheBytes          int64
	QueryCacheSoftTTLPct     int
	QueryCacheStoresEmpty    bool
	QueryCacheHandleWarnings bool
	MaxTrxTime               time.Duration // mysql-max_transaction_time: a longer transaction's session is closed
	MaxTrxIdleTime           time.Duration // mysql-max_transaction_idle_time: idle that long in a transaction, likewise
	GracefulCloseTimeout     time.Duration // mysql-graceful_close_conn_timeout: open transactions may finish at shutdown
	StatsTimeQP              bool          // mysql-stats_time_query_processor
	StatsTimeBackend         bool          // mysql-stats_time_backend_query
	HaveSSL                  bool          // mysql-have_ssl: the data port (and the admin port) offer TLS
	HaveCompress             bool          // mysql-have_compress: the data port offers the compressed protocol
	CompressionLevel         int           // mysql-protocol_compression_level: zlib level of compressed clients
	ThrottleToClient         int64         // mysql-throttle_max_bytes_per_second_to_client: 0 = no limit
	// AuthPlugin is the plugin the data port announces
	// (mysql-default_authentication_plugin): mysql_native_password or
	// caching_sha2_password.
	AuthPlugin string
}

// WarningsHandled reports whether a query leaving warnings on hostgroup hg
// keeps its connection for SHOW WARNINGS.
func (r *Router) WarningsHandled(hg int) bool {
	if on, ok := r.HandleWarningsHG[hg]; ok {
		return on
	}
	return r.HandleWarnings
}

// Mirror sizes the mirror workers (mirror_hostgroup / mirror_flagOUT).
type Mirror struct {
	MaxConcurrency int // mysql-mirror_max_concurrency: mirrored queries running at once
	MaxQueue       int // mysql-mirror_max_queue_length: waiting beyond that are dropped
}

// Build makes the runtime for snap, in which module m changed since prev
// (prev nil: the first build, everything from scratch). Nothing running is
// touched: a failure leaves the caller's runtime as it was. The rules are
// compiled again only when they changed; the other settings are cheap and
// always derived from snap.
func Build(prev *Runtime, snap *config.Snapshot, m config.Module) (*Runtime, error) {
	if err := snap.Validate(m); err != nil {
		return nil, err
	}
	rt := &Runtime{Snap: snap}
	if prev != nil {
		rt.Gen = prev.Gen + 1
		rt.compiled = prev.compiled
	} else {
		rt.Gen = 1
	}
	var ruleNotices []Notice
	if rt.compiled == nil || m == config.ModMySQLQueryRules {
		rs, err := rules.Compile(snap.QueryRules, snap.FastRouting)
		rt.compiled = rs
		ruleNotices = badRules(err)
	}
	rt.Rules = rt.compiled.WithOptions(ruleOptions(snap))
	if prev == nil || m == config.ModMySQLFirewall {
		fw, err := rules.CompileFirewall(snap.Tables["mysql_firewall_whitelist_users"], snap.Tables["mysql_firewall_whitelist_rules"],
			snap.Tables["mysql_firewall_whitelist_sqli_fingerprints"])
		if err != nil {
			return nil, err
		}
		rt.Firewall = fw
	} else {
		rt.Firewall = prev.Firewall
	}
	rt.Digest = digestOptions(snap)
	rt.Frontend, rt.BackendUsers = users(snap)
	rt.Router = routerSettings(snap)
	rt.Mirror = mirrorSettings(snap)
	bo := backendOptions(snap)
	// The files of the backend TLS settings are read again when their
	// module is loaded, not at every LOAD of another one.
	var tlsNotices []Notice
	if prev == nil || m == config.ModMySQLVariables || m == config.ModMySQLServers {
		bo.TLS, rt.p2s, tlsNotices = backendTLS(snap, prevP2S(prev))
	} else {
		bo.TLS, rt.p2s = prev.Backend.TLS, prev.p2s
	}
	rt.Backend = &bo
	mo := monitorOptions(snap)
	rt.Monitor = &mo
	so := statsOptions(snap)
	rt.Stats = &so
	rt.Events = eventsSettings(snap)
	rt.Audit = auditSettings(snap)
	if err := rt.Events.Check(); err != nil {
		return nil, fmt.Errorf("global_variables (mysql-eventslog_*): %w", err)
	}
	p, err := policy(snap)
	if err != nil {
		return nil, err
	}
	rt.Policy = p
	rt.Rates = rebalanceRates(snap)
	if rt.Scrape, err = scrapeSettings(snap); err != nil {
		return nil, err
	}
	rt.Notices = append(append(ruleNotices, Unsupported(snap, m)...), tlsNotices...)
	return rt, nil
}

// badRules turns the error of rules.Compile into one refused notice per
// rule it left out: a LOAD fails with the first, start-up runs without them
// and logs them (a configuration saved with a bad rule must not keep the
// proxy from starting).
func badRules(err error) []Notice {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]Notice, 0, len(errs))
	for _, e := range errs {
		e = fmt.Errorf("mysql_query_rules: %w", e)
		out = append(out, Notice{Refused: true, Err: e, Msg: e.Error() + " (the rule is left out of the runtime)"})
	}
	return out
}

func prevP2S(prev *Runtime) map[string]*tls.Config {
	if prev == nil {
		return nil
	}
	return prev.p2s
}

// Empty is the runtime before the first LOAD: an empty snapshot with every
// variable at its default.
func Empty() *Runtime {
	rt, err := Build(nil, &config.Snapshot{}, config.ModMySQLQueryRules)
	if err != nil {
		panic(err) // defaults always build
	}
	rt.Gen = 0
	return rt
}

func users(snap *config.Snapshot) (front, back map[string]*config.User) {
	front = make(map[string]*config.User, len(snap.Users))
	back = make(map[string]*config.User, len(snap.Users))
	for i := range snap.Users {
		u := &snap.Users[i]
		if !u.Active {
			continue
		}
		if u.Frontend {
			front[u.Username] = u
		}
		if u.Backend {
			back[u.Username] = u
		}
	}
	return front, back
}

// Holder publishes runtimes: one atomic pointer.
type Holder struct {
	p atomic.Pointer[Runtime]
}

// NewHolder returns a holder of the empty runtime.
func NewHolder() *Holder {
	h := &Holder{}
	h.p.Store(Empty())
	return h
}

// Load returns the running runtime.
func (h *Holder) Load() *Runtime { return h.p.Load() }

// Store publishes rt. Its generation must follow the running one's.
func (h *Holder) Store(rt *Runtime) error {
	if cur := h.p.Load(); cur != nil && rt.Gen <= cur.Gen {
		return errors.New("live: runtime generation does not advance")
	}
	h.p.Store(rt)
	return nil
}

// BackendOptions returns the running pool options (for the registry's
// maintenance and health reads).
func (h *Holder) BackendOptions() *backend.Options { return h.p.Load().Backend }
