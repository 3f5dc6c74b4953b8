package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestQueryCachePreparedExecutes: as ProxySQL since PR #6194, a cache_ttl
// rule that matches a prepared SELECT caches its COM_STMT_EXECUTE results.
// With go-sql-driver server-side prepared statements
// (interpolateParams=false, CLIENT_DEPRECATE_EOF): 50 executes with the
// same parameter reach the backend at most once — its own
// Com_stmt_execute and a counting function show it; other parameter values
// are other entries with their own answers; an execute whose parameter
// went by COM_STMT_SEND_LONG_DATA, and one inside a transaction, are
// neither looked up nor stored; the entry expires on cache_ttl; hits leave
// the session's statements working (another statement executes on the
// same connection, CLOSE and a fresh PREPARE of the same text hit the same
// entry). PHP's mysqli (mysqlnd: classic EOF) gets correct answers from
// hits too, across COM_STMT_RESET and COM_STMT_CLOSE.
func TestQueryCachePreparedExecutes(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], `CREATE DATABASE IF NOT EXISTS qcps; CREATE TABLE IF NOT EXISTS qcps.t (id INT PRIMARY KEY, v VARCHAR(20));
		REPLACE INTO qcps.t VALUES (1, 'one'), (2, 'two'), (3, 'three');
		CREATE TABLE IF NOT EXISTS qcps.execs (n INT NOT NULL); DELETE FROM qcps.execs; INSERT INTO qcps.execs VALUES (0);`)
	backendSQL(t, bs[0], "DELIMITER //\nCREATE OR REPLACE FUNCTION qcps.counted() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA "+
		"BEGIN UPDATE qcps.execs SET n = n + 1; RETURN 1; END//\nDELIMITER ;")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, 'FROM qcps', 5000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	// maxAllowedPacket=4096: a parameter of 2 KiB or more goes by
	// COM_STMT_SEND_LONG_DATA (the driver's threshold is the packet
	// size over the parameter count plus one).
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "qcps", "interpolateParams=false&maxAllowedPacket=4096")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	counted := func() int64 {
		t.Helper()
		n, err := strconv.ParseInt(strings.TrimSpace(backendSQL(t, bs[0], "SELECT n FROM qcps.execs")), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	stmtExecs := func() int64 {
		t.Helper()
		out := backendSQL(t, bs[0], "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'")
		f := strings.Fields(out)
		n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("Com_stmt_execute: %q", out)
		}
		return n
	}
	type counters struct{ counted, stmtExecs, get, getOK, set int64 }
	snap := func() counters {
		t.Helper()
		return counters{counted(), stmtExecs(), globalStat(t, s, "Query_Cache_count_GET"),
			globalStat(t, s, "Query_Cache_count_GET_OK"), globalStat(t, s, "Query_Cache_count_SET")}
	}
	delta := func(a, b counters) counters {
		return counters{b.counted - a.counted, b.stmtExecs - a.stmtExecs, b.get - a.get, b.getOK - a.getOK, b.set - a.set}
	}
	const q = "SELECT id, v FROM qcps.t WHERE id = ? AND qcps.counted() = 1"
	conn, err := db.Conn(ctx) // one client connection: its statements and ids
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	read := func(id int) string {
		t.Helper()
		var got int
		var v string
		if err := stmt.QueryRowContext(ctx, id).Scan(&got, &v); err != nil || got != id {
			t.Fatalf("execute(%d): %v (%d %q)", id, err, got, v)
		}
		return v
	}

	// 50 executes, one parameter value.
	c0 := snap()
	for i := range 50 {
		if v := read(1); v != "one" {
			t.Fatalf("execute %d: %q", i, v)
		}
	}
	d50 := delta(c0, snap())
	if d50.counted > 1 || d50.stmtExecs > 1 || d50.get != 50 || d50.getOK < 49 || d50.set > 1 {
		t.Fatalf("50 prepared executes: %+v; want ≤1 backend execution (counted, Com_stmt_execute), 50 lookups, ≥49 hits", d50)
	}

	// Other values: other entries, their own answers.
	want := map[int]string{1: "one", 2: "two", 3: "three"}
	c1 := snap()
	for i := range 30 {
		id := 1 + i%3
		if v := read(id); v != want[id] {
			t.Fatalf("execute(%d): %q, want %q", id, v, want[id])
		}
	}
	dv := delta(c1, snap())
	if dv.counted != 2 || dv.set != 2 || dv.getOK != 28 {
		t.Fatalf("30 executes over ids 1 (cached), 2, 3: %+v; want 2 backend executions, 2 stores, 28 hits", dv)
	}

	// The session's statements still work after hits: another statement
	// on the same connection (not cached: no rule matches it), then the
	// cached one closed and prepared again under a new id.
	var tables int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", "qcps").Scan(&tables); err != nil || tables != 2 {
		t.Fatalf("another statement after hits: %d %v", tables, err)
	}
	if err := stmt.Close(); err != nil {
		t.Fatal(err)
	}
	if stmt, err = conn.PrepareContext(ctx, q); err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	c2 := snap()
	if v := read(2); v != "two" {
		t.Fatalf("re-prepared: %q", v)
	}
	if d := delta(c2, snap()); d.counted != 0 || d.getOK != 1 {
		t.Fatalf("re-prepared statement (new client id): %+v; want a hit", d)
	}

	// Long data: neither looked up nor stored.
	long := bytes.Repeat([]byte("x"), 3000)
	ld, err := conn.PrepareContext(ctx, "SELECT id, LENGTH(?) FROM qcps.t WHERE id = 1 AND qcps.counted() = 1")
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	c3 := snap()
	for i := range 5 {
		var id, n int
		if err := ld.QueryRowContext(ctx, long).Scan(&id, &n); err != nil || n != len(long) {
			t.Fatalf("long data execute %d: %v (%d)", i, err, n)
		}
	}
	if d := delta(c3, snap()); d.counted != 5 || d.get != 0 || d.set != 0 {
		t.Fatalf("5 executes with long data: %+v; want 5 backend executions, cache untouched", d)
	}
	// The same statement with a short parameter (inline) is cached.
	c4 := snap()
	for range 5 {
		var id, n int
		if err := ld.QueryRowContext(ctx, "short").Scan(&id, &n); err != nil || n != 5 {
			t.Fatalf("short parameter: %v (%d)", err, n)
		}
	}
	if d := delta(c4, snap()); d.counted != 1 || d.getOK != 4 {
		t.Fatalf("5 executes with an inline parameter: %+v; want 1 backend execution, 4 hits", d)
	}

	// Expiry (cache_ttl 5 s: the steps above take a while on a busy
	// machine; the entry read here is at most that old).
	admin(t, s, "PROXYSQL FLUSH QUERY CACHE")
	read(1)
	backendSQL(t, bs[0], "UPDATE qcps.t SET v = 'uno' WHERE id = 1")
	if v := read(1); v != "one" {
		t.Fatalf("within the TTL the cached row is served: %q", v)
	}
	time.Sleep(5100 * time.Millisecond)
	if v := read(1); v != "uno" {
		t.Fatalf("after cache_ttl: %q, want the new value", v)
	}

	// Not inside a transaction.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE qcps.t SET v = 'mine' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	c5 := snap()
	var id int
	var v string
	if err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, 1).Scan(&id, &v); err != nil || v != "mine" {
		t.Fatalf("in a transaction the cache must not answer: %q %v", v, err)
	}
	// (counted() runs inside the open transaction: its count is not
	// visible yet, the server's Com_stmt_execute is.)
	if d := delta(c5, snap()); d.stmtExecs < 1 || d.get != 0 {
		t.Fatalf("execute in a transaction: %+v; want a backend execution and no lookup", d)
	}
	tx.Rollback()

	// PHP mysqli (mysqlnd, no CLIENT_DEPRECATE_EOF): hits answer correctly,
	// across COM_STMT_RESET, COM_STMT_CLOSE and a new PREPARE.
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed")
	}
	backendSQL(t, bs[0], "UPDATE qcps.t SET v = 'one' WHERE id = 1")
	admin(t, s, "PROXYSQL FLUSH QUERY CACHE")
	script := filepath.Join(t.TempDir(), "qcps.php")
	php := fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli("127.0.0.1", "sbtest", "sbtest", "qcps", %d);
