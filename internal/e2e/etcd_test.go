package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// etcdNode is one Sluice started with --cluster, with an admin handle.
type etcdNode struct {
	name string
	s    *testenv.Sluice
	db   *sql.DB
	http string // base URL of /health
}

// freePorts returns n ports of 127.0.0.1 in [lo, hi] that were free a
// moment ago (the etcd tests keep to their own port range).
func freePorts(t *testing.T, lo, hi, n int) []int {
	t.Helper()
	var out []int
	for p := lo; p <= hi && len(out) < n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("only %d free ports in %d-%d, want %d", len(out), lo, hi, n)
	}
	return out
}

// startEtcdNodes starts Sluice nodes sharing etcd at the given endpoints
// (one per node: a node may go through a relay) under prefix, with their
// admin, data and HTTP ports taken from ports (3 per node), named
// node<first>, node<first+1>, ….
func startEtcdNodes(t *testing.T, prefix string, ports []int, first int, endpoints ...string) []*etcdNode {
	t.Helper()
	nodes := make([]*etcdNode, len(endpoints))
	for i, ep := range endpoints {
		name := fmt.Sprintf("node%d", first+i)
		adminPort, dataPort, httpPort := ports[3*i], ports[3*i+1], ports[3*i+2]
		dir := t.TempDir()
		cfg := filepath.Join(dir, "sluice.cnf")
		text := fmt.Sprintf("admin_variables = { admin_credentials = \"admin:admin\" mysql_ifaces = \"127.0.0.1:%d\" restapi_enabled = true restapi_port = %d }\n"+
			"mysql_variables = { interfaces = \"127.0.0.1:%d\" }\n", adminPort, httpPort, dataPort)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		datadir := filepath.Join(dir, "data")
		if err := os.MkdirAll(datadir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := testenv.Start(t, cfg, datadir, adminPort, dataPort, "--cluster", fmt.Sprintf("etcd://%s/%s?name=%s", ep, prefix, name))
		db := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
		db.SetMaxOpenConns(4)
		nodes[i] = &etcdNode{name: name, s: s, db: db, http: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	}
	return nodes
}

// text runs a query and returns its rows, tab-separated, one per line.
func text(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	out, err := textErr(db, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func textErr(db *sql.DB, q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('\t')
			}
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

func exec1(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// waitUntil polls cond every 10 ms until it holds or limit passes, and
// returns how long that took.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

type healthReply struct {
	Code   int
	Status string `json:"status"`
	Reason string `json:"reason"`
}

func getHealth(t *testing.T, base string) healthReply {
	t.Helper()
	out, err := exec.Command("curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", base+"/health").Output()
	if err != nil {
		t.Fatalf("curl %s/health: %v", base, err)
	}
	body, code, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var h healthReply
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	fmt.Sscan(code, &h.Code)
	return h
}

// clusterRow is one module's row of stats_sluice_cluster on a node.
func clusterRows(t *testing.T, n *etcdNode) map[string][]string {
	t.Helper()
	out := text(t, n.db, "SELECT module, revision, checksum, pending, etcd_state, writer FROM stats_sluice_cluster ORDER BY module")
	m := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		m[f[0]] = f[1:]
	}
	return m
}

// converged reports whether every node runs the same revision and
// checksum of every shared module, with nothing pending.
func converged(t *testing.T, nodes []*etcdNode) bool {
	t.Helper()
	first := clusterRows(t, nodes[0])
	for _, r := range first {
		if r[0] == "0" || r[2] != "0" || r[3] != "connected" {
			return false
		}
	}
	for _, n := range nodes[1:] {
		rows := clusterRows(t, n)
		for mod, r := range first {
			o := rows[mod]
			if o == nil || o[0] != r[0] || o[1] != r[1] || o[2] != "0" || o[3] != "connected" {
				return false
			}
		}
	}
	return true
}

// runtimeChecksums are the runtime_checksums_values of the shared table
// modules (mysql_variables holds each node's own mysql-interfaces, which
// is not shared: it is compared without it by runtimeVars).
func runtimeChecksums(t *testing.T, n *etcdNode) string {
	return text(t, n.db, "SELECT name, checksum FROM runtime_checksums_values WHERE name IN ('mysql_servers','mysql_users','mysql_query_rules') ORDER BY name")
}

func runtimeVars(t *testing.T, n *etcdNode) string {
	return text(t, n.db, "SELECT variable_name, variable_value FROM runtime_global_variables WHERE variable_name LIKE 'mysql-%' AND variable_name <> 'mysql-interfaces' ORDER BY variable_name")
}

// TestEtcdCluster is issue 12's Must-show 2: three nodes on one real etcd.
// A LOAD of each shared module on one node reaches the others' runtime_*
// (measured); a user synced from another node logs in through a node's
// data port to a real MariaDB; etcd killed with SIGKILL → every node keeps
// serving and says so (log, /health, stats_sluice_cluster), a LOAD made
// meanwhile is kept; etcd restarted → every node resyncs, the kept LOAD
// included; a node cut from etcd by a stopped relay catches up when healed.
func TestEtcdCluster(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	bs := testenv.Backends(t, 2)
	etcd := testenv.StartEtcd(t, 25410)
	ports := freePorts(t, 25440, 25469, 13)
	relay := testenv.NewRelayAt(t, fmt.Sprintf("127.0.0.1:%d", ports[9]), etcd.Addr())
	// ports[10:13]: a fourth node that joins at the end.
	prefix := fmt.Sprintf("sluice-e2e-%d", time.Now().UnixNano())
	nodes := startEtcdNodes(t, prefix, ports, 1, etcd.Addr(), etcd.Addr(), fmt.Sprintf("127.0.0.1:%d", relay.Port()))
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	waitUntil(t, 20*time.Second, "initial convergence", func() bool { return converged(t, nodes) })

	// A LOAD on any node reaches the others' runtime_* tables.
	type step struct {
		on    *etcdNode
		what  string
		edit  []string
		check string
		want  string
	}
	steps := []step{
		{n1, "MYSQL SERVERS", []string{fmt.Sprintf("INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (0, '127.0.0.1', %d, 'etcd-e2e')", bs[0].Port)},
			"SELECT hostgroup_id, hostname, port, comment FROM runtime_mysql_servers", fmt.Sprintf("0\t127.0.0.1\t%d\tetcd-e2e\n", bs[0].Port)},
		{n2, "MYSQL USERS", []string{"INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0)"},
			"SELECT username, password, default_hostgroup, frontend, backend FROM runtime_mysql_users WHERE frontend=1", "sbtest\tsbtest\t0\t1\t0\n"},
		{n3, "MYSQL QUERY RULES", []string{"INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, apply) VALUES (10, 1, '^SELECT 42', 0, 1)"},
			"SELECT rule_id, match_digest, destination_hostgroup FROM runtime_mysql_query_rules", "10\t^SELECT 42\t0\n"},
		{n1, "MYSQL VARIABLES", []string{"UPDATE global_variables SET variable_value='8.0.99-etcd' WHERE variable_name='mysql-server_version'"},
			"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-server_version'", "8.0.99-etcd\n"},
	}
	var worst time.Duration
	for _, st := range steps {
		exec1(t, st.on.db, st.edit...)
		start := time.Now()
		exec1(t, st.on.db, "LOAD "+st.what+" TO RUNTIME")
		returned := time.Now()
		rev := clusterRows(t, st.on)[st.what][0]
		// Poll the other nodes in turn; each figure is from the moment
		// the LOAD returned to the first poll that saw the change.
		seen := map[*etcdNode]time.Duration{}
		waitUntil(t, 10*time.Second, st.what+" on the other nodes", func() bool {
			for _, o := range nodes {
				if _, done := seen[o]; o == st.on || done {
					continue
				}
				if out, _ := textErr(o.db, st.check); out == st.want {
					seen[o] = time.Since(returned)
				}
			}
			return len(seen) == len(nodes)-1
		})
		// The nodes' own log lines time the propagation without the
		// polling: from the writer's "LOAD written to etcd" to the end of
		// each other node's apply (its RUNTIME swapped, DISK saved).
		wrote, _ := logTime(t, st.on, "LOAD written to etcd", st.what, rev)
		for _, o := range nodes {
			if d, ok := seen[o]; ok {
				applied, line := logTime(t, o, "applied the module from etcd", st.what, rev)
				prop := applied.Sub(wrote)
				worst = max(worst, prop)
				var took float64 // ms the receiver's LOAD path took (ImportModule)
				if _, after, ok := strings.Cut(line, " took="); ok {
					fmt.Sscan(after, &took)
				}
				t.Logf("LOAD %s TO RUNTIME on %s (took %.1f ms, etcd revision %s) → applied by %s %.0f ms after the write (its log; of which its own LOAD path %.0f ms); seen in its runtime_* by the test's poll %.0f ms after the LOAD returned",
					st.what, st.on.name, ms(returned.Sub(start)), rev, o.name, ms(prop), took, ms(d))
			}
		}
	}
	// The target is 1 s; the failure bound is looser because these tests
	// share small machines with others (-race, loaded CI): the figure is
	// the result, the bound catches a sync that stopped working.
	met := "met"
	if worst > time.Second {
		met = "NOT met"
	}
	t.Logf("propagation, worst of 8 (4 modules × 2 receiving nodes): %.0f ms (target 1 s: %s)", ms(worst), met)
	if worst > 5*time.Second {
		t.Fatalf("propagation took %v", worst)
	}
	// mysql-interfaces stays each node's own.
	for _, o := range nodes {
		want := fmt.Sprintf("127.0.0.1:%d\n", o.s.DataPort)
		if got := text(t, o.db, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-interfaces'"); got != want {
			t.Fatalf("%s: mysql-interfaces %q, want its own %q", o.name, got, want)
		}
	}
	waitUntil(t, 10*time.Second, "convergence", func() bool { return converged(t, nodes) })
	for _, o := range nodes[1:] {
		if a, b := runtimeChecksums(t, n1), runtimeChecksums(t, o); a != b {
			t.Fatalf("runtime checksums differ: node1\n%s%s\n%s", a, o.name, b)
		}
		if a, b := runtimeVars(t, n1), runtimeVars(t, o); a != b {
			t.Fatalf("runtime mysql variables differ between node1 and %s", o.name)
		}
	}

	// The user loaded on node 2 logs in through node 3's (and node 1's)
	// data port to the real MariaDB, with the rule loaded on node 3.
	serve := func(n *etcdNode) error {
		db := testenv.DB(t, n.s.DataPort, "sbtest", "sbtest", "", "")
		var v string
		if err := db.QueryRow("SELECT 42").Scan(&v); err != nil {
			return err
		}
		var ver string
		if err := db.QueryRow("SELECT @@version").Scan(&ver); err != nil {
			return err
		}
		if v != "42" || !strings.Contains(strings.ToLower(ver), "mariadb") {
			return fmt.Errorf("got %q, version %q (want a MariaDB backend)", v, ver)
		}
		db.Close()
		return nil
	}
	for _, n := range []*etcdNode{n3, n1} {
		if err := serve(n); err != nil {
			t.Fatalf("synced user through %s: %v", n.name, err)
		}
	}

	// kill -9 etcd: every node keeps serving and reports it.
	etcd.Kill(t)
	killed := time.Now()
	for _, n := range nodes {
		d := waitUntil(t, 15*time.Second, n.name+" reports etcd down", func() bool {
			h := getHealth(t, n.http)
			return h.Status == "degraded" && h.Code == 200 && strings.Contains(h.Reason, "etcd")
		})
		t.Logf("etcd SIGKILLed: %s reports it in /health after %.0f ms", n.name, ms(time.Since(killed)))
		_ = d
		if err := serve(n); err != nil {
			t.Fatalf("%s with etcd down: %v", n.name, err)
		}
		for mod, r := range clusterRows(t, n) {
			if r[3] != "unreachable" {
				t.Fatalf("%s stats_sluice_cluster %s: etcd_state %q, want unreachable", n.name, mod, r[3])
			}
		}
		if !strings.Contains(n.s.Output(), "etcd unreachable") {
			t.Fatalf("%s: no log line about etcd", n.name)
		}
	}
	h := getHealth(t, n1.http)
	t.Logf("/health with etcd down: %d %s: %s", h.Code, h.Status, h.Reason)

	// A LOAD while etcd is down: in force on that node, kept, with a warning.
	conn, err := n1.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "UPDATE mysql_servers SET weight=7 WHERE comment='etcd-e2e'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "LOAD MYSQL SERVERS TO RUNTIME"); err != nil {
		t.Fatalf("LOAD with etcd down: %v", err)
	}
	var lvl, code, msg string
	if err := conn.QueryRowContext(context.Background(), "SHOW WARNINGS").Scan(&lvl, &code, &msg); err != nil || !strings.Contains(msg, "etcd is unreachable") {
		t.Fatalf("LOAD with etcd down: warning %q (%v), want one saying etcd is unreachable", msg, err)
	}
	conn.Close()
	t.Logf("LOAD with etcd down → OK with warning: %s", msg)
	if r := clusterRows(t, n1)["MYSQL SERVERS"]; r[2] != "1" {
		t.Fatalf("stats_sluice_cluster on node1: pending %q, want 1", r[2])
	}
	weight := "SELECT weight FROM runtime_mysql_servers WHERE comment='etcd-e2e'"
	if got := text(t, n1.db, weight); got != "7\n" {
		t.Fatalf("node1 runtime weight %q after its LOAD", got)
	}
	if got := text(t, n2.db, weight); got != "1\n" {
		t.Fatalf("node2 runtime weight %q while etcd is down", got)
	}

	// etcd back: every node resyncs, and the kept LOAD reaches the others
	// (the documented rule: nobody changed the module meanwhile, so node 1's
	// kept LOAD is written).
	downFor := time.Since(killed)
	etcd.Start(t)
	back := time.Now()
	for _, n := range nodes {
		waitUntil(t, 20*time.Second, n.name+" resynced after etcd restart", func() bool {
			r := clusterRows(t, n)["MYSQL SERVERS"]
			out, _ := textErr(n.db, weight)
			return r[3] == "connected" && r[2] == "0" && out == "7\n"
		})
		t.Logf("etcd restarted after %.1f s down: %s connected, nothing pending, runs node1's kept LOAD %.0f ms after etcd answered",
			downFor.Seconds(), n.name, ms(time.Since(back)))
	}
	if !strings.Contains(n1.s.Output(), "a LOAD made here while etcd was unreachable is now written to etcd") {
		t.Fatal("node1 did not log that its kept LOAD was written")
	}
	waitUntil(t, 20*time.Second, "convergence after etcd restart", func() bool { return converged(t, nodes) })
	if h := getHealth(t, n2.http); h.Status != "ok" || h.Code != 200 {
		t.Fatalf("/health after resync: %+v", h)
	}

	// Node 3 cut from etcd (relay down) misses a LOAD, then catches up.
	relay.SetDown(true)
	waitUntil(t, 15*time.Second, "node3 reports the partition", func() bool {
		return clusterRows(t, n3)["MYSQL SERVERS"][3] == "unreachable"
	})
	exec1(t, n2.db, "UPDATE mysql_servers SET weight=9 WHERE comment='etcd-e2e'", "LOAD MYSQL SERVERS TO RUNTIME")
	waitUntil(t, 10*time.Second, "node1 weight 9", func() bool { out, _ := textErr(n1.db, weight); return out == "9\n" })
	time.Sleep(300 * time.Millisecond)
	if got := text(t, n3.db, weight); got != "7\n" {
		t.Fatalf("partitioned node3 runtime weight %q, want still 7", got)
	}
	if err := serve(n3); err != nil {
		t.Fatalf("partitioned node3: %v", err)
	}
	relay.SetDown(false)
	healed := time.Now()
	waitUntil(t, 20*time.Second, "node3 catches up", func() bool { out, _ := textErr(n3.db, weight); return out == "9\n" })
	t.Logf("relay healed: node3 caught up after %.0f ms", ms(time.Since(healed)))
	waitUntil(t, 20*time.Second, "convergence after the partition", func() bool { return converged(t, nodes) })
	if a, b := runtimeChecksums(t, n1), runtimeChecksums(t, n3); a != b {
		t.Fatalf("runtime checksums differ after the partition:\n%s\n%s", a, b)
	}

	// A fourth node started with an empty datadir takes etcd's
	// configuration before it serves (it must not seed its empty one).
	joined := time.Now()
	n4 := startEtcdNodes(t, prefix, ports[10:13], 4, etcd.Addr())[0]
	started := time.Since(joined)
	all := append(nodes, n4)
	waitUntil(t, 20*time.Second, "node4 converged", func() bool { return converged(t, all) })
	if a, b := runtimeChecksums(t, n1), runtimeChecksums(t, n4); a != b {
		t.Fatalf("runtime checksums differ between node1 and a new node:\n%s\n%s", a, b)
	}
	if a, b := runtimeVars(t, n1), runtimeVars(t, n4); a != b {
		t.Fatal("runtime mysql variables differ between node1 and a new node")
	}
	if got := text(t, n4.db, weight); got != "9\n" {
		t.Fatalf("new node runtime weight %q, want etcd's 9", got)
	}
	if err := serve(n4); err != nil {
		t.Fatalf("new node: %v", err)
	}
	t.Logf("a node started with an empty datadir served etcd's configuration (checksums equal, synced user logs in) %.0f ms after its start (admin port up after %.0f ms)",
		ms(time.Since(joined)), ms(started))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logTime is the time of n's log line with msg about module at etcd
// revision rev (console format: "2006-01-02 15:04:05.000 LVL msg k=v …"),
// and the line.
func logTime(t *testing.T, n *etcdNode, msg, module, rev string) (time.Time, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range strings.Split(n.s.Output(), "\n") {
			if !strings.Contains(l, msg) || !strings.Contains(l, fmt.Sprintf("module=%q", module)) || !strings.Contains(l, " revision="+rev+" ") && !strings.HasSuffix(l, " revision="+rev) {
				continue
			}
			if len(l) < 23 {
				break
			}
			at, err := time.ParseInLocation("2006-01-02 15:04:05.000", l[:23], time.Local)
			if err != nil {
				t.Fatalf("%s: log line %q: %v", n.name, l, err)
			}
			return at, l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line %q for %s revision %s:\n%s", n.name, msg, module, rev, n.s.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEtcdConcurrentLoads is issue 12's Must-show 3 with etcd: 20 LOADs
// at once, spread over 3 nodes and the 4 shared modules. Every LOAD
// either succeeds or gets the conflict ERR; afterwards every node runs
// the same revision and checksum of every module, with equal runtime
// checksums, and each module's content is that of a LOAD that succeeded.
func TestEtcdConcurrentLoads(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	etcd := testenv.StartEtcd(t, 25420)
	prefix := fmt.Sprintf("sluice-e2e-cc-%d", time.Now().UnixNano())
	nodes := startEtcdNodes(t, prefix, freePorts(t, 25470, 25499, 9), 1, etcd.Addr(), etcd.Addr(), etcd.Addr())
	waitUntil(t, 20*time.Second, "initial convergence", func() bool { return converged(t, nodes) })

	mods := []struct{ name, edit, marker string }{
		{"MYSQL SERVERS", "INSERT OR REPLACE INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (0, '127.0.0.1', 3306, 'load-%d')",
			"SELECT comment FROM runtime_mysql_servers"},
		{"MYSQL USERS", "INSERT OR REPLACE INTO mysql_users(username, password, comment) VALUES ('u', 'p', 'load-%d')",
			"SELECT comment FROM runtime_mysql_users WHERE frontend=1"},
		{"MYSQL QUERY RULES", "INSERT OR REPLACE INTO mysql_query_rules(rule_id, active, match_digest, comment) VALUES (1, 1, 'x', 'load-%d')",
			"SELECT comment FROM runtime_mysql_query_rules"},
		{"MYSQL VARIABLES", "UPDATE global_variables SET variable_value='load-%d' WHERE variable_name='mysql-server_version'",
			"SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-server_version'"},
	}
	const loads = 20
	var (
		locks [3][4]sync.Mutex // an operator edits and loads a module on a node in one go
		mu    sync.Mutex
		ok    = map[string]map[string]bool{} // module → markers whose LOAD succeeded
		nOK   int
		nLost int
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	errs := make(chan error, loads)
	for i := range loads {
		ni, mi := i%3, i%4
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			locks[ni][mi].Lock()
			defer locks[ni][mi].Unlock()
			ctx := context.Background()
			c, err := nodes[ni].db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			// One statement: a module applied from etcd may replace MEMORY
			// between two (then this LOAD loads that module's content).
			if _, err := c.ExecContext(ctx, fmt.Sprintf(mods[mi].edit, i)); err != nil {
				errs <- fmt.Errorf("%s: %v", mods[mi].edit, err)
				return
			}
			_, err = c.ExecContext(ctx, "LOAD "+mods[mi].name+" TO RUNTIME")
			var warn string
			if err == nil {
				// A LOAD whose write to etcd timed out is kept on its node
				// with a warning: not a clean success.
				var lvl, code string
				if werr := c.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&lvl, &code, &warn); werr != nil && werr != sql.ErrNoRows {
					errs <- werr
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && warn != "":
				errs <- fmt.Errorf("LOAD %s on %s: OK with a warning: %s", mods[mi].name, nodes[ni].name, warn)
			case err == nil:
				nOK++
				if ok[mods[mi].name] == nil {
					ok[mods[mi].name] = map[string]bool{}
				}
				ok[mods[mi].name][fmt.Sprintf("load-%d", i)] = true
			case strings.Contains(err.Error(), "lost to another node"):
				nLost++
			default:
				errs <- fmt.Errorf("LOAD %s on %s: %v", mods[mi].name, nodes[ni].name, err)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d := waitUntil(t, 20*time.Second, "convergence after 20 concurrent LOADs", func() bool { return converged(t, nodes) })
	t.Logf("20 concurrent LOADs on 3 nodes: %d succeeded, %d lost a conflict (ERR); LOADs took %.0f ms, all nodes converged %.0f ms after the last",
		nOK, nLost, ms(time.Since(t0)-d), ms(d))
	if nOK+nLost != loads {
		t.Fatalf("%d outcomes for %d LOADs", nOK+nLost, loads)
	}
	for _, mod := range mods {
		var final string
		for i, n := range nodes {
			got := strings.TrimSpace(text(t, n.db, mod.marker))
			if i == 0 {
				final = got
			} else if got != final {
				t.Fatalf("%s: node1 runs %q, %s runs %q", mod.name, final, n.name, got)
			}
		}
		if !ok[mod.name][final] {
			t.Fatalf("%s: every node runs %q, which is no LOAD that succeeded (succeeded: %v)", mod.name, final, ok[mod.name])
		}
		t.Logf("%s: all nodes run %s (LOADs that succeeded: %d)", mod.name, final, len(ok[mod.name]))
	}
	for _, o := range nodes[1:] {
		if a, b := runtimeChecksums(t, nodes[0]), runtimeChecksums(t, o); a != b {
			t.Fatalf("runtime checksums differ: node1\n%s%s\n%s", a, o.name, b)
		}
		if a, b := runtimeVars(t, nodes[0]), runtimeVars(t, o); a != b {
			t.Fatalf("runtime mysql variables differ between node1 and %s", o.name)
		}
	}
	t.Logf("runtime checksums on all 3 nodes:\n%s", runtimeChecksums(t, nodes[0]))
	for _, n := range nodes {
		out := n.s.Output()
		t.Logf("%s: %d modules applied from etcd, %d LOADs lost a conflict, %d etcd-unreachable reports",
			n.name, strings.Count(out, "applied the module from etcd"), strings.Count(out, "LOAD lost a conflict in etcd"),
			strings.Count(out, "etcd unreachable: this node keeps"))
	}
}
