package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// executions reads how often the backend ran the cached query: each
// execution calls qcdb.counted(), which counts in qcdb.execs (the server's
// global Com_select would also count other tests' queries).
func executions(t *testing.T, b testenv.Backend) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(backendSQL(t, b, "SELECT n FROM qcdb.execs")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func globalStat(t *testing.T, s *testenv.Sluice, name string) int64 {
	t.Helper()
	return adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='"+name+"'")
}

func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestQueryCache: a rule with cache_ttl serves 50 repeated SELECTs with one
// backend execution (counted by the backend itself), to go-sql-driver
// (CLIENT_DEPRECATE_EOF), the mariadb CLI and PHP's mysqlnd (classic EOF)
// alike; the entry expires on cache_ttl; Query_Cache_count_GET_OK counts
// the hits; PROXYSQL FLUSH QUERY CACHE empties it; inside a transaction
// the cache is not used; and 100 000 distinct cached queries stay within
// mysql-query_cache_size_MB.
func TestQueryCache(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], `CREATE DATABASE IF NOT EXISTS qcdb; CREATE TABLE IF NOT EXISTS qcdb.t (id INT PRIMARY KEY, v VARCHAR(20));
		REPLACE INTO qcdb.t VALUES (1, 'one'), (2, 'two');
		CREATE TABLE IF NOT EXISTS qcdb.execs (n INT NOT NULL); DELETE FROM qcdb.execs; INSERT INTO qcdb.execs VALUES (0);`)
	backendSQL(t, bs[0], "DELIMITER //\nCREATE OR REPLACE FUNCTION qcdb.counted() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA "+
		"BEGIN UPDATE qcdb.execs SET n = n + 1; RETURN 1; END//\nDELIMITER ;")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, 'FROM qcdb', 1500, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "qcdb", "")
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const q = "SELECT id, v FROM qcdb.t WHERE id = 1 AND qcdb.counted() = 1"
	read := func() string {
		t.Helper()
		var id int
		var v string
		if err := db.QueryRowContext(ctx, q).Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	sel0, ok0 := executions(t, bs[0]), globalStat(t, s, "Query_Cache_count_GET_OK")
	for i := range 50 {
		if v := read(); v != "one" {
			t.Fatalf("read %d: %q", i, v)
		}
	}
	execs := executions(t, bs[0]) - sel0
	hits := globalStat(t, s, "Query_Cache_count_GET_OK") - ok0
	if execs > 1 || hits < 49 {
		t.Fatalf("50 cacheable SELECTs: %d backend executions, %d cache hits", execs, hits)
	}
	// The CLI and PHP (no CLIENT_DEPRECATE_EOF) get correct results too,
	// from the cache after their first query.
	for range 2 {
		out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", q, "-N")
		if err != nil || strings.TrimSpace(out) != "1\tone" {
			t.Fatalf("mariadb CLI: %q %v", out, err)
		}
	}
	if _, err := exec.LookPath("php"); err == nil {
		script := filepath.Join(t.TempDir(), "qc.php")
		php := fmt.Sprintf(`<?php
$db = new PDO("mysql:host=127.0.0.1;port=%d;dbname=qcdb", "sbtest", "sbtest", [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
for ($i = 0; $i < 3; $i++) { $r = $db->query(%q)->fetch(PDO::FETCH_NUM); echo $r[0], " ", $r[1], "\n"; }
`, s.DataPort, q)
		if err := os.WriteFile(script, []byte(php), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, "php", script).CombinedOutput()
		if err != nil || strings.Count(string(out), "1 one") != 3 {
			t.Fatalf("PHP: %s %v", out, err)
		}
	}
	// Expiry. The entry is stored afresh first: the one above is as old
	// as the CLI and PHP runs, which may exceed cache_ttl on a busy machine.
	admin(t, s, "PROXYSQL FLUSH QUERY CACHE")
	read()
	backendSQL(t, bs[0], "UPDATE qcdb.t SET v = 'uno' WHERE id = 1")
	if v := read(); v != "one" {
		t.Fatalf("within the TTL the cached row is served: %q", v)
	}
	time.Sleep(1600 * time.Millisecond)
	if v := read(); v != "uno" {
		t.Fatalf("after cache_ttl: %q, want the new value", v)
	}
	// Not inside a transaction.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE qcdb.t SET v = 'mine' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := tx.QueryRowContext(ctx, "SELECT v FROM qcdb.t WHERE id = 1").Scan(&v); err != nil || v != "mine" {
		t.Fatalf("in a transaction the cache must not answer: %q %v", v, err)
	}
	tx.Rollback()
	// PROXYSQL FLUSH QUERY CACHE.
	admin(t, s, "PROXYSQL FLUSH QUERY CACHE")
	if n := globalStat(t, s, "Query_Cache_Entries"); n != 0 {
		t.Fatalf("%d entries after PROXYSQL FLUSH QUERY CACHE", n)
	}

	// The size bound under 30 000 distinct cached queries, twice what 4 MiB
	// holds (a TTL long enough that only the bound can make room;
	// TestMillionDistinctQueries, SLUICE_LONG=1, runs a million).
	admin(t, s, `SET mysql-query_cache_size_MB=4; LOAD MYSQL VARIABLES TO RUNTIME;
		UPDATE mysql_query_rules SET cache_ttl=600000; LOAD MYSQL QUERY RULES TO RUNTIME;`)
	pid := s.Cmd.Process.Pid
	rss0 := rssKiB(t, pid)
	const distinct, workers = 30_000, 8
	start := time.Now()
	db.SetMaxOpenConns(workers)
	if err := queryAll(ctx, db, distinct, workers, func(i int) string {
		return fmt.Sprintf("SELECT %d AS id FROM qcdb.t WHERE id = 2", i)
	}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	mem, entries := globalStat(t, s, "Query_Cache_Memory_bytes"), globalStat(t, s, "Query_Cache_Entries")
	purged := globalStat(t, s, "Query_Cache_Purged")
	rss1 := rssKiB(t, pid)
	if mem > 4<<20 || entries == 0 || entries >= distinct || purged == 0 {
		t.Fatalf("after %d distinct queries: %d bytes in %d entries, %d purged (bound 4 MiB)", distinct, mem, entries, purged)
	}
	t.Logf("50 SELECTs: %d backend execution(s), %d hits; %d distinct queries in %v: cache %.1f MiB in %d entries (bound 4 MiB), %d purged, RSS %d → %d KiB",
		execs, hits, distinct, took.Round(100*time.Millisecond), float64(mem)/(1<<20), entries, purged, rss0, rss1)
}

