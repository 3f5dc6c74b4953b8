package live

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

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

// Global variables → typed settings. Every read goes through the typed
// accessors of config.Snapshot, whose defaults are the ones in the variable
// list (internal/config/variables_list.go).

func routerSettings(s *config.Snapshot) Router {
	r := Router{
		ServerVersion:              s.Str("mysql-server_version"),
		VersionComment:             "(ProxySQL)",
		MaxConnections:             s.Int("mysql-max_connections"),
		ConnectTimeoutClient:       s.Millis("mysql-connect_timeout_client"),
		DefaultSchema:              s.Str("mysql-default_schema"),
		ConnectTimeout:             s.Millis("mysql-connect_timeout_server"),
		ConnectTimeoutMax:          s.Millis("mysql-connect_timeout_server_max"),
		EventsDefaultLog:           s.Int("mysql-eventslog_default_log") == 1,
		Multiplexing:               s.Bool("mysql-multiplexing"),
		DeprecateEOF:               s.Bool("mysql-enable_client_deprecate_eof"),
		LoadDataLocal:              s.Bool("mysql-enable_load_data_local_infile"),
		LogWarnings:                s.Bool("mysql-log_mysql_warnings_enabled"),
		AutocommitFalseNotReusable: s.Bool("mysql-autocommit_false_not_reusable"),
		FirewallEnabled:            s.Bool("mysql-firewall_whitelist_enabled"),
		QueryDigests:               s.Bool("mysql-query_digests"),
		DetectSQLi:                 s.Bool("mysql-automatic_detect_sqli"),
		FirewallErrMsg:             s.Str("mysql-firewall_whitelist_errormsg"),
		HostCacheSize:              s.Int("mysql-client_host_cache_size"),
		HostErrorCounts:            s.Int("mysql-client_host_error_counts"),
		ProxyNetworks:              s.Networks("mysql-proxy_protocol_networks"),
		MaxAllowedPacket:           int(s.Int("mysql-max_allowed_packet")),
		AutocommitFalseIsTrx:       s.Bool("mysql-autocommit_false_is_transaction"),
		EnforceAutocommitOnReads:   s.Bool("mysql-enforce_autocommit_on_reads"),
		KeepVars:                   rules.ParseKeepVars(s.Var("mysql-keep_multiplexing_variables")),
		AutoIncDelay:               int(s.Int("mysql-auto_increment_delay_multiplex")),
		AutoIncDelayTimeout:        s.Millis("mysql-auto_increment_delay_multiplex_timeout_ms"),
		MaxStmtsPerConn:            int(s.Int("mysql-max_stmts_per_connection")),
		MaxStmtsCache:              int(s.Int("mysql-max_stmts_cache")),
		QueryRetries:               int(s.Int("mysql-query_retries_on_failure")),
		WaitTimeout:                s.Millis("mysql-wait_timeout"),
		QueryTimeout:               s.Millis("mysql-default_query_timeout"),
		QueryDelay:                 s.Millis("mysql-default_query_delay"),
		QueryCacheBytes:            s.Int("mysql-query_cache_size_MB") << 20,
		QueryCacheSoftTTLPct:       int(s.Int("mysql-query_cache_soft_ttl_pct")),
		QueryCacheStoresEmpty:      s.Bool("mysql-query_cache_stores_empty_result"),
		QueryCacheHandleWarnings:   s.Int("mysql-query_cache_handle_warnings") == 1,
		MaxTrxTime:                 s.Millis("mysql-max_transaction_time"),
		MaxTrxIdleTime:             s.Millis("mysql-max_transaction_idle_time"),
		GracefulCloseTimeout:       s.Seconds("mysql-graceful_close_conn_timeout"),
		StatsTimeQP:                s.Bool("mysql-stats_time_query_processor"),
		StatsTimeBackend:           s.Bool("mysql-stats_time_backend_query"),
		HaveSSL:                    s.Bool("mysql-have_ssl"),
		HaveCompress:               s.Bool("mysql-have_compress"),
		CompressionLevel:           int(s.Int("mysql-protocol_compression_level")),
		ThrottleToClient:           s.Int("mysql-throttle_max_bytes_per_second_to_client"),
		AuthPlugin:                 s.Str("mysql-default_authentication_plugin"),
		HandleWarnings:             s.Int("mysql-handle_warnings") == 1,
		HandleWarningsHG:           handleWarningsHG(s),
		SetQueryLock:               s.Int("mysql-set_query_lock_on_hostgroup") == 1,
		TCPKeepAlive:               s.Bool("mysql-use_tcp_keepalive"),
		TCPKeepAliveTime:           s.Seconds("mysql-tcp_keepalive_time"),
		ConnectRetriesDelay:        s.Millis("mysql-connect_retries_delay"),
		KillBackendOnDisconnect:    s.Bool("mysql-kill_backend_connection_when_disconnect"),
		VerboseQueryError:          s.Bool("mysql-verbose_query_error"),
	}
	for _, a := range s.HostgroupAttributes {
		if a.Multiplex == 0 {
			if r.NoMultiplex == nil {
				r.NoMultiplex = make(map[int]bool)
			}
			r.NoMultiplex[a.HostgroupID] = true
		}
		if a.MaxNumOnlineServers < 1000000 {
			if r.MaxOnline == nil {
				r.MaxOnline = make(map[int]int)
			}
			r.MaxOnline[a.HostgroupID] = a.MaxNumOnlineServers
		}
	}
	r.DefaultCollation = 33 // utf8_general_ci, if DISK holds a value the checks now refuse
	if c, err := config.HandshakeCollation(s.Str("mysql-default_charset"), s.Str("mysql-default_collation_connection")); err == nil {
		r.DefaultCollation = uint8(c.ID)
	}
	if r.AuthPlugin != "caching_sha2_password" {
		r.AuthPlugin = "mysql_native_password"
	}
	if r.ServerVersion == "" {
		r.ServerVersion = "8.0.11"
	}
	r.MariaDBCacheMetadata = s.Bool("mysql-mariadb_cache_metadata") && MariaDBVersion(r.ServerVersion)
	if r.DefaultSchema == "" {
		r.DefaultSchema = "information_schema"
	}
	return r
}

