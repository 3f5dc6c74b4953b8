package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// TestNoBackslashDefaultLearnedAtLogin: drivers escape strings by the
// NO_BACKSLASH_ESCAPES bit of the status they last saw, and a new client's
// first statuses are the proxy's (the greeting, PyMySQL's SET autocommit
// answered by the proxy). With the servers' global sql_mode at
// NO_BACKSLASH_ESCAPES the proxy learned it only from a later successful
// query of a session without its own sql_mode: after a first query that
// failed, the next client escaped with backslashes and its string broke
// (an injection, with a crafted value). The login of every new backend
// connection now says it.
func TestNoBackslashDefaultLearnedAtLogin(t *testing.T) {
	t.Parallel() // own server: see doc.go
	own := testenv.OwnBackends(t, 1)
	testenv.MustCLI(t, own.Backends[0].Port, "root", "test", "SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES'")
	s := startIn(t, t.TempDir(), "", false)
	routeTo(t, s, 0, own.Backends[0].Port)
	py := `import sys, pymysql
a = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="sbtest", password="sbtest", database="sbtest", connect_timeout=10)
try:
    a.cursor().execute("SELECT * FROM no_such_table")
except pymysql.err.ProgrammingError:
    pass
b = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="sbtest", password="sbtest", database="sbtest", connect_timeout=10)
print("greeting", b.server_status & 0x200)
cur = b.cursor()
cur.execute("SELECT %s", ("it's a\\b",))
print("value", cur.fetchone()[0])`
	out, err := exec.Command("/usr/bin/python3", "-c", py, itoa(s.DataPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "greeting 512") || !strings.Contains(string(out), `value it's a\b`) {
		t.Fatalf("PyMySQL against a NO_BACKSLASH_ESCAPES server: %v\n%s", err, out)
	}
}

// TestUntrackedCharsetChangeFollowed: a change of the client character
// set the proxy cannot track (SET character_set_client = @cs, a SET NAMES
// further into a multi-statement query) runs on the server; the proxy kept
// reading the session's SQL in the old character set, and a gbk string
// whose second byte is a backslash hid a DROP from a blocking rule. The
// character set is now read back from the server after such a statement.
func TestUntrackedCharsetChangeFollowed(t *testing.T) {
	s, b := multiplexSetup(t, 10, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, error_msg, apply) VALUES (1, 1, 'DROP', 'blocked', 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.keepme (a INT)")
	ctx := context.Background()
	for _, change := range []string{"SELECT 1; SET NAMES gbk", "SET @cs = 'gbk'; SET character_set_client = @cs"} {
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "multiStatements=true")
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, change); err != nil {
			t.Fatal(err)
		}
		_, err = c.ExecContext(ctx, "SELECT hex('\x95\\') , 1 ; DROP TABLE sbtest.keepme #'")
		if err == nil || !strings.Contains(err.Error(), "blocked") {
			t.Errorf("after %q the DROP hidden by a gbk character: %v, want the rule's error", change, err)
		}
		c.Close()
	}
	if out := testenv.MustCLI(t, b.Port, "root", "test", "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='sbtest' AND table_name='keepme'"); !strings.Contains(out, "1") {
		t.Errorf("the table was dropped")
	}
}

// TestFirstSessionReadsServersMode: the first session after a start, before
// any connection of the proxy's own had logged in, was read with backslash
// escapes although the servers' global sql_mode has NO_BACKSLASH_ESCAPES:
// `SELECT 'a\'; DROP …` digested as `SELECT ?` and passed a blocking rule.
// The monitor's logins, from start-up, now say the servers' default.
func TestFirstSessionReadsServersMode(t *testing.T) {
	t.Parallel() // own server: see doc.go
	own := testenv.OwnBackends(t, 1)
	testenv.MustCLI(t, own.Backends[0].Port, "root", "test",
		"SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES'; CREATE TABLE IF NOT EXISTS sbtest.victim (a INT)")
	s := startIn(t, t.TempDir(), "", true)
	admin(t, s, `INSERT INTO mysql_query_rules(rule_id, active, match_digest, error_msg, apply) VALUES (1, 1, 'DROP', 'blocked', 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	routeTo(t, s, 0, own.Backends[0].Port)
	deadline := time.Now().Add(10 * time.Second)
	for adminInt(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_connect_log WHERE port=%d AND connect_error IS NULL", own.Backends[0].Port)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the monitor never logged in")
		}
		time.Sleep(100 * time.Millisecond)
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "multiStatements=true")
	_, err := db.ExecContext(context.Background(), `SELECT 'a\'; DROP TABLE sbtest.victim #'`)
	if err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("the first session's hidden DROP: %v, want the rule's error", err)
	}
}