// TestQueryCacheSessionSettings: a cached result is served only to
// sessions whose settings would have given the same bytes. The same SELECT
// under SET NAMES latin1 or another time_zone gets its own entry (it used
// to get the utf8mb4 / UTC bytes of whichever session cached it first); a
// session with the same settings as the first shares its entry.
func TestQueryCacheSessionSettings(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], `CREATE DATABASE IF NOT EXISTS qcdb2;
		CREATE TABLE IF NOT EXISTS qcdb2.t (id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb4, ts TIMESTAMP NULL);
		REPLACE INTO qcdb2.t VALUES (1, 'h\u00e9llo', '2024-01-02 03:04:05');`)
	backendSQL(t, bs[0], "SET time_zone = '+00:00'; UPDATE qcdb2.t SET v = CONVERT(X'68C3A96C6C6F' USING utf8mb4), ts = '2024-01-02 03:04:05' WHERE id = 1")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, 'FROM qcdb2', 600000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	const q = "SELECT v, CAST(ts AS CHAR) FROM qcdb2.t WHERE id = 1"
	read := func(params string) (v []byte, ts string) {
		t.Helper()
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "qcdb2", params)
		defer db.Close()
		if err := db.QueryRow(q).Scan(&v, &ts); err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		return v, ts
	}
	utc := "time_zone=%27%2B00%3A00%27"
	hits0 := globalStat(t, s, "Query_Cache_count_GET_OK")
	v, ts := read(utc)
	if string(v) != "h\u00e9llo" || ts != "2024-01-02 03:04:05" {
		t.Fatalf("utf8mb4, UTC: %q %q", v, ts)
	}
	if v, ts := read(utc); string(v) != "h\u00e9llo" || ts != "2024-01-02 03:04:05" {
		t.Fatalf("the same settings again: %q %q", v, ts)
	}
	if hits := globalStat(t, s, "Query_Cache_count_GET_OK") - hits0; hits != 1 {
		t.Fatalf("a session with the same settings: %d cache hits, want 1", hits)
	}
	if v, _ := read("charset=latin1&" + utc); string(v) != "h\xe9llo" {
		t.Fatalf("SET NAMES latin1: %q, want the latin1 bytes", v)
	}
	if _, ts := read("time_zone=%27%2B05%3A00%27"); ts != "2024-01-02 08:04:05" {
		t.Fatalf("time_zone +05:00: %q, want the shifted time", ts)
	}

	// The PREPARE response is cached too (the global statement cache): a
	// latin1 session preparing what a utf8mb4 session prepared gets latin1
	// column definitions, as from the server (PHP's mysqlnd reads them).
	php := fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
