package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// What a snapshot sets and Sluice does not implement. This is the one place
// that knows it: Build records the findings of the module it loads in
// Runtime.Notices, and the proxy's Apply refuses the LOAD when one of them
// is refused (at start-up it loads anyway and logs them). Everything else
// is a warning: the LOAD succeeds, the admin client sees it in SHOW
// WARNINGS and the log gets a WARN line.
//
// A setting is refused when ignoring it would weaken security — traffic
// the operator asked to encrypt would go in clear text, queries the
// firewall was to block would run, an audit trail would silently not
// exist. A setting that only asks for a feature Sluice lacks (LDAP,
// Group Replication monitoring, TLS key logging…) is a warning.
// Variables that only tune ProxySQL's internals (poll timeouts, stack
// size…) are not reported. mysql-threads is acted on: it sets GOMAXPROCS
// at start (cmd/sluice/threads.go).
//
// When a feature is built, its entry goes: TestUnsupportedVarsAreKnownAndUnread
// fails while the code reads a variable this file calls unsupported, and
// TestEveryVariableAccountedFor fails for a variable that is neither read,
// nor reported here, nor listed in notActedOn with the reason.

// Notice is one setting Sluice accepts but does not act on.
type Notice struct {
	Refused bool   // LOAD … TO RUNTIME fails with it (security), else a warning
	Msg     string // ProxySQL-style text naming the setting and what happens
	// Err, when set, is a setting that is wrong rather than unsupported (a
	// query rule that does not compile): a LOAD fails with Err itself.
	Err error
}

// ErrUnsupported is wrapped by the error of a LOAD refused for a setting
// Sluice does not implement.
var ErrUnsupported = errors.New("not supported by Sluice")

// maxListed bounds how many rows one notice names.
const maxListed = 5

// unsupportedVar is a global variable whose feature Sluice lacks, reported
// when its value asks for the feature.
type unsupportedVar struct {
	name    string
	refused bool
	on      func(v string) bool // the value asks for the feature
	what    string              // what happens instead
	fix     string              // the value that loads without this notice
}

func isTrue(v string) bool { b, _ := config.ParseBool(v); return b }
func isFalse(v string) bool {
	b, ok := config.ParseBool(v)
	return ok && !b
}

const checksumOff = "not implemented in Sluice: the module's checksum in runtime_checksums_values is computed at every LOAD and " +
	"ProxySQL Cluster peers keep syncing the module (set admin-cluster_<module>_diffs_before_sync=0 on the peers that must not sync it)"

func nonEmpty(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && v != "(null)"
}
func notInt(d int64) func(string) bool {
	return func(v string) bool {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return err == nil && n != d
	}
}

