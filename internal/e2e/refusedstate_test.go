package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestRefusedStateKeepsPinnedSession: a USE of a schema that does not
// exist and a SET the server refuses, in a session holding its connection
// (a transaction, a temporary table), fail themselves, as on a direct
// connection, and the session keeps its transaction and its table. They
// used to be answered OK; the next statement got the error and the
// connection was reset to clear the refused state: the transaction's rows
// were rolled back silently and the statements after it autocommitted.
func TestRefusedStateKeepsPinnedSession(t *testing.T) {
	s, _, table := withTable(t, "refused", "a INT")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	refused := func(q, code string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), code) {
			t.Fatalf("%s: %v, want ERR %s", q, err, code)
		}
	}
	must("BEGIN")
	must("INSERT INTO " + table + " VALUES (1)")
	refused("USE no_such_schema_here", "1049")
	refused("SET time_zone = 'Bogus/Zone'", "1298")
	refused("SET sql_mode = 'NOT_A_MODE'", "1231")
	must("INSERT INTO " + table + " VALUES (2)")
	must("ROLLBACK")
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after ROLLBACK the table has %d rows (%v): the transaction was split", n, err)
	}

	// A temporary table pins the session outside a transaction.
	must("CREATE TEMPORARY TABLE tmp_refused (a INT)")
	must("INSERT INTO tmp_refused VALUES (7)")
	refused("SET time_zone = 'Bogus/Zone'", "1298")
	refused("USE no_such_schema_here", "1049")
	if err := conn.QueryRowContext(ctx, "SELECT a FROM tmp_refused").Scan(&n); err != nil || n != 7 {
		t.Fatalf("the temporary table after the refused SET and USE: %d, %v", n, err)
	}
	// What the server accepts still applies, and a later USE works.
	must("SET time_zone = '+03:00'")
	must("USE mysql")
	var tz, schema string
	if err := conn.QueryRowContext(ctx, "SELECT @@time_zone, DATABASE()").Scan(&tz, &schema); err != nil || tz != "+03:00" || schema != "mysql" {
		t.Fatalf("time_zone %q, schema %q (%v), want +03:00 and mysql", tz, schema, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT a FROM sbtest.tmp_refused").Scan(&n); err != nil || n != 7 {
		t.Fatalf("the temporary table after USE mysql: %d, %v", n, err)
	}

	// autocommit toggles, as drivers send them around every transaction,
	// are not sent one by one to the held connection: the next
	// statement's sync folds them (3 statements an iteration reach the
	// server: the SET it needs, the UPDATE, the COMMIT).
	questions := func() int {
		t.Helper()
		var name string
		var v int
		if err := conn.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	q0 := questions()
	for range 20 {
		for _, q := range []string{"SET autocommit=0", "UPDATE sbtest.tmp_refused SET a = a", "COMMIT", "SET autocommit=1"} {
			must(q)
		}
	}
	d := questions() - q0
	t.Logf("20 transactions with autocommit toggles: %d statements on the server", d)
	if d > 20*3+2 {
		t.Fatalf("20 transactions with autocommit toggles sent %d statements to the server, want at most %d", d, 20*3+2)
	}
}

// TestErrorKeepsTransaction: a statement that fails inside a transaction —
// a missing table, a duplicate key through a prepared statement, a query
// stopped by KILL QUERY — leaves the session on its connection with its
// transaction, as on a server. An ERR packet carries no status: read as
// "not in a transaction", the connection went back to the pool with the
// transaction open; the session's next statement ran elsewhere without
// its rows, and another session ran inside its transaction.
func TestErrorKeepsTransaction(t *testing.T) {
	s, b, table := withTable(t, "errtrx", "id INT PRIMARY KEY")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	conn, id := sessionOf(ctx, t, db)
	other := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	count := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		t.Helper()
		var n int
		if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(after string) {
		t.Helper()
		// The other session first: a connection back in the pool is the
		// next one handed out.
		if n := count(other); n != 0 {
			t.Fatalf("after %s another session sees %d uncommitted rows", after, n)
		}
		if n := count(conn); n != 1 {
			t.Fatalf("after %s the session sees %d rows of its transaction, want 1", after, n)
		}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT * FROM no_such_table_here"); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	check("a failed text query")
	st, err := conn.PrepareContext(ctx, "INSERT INTO "+table+" VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExecContext(ctx, 1); err == nil || !strings.Contains(err.Error(), "1062") {
		t.Fatalf("a duplicate key: %v", err)
	}
	st.Close()
	check("a failed prepared statement")
	done := make(chan error, 1)
	go func() { _, err := conn.ExecContext(ctx, "SELECT SLEEP(5)"); done <- err }()
	time.Sleep(300 * time.Millisecond)
	if _, err := other.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "1317") {
		t.Fatalf("the killed query: %v", err)
	}
	check("a query stopped by KILL QUERY")
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := count(conn); n != 0 {
		t.Fatalf("after ROLLBACK: %d rows", n)
	}

	// A statement that fails may have opened the transaction itself
	// (autocommit=0, a procedure's writes before its error): the
	// connection stays with the session and the ROLLBACK reaches the
	// server, as ProxySQL's unknown_transaction_status has it. The ERR
	// kept the status from before the statement, "no transaction": the
	// ROLLBACK was answered by the proxy, and the rows were committed by
	// whoever got the connection next.
	proc := strings.Replace(table, "sbtest.", "sbtest.p_", 1)
	direct := testenv.DB(t, b.Port, "root", "test", "", "")
	if _, err := direct.ExecContext(ctx, "CREATE PROCEDURE "+proc+"() BEGIN INSERT INTO "+table+" VALUES (300); SELECT * FROM no_such_table_here; END"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendSQL(t, b, "DROP PROCEDURE IF EXISTS "+proc) })
	if _, err := conn.ExecContext(ctx, "SET autocommit=0"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "CALL "+proc+"()"); err == nil || !strings.Contains(err.Error(), "1146") {
		t.Fatalf("CALL: %v, want ERR 1146", err)
	}
	if n := count(other); n != 0 {
		t.Fatalf("after the failed CALL another session sees %d uncommitted rows", n)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := count(conn); n != 0 {
		t.Fatalf("after the failed CALL and ROLLBACK the session sees %d rows", n)
	}
	for _, q := range []string{"COMMIT", "SET autocommit=1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(other); n != 0 {
		t.Fatalf("the rows of a rolled-back CALL were committed: %d", n)
	}
}

// withTable starts Sluice routed to one backend and makes an InnoDB table
// of cols there (named after prefix, dropped when the test ends).
func withTable(t *testing.T, prefix, cols string) (*testenv.Sluice, testenv.Backend, string) {
	t.Helper()
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.%s_%d", prefix, time.Now().UnixNano())
	backendSQL(t, bs[0], "CREATE TABLE "+table+" ("+cols+") ENGINE=InnoDB")
	t.Cleanup(func() { backendSQL(t, bs[0], "DROP TABLE IF EXISTS "+table) })
	return s, bs[0], table
}
