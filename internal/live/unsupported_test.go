package live

import (
	"database/sql"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// offDefaults turns off mysql-have_ssl, which ProxySQL enables by default
// and Sluice does not, so a case sees only its own notices.
func offDefaults(vars map[string]string) map[string]string {
	out := map[string]string{"mysql-have_ssl": "false"}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

// TestUnsupported: each setting Sluice does not implement gives a notice
// of the right kind, in the module that holds it only, and Build records
// it; a refused one makes Refusal an ErrUnsupported that names it.
func TestUnsupported(t *testing.T) {
	ni := func(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: true} }
	defAttrs := config.HostgroupAttributes{HostgroupID: 5, MaxNumOnlineServers: 1000000, Autocommit: -1,
		FreeConnectionsPct: 10, Multiplex: 1, ThrottleConnectionsPerSec: 1000000}
	// multiplex and max_num_online_servers are built; autocommit is not.
	attrsOff := defAttrs
	attrsOff.Multiplex, attrsOff.MaxNumOnlineServers, attrsOff.Autocommit = 0, 1, 1
	row := [][]sql.NullString{{{String: "x", Valid: true}}}
	cases := []struct {
		name    string
		m       config.Module
		snap    *config.Snapshot
		refused []string // substrings of the refused notices, in order
		warned  []string // substrings of the warnings, in order
	}{
		{"defaults: nothing", config.ModMySQLVariables, &config.Snapshot{}, nil, nil},
		{"have_ssl and have_compress on (both built)", config.ModMySQLVariables,
			snapWith(map[string]string{"mysql-have_ssl": "true", "mysql-have_compress": "true"}), nil, nil},
		{"both off: nothing", config.ModMySQLVariables, snapWith(offDefaults(nil)), nil, nil},
		{"admin defaults: nothing", config.ModAdminVariables, &config.Snapshot{}, nil, nil},
		// The firewall whitelist is built (rules/firewall.go): no notice.
		{"firewall enabled", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{"mysql-firewall_whitelist_enabled": "1"})),
			nil, nil},
		// SQL injection detection and the audit log are built: no notice.
		{"sqli and audit log", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-automatic_detect_sqli": "true", "mysql-auditlog_filename": "audit.log", "mysql-query_cache_size_MB": "512"})),
			nil, nil},
		// Every refused setting is built now; the refusal path is kept for
		// the next one and exercised with a stand-in entry added below.
		{"refused stand-in", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-connect_timeout_client": "12345"})),
			[]string{"mysql-connect_timeout_client=12345: stand-in"}, nil},
		// The client host error cache is built (router/hostcache.go): no notice.
		{"client host cache", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{"mysql-client_host_cache_size": "100"})),
			nil, nil},
		// Backend TLS (CA directories and revocation lists included) is
		// built: TestBackendTLSRevocation.
		{"backend TLS", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-ssl_p2s_cipher": "ECDHE-RSA-AES128-GCM-SHA256"})),
			nil, nil},
		{"warnings only", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			// The PROXY protocol, query delays and connection throttling are built: no notice.
			"mysql-default_query_delay": "5", "mysql-proxy_protocol_networks": "*",
			"mysql-throttle_connections_per_sec_to_hostgroup": "10", "mysql-firewall_whitelist_enabled": "false",
			"mysql-enforce_autocommit_on_reads": "false", "mysql-monitor_groupreplication_max_transactions_behind_for_read_only": "2"})),
			nil, []string{"mysql-monitor_groupreplication_max_transactions_behind_for_read_only=2: Group Replication lag"}},
		{"ProxySQL knobs Sluice lacks", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-connection_delay_multiplex_ms": "100", "mysql-server_capabilities": "569867", "mysql-min_num_servers_lantency_awareness": "0",
			"mysql-handle_unknown_charset": "0", "mysql-default_session_track_gtids": "own_gtid"})),
			nil, []string{"mysql-connection_delay_multiplex_ms=100", "mysql-default_session_track_gtids=own_gtid", "mysql-handle_unknown_charset=0"}},
		{"admin: web, restapi", config.ModAdminVariables, &config.Snapshot{AdminVars: map[string]string{
			"admin-web_enabled": "true", "admin-restapi_enabled": "1", "admin-web_port": "7000", "admin-ssl_keylog_file": "/tmp/k"}},
			nil, []string{"admin-ssl_keylog_file=/tmp/k: TLS key logging"}},
		{"admin: checksums off", config.ModAdminVariables, &config.Snapshot{AdminVars: map[string]string{
			"admin-checksum_mysql_users": "false", "admin-checksum_mysql_servers": "true"}},
			nil, []string{"admin-checksum_mysql_users=false: not implemented in Sluice: the module's checksum"}},
		// Label isolation is a factor: random ignores it, and says so.
		{"label name under random", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-balance_label_name": "app", "mysql-balance_policy": "random"})),
			nil, []string{"mysql-balance_label_name=app: label isolation is a factor"}},
		{"label name under resource", config.ModMySQLVariables, snapWith(offDefaults(map[string]string{
			"mysql-balance_label_name": "app", "mysql-balance_policy": "resource"})), nil, nil},
		{"mysql variables ignore admin ones", config.ModMySQLVariables, &config.Snapshot{
			MySQLVars: offDefaults(nil), AdminVars: map[string]string{"admin-web_enabled": "true"}}, nil, nil},
		{"servers: use_ssl and compression are built", config.ModMySQLServers, &config.Snapshot{Servers: []config.Server{
			{HostgroupID: 1, Hostname: "db1", Port: 3306, Status: "ONLINE", UseSSL: 1},
			{HostgroupID: 2, Hostname: "db2", Port: 3307, Status: "ONLINE", Compression: 1},
			{HostgroupID: 2, Hostname: "db3", Port: 3306, Status: "ONLINE", MaxReplicationLag: 10}}},
			nil, nil},
		{"servers: port 0 with a socket path, and without one", config.ModMySQLServers, &config.Snapshot{Servers: []config.Server{
			{HostgroupID: 1, Hostname: "/var/lib/mysql/mysql.sock", Port: 0, Status: "ONLINE"},
			{HostgroupID: 1, Hostname: "127.0.0.1", Port: 0, Status: "ONLINE"},
			{HostgroupID: 2, Hostname: "127.0.0.1", Port: 0, Status: "ONLINE"}}},
			nil, []string{"port 0 (127.0.0.1): port 0 makes hostname the path of a Unix socket"}},
		{"servers: ssl params built", config.ModMySQLServers, &config.Snapshot{
			Tables: map[string][][]sql.NullString{"mysql_servers_ssl_params": {
				sslRow("db1", "3306", "", "", "ECDHE-RSA-AES128-GCM-SHA256")}}},
			nil, nil},
		{"servers: side tables", config.ModMySQLServers, &config.Snapshot{
			HostgroupAttributes: []config.HostgroupAttributes{defAttrs, attrsOff},
			Tables: map[string][][]sql.NullString{"mysql_galera_hostgroups": row,
				"mysql_group_replication_hostgroups": row, "mysql_aws_aurora_hostgroups": row}},
			nil, []string{"mysql_aws_aurora_hostgroups", "mysql_hostgroup_attributes (hostgroup 5): autocommit not implemented"}},
		{"servers: a use_ssl server is not looked at by a users load", config.ModMySQLUsers, &config.Snapshot{
			Servers: []config.Server{{HostgroupID: 1, Hostname: "db1", Port: 3306, Status: "ONLINE", UseSSL: 1}}}, nil, nil},
		{"users: use_ssl with have_ssl on: nothing", config.ModMySQLUsers, &config.Snapshot{MySQLVars: map[string]string{"mysql-have_ssl": "true"},
			Users: []config.User{{Username: "app", UseSSL: true, Active: true, Frontend: true}}}, nil, nil},
		{"users: use_ssl without have_ssl warned (they cannot log in)", config.ModMySQLUsers, &config.Snapshot{Users: []config.User{
			{Username: "app", UseSSL: true, Active: true, Frontend: true, Backend: true},
			{Username: "back", UseSSL: true, Active: true, Backend: true},
			{Username: "off", UseSSL: true, Active: false, Frontend: true},
			{Username: "plain", Active: true, Frontend: true}}},
			nil, []string{"mysql_users.use_ssl=1 (app) while mysql-have_ssl=false"}},
		{"variables: have_ssl turned off under use_ssl users warned", config.ModMySQLVariables, &config.Snapshot{
			MySQLVars: offDefaults(map[string]string{"mysql-have_ssl": "false"}),
			Users:     []config.User{{Username: "app", UseSSL: true, Active: true, Frontend: true}}},
			nil, []string{"mysql_users.use_ssl=1 (app) while mysql-have_ssl=false"}},
		{"users: a password that looks like a $A$ hash and is not one", config.ModMySQLUsers, &config.Snapshot{MySQLVars: map[string]string{"mysql-have_ssl": "true"},
			Users: []config.User{
				{Username: "short", Password: wire.CachingSha2Hash([]byte("pw"), []byte("short")), Active: true, Frontend: true},
				{Username: "good", Password: wire.CachingSha2Hash([]byte("pw"), []byte("0123456789abcdefghij")), Active: true, Frontend: true}}},
			nil, []string{"mysql_users.password of short starts as a caching_sha2_password hash"}},
		{"rules: gtid, cache_timeout (cache_ttl and delay are built); reconnect and sticky_conn are ProxySQL no-ops", config.ModMySQLQueryRules, &config.Snapshot{
			QueryRules: []config.QueryRule{
				{RuleID: 1, Active: true, CacheTTL: ni(1000)},
				{RuleID: 2, Active: true, Delay: ni(10), Reconnect: ni(1), StickyConn: ni(1)},
				{RuleID: 3, Active: true, GTIDFromHostgroup: ni(1), Timeout: ni(100), OKMsg: sql.NullString{String: "ok", Valid: true}},
				{RuleID: 4, Active: true, CacheTTL: ni(1000), CacheTimeout: ni(50)}}},
			nil, []string{"cache_timeout (rule_id 4)", "gtid_from_hostgroup (rule_id 3)"}},
		// The scheduler runs its jobs (internal/proxy/scheduler.go): no notice.
		{"scheduler: active rows", config.ModScheduler, &config.Snapshot{Scheduler: []config.SchedulerJob{
			{ID: 1, Active: true, IntervalMs: 1000, Filename: "/bin/true"}, {ID: 2, Active: false, IntervalMs: 1000, Filename: "/bin/true"}}},
			nil, nil},
		{"scheduler: inactive only", config.ModScheduler, &config.Snapshot{Scheduler: []config.SchedulerJob{
			{ID: 2, Active: false, IntervalMs: 1000, Filename: "/bin/true"}}}, nil, nil},
		{"firewall: SQL injection fingerprints are used", config.ModMySQLFirewall, &config.Snapshot{Tables: map[string][][]sql.NullString{
			"mysql_firewall_whitelist_sqli_fingerprints": row}}, nil, nil},
		// ProxySQL Cluster is implemented (internal/cluster): no notice.
		{"proxysql servers", config.ModProxySQLServers, &config.Snapshot{ProxySQLServers: []config.ProxySQLServer{{Hostname: "p2", Port: 6032}}},
			nil, nil},
		{"restapi routes are served (/sync/<uri>)", config.ModRestAPI, &config.Snapshot{Tables: map[string][][]sql.NullString{"restapi_routes": row}},
			nil, nil},
	}
	saved := unsupportedVars
	unsupportedVars = append(append([]unsupportedVar(nil), saved...), unsupportedVar{"mysql-connect_timeout_client", true,
		func(v string) bool { return v == "12345" }, "stand-in", "10000"})
	defer func() { unsupportedVars = saved }()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, err := Build(nil, c.snap, c.m)
			if err != nil {
				t.Fatal(err)
			}
			var refused, warned []string
			for _, n := range rt.Notices {
				if n.Refused {
					refused = append(refused, n.Msg)
				} else {
					warned = append(warned, n.Msg)
				}
			}
			match := func(kind string, got, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s: got %d %q, want %d %q", kind, len(got), got, len(want), want)
				}
				for i := range want {
					if !strings.Contains(got[i], want[i]) {
						t.Errorf("%s %d: %q does not contain %q", kind, i, got[i], want[i])
					}
				}
			}
			match("refused", refused, c.refused)
			match("warned", warned, c.warned)
			err = rt.Refusal()
			if (err != nil) != (len(c.refused) > 0) {
				t.Fatalf("Refusal = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.refused[0]) {
					t.Errorf("Refusal = %v", err)
				}
				// Refused first, then the warnings; atStart adds the refused ones.
				if got := rt.Warnings(false); len(got) != len(c.warned) {
					t.Errorf("Warnings(false) = %q", got)
				}
				got := rt.Warnings(true)
				if len(got) != len(c.warned)+len(c.refused) || !strings.Contains(got[0], "loaded anyway at start-up") {
					t.Errorf("Warnings(true) = %q", got)
				}
			}
		})
	}
}

