package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestStmtCacheAfterDDL: the global statement cache answers a PREPARE from
// memory, so a table changed since must not leave it describing the old
// one. DDL through the proxy empties the cache; DDL behind its back shows
// up as the server's "metadata changed" flag on an execute, which drops
// that statement; a PREPARE of a dropped table gets the server's 1146.
// Before, a second client's PREPARE reported the table's old column count
// (Connector/J's getMetaData() too) and a dropped table's PREPARE succeeded.
func TestStmtCacheAfterDDL(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	const q = "SELECT * FROM sbtest.stmt_ddl WHERE a > ?"
	columns := func() (int, error) {
		t.Helper()
		c := sbtestConn(t, s.DataPort)
		defer c.Close()
		st, err := c.Prepare(q)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		if _, err := st.Execute(1); err != nil {
			t.Fatal(err)
		}
		return st.ColumnNum(), nil
	}
	want := func(n int, when string) {
		t.Helper()
		if got, err := columns(); err != nil || got != n {
			t.Fatalf("%s: PREPARE reports %d columns (%v), want %d", when, got, err, n)
		}
	}
	proxy := func(q string) {
		t.Helper()
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", q)
	}
	proxy("DROP TABLE IF EXISTS sbtest.stmt_ddl; CREATE TABLE sbtest.stmt_ddl (a INT)")
	want(1, "first")
	want(1, "cached")
	proxy("ALTER TABLE sbtest.stmt_ddl ADD b VARCHAR(10), ADD c INT")
	want(3, "after ALTER through the proxy")
	// Behind the proxy's back: the one backend connection has the
	// statement prepared, so the next execute there carries the flag.
	testenv.MustCLI(t, b.Port, "root", "test", "ALTER TABLE sbtest.stmt_ddl ADD d INT")
	columns() // cached answer; its execute tells the proxy
	want(4, "after ALTER on the server")
	proxy("DROP TABLE sbtest.stmt_ddl")
	if _, err := columns(); err == nil || !strings.Contains(err.Error(), "1146") {
		t.Fatalf("PREPARE of a dropped table: %v, want ERR 1146", err)
	}
}

// TestPreparedStatementsInfo: stats_mysql_prepared_statements_info lists
// the global statement cache as ProxySQL's does, with how many client
// statements (ref_count_client) and backend connections (ref_count_server)
// hold each statement, and both counts fall as they let go.
func TestPreparedStatementsInfo(t *testing.T) {
	s, _ := multiplexSetup(t, 1, "")
	const q = "SELECT ? + 1 AS n, 'info' AS s"
	var stmts []*client.Stmt
	for i := 0; i < 2; i++ {
		st, err := sbtestConn(t, s.DataPort).Prepare(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Execute(i); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	info := func() []string {
		t.Helper()
		rows := adminRows(t, s, "SELECT schemaname, username, digest, ref_count_client, ref_count_server, num_columns, num_params, query, global_stmt_id > 0 "+
			"FROM stats_mysql_prepared_statements_info WHERE query = '"+strings.ReplaceAll(q, "'", "''")+"'")
		if len(rows) != 1 {
			t.Fatalf("stats_mysql_prepared_statements_info: %d rows for the statement, want 1: %v", len(rows), rows)
		}
		return rows[0]
	}
	hash, _ := sluiceDigest(t, q)
	// Two clients hold it; the only backend connection has it prepared.
	want := []string{"sbtest", "sbtest", hash, "2", "1", "2", "1", q, "1"}
	if got := info(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("row %q, want %q", got, want)
	}
	globals := func() map[string]string {
		m := map[string]string{}
		for _, r := range adminRows(t, s, "SELECT variable_name, variable_value FROM stats_mysql_global WHERE variable_name LIKE 'Stmt%'") {
			m[r[0]] = r[1]
		}
		return m
	}
	if g := globals(); g["Stmt_Cached"] != "1" || g["Stmt_Client_Active_Total"] != "2" || g["Stmt_Client_Active_Unique"] != "1" ||
		g["Stmt_Server_Active_Total"] != "1" || g["Stmt_Server_Active_Unique"] != "1" {
		t.Fatalf("stats_mysql_global Stmt_* rows %v", g)
	}
	if err := stmts[0].Close(); err != nil {
		t.Fatal(err)
	}
	if got := info(); got[3] != "1" {
		t.Fatalf("after one COM_STMT_CLOSE: ref_count_client %s, want 1", got[3])
	}
	stmts[1].Close()
	if got := info(); got[3] != "0" || got[4] != "1" {
		t.Fatalf("after both closed: ref_count_client %s, ref_count_server %s, want 0 and 1 (still prepared on the pooled connection)", got[3], got[4])
	}
	// The server leaves: its connections close, and with them the
	// statement's backend copies.
	admin(t, s, "DELETE FROM mysql_servers; LOAD MYSQL SERVERS TO RUNTIME")
	deadline := time.Now().Add(10 * time.Second)
	for got := info(); got[4] != "0"; got = info() {
		if time.Now().After(deadline) {
			t.Fatalf("ref_count_server %s 10 s after the server was removed, want 0", got[4])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
