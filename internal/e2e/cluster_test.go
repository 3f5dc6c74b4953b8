package e2e

import (
	"crypto/sha1"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// clusterNodeCnf is a node's proxysql.cnf as a ProxySQL Cluster user
// writes it (ProxySQL's documentation example, with a 200 ms check
// interval): admin, the cluster credentials and variables, and the
// proxysql_servers section listing the three nodes.
const clusterNodeCnf = `
datadir="%s"

admin_variables=
{
	admin_credentials="admin:admin;cluster1:secret1pass"
	mysql_ifaces="127.0.0.1:%d"
	restapi_port=%d
	cluster_username="cluster1"
	cluster_password="secret1pass"
	cluster_check_interval_ms=200
	cluster_check_status_frequency=5
	cluster_mysql_query_rules_save_to_disk=true
	cluster_mysql_servers_save_to_disk=true
	cluster_mysql_users_save_to_disk=true
	cluster_proxysql_servers_save_to_disk=true
	cluster_mysql_variables_save_to_disk=true
	cluster_admin_variables_save_to_disk=true
	cluster_mysql_query_rules_diffs_before_sync=3
	cluster_mysql_servers_diffs_before_sync=3
	cluster_mysql_users_diffs_before_sync=3
	cluster_proxysql_servers_diffs_before_sync=3
	cluster_mysql_variables_diffs_before_sync=3
	cluster_admin_variables_diffs_before_sync=3
}

mysql_variables=
{
	threads=4
	interfaces="127.0.0.1:%d"
	monitor_username="monitor"
	monitor_password="monitor"
}

proxysql_servers =
(
	{ hostname="127.0.0.1" port=%d weight=0 comment="node1" },
	{ hostname="127.0.0.1" port=%d weight=0 comment="node2" },
	{ hostname="127.0.0.1" port=%d weight=0 comment="node3" }
)
`

// mysqlNativeHash is the mysql_native_password hash of a password, as
// PASSWORD() gives it: the form a user row holds when only the hash is
// known.
func mysqlNativeHash(pw string) string {
	a := sha1.Sum([]byte(pw))
	b := sha1.Sum(a[:])
	return "*" + strings.ToUpper(fmt.Sprintf("%x", b[:]))
}

type clusterNode struct {
	s  *testenv.Sluice
	db *sql.DB // admin
}

func startClusterNodes(t *testing.T, n int) []*clusterNode {
	t.Helper()
	admins, datas := make([]int, n), make([]int, n)
	for i := range admins {
		admins[i], datas[i] = testenv.FreePort(t), testenv.FreePort(t)
	}
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		dir := t.TempDir()
		datadir := filepath.Join(dir, "data")
		if err := os.MkdirAll(datadir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "proxysql.cnf")
		text := fmt.Sprintf(clusterNodeCnf, datadir, admins[i], testenv.FreePort(t), datas[i], admins[0], admins[1], admins[2])
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		s := testenv.Start(t, cfg, datadir, admins[i], datas[i])
		db := testenv.DB(t, admins[i], "admin", "admin", "", "")
		db.SetMaxOpenConns(2)
		nodes[i] = &clusterNode{s: s, db: db}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, c := range nodes {
				t.Logf("node %d output:\n%s", i+1, c.s.Output())
			}
		}
	})
	return nodes
}

