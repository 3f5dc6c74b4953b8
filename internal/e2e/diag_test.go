package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestDiagnosticsPerSession: SHOW WARNINGS, SHOW ERRORS, their COUNT(*)
// forms and @@warning_count / @@error_count describe the session's own
// previous statement, as on a direct connection: never another session's
// warnings or errors left on a pooled connection (they may quote its
// data), and an error is there for SHOW ERRORS even though its connection
// went back to the pool. The only server allows one connection, so every
// session shares it.
func TestDiagnosticsPerSession(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	ctx := context.Background()
	proxied := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	direct := testenv.DB(t, b.Port, "sbtest", "sbtest", "sbtest", "")
	conn := func(db *sql.DB) *sql.Conn { t.Helper(); return connOf(t, db) }
	rows := func(c *sql.Conn, q string) string {
		t.Helper()
		_, rs := clusterFetch(t, c, q)
		var out []string
		for _, r := range rs {
			var f []string
			for _, v := range r {
				f = append(f, v.String)
			}
			out = append(out, strings.Join(f, "|"))
		}
		return strings.Join(out, ";")
	}
	// The same sequences through Sluice and directly give the same
	// answers.
	for _, seq := range [][]string{
		{"SELECT * FROM no_such_table", "SHOW ERRORS", "SHOW WARNINGS", "SELECT @@error_count", "SELECT @@warning_count", "SHOW COUNT(*) ERRORS", "SHOW ERRORS LIMIT 0"},
		{"SELECT 1/0", "SHOW WARNINGS", "SELECT @@warning_count", "SHOW ERRORS", "SELECT @@error_count"},
		{"SELECT 1", "SHOW WARNINGS", "SHOW ERRORS", "SELECT @@session.warning_count"},
		// A statement that reads no table and raises nothing leaves the
		// error before it (MariaDB).
		{"SELECT * FROM no_such_table", "SELECT 1", "SHOW WARNINGS", "SELECT @@error_count", "SHOW COUNT(*) ERRORS"},
	} {
		// Sessions of their own on both sides, each sequence from a clean
		// start (a pooled one keeps its diagnostics).
		pdb := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
		ddb := testenv.DB(t, b.Port, "sbtest", "sbtest", "sbtest", "")
		p, d := conn(pdb), conn(ddb)
		for _, q := range seq {
			var got, want string
			if strings.HasPrefix(q, "SELECT") && !strings.Contains(q, "@@") {
				_, perr := p.ExecContext(ctx, q)
				_, derr := d.ExecContext(ctx, q)
				if (perr == nil) != (derr == nil) {
					t.Fatalf("%s: through Sluice %v, directly %v", q, perr, derr)
				}
				continue
			}
			got, want = rows(p, q), rows(d, q)
			if got != want {
				t.Errorf("after %q, %s: through Sluice %q, directly %q", seq[0], q, got, want)
			}
		}
		p.Close()
		d.Close()
		pdb.Close()
		ddb.Close()
	}
	// ROW_COUNT() is the session's previous statement's, whichever
	// connection ran it.
	// Each side its own table: they share the server.
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.diag_rc_p (a INT); CREATE TABLE IF NOT EXISTS sbtest.diag_rc_d (a INT)")
	p, d, between := conn(proxied), conn(direct), conn(proxied)
	for _, q := range []string{"DELETE FROM diag_rc_%s", "INSERT INTO diag_rc_%s VALUES (1), (2), (3)", "UPDATE diag_rc_%s SET a = a + 1 WHERE a > 1",
		"SELECT 1", "SET sql_mode = 'STRICT_TRANS_TABLES'", "SELECT * FROM no_such_table", "DO 1"} {
		pq, dq := q, q
		if strings.Contains(q, "%s") {
			pq, dq = fmt.Sprintf(q, "p"), fmt.Sprintf(q, "d")
		}
		_, perr := p.ExecContext(ctx, pq)
		_, derr := d.ExecContext(ctx, dq)
		if (perr == nil) != (derr == nil) {
			t.Fatalf("%s: through Sluice %v, directly %v", q, perr, derr)
		}
		if q == "SELECT 1" {
			// Read as a result set, as a client reads a SELECT.
			rows(p, q)
			rows(d, q)
		}
		// Another session's statement in between, on the shared connection.
		if _, err := between.ExecContext(ctx, "SELECT * FROM no_such_table_either"); err == nil {
			t.Fatal("the statement in between did not fail")
		}
		if got, want := rows(p, "SELECT ROW_COUNT()"), rows(d, "SELECT ROW_COUNT()"); got != want {
			t.Errorf("ROW_COUNT() after %q: through Sluice %q, directly %q", q, got, want)
		}
	}
	// User variables the proxy reads back (to carry them) do not clobber
	// FOUND_ROWS() or ROW_COUNT(): @rownum-style pagination with
	// SQL_CALC_FOUND_ROWS, and an UPDATE that assigns a variable.
	testenv.MustCLI(t, b.Port, "root", "test", "DELETE FROM sbtest.diag_rc_p; DELETE FROM sbtest.diag_rc_d; "+
		"INSERT INTO sbtest.diag_rc_p VALUES (1),(2),(3),(4),(5),(6),(7); INSERT INTO sbtest.diag_rc_d VALUES (1),(2),(3),(4),(5),(6),(7)")
	p2, d2 := conn(proxied), conn(direct)
	for _, seq := range [][2]string{
		{"SELECT SQL_CALC_FOUND_ROWS @v := a FROM diag_rc_%s LIMIT 2", "SELECT FOUND_ROWS()"},
		{"SELECT SQL_CALC_FOUND_ROWS a INTO @w FROM diag_rc_%s LIMIT 1", "SELECT FOUND_ROWS()"},
		{"UPDATE diag_rc_%s SET a = (@u := a) WHERE a < 5", "SELECT ROW_COUNT()"},
	} {
		rows(p2, fmt.Sprintf(seq[0], "p"))
		rows(d2, fmt.Sprintf(seq[0], "d"))
		if got, want := rows(p2, seq[1]), rows(d2, seq[1]); got != want {
			t.Errorf("%s after %q: through Sluice %q, directly %q", seq[1], seq[0], got, want)
		}
	}
	p2.Close() // it holds the one connection (user variables)
	// The servers are MariaDB and the proxy says MySQL 8.0.11 (ProxySQL's
	// default mysql-server_version): said once in the log, with the fix.
	waitLog(t, s, "set mysql-server_version to the servers' version")
	// Another session's warnings and errors stay its own.
	a := conn(proxied)
	if _, err := a.ExecContext(ctx, "SELECT CAST('secretW0' AS INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	a.ExecContext(ctx, "SELECT * FROM secretE0")
	a.Close()
	// Its session held the one connection (p2's user variables); then
	// another session.
	proxied.Close()
	other := conn(testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", ""))
	if _, err := other.ExecContext(ctx, "DO 1"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SHOW WARNINGS", "SHOW ERRORS"} {
		if got := rows(other, q); strings.Contains(got, "secret") {
			t.Errorf("%s in another session shows %q", q, got)
		}
	}
	other.Close()

	// GET DIAGNOSTICS reads the session's own previous statement, not the
	// area another session's error left on the pooled connection; the same
	// two-session sequence through Sluice and directly.
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.diag_gd (id INT PRIMARY KEY); REPLACE INTO sbtest.diag_gd VALUES (1)")
	get := []string{
		"GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT, @e = MYSQL_ERRNO, @s = RETURNED_SQLSTATE, @o = CLASS_ORIGIN; SELECT @m, @e, @s, @o",
		"GET CURRENT DIAGNOSTICS @n = NUMBER, @`r c` = ROW_COUNT; SELECT @n, @`r c`",
		"SET @k = 1; GET DIAGNOSTICS CONDITION @k @m = MESSAGE_TEXT; SELECT @m",
		"GET DIAGNOSTICS CONDITION 2 @m = MESSAGE_TEXT; SELECT @m",
	}
	for _, first := range []string{"INSERT INTO diag_gd VALUES (1)", "DELETE FROM diag_gd WHERE id = 2", "SELECT 1"} {
		for _, g := range get {
			var answers [2]string
			for i, port := range []int{s.DataPort, b.Port} {
				// Sessions of their own, closed at the end: a session
				// that set user variables keeps the one connection.
				db := testenv.DB(t, port, "sbtest", "sbtest", "sbtest", "")
				a, between := conn(db), conn(db)
				a.ExecContext(ctx, first)
				between.ExecContext(ctx, "SELECT * FROM secretE1")
				var stmts []string
				for st := range strings.SplitSeq(g, "; ") {
					stmts = append(stmts, st)
				}
				if strings.HasPrefix(stmts[0], "SET") {
					// The variable first, then the statement whose
					// diagnostics are read, then GET DIAGNOSTICS. (The
					// user variable keeps the one connection with the
					// session: no other session's statement in between.)
					if _, err := a.ExecContext(ctx, stmts[0]); err != nil {
						t.Fatal(err)
					}
					a.ExecContext(ctx, first)
					stmts = stmts[1:]
				}
				if _, err := a.ExecContext(ctx, stmts[0]); err != nil {
					t.Fatalf("%s after %q: %v", stmts[0], first, err)
				}
				answers[i] = rows(a, stmts[1])
				a.Close()
				between.Close()
				db.Close()
			}
			if answers[0] != answers[1] || strings.Contains(answers[0], "secret") {
				t.Errorf("after %q, %s: through Sluice %q, directly %q", first, g, answers[0], answers[1])
			}
		}
	}
}

// TestWarningCountPastOKPacket: a statement with more warnings than the OK
// packet's 16 bits count: @@warning_count and SHOW COUNT(*) WARNINGS go to
// the connection that holds them (mysql-handle_warnings keeps it with the
// session), as GET DIAGNOSTICS does; direct gives the same.
func TestWarningCountPastOKPacket(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	ctx := context.Background()
	for _, port := range []int{s.DataPort, b.Port} {
		c := connOf(t, testenv.DB(t, port, "sbtest", "sbtest", "sbtest", ""))
		for _, q := range []string{"SELECT @@warning_count", "SHOW COUNT(*) WARNINGS", "GET DIAGNOSTICS @n = NUMBER"} {
			var sum sql.NullInt64
			if err := c.QueryRowContext(ctx, "SELECT SUM(CAST(CONCAT('x', seq) AS INT)) FROM seq_1_to_70000").Scan(&sum); err != nil {
				t.Fatal(err)
			}
			var n int64
			if strings.HasPrefix(q, "GET") {
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
				q = "SELECT @n"
			}
			if err := c.QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			want := int64(70000)
			if q == "SELECT @n" {
				want = 64 // the conditions kept: max_error_count
			}
			if n != want {
				t.Errorf("port %d: %s after 70 000 warnings: %d, want %d", port, q, n, want)
			}
		}
		c.Close()
	}
}