for ($round = 0; $round < 2; $round++) {
	$st = $db->prepare(%q);
	foreach ([1, 2, 1, 2] as $i) {
		$st->bind_param("i", $i);
		$st->execute();
		$st->bind_result($id, $v);
		$st->fetch();
		echo $id, " ", $v, "\n";
		$st->free_result();
		if ($i == 2) { $st->reset(); }
	}
	$st->close();
}
`, s.DataPort, q)
	if err := os.WriteFile(script, []byte(php), 0o644); err != nil {
		t.Fatal(err)
	}
	c6 := snap()
	out, err := exec.CommandContext(ctx, "php", script).CombinedOutput()
	if err != nil || strings.Count(string(out), "1 one\n") != 4 || strings.Count(string(out), "2 two\n") != 4 {
		t.Fatalf("PHP mysqli: %s %v", out, err)
	}
	dp := delta(c6, snap())
	if dp.counted != 2 || dp.getOK != 6 {
		t.Fatalf("PHP mysqli, 8 executes over 2 values: %+v; want 2 backend executions, 6 hits", dp)
	}
	t.Logf("50 prepared executes, one value: %d backend execution(s) (Com_stmt_execute +%d), %d lookups, %d hits; "+
		"30 over 3 values: %d backend executions; PHP mysqli (classic EOF) 8 executes: %d backend executions, %d hits",
		d50.counted, d50.stmtExecs, d50.get, d50.getOK, dv.counted, dp.counted, dp.getOK)
}

// TestQueryCachePreparedSysbench: sysbench oltp_point_select with
// server-side prepared statements (--db-ps-mode=auto) through Sluice,
// without and with a cache_ttl rule on its SELECT. No timing is asserted:
// the figures are logged (docs/architecture.md records them); what is
// asserted is no error and that the cached run was served by the cache.
func TestQueryCachePreparedSysbench(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	s, b := multiplexSetup(t, 50, "")
	secs := "5"
	if testing.Short() {
		secs = "3"
	}
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=sbtest", "--tables=1", "--table-size=1000"}
	sb := func(port int, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		all := append(append([]string{"oltp_point_select"}, common...), fmt.Sprintf("--mysql-port=%d", port))
		out, err := exec.CommandContext(ctx, "sysbench", append(all, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sysbench %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	sb(b.Port, "cleanup")
	sb(b.Port, "prepare")
	stmtExecs := func() int64 {
		t.Helper()
		f := strings.Fields(backendSQL(t, b, "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'"))
		n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		return n
	}
	run := func(label string) (qps string, execs, hits int64) {
		t.Helper()
		e0, h0 := stmtExecs(), globalStat(t, s, "Query_Cache_count_GET_OK")
		out := sb(s.DataPort, "--threads=8", "--time="+secs, "--report-interval=0", "--db-ps-mode=auto", "run")
		m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(out)
		q := regexp.MustCompile(`queries:\s+(\d+)\s+\(([\d.]+) per sec`).FindStringSubmatch(out)
		if m == nil || q == nil {
			t.Fatalf("%s: cannot read sysbench output:\n%s", label, out)
		}
		if m[1] != "0" {
			t.Fatalf("%s: %s ignored errors\n%s", label, m[1], out)
		}
		return q[2], stmtExecs() - e0, globalStat(t, s, "Query_Cache_count_GET_OK") - h0
	}
	plainQPS, plainExecs, plainHits := run("no cache rule")
	admin(t, s, `INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, '^SELECT c FROM sbtest', 60000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	cachedQPS, cachedExecs, cachedHits := run("cache rule")
	if plainHits != 0 || cachedHits == 0 {
		t.Fatalf("without a rule %d cache hits; with cache_ttl %d", plainHits, cachedHits)
	}
	t.Logf("sysbench oltp_point_select --db-ps-mode=auto, 8 threads, %ss, 1000 rows: %s qps (backend Com_stmt_execute +%d) without a cache rule; "+
		"%s qps (Com_stmt_execute +%d, %d cache hits) with cache_ttl=60000", secs, plainQPS, plainExecs, cachedQPS, cachedExecs, cachedHits)
}