foreach (['utf8mb4', 'latin1'] as $cs) {
  $m = new mysqli('127.0.0.1', 'sbtest', 'sbtest', 'qcdb2', %d);
  $m->set_charset($cs);
  $st = $m->prepare('SELECT v FROM qcdb2.t WHERE id = ?');
  $f = $st->result_metadata()->fetch_fields()[0];
  echo $cs, ' ', $f->charsetnr, ' ', $f->length, "\n";
}
`, s.DataPort)
	out, err := runPHP(t, "prepmeta.php", php)
	if err != nil || string(out) != "utf8mb4 45 80\nlatin1 8 20\n" {
		t.Fatalf("PREPARE column definitions per character set: %v\n%s", err, out)
	}
}

// TestMillionDistinctQueries (SLUICE_LONG=1; about two minutes): one
// million distinct queries — distinct digests (a different alias each) and
// distinct cache keys — leave RSS under a ceiling, with the digest map at
// mysql-query_digests_max_entries and the query cache at its bound.
func TestMillionDistinctQueries(t *testing.T) {
	if os.Getenv("SLUICE_LONG") != "1" {
		t.Skip("long: set SLUICE_LONG=1 (docs/architecture.md records the figures)")
	}
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `SET mysql-query_cache_size_MB=64; SET mysql-query_digests_max_entries=100000; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, '^SELECT', 600000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	const total, workers = 1_000_000, 8
	db.SetMaxOpenConns(workers)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pid := s.Cmd.Process.Pid
	rss0 := rssKiB(t, pid)
	start := time.Now()
	if err := queryAll(ctx, db, total, workers, func(i int) string { return fmt.Sprintf("SELECT %d AS c%d", i, i) }); err != nil {
		t.Fatal(err)
	}
	rss1 := rssKiB(t, pid)
	digests := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest")
	mem := globalStat(t, s, "Query_Cache_Memory_bytes")
	const ceiling = 512 << 10 // KiB
	if rss1 > ceiling || digests > 100_000 || mem > 64<<20 {
		t.Fatalf("RSS %d KiB (ceiling %d), %d digests, cache %d bytes", rss1, ceiling, digests, mem)
	}
	t.Logf("%d distinct queries in %v: RSS %d → %d KiB (ceiling %d KiB), %d digests (bound 100 000), cache %.1f MiB (bound 64 MiB)",
		total, time.Since(start).Round(time.Second), rss0, rss1, ceiling, digests, float64(mem)/(1<<20))
}

// queryAll runs query(i) for i in [0, total) on workers connections at
// once, reading one integer from each, and returns the first error.
func queryAll(ctx context.Context, db *sql.DB, total, workers int, query func(i int) string) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				var v int
				if err := db.QueryRowContext(ctx, query(i)).Scan(&v); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestQueryCacheWhatIsStored: which answers a cache_ttl rule may store.
//   - A query reading a user variable is never cached: each session gets
//     its own @x (ProxySQL would serve the first session's to the next).
//   - Reads other than SELECT are: a WITH (CTE) statement.
//   - A CALL and an INSERT … RETURNING, which return result sets, are not:
//     a hit would skip their writes.
//   - The size bound is the whole cache's: with mysql-query_cache_size_MB=1
//     a 70 KB answer is stored (a shard's sixteenth used to be the limit).
func TestQueryCacheWhatIsStored(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], `CREATE DATABASE IF NOT EXISTS qcw; CREATE TABLE IF NOT EXISTS qcw.execs (n INT NOT NULL);
		DELETE FROM qcw.execs; INSERT INTO qcw.execs VALUES (0);
		CREATE TABLE IF NOT EXISTS qcw.ins (id INT AUTO_INCREMENT PRIMARY KEY); DELETE FROM qcw.ins;`)
	backendSQL(t, bs[0], "DELIMITER //\nCREATE OR REPLACE FUNCTION qcw.counted() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA "+
		"BEGIN UPDATE qcw.execs SET n = n + 1; RETURN 1; END//\n"+
		"CREATE OR REPLACE PROCEDURE qcw.p() BEGIN UPDATE qcw.execs SET n = n + 1; SELECT 'qcw' AS v; END//\nDELIMITER ;")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `SET mysql-query_cache_size_MB=1; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, cache_ttl, apply) VALUES (1, 1, 'qcw', 600000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "qcw", "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	execs := func() int {
		t.Helper()
		n, err := strconv.Atoi(strings.TrimSpace(backendSQL(t, bs[0], "SELECT n FROM qcw.execs")))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := connOf(t, db)
	twice := func(q string) (ran int) {
		t.Helper()
		before := execs()
		for range 2 {
			execOrQuery(t, c, q)
		}
		return execs() - before
	}
	if ran := twice("WITH c AS (SELECT qcw.counted() AS n) SELECT n, 'qcw' FROM c"); ran != 1 {
		t.Errorf("a WITH read ran %d times in two, want once (the second from the cache)", ran)
	}
	if ran := twice("SELECT REPEAT('x', 70000) AS big, qcw.counted() AS n"); ran != 1 {
		t.Errorf("a 70 KB answer under a 1 MiB bound ran %d times in two, want once", ran)
	}
	if ran := twice("CALL qcw.p()"); ran != 2 {
		t.Errorf("a CALL ran %d times in two: a cached CALL skips its writes", ran)
	}
	before := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM qcw.ins"))
	twice("INSERT INTO qcw.ins VALUES () RETURNING id")
	if after := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM qcw.ins")); before != "0" || after != "2" {
		t.Errorf("two INSERT … RETURNING: %s rows → %s, want 0 → 2", before, after)
	}
	// User variables: two sessions, each its own @qcw.
	for i, want := range []string{"first", "second"} {
		c := connOf(t, db)
		var got string
		if _, err := c.ExecContext(ctx, "SET @qcw = '"+want+"'"); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "SELECT @qcw").Scan(&got); err != nil || got != want {
			t.Fatalf("session %d: SELECT @qcw = %q %v, want %q", i, got, err, want)
		}
	}
}
