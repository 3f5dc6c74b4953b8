package e2e

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/storage"
)

// clusterAdmin makes cluster1 the admin-cluster_username of a node.
const clusterAdmin = `SET admin-admin_credentials = 'admin:admin;cluster1:secret1pass';
SET admin-cluster_username = 'cluster1'; SET admin-cluster_password = 'secret1pass'; LOAD ADMIN VARIABLES TO RUNTIME`

// selectList is the column list of a ProxySQL Cluster query as its text in
// ProxySQL's source spells it ("PROXY_SELECT a, b FROM …"), or nil for
// SELECT *.
func selectList(q string) []string {
	q = strings.TrimPrefix(strings.TrimPrefix(q, "PROXY_"), "SELECT ")
	list, _, _ := strings.Cut(q, " FROM ")
	if list == "*" {
		return nil
	}
	return strings.Split(list, ", ")
}

// queryer is a *sql.DB or a *sql.Conn.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// clusterFetch runs q and returns its column names and rows.
func clusterFetch(t *testing.T, db queryer, q string) ([]string, [][]sql.NullString) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]sql.NullString
	for rows.Next() {
		r := make([]sql.NullString, len(cols))
		dst := make([]any, len(cols))
		for i := range r {
			dst[i] = &r[i]
		}
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

// proxysqlPeerQueries are, per runtime_checksums_values row, the queries a
// ProxySQL 2.7 node sends to pull that module from a peer, in order, copied
// from ProxySQL's source rather than from Sluice's: CLUSTER_QUERY_* in
// include/ProxySQL_Cluster.hpp, and in lib/ProxySQL_Cluster.cpp the texts
// pull_global_variables_from_peer builds (with cluster_sync_interfaces
// false, CLUSTER_SYNC_INTERFACES_* of proxysql_glovars.hpp) and
// pull_proxysql_servers_from_peer's.
var proxysqlPeerQueries = map[string][]string{
	"mysql_servers": {
		"PROXY_SELECT hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment FROM runtime_mysql_servers WHERE status<>'OFFLINE_HARD' ORDER BY hostgroup_id, hostname, port",
	},
	"mysql_servers_v2": {
		"PROXY_SELECT hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment FROM mysql_servers_v2 WHERE status<>'OFFLINE_HARD' ORDER BY hostgroup_id, hostname, port",
		"PROXY_SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups ORDER BY writer_hostgroup",
		"PROXY_SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, max_writers, writer_is_also_reader, max_transactions_behind, comment FROM runtime_mysql_group_replication_hostgroups ORDER BY writer_hostgroup",
		"PROXY_SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, max_writers, writer_is_also_reader, max_transactions_behind, comment FROM runtime_mysql_galera_hostgroups ORDER BY writer_hostgroup",
		"PROXY_SELECT writer_hostgroup, reader_hostgroup, active, aurora_port, domain_name, max_lag_ms, check_interval_ms, check_timeout_ms, writer_is_also_reader, new_reader_weight, add_lag_ms, min_lag_ms, lag_num_checks, comment FROM runtime_mysql_aws_aurora_hostgroups ORDER BY writer_hostgroup",
		"PROXY_SELECT hostgroup_id, max_num_online_servers, autocommit, free_connections_pct, init_connect, multiplex, connection_warming, throttle_connections_per_sec, ignore_session_variables, hostgroup_settings, servers_defaults, comment FROM runtime_mysql_hostgroup_attributes ORDER BY hostgroup_id",
		"PROXY_SELECT hostname, port, username, ssl_ca, ssl_cert, ssl_key, ssl_capath, ssl_crl, ssl_crlpath, ssl_cipher, tls_version, comment FROM runtime_mysql_servers_ssl_params ORDER BY hostname, port, username",
	},
	"mysql_users": {
		"PROXY_SELECT username, password, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, backend, frontend, max_connections, attributes, comment FROM runtime_mysql_users",
	},
	"mysql_query_rules": {
		"PROXY_SELECT rule_id, username, schemaname, flagIN, client_addr, proxy_addr, proxy_port, digest, match_digest, match_pattern, negate_match_pattern, re_modifiers, flagOUT, replace_pattern, destination_hostgroup, cache_ttl, cache_empty_result, cache_timeout, reconnect, timeout, retries, delay, next_query_flagIN, mirror_flagOUT, mirror_hostgroup, error_msg, ok_msg, sticky_conn, multiplex, gtid_from_hostgroup, log, apply, attributes, comment FROM runtime_mysql_query_rules ORDER BY rule_id",
		"PROXY_SELECT username, schemaname, flagIN, destination_hostgroup, comment FROM runtime_mysql_query_rules_fast_routing ORDER BY username, schemaname, flagIN",
	},
	"mysql_variables": {
		"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'mysql-%' AND variable_name NOT IN ('mysql-threads') AND variable_name NOT IN ('mysql-interfaces') ORDER BY variable_name",
	},
	"admin_variables": {
		"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'admin-%' AND variable_name NOT IN ('admin-mysql_ifaces','admin-restapi_port','admin-telnet_admin_ifaces','admin-telnet_stats_ifaces','admin-web_port') ORDER BY variable_name",
	},
	"proxysql_servers": {
		"SELECT hostname, port, weight, comment FROM runtime_proxysql_servers ORDER BY hostname, port",
	},
}

// checksumText is how runtime_checksums_values shows a checksum: 0x and
// hexadecimal digits, upper case (ProxySQL's "0x%0X%0X").
var checksumText = regexp.MustCompile(`^0x[0-9A-F]{1,16}$`)

// TestClusterQueriesAnsweredAsProxySQL logs in as admin-cluster_username and
// sends, byte for byte, what a ProxySQL 2.7 peer sends: the check loop of
// ProxySQL_Cluster_Monitor_thread (SELECT @@version, PROXYSQL
// CLUSTER_NODE_UUID, SELECT GLOBAL_CHECKSUM(), runtime_checksums_values,
// stats_mysql_global) and the queries of the pull_*_from_peer functions
// (proxysqlPeerQueries, written from ProxySQL's source). The answers have
// ProxySQL's shape: the columns of each query's select list in order
// (variable_name, variable_value for SELECT *), checksum rows of four
// columns with integer version and epoch and a 0x… checksum, one integer
// for GLOBAL_CHECKSUM(), one row per user with its hash, active rules
// only, no interface variables; and each module's rows give the checksum
// runtime_checksums_values announces, which a ProxySQL peer recomputes
// before it applies the module. Anything else the cluster user sends is
// ERROR 1227.
func TestClusterQueriesAnsweredAsProxySQL(t *testing.T) {
	// Sluice's own poller sends the same texts.
	for name, want := range proxysqlPeerQueries {
		var got []string
		for _, q := range storage.ClusterQueries(name) {
			if !q.Optional {
				got = append(got, q.Text)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Sluice's queries differ from ProxySQL's:\n got %q\nwant %q", name, got, want)
		}
	}

	s := startFresh(t, "")
	admin(t, s, clusterAdmin)
	admin(t, s, `INSERT INTO mysql_servers (hostgroup_id, hostname, port, comment) VALUES (0, '127.0.0.1', 3306, 'w'), (1, '127.0.0.1', 3307, 'r');
INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (0, 1, 'repl');
INSERT INTO mysql_hostgroup_attributes (hostgroup_id, comment) VALUES (1, 'attrs');
INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('u1', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 0), ('u2', 'clear', 1);
INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply) VALUES (1, 1, '^SELECT', 1, 1), (2, 0, 'x', 0, 1);
INSERT INTO mysql_query_rules_fast_routing (username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('u1', 's', 0, 1, 'fr');
INSERT INTO proxysql_servers (hostname, port, weight, comment) VALUES ('127.0.0.1', 6032, 1, 'a'), ('127.0.0.1', 6042, 1, 'b');
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL QUERY RULES TO RUNTIME; LOAD PROXYSQL SERVERS TO RUNTIME;
SET mysql-max_connections = 1234; LOAD MYSQL VARIABLES TO RUNTIME; LOAD ADMIN VARIABLES TO RUNTIME`)

	db := testenv.DB(t, s.AdminPort, "cluster1", "secret1pass", "", "")
	db.SetMaxOpenConns(1)

	// The check loop.
	if cols, rows := clusterFetch(t, db, "SELECT @@version"); len(cols) != 1 || len(rows) != 1 || rows[0][0].String == "" {
		t.Errorf("SELECT @@version: %v %v", cols, rows)
	}
	if _, err := db.Exec("PROXYSQL CLUSTER_NODE_UUID 0f1e2d3c-4b5a-4968-8776-655443322110 127.0.0.1:6042"); err != nil {
		t.Fatalf("CLUSTER_NODE_UUID: %v", err)
	}
	if got := admin(t, s, "SELECT uuid, hostname, admin_mysql_ifaces FROM stats_proxysql_servers_clients_status"); got != "0f1e2d3c-4b5a-4968-8776-655443322110\t127.0.0.1\t127.0.0.1:6042\n" {
		t.Errorf("stats_proxysql_servers_clients_status: %q", got)
	}
	if cols, rows := clusterFetch(t, db, "SELECT GLOBAL_CHECKSUM()"); len(cols) != 1 || len(rows) != 1 {
		t.Errorf("GLOBAL_CHECKSUM: %v %v", cols, rows)
	} else if _, err := strconv.ParseUint(rows[0][0].String, 10, 64); err != nil {
		t.Errorf("GLOBAL_CHECKSUM() = %q, not an unsigned integer", rows[0][0].String)
	}
	cols, sums := clusterFetch(t, db, "SELECT * FROM runtime_checksums_values ORDER BY name")
	if strings.Join(cols, ",") != "name,version,epoch,checksum" {
		t.Errorf("runtime_checksums_values columns %v", cols)
	}
	announced := make(map[string]string)
	var names []string
	for _, r := range sums {
		names = append(names, r[0].String)
		announced[r[0].String] = r[3].String
		if _, err := strconv.ParseUint(r[1].String, 10, 64); err != nil {
			t.Errorf("runtime_checksums_values %s: version %q", r[0].String, r[1].String)
		}
		if _, err := strconv.ParseUint(r[2].String, 10, 64); err != nil {
			t.Errorf("runtime_checksums_values %s: epoch %q", r[0].String, r[2].String)
		}
		if !checksumText.MatchString(r[3].String) {
			t.Errorf("runtime_checksums_values %s: checksum %q", r[0].String, r[3].String)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("runtime_checksums_values not ordered by name: %v", names)
	}
	for name := range proxysqlPeerQueries {
		if _, ok := announced[name]; !ok {
			t.Errorf("runtime_checksums_values has no %s row", name)
		}
	}
	cols, global := clusterFetch(t, db, "SELECT * FROM stats_mysql_global ORDER BY Variable_Name")
	if strings.Join(cols, ",") != "Variable_Name,Variable_Value" {
		t.Errorf("stats_mysql_global columns %v", cols)
	}
	seen := map[string]bool{}
	for _, r := range global {
		seen[r[0].String] = true
	}
	for _, v := range []string{"ProxySQL_Uptime", "Questions", "Client_Connections_connected", "Client_Connections_created"} {
		if !seen[v] {
			t.Errorf("stats_mysql_global has no %s (ProxySQL's set_metrics reads it)", v)
		}
	}

	// The module queries, as ProxySQL's source has them.
	for name, qs := range proxysqlPeerQueries {
		var results [][][]sql.NullString
		for _, q := range qs {
			cols, rows := clusterFetch(t, db, q)
			want := selectList(q)
			if want == nil {
				want = []string{"variable_name", "variable_value"}
			}
			if strings.Join(cols, ",") != strings.Join(want, ",") {
				t.Errorf("%s: columns\n got %v\nwant %v", q, cols, want)
			}
			for _, r := range rows {
				if len(r) != len(want) {
					t.Errorf("%s: a row of %d values", q, len(r))
				}
			}
			results = append(results, rows)
			t.Logf("%s: %d row(s)", q, len(rows))
		}
		if got := storage.ClusterChecksum(name, results...); got != announced[name] || got == "0x00" {
			t.Errorf("%s: rows give checksum %s, runtime_checksums_values announces %s", name, got, announced[name])
		}
	}
	// What the rows are: one row per user (frontend and backend together,
	// the hash kept), active rules only, interfaces left out of variables.
	_, users := clusterFetch(t, db, proxysqlPeerQueries["mysql_users"][0])
	if len(users) != 2 || users[0][0].String != "u1" || users[0][1].String != "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29" ||
		users[0][8].String != "1" || users[0][9].String != "1" {
		t.Errorf("users: %v", users)
	}
	_, rules := clusterFetch(t, db, proxysqlPeerQueries["mysql_query_rules"][0])
	if len(rules) != 1 || rules[0][0].String != "1" {
		t.Errorf("rules: %v", rules)
	}
	_, vars := clusterFetch(t, db, proxysqlPeerQueries["mysql_variables"][0])
	for _, v := range vars {
		if v[0].String == "mysql-interfaces" || v[0].String == "mysql-threads" {
			t.Errorf("mysql variables sent to a peer include %s", v[0].String)
		}
	}

	// The cluster user runs nothing else.
	for _, q := range []string{"SELECT * FROM mysql_users", "DELETE FROM mysql_servers", "LOAD MYSQL USERS TO RUNTIME",
		"SELECT variable_value FROM global_variables WHERE variable_name='admin-admin_credentials'", "PROXYSQL SHUTDOWN"} {
		_, err := db.Exec(q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1227 {
			t.Errorf("%s as the cluster user: %v, want ERROR 1227", q, err)
		}
	}
	if got := admin(t, s, "SELECT COUNT(*) FROM runtime_mysql_servers"); got != "2\n" {
		t.Errorf("servers after the refused statements: %q", got)
	}
}
