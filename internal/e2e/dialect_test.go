package e2e

import (
	"context"
	"database/sql"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestHiddenStateByDialect: where a string literal ends depends on the
// client character set (gbk's 縗 is BF 5C: its second byte is a
// backslash) and on executable comments some servers run and others
// skip. A state change the server runs where the proxy read a string or a
// comment stayed on the connection when it went back to the pool: the
// next session, on the same connection, got time_zone +05:00 (or another
// schema, or autocommit=0). The only server allows one connection, so the
// second session gets the one the first used.
func TestHiddenStateByDialect(t *testing.T) {
	s, _ := multiplexSetup(t, 1, "SET mysql-connect_timeout_server_max=3000; LOAD MYSQL VARIABLES TO RUNTIME;")
	ctx := context.Background()
	for _, c := range []struct {
		name, params, q string
	}{
		{"gbk string", "charset=gbk&multiStatements=true", "SELECT '\xbf\x5c'; SET time_zone='+05:00'"},
		{"gbk name", "charset=gbk&multiStatements=true", "SELECT 1 AS `a\x81\x60`; SET time_zone='+05:00'"},
		{"MariaDB executable comment", "", "/*M!100000 SET time_zone='+05:00' */"},
		{"versioned comment", "multiStatements=true", "SELECT 1; /*!999999 SELECT 2 */ SET time_zone='+05:00'"},
		{"no backslash escapes", "multiStatements=true&sql_mode=%27NO_BACKSLASH_ESCAPES%27", `SELECT 'a\'; SET time_zone='+05:00'`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", c.params)
			a.SetMaxIdleConns(0)
			rows, err := a.QueryContext(ctx, c.q)
			if err != nil {
				t.Fatalf("%q: %v", c.q, err)
			}
			for more := true; more; more = rows.NextResultSet() {
				for rows.Next() {
				}
			}
			rows.Close()
			a.Close() // the session ends; its connection is reset or closed, never pooled as it is

			b := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
			var tz string
			if err := b.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&tz); err != nil {
				t.Fatal(err)
			}
			b.Close() // reading @@time_zone keeps the connection with b
			if tz != "SYSTEM" {
				t.Errorf("after %q in another session, this one has time_zone %s", c.q, tz)
			}
			// The first session itself still sees what it set.
			a2 := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", c.params)
			conn, err := a2.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, c.q); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&tz); err != nil || tz != "+05:00" {
				t.Errorf("the session that ran %q has time_zone %s (%v)", c.q, tz, err)
			}
			conn.Raw(func(any) error { return sql.ErrConnDone })
		})
	}
}

// TestNonASCIISchemaAcrossCharsets: a session's schema name is in its own
// character set, and COM_INIT_DB's name is read in the connection's: the
// schema went to the connection before the session's SET NAMES, so on a
// connection another session of another character set had used, a latin1
// session's `dbé` was read as utf8mb4 (ERR 1300 or another schema).
func TestNonASCIISchemaAcrossCharsets(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE DATABASE IF NOT EXISTS `dbé`")
	t.Cleanup(func() { testenv.MustCLI(t, b.Port, "root", "test", "DROP DATABASE IF EXISTS `dbé`") })
	ctx := context.Background()
	a := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "charset=latin1")
	ac, err := a.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if _, err := ac.ExecContext(ctx, "USE `db\xe9`"); err != nil {
		t.Fatal(err)
	}
	other := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "charset=utf8mb4")
	for range 2 {
		var db string
		if err := ac.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil || db != "db\xe9" {
			t.Fatalf("the latin1 session's schema: %q, %v", db, err)
		}
		var one int
		if err := other.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
	}
}
