package e2e

import (
	"context"
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
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.refused_%d", time.Now().UnixNano())
	backendSQL(t, bs[0], "CREATE TABLE "+table+" (a INT) ENGINE=InnoDB")
	t.Cleanup(func() { backendSQL(t, bs[0], "DROP TABLE IF EXISTS "+table) })
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
}
