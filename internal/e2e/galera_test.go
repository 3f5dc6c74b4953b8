package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestGaleraHostgroups runs Sluice's monitor against a real three-node
// MariaDB Galera cluster (scripts/galera.sh) configured as ProxySQL users
// do: every node in the writer hostgroup, one mysql_galera_hostgroups row
// (writer 10, backup writer 11, reader 12, offline 13, max_writers 1,
// writer_is_also_reader 1). The heaviest node writes, the others are
// backup writers, all three read; a desynced node goes offline and comes
// back; a node made read_only hands the writer role to the next by weight;
// a killed writer is replaced, and the application's queries through the
// writer hostgroup keep working; a LOAD MYSQL SERVERS TO RUNTIME does not
// undo the placement, and SAVE MYSQL SERVERS FROM RUNTIME saves it.
func TestGaleraHostgroups(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	g := testenv.StartGalera(t, 3)
	n1, n2, n3 := g.Nodes[0], g.Nodes[1], g.Nodes[2]
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	s := testenv.StartWithMonitor(t, testenv.WriteConfig(t, dir, adminPort, dataPort, ""), dir, adminPort, dataPort)
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_galera_healthcheck_interval=200; SET mysql-monitor_ping_interval=1000;
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port, weight) VALUES
			(10, '127.0.0.1', %d, 300), (10, '127.0.0.1', %d, 200), (10, '127.0.0.1', %d, 100),
			(20, '127.0.0.1', %d, 1), (20, '127.0.0.1', %d, 1), (20, '127.0.0.1', %d, 1000);
		INSERT INTO mysql_galera_hostgroups(writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup,
			active, max_writers, writer_is_also_reader, max_transactions_behind) VALUES (10, 11, 12, 13, 1, 1, 1, 100);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 10), ('root', 'test', 20);
		LOAD MYSQL USERS TO RUNTIME;`, n1.Port, n2.Port, n3.Port, n1.Port, n2.Port, n3.Port))
	if w := admin(t, s, "LOAD MYSQL SERVERS TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("a Galera row warns at LOAD: %s", w)
	}

	// layout is each node's hostgroups, as runtime_mysql_servers has them
	// (a dead node's entry may be ONLINE or, once pings fail, SHUNNED).
	layout := func() string {
		out := admin(t, s, "SELECT port, GROUP_CONCAT(hostgroup_id) FROM (SELECT port, hostgroup_id FROM runtime_mysql_servers "+
			"WHERE hostgroup_id < 20 ORDER BY port, hostgroup_id) GROUP BY port ORDER BY port")
		r := strings.NewReplacer(strconv.Itoa(n1.Port), "n1", strconv.Itoa(n2.Port), "n2", strconv.Itoa(n3.Port), "n3", "\t", ":", "\n", " ")
		return strings.TrimSpace(r.Replace(out))
	}
	await := func(what, want string, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			got := layout()
			if got == want {
				return time.Since(start)
			}
			if time.Since(start) > timeout {
				t.Fatalf("%s: hostgroups %q after %v, want %q\n%s", what, got, timeout, want, s.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	nodeSQL := func(b testenv.Backend, q string) { testenv.MustCLI(t, b.Port, "root", "test", q) }
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	writerPort := func() int {
		t.Helper()
		var port int
		if err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
			t.Fatalf("a query through the writer hostgroup: %v", err)
		}
		return port
	}

	const settled = "n1:10,12 n2:11,12 n3:11,12"
	await("the heaviest node writes, the others are backup writers, all read", settled, 15*time.Second)
	if p := writerPort(); p != n1.Port {
		t.Fatalf("the writer hostgroup answered from port %d, want node 1 (%d)", p, n1.Port)
	}
	if out := admin(t, s, fmt.Sprintf("SELECT primary_partition, read_only, wsrep_local_state, wsrep_desync, pxc_maint_mode FROM monitor.mysql_server_galera_log "+
		"WHERE port=%d AND error IS NULL ORDER BY time_start_us DESC LIMIT 1", n2.Port)); out != "YES\tNO\t4\tNO\tNO\n" {
		t.Errorf("monitor.mysql_server_galera_log of node 2: %q", out)
	}
	if out := admin(t, s, "SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, max_writers FROM runtime_mysql_galera_hostgroups"); out != "10\t11\t12\t13\t1\n" {
		t.Errorf("runtime_mysql_galera_hostgroups: %q", out)
	}

	// A desynced node is taken out of every hostgroup but the offline one.
	nodeSQL(n2, "SET GLOBAL wsrep_desync=ON")
	await("node 2 desynced", "n1:10,12 n2:13 n3:11,12", 10*time.Second)
	nodeSQL(n2, "SET GLOBAL wsrep_desync=OFF")
	await("node 2 synced again", settled, 10*time.Second)

	// read_only on the writer: it becomes a reader only, node 2 writes.
	nodeSQL(n1, "SET GLOBAL read_only=1")
	await("node 1 read_only", "n1:12 n2:10,12 n3:11,12", 10*time.Second)
	if p := writerPort(); p != n2.Port {
		t.Fatalf("writer hostgroup after node 1 went read_only: port %d, want node 2 (%d)", p, n2.Port)
	}
	nodeSQL(n1, "SET GLOBAL read_only=0")
	await("node 1 writable again: the heaviest writes", settled, 10*time.Second)

	// A node that refuses to serve (wsrep_reject_queries=ALL: every
	// statement on a table gets 1047 "WSREP has not yet prepared node for
	// application use") behind hostgroup 20, which no Galera row manages,
	// so only the data path sees it: each statement it refuses goes to
	// another node, as ProxySQL retries it, text and prepared, reads and
	// writes; none fails, none is applied twice.
	refused := refusedElsewhere(t, s, ctx, n3, n1)
	nodeSQL(n3, "SET GLOBAL wsrep_reject_queries=NONE")
	await("node 3 serves again", settled, 10*time.Second)

	// The writer dies: node 2 takes over, and the writer hostgroup serves.
	g.Kill(t, 0)
	took := await("node 1 killed", "n1:13 n2:10,12 n3:11,12", 15*time.Second)
	if p := writerPort(); p != n2.Port {
		t.Fatalf("writer hostgroup after node 1 died: port %d, want node 2 (%d)", p, n2.Port)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS sbtest.galera_t (id INT PRIMARY KEY)"); err != nil {
		t.Fatalf("DDL through the new writer: %v", err)
	}
	// A LOAD puts the configured hostgroups back; the nodes' last checks
	// place them again at once.
	admin(t, s, "LOAD MYSQL SERVERS TO RUNTIME")
	await("after LOAD MYSQL SERVERS TO RUNTIME", "n1:13 n2:10,12 n3:11,12", 2*time.Second)
	// SAVE … FROM RUNTIME writes the layout as it runs, each server ONLINE
	// (the dead node's offline entry may be SHUNNED by its pings), as
	// ProxySQL saves it.
	admin(t, s, "SAVE MYSQL SERVERS FROM RUNTIME")
	saved := admin(t, s, "SELECT port, GROUP_CONCAT(hostgroup_id || ':' || status) FROM (SELECT port, hostgroup_id, status FROM mysql_servers "+
		"WHERE hostgroup_id < 20 ORDER BY port, hostgroup_id) GROUP BY port ORDER BY port")
	r := strings.NewReplacer(strconv.Itoa(n1.Port), "n1", strconv.Itoa(n2.Port), "n2", strconv.Itoa(n3.Port), "n3", "\t", "=", "\n", " ")
	if got, want := strings.TrimSpace(r.Replace(saved)), "n1=13:ONLINE n2=10:ONLINE,12:ONLINE n3=11:ONLINE,12:ONLINE"; got != want {
		t.Errorf("SAVE MYSQL SERVERS FROM RUNTIME wrote %q, want %q", got, want)
	}
	if out := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_galera_log WHERE port=%d AND error IS NOT NULL", n1.Port)); out == "0\n" {
		t.Error("no failed check of the killed node in monitor.mysql_server_galera_log")
	}
	t.Logf("writer, backup writers and readers placed by weight; desync and read_only moves; a refusing node's statements served elsewhere (%s); "+
		"the killed writer replaced %v after the kill", refused, took.Round(10*time.Millisecond))
}

// refusedElsewhere makes node b refuse every statement on a table and runs
// reads and writes, text and prepared, through hostgroup 20 (user root),
// where b is one of three servers, the one weighted to be picked first. It fails the test on any error, on an
// answer from b, or on a write missing or applied twice (read on node
// other), and returns a
// summary of what b's entry counted.
func refusedElsewhere(t *testing.T, s *testenv.Sluice, ctx context.Context, b, other testenv.Backend) string {
	t.Helper()
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.galera_refuse (id INT PRIMARY KEY); "+
		"DELETE FROM sbtest.galera_refuse; INSERT INTO sbtest.galera_refuse VALUES (0); SET GLOBAL wsrep_reject_queries=ALL")
	db := testenv.DB(t, s.DataPort, "root", "test", "sbtest", "")
	const n = 30
	for i := 1; i <= n; i++ {
		var port, rows int
		q := "SELECT @@port, COUNT(*) FROM galera_refuse"
		var err error
		if i%2 == 0 {
			err = db.QueryRowContext(ctx, q+" WHERE id >= ?", 0).Scan(&port, &rows) // prepared
		} else {
			err = db.QueryRowContext(ctx, q).Scan(&port, &rows)
		}
		if err != nil {
			t.Fatalf("read %d while node %d refuses: %v", i, b.Port, err)
		}
		if port == b.Port {
			t.Fatalf("read %d answered by the refusing node %d", i, port)
		}
		if i%2 == 0 {
			_, err = db.ExecContext(ctx, "INSERT INTO galera_refuse VALUES (?)", i)
		} else {
			_, err = db.ExecContext(ctx, fmt.Sprintf("INSERT INTO galera_refuse VALUES (%d)", i))
		}
		if err != nil {
			t.Fatalf("write %d while node %d refuses: %v", i, b.Port, err)
		}
	}
	// Every write there once (a second would have failed on the key).
	if got := testenv.MustCLI(t, other.Port, "root", "test", "SET SESSION wsrep_sync_wait=1; SELECT COUNT(*) FROM sbtest.galera_refuse", "-N"); strings.TrimSpace(got) != strconv.Itoa(n+1) {
		t.Fatalf("%s rows after %d writes, want %d", strings.TrimSpace(got), n, n+1)
	}
	row := adminRows(t, s, fmt.Sprintf("SELECT ConnERR, Queries FROM stats_mysql_connection_pool WHERE hostgroup=20 AND srv_port=%d", b.Port))
	if len(row) != 1 || row[0][0] == "0" || row[0][1] != "0" {
		t.Fatalf("refusing node's entry in stats_mysql_connection_pool (ConnERR, Queries) = %v, want refusals counted and no query served", row)
	}
	return fmt.Sprintf("%d reads and %d writes, %s refusals counted as connection errors", n, n, row[0][0])
}