var unsupportedVars = []unsupportedVar{
	// Refused: ignoring them weakens security.

	// Warnings: the feature is missing, nothing is exposed.
	{"mysql-ldap_user_variable", false, nonEmpty, "LDAP authentication is not implemented in Sluice", "''"},
	{"mysql-add_ldap_user_comment", false, nonEmpty, "LDAP authentication is not implemented in Sluice", "''"},
	{"mysql-monitor_groupreplication_max_transactions_behind_for_read_only", false, notInt(1), "Group Replication lag is judged on read_only members only, as the default 1 does; 0 and 2 are not implemented in Sluice", "1"},
	{"admin-ssl_keylog_file", false, nonEmpty, "TLS key logging is not implemented in Sluice: no key log is written", "''"},
	{"mysql-connection_delay_multiplex_ms", false, notInt(0), "not implemented in Sluice: a connection goes back to the pool as soon as nothing keeps it with its session", "0"},
	{"mysql-show_processlist_extended", false, notInt(0), "not implemented in Sluice: SHOW PROCESSLIST and stats_mysql_processlist keep their plain columns", "0"},
	{"mysql-unshun_algorithm", false, notInt(0), "not implemented in Sluice: a server shunned in several hostgroups comes back in each on its own", "0"},
	{"mysql-monitor_replication_lag_group_by_host", false, isTrue, "not implemented in Sluice: replication lag is checked once per hostgroup entry", "false"},
	{"mysql-default_session_track_gtids", false, func(v string) bool { return !strings.EqualFold(strings.TrimSpace(v), "OFF") },
		"GTID tracking is not implemented in Sluice: servers are not asked for session_track_gtids", "OFF"},
	{"mysql-server_capabilities", false, notInt(569867), "Sluice announces its own capability set (ProxySQL's default, plus SSL, compression and DEPRECATE_EOF as mysql-have_ssl, mysql-have_compress and mysql-enable_client_deprecate_eof say); this value is not used", "569867"},
	{"mysql-query_digests_normalize_digest_text", false, isTrue, "not implemented in Sluice: digest texts keep the form the digester gives them", "false"},
	{"mysql-min_num_servers_lantency_awareness", false, func(v string) bool { return notInt(1000)(v) && notInt(0)(v) },
		"latency-aware server choice is not implemented in Sluice: servers are chosen by mysql-balance_policy", "1000"},
	{"mysql-session_idle_show_processlist", false, isFalse, "idle sessions are always listed in stats_mysql_processlist and SHOW PROCESSLIST (as true does); hiding them is not implemented in Sluice", "true"},
	{"mysql-monitor_aws_rds_topology_discovery_interval", false, notInt(0), "AWS RDS topology discovery is not implemented in Sluice", "0"},
	{"mysql-handle_unknown_charset", false, notInt(1), "a client collation its MariaDB server lacks (MySQL 8's utf8mb4_0900_ai_ci) is replaced with its character set's default, as 1 does; 0 (disconnect) and 2 are not implemented in Sluice", "1"},
	{"mysql-evaluate_replication_lag_on_servers_load", false, notInt(1), "Sluice keeps a server's replication-lag verdict across LOAD MYSQL SERVERS TO RUNTIME, as 1 does; 0 is not implemented", "1"},
	// ProxySQL Cluster (internal/cluster) always has every module's
	// checksum: a peer stops syncing a module with its
	// admin-cluster_<module>_diffs_before_sync=0.
	{"admin-checksum_admin_variables", false, isFalse, checksumOff, "true"},
	{"admin-checksum_mysql_query_rules", false, isFalse, checksumOff, "true"},
	{"admin-checksum_mysql_servers", false, isFalse, checksumOff, "true"},
	{"admin-checksum_mysql_users", false, isFalse, checksumOff, "true"},
	{"admin-checksum_mysql_variables", false, isFalse, checksumOff, "true"},
	{"admin-cluster_mysql_servers_sync_algorithm", false, notInt(1), "Sluice syncs mysql_servers one way whatever the algorithm: its checksum and answers are the loaded configuration (docs/cluster.md)", "1"},
}