// MariaDBVersion reports whether a server version string presents a
// MariaDB server ("10.11.6-MariaDB", "5.5.5-10.11.6-MariaDB-log").
func MariaDBVersion(v string) bool { return backend.MariaDBVersion(v) >= 0 }

func mirrorSettings(s *config.Snapshot) Mirror {
	return Mirror{
		MaxConcurrency: max(int(s.Int("mysql-mirror_max_concurrency")), 1),
		MaxQueue:       max(int(s.Int("mysql-mirror_max_queue_length")), 0),
	}
}

func ruleOptions(s *config.Snapshot) rules.CompileOptions {
	return rules.CompileOptions{
		Iterations:          int(s.Int("mysql-query_processor_iterations")),
		FirstCommentParsing: int(s.Int("mysql-query_processor_first_comment_parsing")),
	}
}

func digestOptions(s *config.Snapshot) sqlscan.Options {
	return sqlscan.Options{
		Lowercase:           s.Bool("mysql-query_digests_lowercase"),
		ReplaceNull:         s.Bool("mysql-query_digests_replace_null"),
		NoDigits:            s.Bool("mysql-query_digests_no_digits"),
		KeepComment:         s.Bool("mysql-query_digests_keep_comment"),
		GroupingLimit:       int(s.Int("mysql-query_digests_grouping_limit")),
		GroupsGroupingLimit: int(s.Int("mysql-query_digests_groups_grouping_limit")),
		MaxQueryLength:      int(s.Int("mysql-query_digests_max_query_length")),
		MaxDigestLength:     int(s.Int("mysql-query_digests_max_digest_length")),
	}
}

func statsOptions(s *config.Snapshot) stats.Options {
	return stats.Options{
		Digests:       s.Bool("mysql-query_digests"),
		MaxEntries:    int(s.Int("mysql-query_digests_max_entries")),
		TrackHostname: s.Bool("mysql-query_digests_track_hostname"),
		CommandsStats: s.Bool("mysql-commands_stats"),
		LongQueryTime: s.Millis("mysql-long_query_time"),
		MaxDigestText: int(s.Int("mysql-query_digests_max_digest_length")),
	}
}

func eventsSettings(s *config.Snapshot) eventlog.Settings {
	return eventlog.Settings{
		Filename: s.Var("mysql-eventslog_filename"),
		Format:   int(s.Int("mysql-eventslog_format")),
		MaxSize:  s.Int("mysql-eventslog_filesize"),
	}
}

