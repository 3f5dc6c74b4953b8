package e2e

import (
	"fmt"
	"strings"
	"testing"

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
	addr := fmt.Sprintf("127.0.0.1:%d", s.DataPort)
	columns := func() (int, error) {
		t.Helper()
		c, err := client.Connect(addr, "sbtest", "sbtest", "sbtest")
		if err != nil {
			t.Fatal(err)
		}
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