// notActedOn are the variables Sluice keeps (they load, save, sync and
// show as ProxySQL's) but reads nowhere, with the reason none of their
// values changes what a user sees: they tune ProxySQL's own machinery
// (threads, poll loops, buffers, allocators), drive a module Sluice has
// none of, or are what Sluice does anyway. They are never reported.
var notActedOn = map[string]string{
	"admin-checksum_ldap_variables":                   "no LDAP module: nothing to checksum",
	"admin-cluster_ldap_variables_diffs_before_sync":  "no LDAP module: nothing to sync",
	"admin-cluster_ldap_variables_save_to_disk":       "no LDAP module: nothing to sync",
	"admin-coredump_generation_interval_ms":           "ProxySQL's core dumps on failed assertions; a Go panic prints its stacks",
	"admin-coredump_generation_threshold":             "ProxySQL's core dumps on failed assertions; a Go panic prints its stacks",
	"admin-prometheus_memory_metrics_interval":        "memory metrics are read at each scrape",
	"admin-refresh_interval":                          "ProxySQL's admin polling interval",
	"admin-stats_mysql_connection_pool":               "drives nothing in ProxySQL 2.7 without its web plugin either (history_stats_mysql_connection_pool stays empty)",
	"admin-telnet_admin_ifaces":                       "unused by ProxySQL too",
	"admin-telnet_stats_ifaces":                       "unused by ProxySQL too",
	"admin-vacuum_stats":                              "SQLite housekeeping of ProxySQL's stats schema; Sluice's stats tables are built on each read",
	"admin-web_verbosity":                             "log verbosity of ProxySQL's web server",
	"mysql-aurora_max_lag_ms_only_read_from_replicas": "Aurora monitoring is not built; mysql_aws_aurora_hostgroups rows are warned at LOAD",
	"mysql-binlog_reader_connect_retry_msec":          "no binlog reader (GTID causal reads are not built; gtid_from_hostgroup is warned at LOAD)",
	"mysql-client_session_track_gtid":                 "session tracking is never offered to clients (README, GTID rows): nothing to forward",
	"mysql-connpoll_reset_queue_length":               "ProxySQL's connection-reset queue; Sluice resets a connection when it is next used",
	"mysql-data_packets_history_size":                 "debugging buffer of ProxySQL's data streams",
	"mysql-default_reconnect":                         "unused by ProxySQL too",
	"mysql-hostgroup_manager_verbose":                 "log verbosity of ProxySQL's hostgroup manager",
	"mysql-log_unhealthy_connections":                 "ProxySQL log lines about connections it closes",
	"mysql-monitor_local_dns_cache_refresh_interval":  "ProxySQL's DNS cache; Sluice resolves a name at each connect",
	"mysql-monitor_local_dns_cache_ttl":               "ProxySQL's DNS cache; Sluice resolves a name at each connect",
	"mysql-monitor_local_dns_resolver_queue_maxsize":  "ProxySQL's DNS cache; Sluice resolves a name at each connect",
	"mysql-monitor_query_interval":                    "unused by ProxySQL 2.x too",
	"mysql-monitor_query_timeout":                     "unused by ProxySQL 2.x too",
	"mysql-monitor_threads_max":                       "the monitor runs one goroutine per check",
	"mysql-monitor_threads_min":                       "the monitor runs one goroutine per check",
	"mysql-monitor_threads_queue_maxsize":             "the monitor runs one goroutine per check",
	"mysql-monitor_wait_timeout":                      "wait_timeout of ProxySQL's long-lived monitor connections; Sluice's checks connect per interval",
	"mysql-parse_failure_logs_digest":                 "ProxySQL log lines about digests it cannot parse; Sluice's digester has no failure",
	"mysql-poll_timeout":                              "ProxySQL's poll loop; Go's runtime polls",
	"mysql-poll_timeout_on_failure":                   "ProxySQL's poll loop; Go's runtime polls",
	"mysql-query_processor_regex":                     "patterns compile with Go's regexp (RE2) whatever the value; PCRE-only syntax is translated, lookaround and backreferences run on a backtracking engine (rules/regex.go)",
	"mysql-query_rules_fast_routing_algorithm":        "memory layout of ProxySQL's fast-routing table; routing is the same",
	"mysql-reset_connection_algorithm":                "how ProxySQL resets pooled connections; Sluice resets with COM_RESET_CONNECTION or COM_CHANGE_USER as the server allows",
	"mysql-servers_stats":                             "ProxySQL's per-server counters are always kept in Sluice",
	"mysql-session_idle_ms":                           "ProxySQL's idle-thread hand-off; Go's runtime parks idle sessions",
	"mysql-sessions_sort":                             "ProxySQL's session scheduling order",
	"mysql-set_parser_algorithm":                      "Sluice has one SET parser",
	"mysql-stacksize":                                 "thread stack size; goroutine stacks grow",
	"mysql-threshold_query_length":                    "ProxySQL's buffer sizes; Sluice bounds its buffers per packet",
	"mysql-threshold_resultset_size":                  "ProxySQL's buffer sizes; Sluice streams results",
	"mysql-throttle_ratio_server_to_client":           "met by streaming: a throttled session stops reading its server",
}