func auditSettings(s *config.Snapshot) eventlog.Settings {
	return eventlog.Settings{
		Filename: s.Var("mysql-auditlog_filename"),
		Format:   eventlog.FormatAudit,
		MaxSize:  s.Int("mysql-auditlog_filesize"),
	}
}

func backendOptions(s *config.Snapshot) backend.Options {
	o := backend.Options{
		ConnectTimeout:     s.Millis("mysql-connect_timeout_server"),
		ConnectTimeoutMax:  s.Millis("mysql-connect_timeout_server_max"),
		PingInterval:       s.Millis("mysql-ping_interval_server_msec"),
		PingTimeout:        s.Millis("mysql-ping_timeout_server"),
		ConnectionMaxAge:   s.Millis("mysql-connection_max_age_ms"),
		FreeConnectionsPct: int(s.Int("mysql-free_connections_pct")),
		ShunOnFailures:     int(s.Int("mysql-shun_on_failures")),
		ConnectRetries:     int(s.Int("mysql-connect_retries_on_failure")),
		ShunRecoveryTime:   s.Seconds("mysql-shun_recovery_time_sec"),
		DeprecateEOF:       s.Bool("mysql-enable_server_deprecate_eof"),
		InitConnect:        s.Var("mysql-init_connect"),
		ThrottlePerSec:     int(s.Int("mysql-throttle_connections_per_sec_to_hostgroup")),
		ConnectionWarming:  s.Bool("mysql-connection_warming"),
	}
	o.Warming = o.ConnectionWarming
	if len(s.HostgroupAttributes) > 0 {
		o.Hostgroups = make(map[int]backend.HostgroupOptions, len(s.HostgroupAttributes))
		for _, a := range s.HostgroupAttributes {
			o.Hostgroups[a.HostgroupID] = backend.HostgroupOptions{FreeConnectionsPct: a.FreeConnectionsPct, InitConnect: a.InitConnect,
				ThrottlePerSec: a.ThrottleConnectionsPerSec, ConnectionWarming: a.ConnectionWarming != 0}
			o.Warming = o.Warming || a.ConnectionWarming != 0
		}
	}
	return o
}

func monitorOptions(s *config.Snapshot) monitor.Options {
	return monitor.Options{
		Enabled:                 s.Bool("mysql-monitor_enabled"),
		Username:                s.Var("mysql-monitor_username"),
		Password:                s.Var("mysql-monitor_password"),
		ConnectInterval:         s.Millis("mysql-monitor_connect_interval"),
		ConnectTimeout:          s.Millis("mysql-monitor_connect_timeout"),
		PingInterval:            s.Millis("mysql-monitor_ping_interval"),
		PingTimeout:             s.Millis("mysql-monitor_ping_timeout"),
		PingMaxFailures:         int(s.Int("mysql-monitor_ping_max_failures")),
		ReadOnlyInterval:        s.Millis("mysql-monitor_read_only_interval"),
		ReadOnlyTimeout:         s.Millis("mysql-monitor_read_only_timeout"),
		ReadOnlyMaxTimeoutCount: int(s.Int("mysql-monitor_read_only_max_timeout_count")),
		WriterIsAlsoReader:      s.Bool("mysql-monitor_writer_is_also_reader"),
		ReplLagInterval:         s.Millis("mysql-monitor_replication_lag_interval"),
		ReplLagTimeout:          s.Millis("mysql-monitor_replication_lag_timeout"),
		ReplLagCount:            int(s.Int("mysql-monitor_replication_lag_count")),
		HeartbeatTable:          s.Var("mysql-monitor_replication_lag_use_percona_heartbeat"),
		SlaveLagWhenNull:        int(s.Int("mysql-monitor_slave_lag_when_null")),
		SlaveLagWhenNullHG:      slaveLagWhenNullHG(s),
		History:                 s.Millis("mysql-monitor_history"),
		ReplicationHostgroups:   s.ReplicationHostgroups,
		ClusterHostgroups: append(clusterHostgroups(s, "mysql_galera_hostgroups", false),
			clusterHostgroups(s, "mysql_group_replication_hostgroups", true)...),
		GaleraInterval:        s.Millis("mysql-monitor_galera_healthcheck_interval"),
		GaleraTimeout:         s.Millis("mysql-monitor_galera_healthcheck_timeout"),
		GaleraMaxTimeoutCount: int(s.Int("mysql-monitor_galera_healthcheck_max_timeout_count")),

		GRInterval:        s.Millis("mysql-monitor_groupreplication_healthcheck_interval"),
		GRTimeout:         s.Millis("mysql-monitor_groupreplication_healthcheck_timeout"),
		GRMaxTimeoutCount: int(s.Int("mysql-monitor_groupreplication_healthcheck_max_timeout_count")),
		GRMaxBehindCount:  int(s.Int("mysql-monitor_groupreplication_max_transactions_behind_count")),
	}
}

