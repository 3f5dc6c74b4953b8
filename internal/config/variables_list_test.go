package config

import (
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestVarDefaultsMatchProxySQL spot-checks defaults, kinds and ranges against
// ProxySQL 2.7 (reference §6, §10.1 and lib/MySQL_Thread.cpp,
// lib/ProxySQL_Admin.cpp).
func TestVarDefaultsMatchProxySQL(t *testing.T) {
	cases := []struct {
		name, def string
		kind      VarKind
	}{
		{"mysql-threads", "4", VarInt},
		{"mysql-stacksize", "1048576", VarInt},
		{"mysql-interfaces", "0.0.0.0:6033", VarString},
		{"mysql-max_connections", "10000", VarInt},
		{"mysql-server_version", "8.0.11", VarString},
		{"mysql-default_schema", "information_schema", VarString},
		{"mysql-have_ssl", "false", VarBool}, // ProxySQL: true; off by default in Sluice (docs/tls.md)
		{"mysql-have_compress", "true", VarBool},
		{"mysql-default_authentication_plugin", "mysql_native_password", VarString},
		{"mysql-poll_timeout", "2000", VarInt},
		{"mysql-connect_timeout_client", "10000", VarInt},
		{"mysql-connect_timeout_server", "1000", VarInt},
		{"mysql-connect_timeout_server_max", "10000", VarInt},
		{"mysql-connect_retries_on_failure", "10", VarInt},
		{"mysql-shun_on_failures", "5", VarInt},
		{"mysql-shun_recovery_time_sec", "10", VarInt},
		{"mysql-default_query_timeout", "86400000", VarInt},
		{"mysql-max_allowed_packet", "67108864", VarInt},
		{"mysql-multiplexing", "true", VarBool},
		{"mysql-free_connections_pct", "10", VarInt},
		{"mysql-connection_warming", "false", VarBool},
		{"mysql-max_stmts_per_connection", "20", VarInt},
		{"mysql-query_cache_size_MB", "256", VarInt},
		{"mysql-query_digests", "true", VarBool},
		{"mysql-commands_stats", "true", VarBool},
		{"mysql-query_digests_grouping_limit", "3", VarInt},
		{"mysql-query_digests_groups_grouping_limit", "10", VarInt},
		{"mysql-query_digests_max_digest_length", "2048", VarInt},
		{"mysql-query_digests_max_query_length", "65000", VarInt},
		{"mysql-eventslog_format", "1", VarInt},
		{"mysql-eventslog_filesize", "104857600", VarInt},
		{"mysql-eventslog_filename", "", VarString},
		{"mysql-eventslog_default_log", "0", VarInt},
		{"mysql-auditlog_filesize", "104857600", VarInt},
		{"mysql-monitor_enabled", "true", VarBool},
		{"mysql-monitor_username", "monitor", VarString},
		{"mysql-monitor_history", "7200000", VarInt},
		{"mysql-monitor_ping_interval", "8000", VarInt},
		{"mysql-session_idle_ms", "1", VarInt},
		{"mysql-use_tcp_keepalive", "true", VarBool},
		{"mysql-tcp_keepalive_time", "120", VarInt},
		{"mysql-enable_load_data_local_infile", "false", VarBool},
		{"mysql-long_query_time", "1000", VarInt},
		{"mysql-wait_timeout", "28800000", VarInt},
		{"mysql-set_parser_algorithm", "2", VarInt},
		{"mysql-server_capabilities", "569867", VarInt},
		{"mysql-default_charset", "utf8", VarCharset},
		{"mysql-default_collation_connection", "utf8_general_ci", VarCollation},
		{"mysql-default_session_track_gtids", "OFF", VarString},
		{"mysql-keep_multiplexing_variables", "tx_isolation,transaction_isolation,version", VarString},
		{"mysql-firewall_whitelist_errormsg", "Firewall blocked this query", VarString},
		{"admin-admin_credentials", "admin:admin", VarString},
		{"admin-stats_credentials", "stats:stats", VarString},
		{"admin-mysql_ifaces", "0.0.0.0:6032", VarString},
		{"admin-telnet_admin_ifaces", "(null)", VarString},
		{"admin-read_only", "false", VarBool},
		{"admin-refresh_interval", "2000", VarInt},
		{"admin-vacuum_stats", "true", VarBool},
		{"admin-restapi_enabled", "false", VarBool}, // as ProxySQL; etc/sluice.cnf turns it on
		{"admin-restapi_port", "6070", VarInt},
		{"admin-web_enabled", "false", VarBool},
		{"admin-web_port", "6080", VarInt},
		{"admin-web_verbosity", "0", VarInt},
		{"admin-cluster_username", "", VarString},
		{"admin-cluster_check_interval_ms", "1000", VarInt},
		{"admin-cluster_check_status_frequency", "10", VarInt},
		{"admin-cluster_mysql_servers_diffs_before_sync", "3", VarInt},
		{"admin-cluster_mysql_users_save_to_disk", "true", VarBool},
		{"admin-cluster_mysql_servers_sync_algorithm", "1", VarInt},
		{"admin-prometheus_memory_metrics_interval", "61", VarInt},
		{"admin-stats_mysql_connection_pool", "60", VarInt},
		{"admin-stats_mysql_query_digest_to_disk", "0", VarInt},
		{"admin-coredump_generation_threshold", "10", VarInt},
		{"mysql-balance_policy", "resource", VarString},
		{"mysql-balance_label_name", "", VarString},
		{"mysql-proxy_labels", "", VarJSONObject},
		{"mysql-query_digests_max_entries", "100000", VarInt},
	}
	for _, c := range cases {
		d, ok := LookupVar(c.name)
		if !ok {
			t.Errorf("%s: not defined", c.name)
			continue
		}
		if d.Default != c.def || d.Kind != c.kind {
			t.Errorf("%s: got default %q kind %d, want %q kind %d", c.name, d.Default, d.Kind, c.def, c.kind)
		}
	}
}

func TestVarFlags(t *testing.T) {
	v, _ := LookupVar("admin-version")
	if !v.ReadOnly || !strings.HasPrefix(v.Default, "2.7.") {
		t.Errorf("admin-version: %+v, want read-only with a 2.7.x default", v)
	}
	for _, n := range []string{"mysql-threads", "mysql-stacksize"} {
		if d, _ := LookupVar(n); !d.SetOnce {
			t.Errorf("%s: want SetOnce", n)
		}
	}
	if d, _ := LookupVar("mysql-interfaces"); d.SetOnce {
		t.Error("mysql-interfaces: Sluice rebinds it at LOAD; it must not be SetOnce")
	}
	for _, d := range VarDefs() {
		if d.ReadOnly && d.Name != "admin-version" {
			t.Errorf("%s: unexpectedly read-only", d.Name)
		}
	}
}

func TestVarRanges(t *testing.T) {
	cases := []struct {
		name     string
		min, max int64
	}{
		{"mysql-threads", 1, 255},
		{"mysql-eventslog_filesize", 1 << 20, 1 << 30},
		{"mysql-eventslog_format", 1, 2},
		{"mysql-max_connections", 1, 1000000},
		{"mysql-connect_timeout_server_max", 10, 3600000},
		{"mysql-max_allowed_packet", 8192, 1 << 30},
		{"mysql-query_digests_grouping_limit", 1, 2089},
		{"mysql-wait_timeout", 0, 20 * 24 * 3600 * 1000},
		{"mysql-stacksize", 256 * 1024, 4 * 1024 * 1024},
		{"mysql-binlog_reader_connect_retry_msec", 200, 120000},
		{"admin-refresh_interval", 101, 99999},
		{"admin-restapi_port", 1, 65534},
		{"admin-cluster_mysql_servers_sync_algorithm", 1, 3},
		{"admin-coredump_generation_threshold", 1, 500},
	}
	for _, c := range cases {
		d, ok := LookupVar(c.name)
		if !ok || d.Kind != VarInt || d.Min != c.min || d.Max != c.max {
			t.Errorf("%s: got %+v, want int range [%d, %d]", c.name, d, c.min, c.max)
			continue
		}
		if err := d.Check(itoa(c.min - 1)); err == nil {
			t.Errorf("%s: %d accepted below the range", c.name, c.min-1)
		}
		if err := d.Check(itoa(c.max + 1)); err == nil {
			t.Errorf("%s: %d accepted above the range", c.name, c.max+1)
		}
		if err := d.Check(itoa(c.max)); err != nil {
			t.Errorf("%s: max rejected: %v", c.name, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestVarEnumerations(t *testing.T) {
	d, _ := LookupVar("mysql-balance_policy")
	for _, ok := range []string{"resource", "location", "connection", "random", "RANDOM"} {
		if err := d.Check(ok); err != nil {
			t.Errorf("balance_policy %q: %v", ok, err)
		}
	}
	if err := d.Check("round-robin"); err == nil {
		t.Error("balance_policy accepted round-robin")
	}
	g, _ := LookupVar("mysql-default_session_track_gtids")
	if g.Check("own_gtid") != nil || g.Check("ON") == nil {
		t.Error("default_session_track_gtids: want OFF/OWN_GTID only")
	}
	if s, _ := LookupVar("mysql-server_version"); s.Check("anything at all") != nil {
		t.Error("free-form string rejected")
	}
	// As ProxySQL's set_variable: these two refuse an empty value (which
	// Sluice used to accept and then ignore); others take one.
	for _, name := range []string{"mysql-server_version", "mysql-default_schema"} {
		if d, _ := LookupVar(name); d.Check("") == nil {
			t.Errorf("%s: empty value accepted", name)
		}
	}
	if d, _ := LookupVar("mysql-eventslog_filename"); d.Check("") != nil {
		t.Error("mysql-eventslog_filename: empty value (logging off) refused")
	}
}

func TestVarDefsConsistent(t *testing.T) {
	seen := map[string]bool{}
	var mysql, admin int
	for i, d := range varDefs {
		if seen[d.Name] {
			t.Errorf("%s: duplicate", d.Name)
		}
		seen[d.Name] = true
		if i > 0 && varDefs[i-1].Name >= d.Name {
			t.Errorf("not sorted: %s before %s", varDefs[i-1].Name, d.Name)
		}
		switch {
		case strings.HasPrefix(d.Name, "mysql-"):
			mysql++
		case strings.HasPrefix(d.Name, "admin-"):
			admin++
		default:
			t.Errorf("%s: no mysql-/admin- prefix", d.Name)
		}
		// ProxySQL's one capitalised name is kept as ProxySQL writes it.
		if d.Name != strings.ToLower(d.Name) && d.Name != "mysql-query_cache_size_MB" {
			t.Errorf("%s: not lower case", d.Name)
		}
		if err := d.Check(d.Default); err != nil {
			t.Errorf("%s: default fails its own check: %v", d.Name, err)
		}
		if (d.Kind == VarInt || d.Kind == VarFloat) && d.Min > d.Max {
			t.Errorf("%s: empty range", d.Name)
		}
		if len(d.Values) > 0 && d.Kind != VarString {
			t.Errorf("%s: Values on a non-string", d.Name)
		}
		if got, ok := LookupVar(strings.ToUpper(d.Name)); !ok || got.Name != d.Name {
			t.Errorf("%s: case-insensitive lookup failed", d.Name)
		}
	}
	// 165 ProxySQL mysql-* (163 thread variables, query_processor_first_comment_parsing
	// and protocol_compression_level included, + default_charset and
	// default_collation_connection) + 16 of Sluice's; 49 admin-*.
	if mysql != 181 || admin != 49 {
		t.Errorf("counts: mysql %d admin %d, want 181 and 49", mysql, admin)
	}
	all := VarDefs()
	if len(all) != len(varDefs) || !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].Name < all[j].Name }) {
		t.Error("VarDefs not sorted")
	}
}

func TestProxyLabelsMustBeAJSONObject(t *testing.T) {
	d, ok := LookupVar("mysql-proxy_labels")
	if !ok {
		t.Fatal("mysql-proxy_labels missing")
	}
	for v, ok := range map[string]bool{
		``: true, `{}`: true, `{"zone":"z1","biz":"a"}`: true,
		`zone=z1`: false, `["z1"]`: false, `{"zone":1}`: false,
	} {
		if err := d.Check(v); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestHandshakeCollation(t *testing.T) {
	for _, c := range []struct {
		cs, coll string
		id       int
		err      bool
	}{
		{"utf8", "utf8_general_ci", 33, false},
		{"UTF8MB4", "utf8_general_ci", 45, false}, // the collation of another set: the set's default
		{"utf8mb4", "utf8mb4_unicode_ci", 224, false},
		{"utf8mb4", "utf8mb4_0900_ai_ci", 255, false}, // MySQL 8's
		{"latin1", "", 8, false},
		{"binary", "binary", 63, false},
		{"klingon", "utf8_general_ci", 0, true},
	} {
		got, err := HandshakeCollation(c.cs, c.coll)
		if (err != nil) != c.err || (err == nil && got.ID != c.id) {
			t.Errorf("HandshakeCollation(%q, %q) = %d, %v; want %d", c.cs, c.coll, got.ID, err, c.id)
		}
	}
	for v, ok := range map[string]bool{"utf8mb4_general_ci": true, "utf8_bin": true, "UTF8MB4_0900_AI_CI": true,
		"utf8mb4_unicode_520_nopad_ci": false, "nope": false, "": false} {
		d, _ := LookupVar("mysql-default_collation_connection")
		if err := d.Check(v); (err == nil) != ok {
			t.Errorf("default_collation_connection %q: %v", v, err)
		}
	}
}