// sslRow is a mysql_servers_ssl_params row with a CRL and a cipher list.
func sslRow(host, port, user, crl, cipher string) []sql.NullString {
	r := make([]sql.NullString, sslpNumCols)
	for i := range r {
		r[i].Valid = true
	}
	r[sslpHost].String, r[sslpPort].String, r[sslpUser].String = host, port, user
	r[sslpCRL].String, r[sslpCipher].String = crl, cipher
	return r
}

// TestUnsupportedListsManyRowsBriefly: one notice per setting, naming at
// most a few rows.
func TestUnsupportedListsManyRowsBriefly(t *testing.T) {
	snap := &config.Snapshot{}
	for i := range 12 {
		snap.QueryRules = append(snap.QueryRules, config.QueryRule{RuleID: i + 1, Active: true, CacheTimeout: sql.NullInt64{Int64: 100, Valid: true}})
	}
	n := Unsupported(snap, config.ModMySQLQueryRules)
	if len(n) != 1 || !strings.Contains(n[0].Msg, "rule_id 1, 2, 3, 4, 5 and 7 more") {
		t.Fatalf("%+v", n)
	}
}

// readVariables returns the string literals of the non-test Go code
// outside the variable list and this package's unsupported.go: the
// variable names some code reads.
func readVariables(t *testing.T) map[string]string {
	t.Helper()
	read := make(map[string]string) // name → a file that reads it
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "var", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, filepath.Join("live", "unsupported.go")) ||
			strings.HasSuffix(path, "variables_list.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil {
					read[v] = path
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return read
}