// clusterHostgroups reads the active rows of mysql_galera_hostgroups or
// mysql_group_replication_hostgroups (gr), which have the same columns
// (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup,
// offline_hostgroup, active, max_writers, writer_is_also_reader,
// max_transactions_behind, comment) and were checked by SQLite's
// constraints.
func clusterHostgroups(s *config.Snapshot, table string, gr bool) []monitor.GaleraHostgroup {
	var out []monitor.GaleraHostgroup
	for _, r := range s.Tables[table] {
		if len(r) < 8 {
			continue
		}
		n := func(i int) int {
			v, _ := strconv.Atoi(strings.TrimSpace(r[i].String))
			return v
		}
		if n(4) != 1 {
			continue
		}
		out = append(out, monitor.GaleraHostgroup{WriterHostgroup: n(0), BackupWriterHostgroup: n(1), ReaderHostgroup: n(2),
			OfflineHostgroup: n(3), MaxWriters: n(5), WriterIsAlsoReader: n(6), MaxTransactionsBehind: n(7), GR: gr})
	}
	return out
}

// hgSettings is mysql_hostgroup_attributes.hostgroup_settings: the keys
// Sluice acts on (Unsupported warns about the others; Validate checked the
// JSON and the values).
type hgSettings struct {
	SlaveLagWhenNull *int `json:"monitor_slave_lag_when_null"`
	HandleWarnings   *int `json:"handle_warnings"`
}

// hgSettingsKeys are hgSettings' keys.
var hgSettingsKeys = []string{"monitor_slave_lag_when_null", "handle_warnings"}

// eachHostgroupSettings calls f with the settings of every hostgroup that
// has some.
func eachHostgroupSettings(s *config.Snapshot, f func(hg int, hs *hgSettings)) {
	for _, a := range s.HostgroupAttributes {
		if a.HostgroupSettings == "" {
			continue
		}
		var hs hgSettings
		if json.Unmarshal([]byte(a.HostgroupSettings), &hs) == nil {
			f(a.HostgroupID, &hs)
		}
	}
}

// slaveLagWhenNullHG: the hostgroups' own mysql-monitor_slave_lag_when_null
// (a negative or missing value keeps the global one).
func slaveLagWhenNullHG(s *config.Snapshot) map[int]int {
	var out map[int]int
	eachHostgroupSettings(s, func(hg int, hs *hgSettings) {
		if hs.SlaveLagWhenNull == nil || *hs.SlaveLagWhenNull < 0 {
			return
		}
		if out == nil {
			out = make(map[int]int)
		}
		out[hg] = *hs.SlaveLagWhenNull
	})
	return out
}

// handleWarningsHG: the hostgroups' own mysql-handle_warnings (-1 or a
// missing value keeps the global one).
func handleWarningsHG(s *config.Snapshot) map[int]bool {
	var out map[int]bool
	eachHostgroupSettings(s, func(hg int, hs *hgSettings) {
		if hs.HandleWarnings == nil || (*hs.HandleWarnings != 0 && *hs.HandleWarnings != 1) {
			return
		}
		if out == nil {
			out = make(map[int]bool)
		}
		out[hg] = *hs.HandleWarnings == 1
	})
	return out
}

// rebalanceRates are the rates of the rebalance loop: 0 keeps TiProxy's
// adaptive rate of the factor.
func rebalanceRates(s *config.Snapshot) balance.Rates {
	return balance.Rates{
		Status:    s.Float("mysql-balance_status_migrations_per_second"),
		Health:    s.Float("mysql-balance_health_migrations_per_second"),
		Location:  s.Float("mysql-balance_location_migrations_per_second"),
		Memory:    s.Float("mysql-balance_memory_migrations_per_second"),
		CPU:       s.Float("mysql-balance_cpu_migrations_per_second"),
		Conn:      s.Float("mysql-balance_conn_migrations_per_second"),
		ConnRatio: s.Float("mysql-balance_conn_count_ratio_threshold"),
	}
}