// text runs q and returns its rows as tab-separated lines.
func (c *clusterNode) text(t *testing.T, q string) string {
	t.Helper()
	_, rows := clusterFetch(t, c.db, q)
	var b strings.Builder
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				b.WriteByte('\t')
			}
			if f.Valid {
				b.WriteString(f.String)
			} else {
				b.WriteString("NULL")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (c *clusterNode) exec(t *testing.T, q string) {
	t.Helper()
	if _, err := c.db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// syncedChecksums are the runtime_checksums_values rows nodes must agree on.
const syncedChecksums = "SELECT name, checksum FROM runtime_checksums_values WHERE name IN " +
	"('admin_variables','mysql_query_rules','mysql_servers','mysql_servers_v2','mysql_users','mysql_variables','proxysql_servers') ORDER BY name"

// waitSame waits until every node answers q as nodes[0] does (and, when
// want is set, as want) and returns how long that took; after limit the
// test fails with what differs.
func waitSame(t *testing.T, nodes []*clusterNode, q, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ref := nodes[0].text(t, q)
		same := want == "" || ref == want
		for _, n := range nodes[1:] {
			if n.text(t, q) != ref {
				same = false
			}
		}
		if same {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			var b strings.Builder
			for i, n := range nodes {
				fmt.Fprintf(&b, "node %d:\n%s", i+1, n.text(t, q))
			}
			t.Fatalf("%s: nodes still differ after %v\n%s(want %q)", q, limit, b.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterProxySQLSync runs three Sluice nodes from proxysql.cnf files
// with a proxysql_servers section and checks ProxySQL Cluster end to end:
// servers (with a replication hostgroup), a user given by its hash only and
// rules (with fast routing) LOADed on node 1 reach runtime_* of nodes 2 and
// 3 and their disk; node 3 serves the synced user against a real MariaDB;
// stats_proxysql_servers_checksums lists the peers; a node restarted with
// an empty datadir catches up; 20 concurrent LOADs on different nodes
// converge with no module lost.
func TestClusterProxySQLSync(t *testing.T) {
	bs := testenv.Backends(t, 3)
	nodes := startClusterNodes(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// Peers that only booted (version 1) do not sync: nothing moves.
	if got := n2.text(t, "SELECT COUNT(*) FROM runtime_mysql_users"); got != "0\n" {
		t.Fatalf("node 2 users before any LOAD: %q", got)
	}

	hash := mysqlNativeHash("sbtest")
	n1.exec(t, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port, comment) VALUES
		(10, '127.0.0.1', %d, 'writer'), (11, '127.0.0.1', %d, 'reader'), (11, '127.0.0.1', %d, 'reader')`, bs[0].Port, bs[1].Port, bs[2].Port))
	n1.exec(t, "INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (10, 11, 'cluster')")
	n1.exec(t, fmt.Sprintf("INSERT INTO mysql_users (username, password, default_hostgroup, default_schema) VALUES ('sbtest', '%s', 10, 'sbtest')", hash))
	n1.exec(t, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply, comment) VALUES (5, 1, '^SELECT .* FOR UPDATE', 10, 1, 'locks'), (6, 1, '^SELECT', 11, 1, 'reads')")
	n1.exec(t, "INSERT INTO mysql_query_rules_fast_routing (username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('sbtest', 'other', 0, 10, 'fast')")
	start := time.Now()
	n1.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
	n1.exec(t, "LOAD MYSQL USERS TO RUNTIME")
	n1.exec(t, "LOAD MYSQL QUERY RULES TO RUNTIME")

	runtimeQueries := []string{
		"SELECT hostgroup_id, hostname, port, status, weight, comment FROM runtime_mysql_servers ORDER BY hostgroup_id, port",
		"SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups",
		"SELECT username, password, default_hostgroup, default_schema, frontend, backend FROM runtime_mysql_users ORDER BY username, frontend",
		"SELECT rule_id, match_digest, destination_hostgroup, apply, comment FROM runtime_mysql_query_rules ORDER BY rule_id",
		"SELECT username, schemaname, flagIN, destination_hostgroup, comment FROM runtime_mysql_query_rules_fast_routing",
	}
	for _, q := range runtimeQueries {
		waitSame(t, nodes, q, "", 30*time.Second)
	}
	t.Logf("servers, users and rules LOADed on node 1 reached runtime_* of nodes 2 and 3 in %v", time.Since(start))
	if got := n3.text(t, "SELECT password FROM runtime_mysql_users WHERE username='sbtest' LIMIT 1"); got != hash+"\n" {
		t.Errorf("node 3 runtime user password %q, want the hash %s", got, hash)
	}
	if got := n3.text(t, "SELECT COUNT(*) FROM runtime_mysql_servers"); got != "3\n" {
		t.Errorf("node 3 runtime servers: %q", got)
	}
	waitSame(t, nodes, syncedChecksums, "", 30*time.Second)

	// Saved to disk (admin-cluster_*_save_to_disk=true).
	for i, n := range nodes[1:] {
		for q, want := range map[string]string{
			"SELECT COUNT(*) FROM disk.mysql_servers":                                     "3\n",
			"SELECT COUNT(*) FROM disk.mysql_replication_hostgroups":                      "1\n",
			"SELECT password FROM disk.mysql_users WHERE username='sbtest'":               hash + "\n",
			"SELECT COUNT(*) FROM disk.mysql_query_rules":                                 "2\n",
			"SELECT destination_hostgroup FROM disk.mysql_query_rules_fast_routing":       "10\n",
			"SELECT COUNT(*) FROM mysql_users WHERE username='sbtest' AND active=1":       "1\n",
			"SELECT COUNT(*) FROM mysql_query_rules WHERE rule_id IN (5, 6) AND active=1": "2\n",
		} {
			if got := n.text(t, q); got != want {
				t.Errorf("node %d: %s = %q, want %q", i+2, q, got, want)
			}
		}
	}

	// Node 3 serves the synced user: a real login through its data port,
	// with the password the hash stands for, and queries on MariaDB.
	app := testenv.DB(t, n3.s.DataPort, "sbtest", "sbtest", "sbtest", "")
	var port int
	if err := app.QueryRow("SELECT @@port FOR UPDATE").Scan(&port); err != nil {
		t.Fatalf("node 3 serving the synced user: %v", err)
	}
	if port != bs[0].Port {
		t.Errorf("SELECT … FOR UPDATE (rule 5, hostgroup 10) ran on port %d, want the writer %d", port, bs[0].Port)
	}
	if err := app.QueryRow("SELECT @@port").Scan(&port); err != nil || (port != bs[1].Port && port != bs[2].Port) {
		t.Errorf("SELECT (rule 6, hostgroup 11) ran on port %d (%v), want a reader", port, err)
	}

	// stats_proxysql_servers_checksums lists the peers, each with every
	// module; _metrics and _status have a row per peer.
	ports := []int{n1.s.AdminPort, n2.s.AdminPort, n3.s.AdminPort}
	slices.Sort(ports)
	peers := fmt.Sprintf("127.0.0.1\t%d\n127.0.0.1\t%d\n127.0.0.1\t%d\n", ports[0], ports[1], ports[2])
	for _, n := range nodes {
		waitSame(t, []*clusterNode{n}, "SELECT DISTINCT hostname, port FROM stats_proxysql_servers_checksums ORDER BY port", peers, 10*time.Second)
		if got := n.text(t, "SELECT COUNT(DISTINCT name) FROM stats_proxysql_servers_checksums"); got != "7\n" {
			t.Errorf("stats_proxysql_servers_checksums module names: %q", got)
		}
		if got := n.text(t, "SELECT COUNT(*) FROM stats_proxysql_servers_metrics"); got != "3\n" {
			t.Errorf("stats_proxysql_servers_metrics rows: %q", got)
		}
		if got := n.text(t, "SELECT COUNT(*) FROM stats_proxysql_servers_status WHERE checks_OK > 0"); got != "3\n" {
			t.Errorf("stats_proxysql_servers_status rows with checks: %q", got)
		}
	}
	t.Logf("node 1 stats_proxysql_servers_checksums:\n%s", n1.text(t, "SELECT * FROM stats_proxysql_servers_checksums ORDER BY port, name"))

	// A node restarted with an empty datadir boots from its cnf (no users,
	// version 1) and catches up from its peers.
	if err := n2.s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(n2.s.Datadir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n2.s.Datadir, 0o755); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	n2.s.Restart()
	for _, q := range runtimeQueries {
		waitSame(t, nodes, q, "", 30*time.Second)
	}
	t.Logf("node 2 restarted with an empty datadir caught up in %v (start-up included)", time.Since(start))
	waitSame(t, nodes, syncedChecksums, "", 30*time.Second)

	// 20 concurrent LOADs on different nodes. Each changes one module on
	// one node; mysql variables and admin variables are changed on one node
	// only, so they must end up on every node (no module lost); servers,
	// users and rules are contended and must converge to one version.
	type load struct {
		node int
		sql  string
	}
	var loads []load
	for i := range 18 {
		node := i % 3
		switch i % 3 {
		case 0:
			loads = append(loads, load{node, fmt.Sprintf("UPDATE mysql_servers SET weight=%d WHERE hostgroup_id=11; LOAD MYSQL SERVERS TO RUNTIME", 100+i)})
		case 1:
			loads = append(loads, load{(node + 1) % 3, fmt.Sprintf("UPDATE mysql_users SET max_connections=%d; LOAD MYSQL USERS TO RUNTIME", 500+i)})
		case 2:
			loads = append(loads, load{(node + 2) % 3, fmt.Sprintf("UPDATE mysql_query_rules SET comment='load %d' WHERE rule_id=6; LOAD MYSQL QUERY RULES TO RUNTIME", i)})
		}
	}
	loads = append(loads,
		load{2, "SET mysql-max_connections=4321; LOAD MYSQL VARIABLES TO RUNTIME"},
		load{1, "SET admin-refresh_interval=2345; LOAD ADMIN VARIABLES TO RUNTIME"})
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(loads))
	for _, l := range loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One connection per LOAD: the statements of one run in order.
			out, err := testenv.CLI(t, nodes[l.node].s.AdminPort, "admin", "admin", l.sql, "-N")
			if err != nil {
				errs <- fmt.Errorf("node %d: %s: %v %s", l.node+1, l.sql, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	took := waitSame(t, nodes, syncedChecksums, "", 60*time.Second)
	t.Logf("20 concurrent LOADs on 3 nodes converged %v after the last one (checksums equal on every node)", took)
	t.Logf("final checksums:\n%s", n1.text(t, syncedChecksums))
	for _, q := range append(runtimeQueries,
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'",
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-refresh_interval'",
		"SELECT DISTINCT max_connections FROM runtime_mysql_users") {
		waitSame(t, nodes, q, "", 5*time.Second)
	}
	if got := n2.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'"); got != "4321\n" {
		t.Errorf("mysql variables loaded on node 3 only: node 2 has mysql-max_connections %q", got)
	}
	if got := n3.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-refresh_interval'"); got != "2345\n" {
		t.Errorf("admin variables loaded on node 2 only: node 3 has admin-refresh_interval %q", got)
	}
	// Each node keeps its own interfaces.
	for _, n := range nodes {
		if got := n.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-mysql_ifaces'"); got != fmt.Sprintf("127.0.0.1:%d\n", n.s.AdminPort) {
			t.Errorf("admin-mysql_ifaces of node on %d became %q", n.s.AdminPort, got)
		}
	}
	// The contended modules hold one of the values written.
	if got := n1.text(t, "SELECT DISTINCT weight FROM runtime_mysql_servers WHERE hostgroup_id=11"); !strings.HasPrefix(got, "1") || strings.Count(got, "\n") != 1 {
		t.Errorf("reader weight after the LOADs: %q", got)
	}
	if got := n1.text(t, "SELECT comment FROM runtime_mysql_query_rules WHERE rule_id=6"); !strings.HasPrefix(got, "load ") {
		t.Errorf("rule 6 comment after the LOADs: %q", got)
	}

	// LOAD PROXYSQL SERVERS without node 3 on node 1: the list reaches the
	// other nodes (node 3 included, which then stops polling itself too),
	// and every node stops polling node 3.
	n1.exec(t, fmt.Sprintf("DELETE FROM proxysql_servers WHERE port=%d", n3.s.AdminPort))
	start = time.Now()
	n1.exec(t, "LOAD PROXYSQL SERVERS TO RUNTIME")
	two := []int{n1.s.AdminPort, n2.s.AdminPort}
	slices.Sort(two)
	want := fmt.Sprintf("127.0.0.1\t%d\n127.0.0.1\t%d\n", two[0], two[1])
	waitSame(t, nodes, "SELECT hostname, port FROM runtime_proxysql_servers ORDER BY port", want, 30*time.Second)
	waitSame(t, nodes, "SELECT DISTINCT hostname, port FROM stats_proxysql_servers_checksums ORDER BY port", want, 30*time.Second)
	t.Logf("LOAD PROXYSQL SERVERS without node 3: every node polls the two others only after %v", time.Since(start))
	for _, n := range nodes {
		if got := n.text(t, "SELECT COUNT(*) FROM stats_proxysql_servers_metrics"); got != "2\n" {
			t.Errorf("stats_proxysql_servers_metrics rows after removing node 3: %q", got)
		}
	}
}
