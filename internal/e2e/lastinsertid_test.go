package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// rwSplit starts a Sluice in front of two servers, hostgroup 0 the writer
// and 1 the reader, with the usual read/write rules (^SELECT.*FOR UPDATE →
// 0, ^SELECT → 1) and the user sbtest (default hostgroup 0). tableSQL runs
// on both servers first: the same table on each, so which one answered
// shows in the result. extraAdmin runs on the admin port after.
func rwSplit(t *testing.T, tableSQL, extraAdmin string) (*testenv.Sluice, []testenv.Backend) {
	t.Helper()
	bs := testenv.Backends(t, 2)
	for _, b := range bs {
		backendSQL(t, b, tableSQL)
	}
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0), ('root', 'test', 0);
		LOAD MYSQL USERS TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, apply)
		       VALUES (1, 1, '^SELECT.*FOR UPDATE', 0, 1), (2, 1, '^SELECT', 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;
		%s`, bs[0].Port, bs[1].Port, extraAdmin))
	return s, bs
}

// TestLastInsertIDReadWriteSplit checks LAST_INSERT_ID() and @@IDENTITY
// under read/write splitting (ProxySQL #1421): the insert runs on the
// writer, and a SELECT that the rules send to the reader must still see the
// writer's id. The reader has the same table, empty, so a query answered
// there is told apart by its result.
func TestLastInsertIDReadWriteSplit(t *testing.T) {
	s, _ := rwSplit(t, "CREATE TABLE IF NOT EXISTS sbtest.lid (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)); TRUNCATE sbtest.lid",
		"SET mysql-auto_increment_delay_multiplex=2; LOAD MYSQL VARIABLES TO RUNTIME;")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	insert := func(v string) int64 {
		t.Helper()
		res, err := c.ExecContext(ctx, "INSERT INTO lid (v) VALUES ('"+v+"')")
		if err != nil {
			t.Fatal(err)
		}
		id, err := res.LastInsertId()
		if err != nil || id == 0 {
			t.Fatalf("insert id %d, %v", id, err)
		}
		return id
	}
	// col runs a one-value query and returns its column name and value.
	col := func(q string) (string, string) {
		t.Helper()
		rows, err := c.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		names, _ := rows.Columns()
		var v sql.NullString
		if !rows.Next() {
			t.Fatalf("%s: no row (%v)", q, rows.Err())
		}
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		return names[0], v.String
	}
	rowOf := func(q string) (string, error) {
		var v string
		err := c.QueryRowContext(ctx, q).Scan(&v)
		return v, err
	}

	id := insert("a")
	want := fmt.Sprint(id)
	// The writer's connection is still held (auto_increment_delay_multiplex):
	// statements naming LAST_INSERT_ID() run there, whatever the rules say.
	if name, v := col("SELECT LAST_INSERT_ID()"); v != want || name != "LAST_INSERT_ID()" {
		t.Fatalf("SELECT LAST_INSERT_ID() on the held writer: %s=%s, want %s", name, v, want)
	}
	if v, err := rowOf("SELECT v FROM lid WHERE id = LAST_INSERT_ID()"); err != nil || v != "a" {
		t.Fatalf("row of LAST_INSERT_ID(): %q, %v (the reader answered?)", v, err)
	}
	// The delay runs out: the connection goes back to the pool, and the
	// plain forms are answered with the id the proxy saw, named as written.
	for range 3 {
		if _, err := c.ExecContext(ctx, "DO 1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"select last_insert_id()", "SELECT LAST_INSERT_ID() LIMIT 1", "SELECT @@identity;", "select  @@IDENTITY limit 1"} {
		f := strings.Fields(strings.TrimSuffix(q, ";"))
		if name, v := col(q); v != want || name != f[1] {
			t.Fatalf("%s after the delay: %s=%s, want %s=%s", q, name, v, f[1], want)
		}
	}
	// Prepared (binary protocol) too.
	st, err := c.PrepareContext(ctx, "SELECT LAST_INSERT_ID()")
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := st.QueryRowContext(ctx).Scan(&got); err != nil || got != id {
		t.Fatalf("prepared SELECT LAST_INSERT_ID(): %d, %v; want %d", got, err, id)
	}
	st.Close()
	// Any other statement is routed by the rules once the writer's
	// connection is gone: here, the reader, where the row does not exist.
	if v, err := rowOf("SELECT v FROM lid WHERE id = LAST_INSERT_ID()"); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("after the delay the reader should answer: %q, %v", v, err)
	}

	// A second insert, then a prepared read of its row: the held writer.
	id2 := insert("b")
	st, err = c.PrepareContext(ctx, "SELECT v FROM lid WHERE id = LAST_INSERT_ID() AND ? = 1")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := st.QueryRowContext(ctx, 1).Scan(&v); err != nil || v != "b" {
		t.Fatalf("prepared read of row %d: %q, %v", id2, v, err)
	}
	st.Close()

	// mysql-auto_increment_delay_multiplex_timeout_ms returns the held
	// connection to the pool once it is older than that.
	admin(t, s, "SET mysql-auto_increment_delay_multiplex=100; SET mysql-auto_increment_delay_multiplex_timeout_ms=300; LOAD MYSQL VARIABLES TO RUNTIME;")
	insert("c")
	if v, err := rowOf("SELECT v FROM lid WHERE id = LAST_INSERT_ID()"); err != nil || v != "c" {
		t.Fatalf("before the timeout: %q, %v", v, err)
	}
	time.Sleep(600 * time.Millisecond)
	if v, err := rowOf("SELECT v FROM lid WHERE id = LAST_INSERT_ID()"); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("after the timeout the reader should answer: %q, %v", v, err)
	}

	// The mariadb CLI: insert and read back in one session.
	out := testenv.MustCLI(t, s.DataPort, "root", "test",
		"INSERT INTO sbtest.lid (v) VALUES ('d'); SELECT v FROM sbtest.lid WHERE id = LAST_INSERT_ID(); SELECT LAST_INSERT_ID() = (SELECT MAX(id) FROM sbtest.lid) FOR UPDATE", "-N")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "d" || f[1] != "1" {
		t.Fatalf("mariadb CLI: %q", out)
	}
}

// TestAutocommitZeroReadWriteSplit: a session with autocommit=0 (Python's
// DB-API default) behind read/write rules. Its reads run with autocommit=1
// on the reader (mysql-enforce_autocommit_on_reads=false, ProxySQL's
// default), so they start no transaction there and the write goes to the
// writer; the transaction it opens keeps the session's statements on the
// writer until COMMIT.
func TestAutocommitZeroReadWriteSplit(t *testing.T) {
	s, bs := rwSplit(t, "CREATE TABLE IF NOT EXISTS sbtest.acz (id INT PRIMARY KEY) ENGINE=InnoDB; DELETE FROM sbtest.acz", "")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	one := func(q string) string {
		t.Helper()
		var v sql.NullString
		if err := c.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v.String
	}
	count := func(b testenv.Backend) string {
		return strings.TrimSpace(backendSQL(t, b, "SELECT COUNT(*) FROM sbtest.acz"))
	}
	exec("SET autocommit=0")
	if v := one("SELECT COUNT(*) FROM acz"); v != "0" {
		t.Fatalf("read: %s", v)
	}
	exec("INSERT INTO acz VALUES (1)")
	// In the transaction: the writer, which sees its own row.
	if v := one("SELECT COUNT(*) FROM acz"); v != "1" {
		t.Fatalf("read in the transaction: %s rows, want the writer's 1", v)
	}
	if v := one("SELECT " + portQ); v != strconv.Itoa(bs[0].Port) {
		t.Fatalf("read in the transaction ran on port %s", v)
	}
	exec("COMMIT")
	if w, r := count(bs[0]), count(bs[1]); w != "1" || r != "0" {
		t.Fatalf("after COMMIT: writer %s rows, reader %s; the INSERT must go to the writer", w, r)
	}
	// After COMMIT, reads are the reader's again, still without a transaction.
	if v := one("SELECT " + portQ); v != strconv.Itoa(bs[1].Port) {
		t.Fatalf("read after COMMIT ran on port %s", v)
	}
	// The session's own setting, where the server would say 1.
	if v := one("SELECT @@autocommit"); v != "0" {
		t.Fatalf("SELECT @@autocommit = %s", v)
	}
	exec("INSERT INTO acz VALUES (2)")
	exec("ROLLBACK")
	if w := count(bs[0]); w != "1" {
		t.Fatalf("ROLLBACK: writer has %s rows", w)
	}

	// PyMySQL, whose connections start with autocommit off (DB-API): its
	// SELECT, INSERT, commit() — the row on the writer only; and its
	// get_autocommit(), read from the status of the last packet, stays
	// False after a read the reader ran with autocommit=1.
	py := `import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="sbtest", password="sbtest", database="sbtest", connect_timeout=10)
