package e2e

import (
	"crypto/sha1"
	"database/sql"
	"errors"
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
uuid="%s"

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

// clusterNodeUUID is the uuid of node i+1's config file.
func clusterNodeUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1) }

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
		text := fmt.Sprintf(clusterNodeCnf, datadir, clusterNodeUUID(i), admins[i], testenv.FreePort(t), datas[i], admins[0], admins[1], admins[2])
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

// loadAvg is the machine's 1-minute load average, logged with every figure
// (the tests share a small machine: wall-clock figures depend on it).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// syncTarget is the bound of must-show 1: a module LOADed on one node is in
// runtime_* of the others within 2 s.
const syncTarget = 2 * time.Second

// waitNode polls node n until it answers every query as want[q] does and
// returns, per query, how long after start it first did (queries checked
// every 20 ms); after limit, an error with what differs. It may run in its
// own goroutine.
func waitNode(n *clusterNode, want map[string]string, start time.Time, limit time.Duration) (map[string]time.Duration, error) {
	got := make(map[string]time.Duration, len(want))
	last := make(map[string]string, len(want))
	for {
		for q, w := range want {
			if _, done := got[q]; done {
				continue
			}
			text, err := queryText(n.db, q)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q, err)
			}
			if last[q] = text; text == w {
				got[q] = time.Since(start)
			}
		}
		if len(got) == len(want) {
			return got, nil
		}
		if time.Since(start) > limit {
			var b strings.Builder
			for q, w := range want {
				if _, done := got[q]; !done {
					fmt.Fprintf(&b, "%s\n got %q\nwant %q\n", q, last[q], w)
				}
			}
			return nil, fmt.Errorf("node on port %d still differs after %v:\n%s", n.s.AdminPort, limit, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queryText runs q and returns its rows as tab-separated lines (NULL as
// NULL), as clusterNode.text does, with an error instead of a failed test.
func queryText(db *sql.DB, q string) (string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	r := make([]sql.NullString, len(cols))
	dst := make([]any, len(cols))
	for i := range r {
		dst[i] = &r[i]
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return "", err
		}
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
	return b.String(), rows.Err()
}

// clusterRuntime are the runtime_* queries of what node 1 LOADs (servers
// with a replication hostgroup, a user given by its hash, rules with fast
// routing), by the module they belong to.
var clusterRuntime = []struct{ module, q string }{
	{"servers", "SELECT hostgroup_id, hostname, port, status, weight, comment FROM runtime_mysql_servers ORDER BY hostgroup_id, port"},
	{"servers", "SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups"},
	{"users", "SELECT username, password, default_hostgroup, default_schema, frontend, backend, max_connections FROM runtime_mysql_users ORDER BY username, frontend"},
	{"rules", "SELECT rule_id, match_digest, destination_hostgroup, apply, comment FROM runtime_mysql_query_rules ORDER BY rule_id"},
	{"rules", "SELECT username, schemaname, flagIN, destination_hostgroup, comment FROM runtime_mysql_query_rules_fast_routing"},
}

// loadOnNode1 writes servers, a user (hash only) and rules on node 1 and
// LOADs them, one after the other; it returns when the last LOAD returned,
// with the time just before the first and, by module ("servers", "users",
// "rules"), the time its LOAD returned.
func loadOnNode1(t *testing.T, n1 *clusterNode, bs []testenv.Backend, hash string) (time.Time, map[string]time.Time) {
	t.Helper()
	n1.exec(t, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port, comment) VALUES
		(10, '127.0.0.1', %d, 'writer'), (11, '127.0.0.1', %d, 'reader'), (11, '127.0.0.1', %d, 'reader')`, bs[0].Port, bs[1].Port, bs[2].Port))
	n1.exec(t, "INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (10, 11, 'cluster')")
	n1.exec(t, fmt.Sprintf("INSERT INTO mysql_users (username, password, default_hostgroup, default_schema) VALUES ('sbtest', '%s', 10, 'sbtest')", hash))
	n1.exec(t, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply, comment) VALUES (5, 1, '^SELECT .* FOR UPDATE', 10, 1, 'locks'), (6, 1, '^SELECT', 11, 1, 'reads')")
	n1.exec(t, "INSERT INTO mysql_query_rules_fast_routing (username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('sbtest', 'other', 0, 10, 'fast')")
	start := time.Now()
	done := make(map[string]time.Time, 3)
	n1.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
	done["servers"] = time.Now()
	n1.exec(t, "LOAD MYSQL USERS TO RUNTIME")
	done["users"] = time.Now()
	n1.exec(t, "LOAD MYSQL QUERY RULES TO RUNTIME")
	done["rules"] = time.Now()
	return start, done
}

// TestClusterProxySQLSync is must-show 1 of issue 12 for ProxySQL Cluster:
// three Sluice nodes started from proxysql.cnf files with a
// proxysql_servers section. Servers (with a replication hostgroup), a user
// given by its hash only and rules (with fast routing) LOADed on node 1
// reach runtime_* of nodes 2 and 3 — the time is measured per node and
// must be within 2 s — and their disk (admin-cluster_*_save_to_disk); node 3
// serves the synced user to a go-sql-driver client against a real MariaDB;
// stats_proxysql_servers_checksums lists the peers; a node restarted with an
// empty datadir catches up (measured). Last, LOAD PROXYSQL SERVERS without
// node 3 reaches every node and every node stops polling node 3.
func TestClusterProxySQLSync(t *testing.T) {
	bs := testenv.Backends(t, 3)
	nodes := startClusterNodes(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// Peers that only booted (version 1) do not sync: nothing moves.
	time.Sleep(time.Second)
	if got := n2.text(t, "SELECT COUNT(*) FROM runtime_mysql_users"); got != "0\n" {
		t.Fatalf("node 2 users before any LOAD: %q", got)
	}

	hash := mysqlNativeHash("sbtest")
	start, loadDone := loadOnNode1(t, n1, bs, hash)
	loaded := time.Since(start)
	want := make(map[string]string, len(clusterRuntime))
	for _, c := range clusterRuntime {
		want[c.q] = n1.text(t, c.q)
	}
	if !strings.Contains(want[clusterRuntime[2].q], hash) {
		t.Fatalf("node 1 runtime users: %q", want[clusterRuntime[2].q])
	}
	// Nodes 2 and 3 are polled side by side, each in its own goroutine.
	var wg sync.WaitGroup
	took := make([]map[string]time.Duration, 3)
	errs := make([]error, 3)
	for i := 1; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[i], errs[i] = waitNode(nodes[i], want, start, 60*time.Second)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("the 3 LOADs on node 1 (servers, users, rules, one after the other) took %v (load average %s)", loaded.Round(time.Millisecond), loadAvg())
	// A module's sync time runs from the return of its LOAD on node 1 to
	// the first poll that finds all its runtime_* rows on the node.
	for i := 1; i < 3; i++ {
		per := map[string]time.Duration{}
		for _, c := range clusterRuntime {
			per[c.module] = max(per[c.module], took[i][c.q]-loadDone[c.module].Sub(start))
		}
		worst := max(per["servers"], per["users"], per["rules"])
		all := time.Duration(0)
		for _, d := range took[i] {
			all = max(all, d)
		}
		t.Logf("node %d: in runtime_* after its LOAD on node 1 returned: servers %v, users %v, rules %v (all three %v after the first LOAD began)",
			i+1, per["servers"].Round(time.Millisecond), per["users"].Round(time.Millisecond), per["rules"].Round(time.Millisecond), all.Round(time.Millisecond))
		if worst > syncTarget {
			t.Errorf("node %d got a module %v after its LOAD on node 1, more than %v (load average %s)", i+1, worst, syncTarget, loadAvg())
		}
	}
	if got := n3.text(t, "SELECT DISTINCT password FROM runtime_mysql_users WHERE username='sbtest'"); got != hash+"\n" {
		t.Errorf("node 3 runtime user password %q, want the hash %s", got, hash)
	}
	waitSame(t, nodes, syncedChecksums, "", 30*time.Second)

	// Saved to disk (admin-cluster_*_save_to_disk=true), and in MEMORY as
	// active rows.
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

	// Node 3 serves the synced user: a go-sql-driver login through its
	// data port with the password the hash stands for, queries on MariaDB
	// routed by the synced rules.
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
	if _, err := testenv.DB(t, n3.s.DataPort, "sbtest", "wrong", "sbtest", "").Exec("SELECT 1"); err == nil {
		t.Error("node 3 let the synced user in with a wrong password")
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
	// Every node registered with every node (itself included) under the
	// uuid of its config file.
	wantUUIDs := clusterNodeUUID(0) + "\n" + clusterNodeUUID(1) + "\n" + clusterNodeUUID(2) + "\n"
	for i, n := range nodes {
		if got := n.text(t, "SELECT DISTINCT uuid FROM stats_proxysql_servers_clients_status ORDER BY uuid"); got != wantUUIDs {
			t.Errorf("node %d stats_proxysql_servers_clients_status uuids: %q, want %q", i+1, got, wantUUIDs)
		}
	}
	t.Logf("node 1 stats_proxysql_servers_checksums (hostname, port, name, version, epoch, checksum, changed_at, updated_at, diff_check):\n%s",
		n1.text(t, "SELECT * FROM stats_proxysql_servers_checksums ORDER BY port, name"))

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
	up := time.Since(start)
	caught, err := waitNode(n2, want, start, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	all := time.Duration(0)
	for _, d := range caught {
		all = max(all, d)
	}
	t.Logf("node 2 restarted with an empty datadir: admin port up after %v, servers, users and rules caught up %v after the start (%v after the admin port was up; load average %s)",
		up.Round(time.Millisecond), all.Round(time.Millisecond), (all - up).Round(time.Millisecond), loadAvg())
	waitSame(t, nodes, syncedChecksums, "", 30*time.Second)
	if got := n2.text(t, "SELECT password FROM disk.mysql_users WHERE username='sbtest'"); got != hash+"\n" {
		t.Errorf("node 2 after catching up: disk user password %q", got)
	}

	// LOAD PROXYSQL SERVERS without node 3 on node 1: the list reaches the
	// other nodes (node 3 included, which then stops polling itself too),
	// and every node stops polling node 3.
	n1.exec(t, fmt.Sprintf("DELETE FROM proxysql_servers WHERE port=%d", n3.s.AdminPort))
	start = time.Now()
	n1.exec(t, "LOAD PROXYSQL SERVERS TO RUNTIME")
	two := []int{n1.s.AdminPort, n2.s.AdminPort}
	slices.Sort(two)
	wantTwo := fmt.Sprintf("127.0.0.1\t%d\n127.0.0.1\t%d\n", two[0], two[1])
	waitSame(t, nodes, "SELECT hostname, port FROM runtime_proxysql_servers ORDER BY port", wantTwo, 30*time.Second)
	waitSame(t, nodes, "SELECT DISTINCT hostname, port FROM stats_proxysql_servers_checksums ORDER BY port", wantTwo, 30*time.Second)
	t.Logf("LOAD PROXYSQL SERVERS without node 3: every node polls the two others only after %v", time.Since(start).Round(time.Millisecond))
	// Nodes 2 and 3 pulled the list and saved it (node 1 was not told to SAVE).
	waitSame(t, nodes[1:], "SELECT hostname, port FROM disk.proxysql_servers ORDER BY port", wantTwo, 10*time.Second)
	for _, n := range nodes {
		if got := n.text(t, "SELECT COUNT(*) FROM stats_proxysql_servers_metrics"); got != "2\n" {
			t.Errorf("stats_proxysql_servers_metrics rows after removing node 3: %q", got)
		}
	}
}

// TestClusterConcurrentLoadsConverge is must-show 3 of issue 12 for
// ProxySQL Cluster: 20 concurrent LOADs on the three nodes — servers, users
// and rules each LOADed twice on every node, mysql variables on node 3 only,
// admin variables on node 2 only — converge to one configuration on every
// node (runtime_checksums_values and runtime_* equal), with no module lost.
// The conflict rule (docs/cluster.md) is checked on the outcome: each
// contended module ends with a configuration a LOAD of the newest second
// (epoch) any LOAD gave it made.
func TestClusterConcurrentLoadsConverge(t *testing.T) {
	bs := testenv.Backends(t, 3)
	nodes := startClusterNodes(t, 3)
	n1 := nodes[0]
	_, _ = loadOnNode1(t, n1, bs, mysqlNativeHash("sbtest"))
	for _, c := range clusterRuntime {
		waitSame(t, nodes, c.q, "", 60*time.Second)
	}
	waitSame(t, nodes, syncedChecksums, "", 30*time.Second)

	type load struct {
		node int
		row  string // runtime_checksums_values row of the module
		sql  string
	}
	var loads []load
	for i := range 18 {
		node := (i / 3) % 3 // every module twice on every node
		switch i % 3 {
		case 0:
			loads = append(loads, load{node, "mysql_servers_v2", fmt.Sprintf("UPDATE mysql_servers SET weight=%d WHERE hostgroup_id=11; LOAD MYSQL SERVERS TO RUNTIME", 100+i)})
		case 1:
			loads = append(loads, load{node, "mysql_users", fmt.Sprintf("UPDATE mysql_users SET max_connections=%d; LOAD MYSQL USERS TO RUNTIME", 500+i)})
		case 2:
			loads = append(loads, load{node, "mysql_query_rules", fmt.Sprintf("UPDATE mysql_query_rules SET comment='load %d' WHERE rule_id=6; LOAD MYSQL QUERY RULES TO RUNTIME", i)})
		}
	}
	loads = append(loads,
		load{2, "mysql_variables", "SET mysql-max_connections=4321; LOAD MYSQL VARIABLES TO RUNTIME"},
		load{1, "admin_variables", "SET admin-refresh_interval=2345; LOAD ADMIN VARIABLES TO RUNTIME"})

	// Each LOAD runs in its own session, which then reads the epoch and
	// checksum the module has on that node right after it.
	type result struct {
		node     int
		epoch    string
		checksum string
	}
	results := make(map[string][]result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := l.sql + fmt.Sprintf("; SELECT epoch, checksum FROM runtime_checksums_values WHERE name='%s'", l.row)
			out, err := testenv.CLI(t, nodes[l.node].s.AdminPort, "admin", "admin", q, "-N")
			if err != nil {
				t.Errorf("node %d: %s: %v %s", l.node+1, l.sql, err, out)
				return
			}
			f := strings.Fields(out)
			if len(f) != 2 {
				t.Errorf("node %d: %s: read back %q", l.node+1, l.row, out)
				return
			}
			mu.Lock()
			results[l.row] = append(results[l.row], result{l.node, f[0], f[1]})
			mu.Unlock()
		}()
	}
	wg.Wait()
	loadsTook := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	took := waitSame(t, nodes, syncedChecksums, "", 60*time.Second)
	t.Logf("20 concurrent LOADs on 3 nodes took %v; runtime_checksums_values equal on every node %v after the last one returned (load average %s)",
		loadsTook.Round(time.Millisecond), took.Round(time.Millisecond), loadAvg())
	final := n1.text(t, "SELECT name, epoch, checksum FROM runtime_checksums_values WHERE name IN "+
		"('admin_variables','mysql_query_rules','mysql_servers_v2','mysql_users','mysql_variables') ORDER BY name")
	t.Logf("final (name, epoch, checksum) on every node:\n%s", final)
	finals := make(map[string][2]string)
	for _, line := range strings.Split(strings.TrimSpace(final), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 {
			finals[f[0]] = [2]string{f[1], f[2]}
		}
	}

	// The conflict rule on the outcome.
	for _, row := range []string{"mysql_servers_v2", "mysql_users", "mysql_query_rules", "mysql_variables", "admin_variables"} {
		rs := results[row]
		newest := ""
		epochs := map[string]bool{}
		for _, r := range rs {
			epochs[r.epoch] = true
			if r.epoch > newest { // epochs have the same number of digits
				newest = r.epoch
			}
		}
		var atNewest []string
		for _, r := range rs {
			if r.epoch == newest {
				atNewest = append(atNewest, fmt.Sprintf("node %d (127.0.0.1:%d) %s", r.node+1, nodes[r.node].s.AdminPort, r.checksum))
			}
		}
		fin, ok := finals[row]
		if !ok {
			t.Errorf("%s: no final checksum row", row)
			continue
		}
		t.Logf("%s: %d LOAD(s) over %d distinct epoch(s); newest epoch %s read back by %d LOAD(s) [%s]; final epoch %s checksum %s",
			row, len(rs), len(epochs), newest, len(atNewest), strings.Join(atNewest, ", "), fin[0], fin[1])
		// The epoch shown may be an older second's when the same
		// configuration was LOADed then too (a node whose MEMORY a pull
		// had just rewritten LOADs what it already had): nodes with equal
		// checksums do not sync, whatever their epochs.
		if fin[0] > newest {
			t.Errorf("%s: final epoch %s is newer than any LOAD's, %s", row, fin[0], newest)
		}
		found := false
		for _, r := range rs {
			if r.epoch == newest && r.checksum == fin[1] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: final checksum %s is none of the configurations LOADed at epoch %s: %v", row, fin[1], newest, atNewest)
		}
	}

	// One configuration everywhere, with nothing lost: runtime_* equal on
	// every node, the modules changed on one node only are on all, each
	// contended module holds a value one of the LOADs wrote.
	for _, q := range []string{
		clusterRuntime[0].q, clusterRuntime[2].q, clusterRuntime[3].q,
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'",
		"SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-refresh_interval'",
	} {
		waitSame(t, nodes, q, "", 5*time.Second)
	}
	for i, n := range nodes {
		if got := n.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'"); got != "4321\n" {
			t.Errorf("mysql variables loaded on node 3 only: node %d has mysql-max_connections %q", i+1, got)
		}
		if got := n.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-refresh_interval'"); got != "2345\n" {
			t.Errorf("admin variables loaded on node 2 only: node %d has admin-refresh_interval %q", i+1, got)
		}
		// Each node keeps its own interfaces.
		if got := n.text(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-mysql_ifaces'"); got != fmt.Sprintf("127.0.0.1:%d\n", n.s.AdminPort) {
			t.Errorf("admin-mysql_ifaces of node %d became %q", i+1, got)
		}
	}
	for q, ok := range map[string]func(string) bool{
		"SELECT DISTINCT weight FROM runtime_mysql_servers WHERE hostgroup_id=11": func(s string) bool {
			var w int
			_, err := fmt.Sscanf(s, "%d\n", &w)
			return err == nil && strings.Count(s, "\n") == 1 && w >= 100 && w < 118
		},
		"SELECT DISTINCT max_connections FROM runtime_mysql_users": func(s string) bool {
			var c int
			_, err := fmt.Sscanf(s, "%d\n", &c)
			return err == nil && strings.Count(s, "\n") == 1 && c >= 500 && c < 518
		},
		"SELECT comment FROM runtime_mysql_query_rules WHERE rule_id=6": func(s string) bool { return strings.HasPrefix(s, "load ") },
	} {
		if got := n1.text(t, q); !ok(got) {
			t.Errorf("%s after the LOADs: %q, not a value a LOAD wrote", q, got)
		}
	}
}