// Unsupported lists what module m of snap sets and Sluice does not
// implement, refusals first. Only module m is looked at, so a LOAD of one
// module is never refused for another's settings.
func Unsupported(snap *config.Snapshot, m config.Module) []Notice {
	var out []Notice
	add := func(refused bool, format string, args ...any) {
		out = append(out, Notice{Refused: refused, Msg: fmt.Sprintf(format, args...)})
	}
	switch m {
	case config.ModMySQLVariables, config.ModAdminVariables:
		if m == config.ModMySQLVariables && isTrue(snap.Var("mysql-mariadb_cache_metadata")) && !MariaDBVersion(snap.Var("mysql-server_version")) {
			add(false, "mysql-mariadb_cache_metadata=true: offered only when mysql-server_version names MariaDB (now %q): clients see a MySQL server and get every column definition (set mysql-server_version to the backends' MariaDB version, or mysql-mariadb_cache_metadata=false)", snap.Var("mysql-server_version"))
		}
		if m == config.ModMySQLVariables && strings.TrimSpace(snap.Var("mysql-balance_label_name")) != "" &&
			strings.EqualFold(strings.TrimSpace(snap.Var("mysql-balance_policy")), "random") {
			add(false, "mysql-balance_label_name=%s: label isolation is a factor of the resource, location and connection policies; mysql-balance_policy=random picks by weight alone and sends requests to servers of any label (set mysql-balance_policy='resource', or mysql-balance_label_name='')", snap.Var("mysql-balance_label_name"))
		}
		if m == config.ModMySQLVariables {
			sslLockout(snap, add) // TLS turned off under users that need it
		}
		for _, uv := range unsupportedVars {
			if !strings.HasPrefix(uv.name, m.VarPrefix()) {
				continue
			}
			if v := snap.Var(uv.name); uv.on(v) {
				add(uv.refused, "%s=%s: %s (set %s=%s)", uv.name, v, uv.what, uv.name, uv.fix)
			}
		}
	case config.ModMySQLServers:
		var gtid []string
		for _, sv := range snap.Servers {
			if a := sv.Hostname + ":" + strconv.Itoa(sv.Port); sv.GTIDPort != 0 && !slices.Contains(gtid, a) {
				gtid = append(gtid, a)
			}
		}
		if len(gtid) > 0 {
			add(false, "mysql_servers.gtid_port (%s): Sluice has no binlog reader, no GTIDs are read from these servers (stats_mysql_gtid_executed stays empty)", listed(gtid))
		}
		var noSocket []string
		for _, sv := range snap.Servers {
			if sv.Port == 0 && !strings.HasPrefix(sv.Hostname, "/") && !slices.Contains(noSocket, sv.Hostname) {
				noSocket = append(noSocket, sv.Hostname)
			}
		}
		if len(noSocket) > 0 {
			add(false, "mysql_servers with port 0 (%s): port 0 makes hostname the path of a Unix socket, and these are not absolute paths: every connection to them fails (give the TCP port, or the socket's path)", listed(noSocket))
		}
		for _, t := range []struct{ table, what string }{
			{"mysql_aws_aurora_hostgroups", "Aurora monitoring is not implemented in Sluice: servers stay in the hostgroups of mysql_servers"},
		} {
			if n := len(snap.Tables[t.table]); n > 0 {
				add(false, "%s has %d row(s): %s", t.table, n, t.what)
			}
		}
		for _, a := range snap.HostgroupAttributes {
			var cols []string
			check := func(col string, set bool) {
				if set {
					cols = append(cols, col)
				}
			}
			check("autocommit", a.Autocommit != -1)
			check("ignore_session_variables", strings.TrimSpace(a.IgnoreSessionVariables) != "")
			check("servers_defaults", strings.TrimSpace(a.ServersDefaults) != "")
			var hs map[string]json.RawMessage
			if json.Unmarshal([]byte(a.HostgroupSettings), &hs) == nil {
				for _, k := range slices.Sorted(maps.Keys(hs)) {
					check("hostgroup_settings."+k, !slices.Contains(hgSettingsKeys, k))
				}
			}
			if len(cols) > 0 {
				add(false, "mysql_hostgroup_attributes (hostgroup %d): %s not implemented in Sluice, the default applies", a.HostgroupID, strings.Join(cols, ", "))
			}
		}
	case config.ModMySQLUsers:
		// Not a missing feature, a configuration that locks users out.
		sslLockout(snap, add)
		// A password that looks like a caching_sha2_password hash and is
		// not one (CACHING_SHA2_PASSWORD() with a salt shorter than 20
		// bytes, a truncated paste) is taken as a clear password: nobody
		// can log in with it.
		var badHash []string
		for _, u := range snap.Users {
			if strings.HasPrefix(u.Password, "$A$") && !wire.IsCachingSha2Hash(u.Password) {
				badHash = append(badHash, u.Username)
			}
		}
		if len(badHash) > 0 {
			add(false, "mysql_users.password of %s starts as a caching_sha2_password hash ($A$…) but is not one (70 characters, a 20-byte salt): it is taken as a clear password, and logging in with the password it was made from fails", listed(badHash))
		}
		var spiffe, other []string
		for _, u := range snap.Users {
			a, err := config.ParseUserAttributes(u.Attributes)
			if err != nil {
				continue // Validate refuses it
			}
			if a.SpiffeID != "" {
				spiffe = append(spiffe, u.Username)
			}
			for _, k := range a.Other {
				other = append(other, u.Username+": "+k)
			}
		}
		if len(spiffe) > 0 {
			add(true, "mysql_users.attributes spiffe_id (%s): client-certificate (SPIFFE) identities are not implemented in Sluice, these users would log in without the certificate check (remove spiffe_id)", listed(spiffe))
		}
		if len(other) > 0 {
			add(false, "mysql_users.attributes keys not implemented in Sluice (%s): only default-transaction_isolation is acted on", listed(other))
		}
	case config.ModMySQLQueryRules:
		var gtid, cacheTimeout []string
		for _, r := range snap.QueryRules {
			id := strconv.Itoa(r.RuleID)
			if r.CacheTimeout.Valid {
				cacheTimeout = append(cacheTimeout, id)
			}
			if r.GTIDFromHostgroup.Valid {
				gtid = append(gtid, id)
			}
		}
		if len(cacheTimeout) > 0 {
			add(false, "mysql_query_rules.cache_timeout (rule_id %s): not implemented in Sluice, a query never waits for another one filling the cache (set cache_timeout=NULL)", listed(cacheTimeout))
		}
		if len(gtid) > 0 {
			add(false, "mysql_query_rules.gtid_from_hostgroup (rule_id %s): GTID causal reads are not implemented in Sluice, reads may not see the writes before them", listed(gtid))
		}
	}
	// Refusals first: they are what the operator must fix.
	var refused, warned []Notice
	for _, n := range out {
		if n.Refused {
			refused = append(refused, n)
		} else {
			warned = append(warned, n)
		}
	}
	return append(refused, warned...)
}