// TestUnsupportedVarsAreKnownAndUnread: every variable of the table is in
// the variable list, and no other code reads it: a feature that gets built
// must leave the table, or its LOAD would still warn (or be refused).
func TestUnsupportedVarsAreKnownAndUnread(t *testing.T) {
	names := make(map[string]bool)
	for _, uv := range unsupportedVars {
		if _, ok := config.LookupVar(uv.name); !ok {
			t.Errorf("%s is not in the variable list", uv.name)
		}
		if names[uv.name] {
			t.Errorf("%s listed twice", uv.name)
		}
		names[uv.name] = true
		if d, _ := config.LookupVar(uv.name); uv.on(d.Default) && uv.name != "mysql-have_ssl" {
			t.Errorf("%s: its default %q already asks for the feature", uv.name, d.Default)
		}
	}
	for name, path := range readVariables(t) {
		if names[name] {
			t.Errorf("%s reads %s, which internal/live/unsupported.go reports as not implemented", path, name)
		}
	}
}

// TestEveryVariableAccountedFor: a ProxySQL variable Sluice accepts is
// read by some code, or reported at LOAD when its value asks for what
// Sluice lacks (unsupportedVars), or listed in notActedOn with the reason
// no value of it matters — never accepted and silently ignored.
func TestEveryVariableAccountedFor(t *testing.T) {
	read := readVariables(t)
	reported := make(map[string]bool)
	for _, uv := range unsupportedVars {
		reported[uv.name] = true
	}
	for name, why := range notActedOn {
		if _, ok := config.LookupVar(name); !ok {
			t.Errorf("notActedOn: %s is not in the variable list", name)
		}
		if path, ok := read[name]; ok {
			t.Errorf("notActedOn lists %s (%s), but %s reads it", name, why, path)
		}
		if reported[name] {
			t.Errorf("%s is both reported and listed as not acted on", name)
		}
	}
	for _, d := range config.VarDefs() {
		_, isRead := read[d.Name]
		_, ignored := notActedOn[d.Name]
		if !isRead && !reported[d.Name] && !ignored {
			t.Errorf("%s is accepted but neither read, nor reported at LOAD, nor listed in notActedOn", d.Name)
		}
	}
}
