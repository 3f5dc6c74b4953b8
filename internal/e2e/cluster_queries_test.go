package e2e

import (
	"database/sql"
	"errors"
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

// clusterFetch runs q and returns its column names and rows.
func clusterFetch(t *testing.T, db *sql.DB, q string) ([]string, [][]sql.NullString) {
	t.Helper()
	rows, err := db.Query(q)
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

// TestClusterQueriesAnsweredAsProxySQL logs in as admin-cluster_username and
// sends, byte for byte, what a ProxySQL 2.7 peer sends
// (ProxySQL_Cluster_Monitor_thread and the pull_*_from_peer functions): the
// answers have the columns of the queries' select lists in order, and the
// module rows give the checksum runtime_checksums_values announces — what
// a ProxySQL peer checks before it applies a module.
func TestClusterQueriesAnsweredAsProxySQL(t *testing.T) {
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
	}
	cols, sums := clusterFetch(t, db, "SELECT * FROM runtime_checksums_values ORDER BY name")
	if strings.Join(cols, ",") != "name,version,epoch,checksum" {
		t.Errorf("runtime_checksums_values columns %v", cols)
	}
	announced := make(map[string]string)
	for _, r := range sums {
		announced[r[0].String] = r[3].String
	}
	cols, _ = clusterFetch(t, db, "SELECT * FROM stats_mysql_global ORDER BY Variable_Name")
	if strings.Join(cols, ",") != "Variable_Name,Variable_Value" {
		t.Errorf("stats_mysql_global columns %v", cols)
	}

	// The module queries.
	for _, name := range []string{"admin_variables", "mysql_query_rules", "mysql_servers", "mysql_servers_v2", "mysql_users", "mysql_variables", "proxysql_servers"} {
		qs := storage.ClusterQueries(name)
		if len(qs) == 0 {
			t.Fatalf("no queries for %s", name)
		}
		var results [][][]sql.NullString
		for _, q := range qs {
			cols, rows := clusterFetch(t, db, q.Text)
			want := selectList(q.Text)
			if want == nil {
				want = []string{"variable_name", "variable_value"}
			}
			if strings.Join(cols, ",") != strings.Join(want, ",") {
				t.Errorf("%s: columns\n got %v\nwant %v", q.Text, cols, want)
			}
			results = append(results, rows)
			t.Logf("%s: %d row(s)", q.Text, len(rows))
		}
		if got := storage.ChecksumSum(results...); got != announced[name] || got == "0x00" {
			t.Errorf("%s: rows give checksum %s, runtime_checksums_values announces %s", name, got, announced[name])
		}
	}
	// What the rows are: one row per user (frontend and backend together,
	// the hash kept), active rules only, interfaces left out of variables.
	_, users := clusterFetch(t, db, storage.ClusterQueries("mysql_users")[0].Text)
	if len(users) != 2 || users[0][0].String != "u1" || users[0][1].String != "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29" ||
		users[0][8].String != "1" || users[0][9].String != "1" {
		t.Errorf("users: %v", users)
	}
	_, rules := clusterFetch(t, db, storage.ClusterQueries("mysql_query_rules")[0].Text)
	if len(rules) != 1 || rules[0][0].String != "1" {
		t.Errorf("rules: %v", rules)
	}
	_, vars := clusterFetch(t, db, storage.ClusterQueries("mysql_variables")[0].Text)
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