// listed joins ids, naming at most maxListed of them.
// sslLockout warns of active frontend users with use_ssl=1 while
// mysql-have_ssl=false: they cannot log in. Said at the LOAD of either
// side (turning TLS off is a LOAD MYSQL VARIABLES).
func sslLockout(snap *config.Snapshot, add func(refused bool, format string, args ...any)) {
	if isTrue(snap.Var("mysql-have_ssl")) {
		return
	}
	var ssl []string
	for _, u := range snap.Users {
		if u.UseSSL && u.Active && u.Frontend {
			ssl = append(ssl, u.Username)
		}
	}
	if len(ssl) > 0 {
		add(false, "mysql_users.use_ssl=1 (%s) while mysql-have_ssl=false: these users cannot log in until TLS is offered (SET mysql-have_ssl='true'; LOAD MYSQL VARIABLES TO RUNTIME)", listed(ssl))
	}
}

func listed(ids []string) string {
	if len(ids) <= maxListed {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:maxListed], ", "), len(ids)-maxListed)
}

// Refusal is the error of a LOAD of this runtime's module: the refused
// notices, or nil.
func (rt *Runtime) Refusal() error {
	var msgs []string
	for _, n := range rt.Notices {
		if n.Refused && n.Err != nil {
			return n.Err
		}
		if n.Refused {
			msgs = append(msgs, n.Msg)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(msgs, "; "))
}

// Warnings are the texts of the notices a successful LOAD reports: the
// warnings, and with atStart the refused ones too (start-up loads them
// anyway rather than fail).
func (rt *Runtime) Warnings(atStart bool) []string {
	var out []string
	for _, n := range rt.Notices {
		switch {
		case !n.Refused:
			out = append(out, n.Msg)
		case atStart:
			out = append(out, n.Msg+"; loaded anyway at start-up, LOAD … TO RUNTIME refuses it")
		}
	}
	return out
}

// unfilledTables are the admin tables Sluice keeps, with ProxySQL's
// schemas, and never fills, by bare name: reading one answers its empty
// rows with this warning (admin.TableNoter), never a silent empty result.
var unfilledTables = func() map[string]string {
	m := map[string]string{
		"stats_mysql_gtid_executed":             "stats_mysql_gtid_executed is empty: ProxySQL fills it from its binlog readers (proxysql_mysqlbinlog on mysql_servers.gtid_port) for GTID causal reads (gtid_from_hostgroup), with MySQL's UUID GTID sets; Sluice has no binlog reader and does no GTID causal reads, and MariaDB's GTIDs (domain-server-sequence) are not MySQL's: read @@gtid_binlog_pos or @@gtid_current_pos on each server",
		"stats_proxysql_message_metrics":        "stats_proxysql_message_metrics is not filled by Sluice: it keeps no per-message counters of its log",
		"stats_proxysql_message_metrics_reset":  "stats_proxysql_message_metrics_reset is not filled by Sluice: it keeps no per-message counters of its log",
		"history_mysql_status_variables":        "stats_history.history_mysql_status_variables is not filled by Sluice (ProxySQL fills it only with its web interface plugin): stats_history.mysql_connections has the main counters",
		"history_mysql_status_variables_lookup": "stats_history.history_mysql_status_variables_lookup is not filled by Sluice (ProxySQL fills it only with its web interface plugin)",
		"history_stats_mysql_connection_pool":   "stats_history.history_stats_mysql_connection_pool is not filled by Sluice (ProxySQL fills it only with its web interface plugin)",
	}
	for t, what := range map[string]string{
		"mysql_server_aws_aurora_log":          "Aurora",
		"mysql_server_aws_aurora_check_status": "Aurora",
		"mysql_server_aws_aurora_failovers":    "Aurora",
	} {
		m[t] = "monitor." + t + " is empty: " + what + " monitoring is not implemented in Sluice"
	}
	for _, t := range []string{"myhgm_connections", "myhgm_connections_hour", "myhgm_connections_day"} {
		m[t] = "stats_history." + t + " is not filled by Sluice: its pools do not keep ProxySQL's MyHGM_myconnpoll_* counters"
	}
	for _, t := range []string{"mysql_connections_day", "system_cpu_day", "system_memory_day", "mysql_query_cache_day"} {
		m[t] = "stats_history." + t + " is never filled, as in ProxySQL (which keeps raw samples and _hour aggregates only)"
	}
	return m
}()

// UnfilledTables returns the warnings for the tables among ids (lower-case
// identifiers, possibly schema-qualified) that Sluice never fills, each
// once, in the order named.
func UnfilledTables(ids []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		name := id[strings.LastIndexByte(id, '.')+1:]
		if msg, ok := unfilledTables[name]; ok && !seen[name] {
			seen[name] = true
			out = append(out, msg)
		}
	}
	return out
}