cur = c.cursor()
cur.execute("SELECT COUNT(*) FROM acz")
print("autocommit", c.get_autocommit())
cur.execute("INSERT INTO acz VALUES (10)")
c.commit()
cur.execute("SELECT COUNT(*) FROM acz WHERE id = 10")
print("read", cur.fetchone()[0])
c.close()`
	out, err := osexec.Command("/usr/bin/python3", "-c", py, strconv.Itoa(s.DataPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "autocommit False") || !strings.Contains(string(out), "read 0") {
		t.Fatalf("PyMySQL: %v\n%s", err, out)
	}
	if w, r := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM sbtest.acz WHERE id = 10")),
		strings.TrimSpace(backendSQL(t, bs[1], "SELECT COUNT(*) FROM sbtest.acz WHERE id = 10")); w != "1" || r != "0" {
		t.Fatalf("PyMySQL's INSERT: writer %s, reader %s", w, r)
	}

	// WordPress's connect statement (an expression for sql_mode, one for
	// wait_timeout) and MariaDB's SET STATEMENT … FOR: no hostgroup lock,
	// the computed sql_mode follows the session to the reader.
	c3, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	for _, q := range []string{"SET @@session.time_zone = '+01:00', @@session.sql_mode = REPLACE(REPLACE(REPLACE(@@sql_mode, 'ONLY_FULL_GROUP_BY', ''), '_QUOTES', ''), 'ANSI', ''), " +
		"@@session.wait_timeout = GREATEST(CONVERT(COALESCE(@@wait_timeout, 0), SIGNED), 60), NAMES utf8mb4 COLLATE utf8mb4_unicode_520_ci",
		"SET STATEMENT max_statement_time=5 FOR SELECT 1"} {
		if _, err := c3.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	var tz, strict, wp string
	if err := c3.QueryRowContext(ctx, "SELECT @@time_zone, @@sql_mode LIKE '%ONLY_FULL_GROUP_BY%', "+portQ).Scan(&tz, &strict, &wp); err != nil ||
		tz != "+01:00" || strict != "0" || wp != strconv.Itoa(bs[1].Port) {
		t.Fatalf("after WordPress's SET: time_zone %q, ONLY_FULL_GROUP_BY %s, port %s, %v", tz, strict, wp, err)
	}

	// true: every statement at autocommit=0, as on a direct connection —
	// a read then opens a transaction where it runs.
	admin(t, s, "SET mysql-enforce_autocommit_on_reads='true'; LOAD MYSQL VARIABLES TO RUNTIME;")
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.ExecContext(ctx, "SET autocommit=0"); err != nil {
		t.Fatal(err)
	}
	var ac, port string
	if err := c2.QueryRowContext(ctx, "SELECT @@autocommit, "+portQ).Scan(&ac, &port); err != nil || ac != "0" || port != strconv.Itoa(bs[1].Port) {
		t.Fatalf("enforced read: autocommit %s on %s, %v", ac, port, err)
	}
	if _, err := c2.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}

// TestLastInsertIDSetBySelect: SELECT LAST_INSERT_ID(42) sets the id the
// session's next LAST_INSERT_ID() returns, as on a server, though the
// proxy answers that one itself (its connection went back to the pool).
func TestLastInsertIDSetBySelect(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	ctx := context.Background()
	for _, port := range []int{s.DataPort, b.Port} {
		c, _ := oneConn(t, port)
		var id string
		if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID(42)").Scan(&id); err != nil || id != "42" {
			t.Fatalf("port %d: SELECT LAST_INSERT_ID(42): %q %v", port, id, err)
		}
		for _, q := range []string{"SELECT LAST_INSERT_ID()", "SELECT @@identity"} {
			if err := c.QueryRowContext(ctx, q).Scan(&id); err != nil || id != "42" {
				t.Errorf("port %d: %s after LAST_INSERT_ID(42): %q %v", port, q, id, err)
			}
		}
	}
}

// TestLastInsertIDExpression: LAST_INSERT_ID(expr) in a SELECT sets the
// connection's id, and the plain LAST_INSERT_ID() the proxy answers gives
// it after, as the server would — for an expression, a column and a
// prepared statement's parameter, not only a literal (they gave 0).
func TestLastInsertIDExpression(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	routeTo(t, s, 1, b.Port)
	backendSQL(t, b, "CREATE OR REPLACE TABLE sbtest.lid_expr (id INT); INSERT INTO sbtest.lid_expr VALUES (3)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	c := connOf(t, db)
	ctx := context.Background()
	for _, tc := range []struct {
		q    string
		args []any
		want int64
	}{
		{"SELECT LAST_INSERT_ID(40+2)", nil, 42},
		{"SELECT LAST_INSERT_ID(id) FROM lid_expr WHERE id = 3", nil, 3},
		{"SELECT LAST_INSERT_ID(?)", []any{55}, 55},
	} {
		rows, err := c.QueryContext(ctx, tc.q, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		rows.Close()
		var id int64
		if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&id); err != nil || id != tc.want {
			t.Fatalf("after %s: LAST_INSERT_ID() = %d (%v), want %d", tc.q, id, err, tc.want)
		}
	}
}

// TestAutoIncDelayTimeoutWhileIdle: the connection kept after an insert
// (auto_increment_delay_multiplex) goes back to the pool when
// mysql-auto_increment_delay_multiplex_timeout_ms has passed even if the
// session sends nothing more, as ProxySQL's test_auto_increment_delay_
// multiplex-t checks. It was checked only at the session's next command:
// sessions that inserted and then sat idle held a connection each.
func TestAutoIncDelayTimeoutWhileIdle(t *testing.T) {
	s, b := multiplexSetup(t, 20, "SET mysql-auto_increment_delay_multiplex=5; SET mysql-auto_increment_delay_multiplex_timeout_ms=500; LOAD MYSQL VARIABLES TO RUNTIME;")
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.ai_idle (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	ctx := context.Background()
	for i := range 8 {
		c, _ := oneConn(t, s.DataPort)
		if _, err := c.ExecContext(ctx, "INSERT INTO ai_idle (v) VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	used := func() int64 {
		return adminInt(t, s, fmt.Sprintf("SELECT ConnUsed FROM stats_mysql_connection_pool WHERE srv_port = %d", b.Port))
	}
	if n := used(); n == 0 {
		t.Fatal("no connection kept after the inserts")
	}
	deadline := time.Now().Add(5 * time.Second)
	for used() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still held by idle sessions 5 s after their inserts (timeout 500 ms)", used())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
