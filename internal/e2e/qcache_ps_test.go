package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestQueryCacheNotForPreparedExecutes: ProxySQL's query cache is looked
// up on the COM_QUERY path only (MySQL_Session's COM_QUERY qpo handler) and
// filled from text result sets only (MySQL_Result_to_MySQL_wire; the
// COM_STMT_EXECUTE path, MySQL_Stmt_Result_to_MySQL_wire, neither looks up
// nor stores), so a cache_ttl rule that matches a prepared statement's text
// does not cache its executes. Sluice does the same: with go-sql-driver
// server-side prepared statements (interpolateParams=false) every execute
// reaches the backend — its own Com_stmt_execute and a counting function
// show it — and the cache's counters do not move, while the same text sent
// as COM_QUERY is served from the cache.
func TestQueryCacheNotForPreparedExecutes(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], `CREATE DATABASE IF NOT EXISTS qcps; CREATE TABLE IF NOT EXISTS qcps.t (id INT PRIMARY KEY, v VARCHAR(20));
		REPLACE INTO qcps.t VALUES (1, 'one'), (2, 'two');
		CREATE TABLE IF NOT EXISTS qcps.execs (n INT NOT NULL); DELETE FROM qcps.execs; INSERT INTO qcps.execs VALUES (0);`)
	backendSQL(t, bs[0], "DELIMITER //\nCREATE OR REPLACE FUNCTION qcps.counted() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA "+
		"BEGIN UPDATE qcps.execs SET n = n + 1; RETURN 1; END//\nDELIMITER ;")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, 'FROM qcps', 60000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "qcps", "interpolateParams=false")
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
	const q = "SELECT id, v FROM qcps.t WHERE id = 1 AND qcps.counted() = 1"
	const n = 20

	// Text protocol: cached.
	c0, get0 := counted(), globalStat(t, s, "Query_Cache_count_GET")
	for i := range n {
		var id int
		var v string
		if err := db.QueryRowContext(ctx, q).Scan(&id, &v); err != nil || v != "one" {
			t.Fatalf("text query %d: %v %q", i, err, v)
		}
	}
	textExecs, textGets := counted()-c0, globalStat(t, s, "Query_Cache_count_GET")-get0
	if textExecs != 1 || textGets != n {
		t.Fatalf("%d text queries: %d backend executions, %d cache lookups; want 1 and %d", n, textExecs, textGets, n)
	}

	// Prepared executes of the same text: every one reaches the backend.
	stmt, err := db.PrepareContext(ctx, "SELECT id, v FROM qcps.t WHERE id = ? AND qcps.counted() = 1")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	c1, se1, get1, set1 := counted(), stmtExecs(), globalStat(t, s, "Query_Cache_count_GET"), globalStat(t, s, "Query_Cache_count_SET")
	for i := range n {
		var id int
		var v string
		if err := stmt.QueryRowContext(ctx, 1+i%2).Scan(&id, &v); err != nil || id != 1+i%2 {
			t.Fatalf("execute %d: %v (%d %q)", i, err, id, v)
		}
	}
	psExecs, psStmt := counted()-c1, stmtExecs()-se1
	gets, sets := globalStat(t, s, "Query_Cache_count_GET")-get1, globalStat(t, s, "Query_Cache_count_SET")-set1
	if psExecs != n || psStmt < n || gets != 0 || sets != 0 {
		t.Fatalf("%d prepared executes: %d backend executions (Com_stmt_execute +%d), cache GET +%d SET +%d; want %d, ≥%d, 0, 0",
			n, psExecs, psStmt, gets, sets, n, n)
	}
	t.Logf("cache_ttl rule: %d text queries → %d backend execution, %d lookups; %d prepared executes → %d backend executions (Com_stmt_execute +%d), cache untouched",
		n, textExecs, textGets, n, psExecs, psStmt)
}