// policy maps mysql-balance_policy to a policy: "random" is ProxySQL's
// weighted random; "resource" (the default), "location" and "connection"
// are TiProxy's factor orders.
//
// The label and location factors compare labels, which are known only at
// LOAD time, so they are compared here, once: every server with a
// mysql_servers_balance row gets its Placement in a map keyed by host:port
// (the table's key; the same server in two hostgroups shares it), and
// servers without a row get the Placement of no labels. The policy reads it
// through a closure over that map, so a pick does one map lookup per server
// and no label comparison. Keying by host:port rather than *backend.Server
// keeps the map right when a reload replaces a server object.
func policy(s *config.Snapshot) (balance.Policy[*backend.Server], error) {
	labelName := s.Str("mysql-balance_label_name")
	// Unparsable labels were refused by Validate; none means neutral.
	var proxy map[string]string
	if v := s.Str("mysql-proxy_labels"); v != "" {
		_ = json.Unmarshal([]byte(v), &proxy)
	}
	places := make(map[string]balance.Placement, len(s.ServersBalance))
	for _, sb := range s.ServersBalance {
		var labels map[string]string
		if sb.Labels != "" {
			_ = json.Unmarshal([]byte(sb.Labels), &labels)
		}
		places[net.JoinHostPort(sb.Hostname, strconv.Itoa(sb.Port))] = balance.Place(labelName, proxy, labels)
	}
	unlabelled := balance.Place(labelName, proxy, nil)
	return balance.New(balance.Config[*backend.Server]{
		Options:   balance.Options{DefaultMaxLatencyMs: int(s.Int("mysql-default_max_latency_ms"))},
		Policy:    strings.ToLower(s.Str("mysql-balance_policy")),
		LabelName: labelName,
		Place: func(b *backend.Server) balance.Placement {
			if p, ok := places[b.Addr()]; ok {
				return p
			}
			return unlabelled
		},
	})
}

// scrapeSettings are the metrics endpoints of mysql_servers_balance
// (metrics_url) and how to read each: the labels metrics_preset (tidb,
// process, node, starrocks_fe; tidb when absent), cpu_count and
// memory_limit_bytes.
func scrapeSettings(s *config.Snapshot) (scrape.Settings, error) {
	st := scrape.Settings{Interval: s.Millis("mysql-balance_metrics_interval_ms"),
		Timeout: s.Millis("mysql-balance_metrics_timeout_ms")}
	for _, sb := range s.ServersBalance {
		if strings.TrimSpace(sb.MetricsURL) == "" {
			continue
		}
		row := fmt.Sprintf("mysql_servers_balance (hostname='%s', port=%d)", sb.Hostname, sb.Port)
		u, err := url.Parse(sb.MetricsURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return st, fmt.Errorf("%s: metrics_url %q is not an http(s) URL", row, sb.MetricsURL)
		}
		var labels map[string]string
		if sb.Labels != "" {
			_ = json.Unmarshal([]byte(sb.Labels), &labels)
		}
		t := scrape.Target{URL: sb.MetricsURL, Preset: labels["metrics_preset"]}
		if t.Preset == "" {
			t.Preset = scrape.PresetTiDB
		}
		if !slices.Contains(scrape.Presets, t.Preset) {
			return st, fmt.Errorf("%s: labels.metrics_preset %q is not one of %s", row, t.Preset, strings.Join(scrape.Presets, ", "))
		}
		for key, dst := range map[string]*float64{"cpu_count": &t.CPUs, "memory_limit_bytes": &t.MemLimit} {
			if v, ok := labels[key]; ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 {
					return st, fmt.Errorf("%s: labels.%s %q is not a positive number", row, key, v)
				}
				*dst = f
			}
		}
		if t.Preset == scrape.PresetProcess && t.CPUs == 0 && t.MemLimit == 0 {
			// The standard process metrics carry no CPU count or memory
			// limit: without one of them there is nothing to compute.
			return st, fmt.Errorf("%s: labels.metrics_preset \"process\" needs labels.cpu_count or labels.memory_limit_bytes", row)
		}
		if st.Targets == nil {
			st.Targets = map[string]scrape.Target{}
		}
		st.Targets[net.JoinHostPort(sb.Hostname, strconv.Itoa(sb.Port))] = t
	}
	return st, nil
}
