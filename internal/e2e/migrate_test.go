package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestOfflineSoftDrainsSessions: three real servers in one hostgroup and
// 24 sessions pinned to them by their state (a user variable, USE, SET
// NAMES, sql_mode). One server goes OFFLINE_SOFT: within 5 s no session is
// on it any more, each still has its state, and nothing failed. A session
// in an open transaction there finishes it there (it sees its own
// uncommitted row) and moves after COMMIT.
func TestOfflineSoftDrainsSessions(t *testing.T) {
	bs := testenv.Backends(t, 3)
	for _, b := range bs {
		backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS drain_db; CREATE TABLE IF NOT EXISTS drain_db.t (a INT)")
	}
	s := startFresh(t, "")
	routeTo(t, s, 1, bs[0].Port, bs[1].Port, bs[2].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(30)
	ctx := context.Background()
	one := func(c *sql.Conn, q string) string {
		t.Helper()
		var v sql.NullString
		if err := c.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v.String
	}
	exec := func(c *sql.Conn, q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const state = "SELECT CONCAT_WS('|', @v, DATABASE(), @@character_set_client, @@sql_mode)"
	var sessions []*sql.Conn
	perPort := map[string]int{}
	for i := range 24 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		exec(c, fmt.Sprintf("SET @v = %d", i))
		exec(c, "USE drain_db")
		exec(c, "SET NAMES utf8mb4")
		exec(c, "SET SESSION sql_mode = 'ANSI_QUOTES'")
		perPort[one(c, "SELECT @@port")]++
		sessions = append(sessions, c)
	}
	off := strconv.Itoa(bs[0].Port)
	if perPort[off] == 0 {
		t.Fatalf("no session on the server to drain: %v", perPort)
	}
	// A session with an open transaction on the server to drain.
	var trx *sql.Conn
	for trx == nil {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		exec(c, "SET @v = 'trx'")
		if one(c, "SELECT @@port") == off {
			trx = c
		}
	}
	exec(trx, "BEGIN")
	exec(trx, "INSERT INTO drain_db.t VALUES (7)")

	admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port=%s; LOAD MYSQL SERVERS TO RUNTIME;", off))
	start := time.Now()
	used := func() int64 {
		return adminInt(t, s, "SELECT ConnUsed FROM stats_mysql_connection_pool WHERE srv_port="+off)
	}
	for used() > 1 { // the open transaction stays
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after 10 s, %d connections still in use on the OFFLINE_SOFT server", used())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(start)
	if drained > 5*time.Second {
		t.Errorf("draining %d sessions took %v, want within 5 s", perPort[off], drained)
	}
	for i, c := range sessions {
		if p := one(c, "SELECT @@port"); p == off {
			t.Fatalf("session %d is still on the OFFLINE_SOFT server", i)
		}
		if got, want := one(c, state), fmt.Sprintf("%d|drain_db|utf8mb4|ANSI_QUOTES", i); got != want {
			t.Fatalf("session %d state after the move: %q, want %q", i, got, want)
		}
	}
	// The transaction finishes where it began and sees its own row.
	if p := one(trx, "SELECT @@port"); p != off {
		t.Fatalf("the open transaction left its server (now %s)", p)
	}
	if n := one(trx, "SELECT COUNT(*) FROM drain_db.t WHERE a = 7"); n == "0" {
		t.Fatal("the transaction does not see its own uncommitted row")
	}
	exec(trx, "ROLLBACK")
	if p := one(trx, "SELECT @@port"); p == off {
		t.Fatal("the session did not move after its transaction ended")
	}
	if v := one(trx, "SELECT @v"); v != "trx" {
		t.Fatalf("@v after the move: %q", v)
	}
	rows := adminRows(t, s, "SELECT reason, outcome, SUM(count_star) FROM stats_mysql_migrations GROUP BY reason, outcome")
	if len(rows) != 1 || rows[0][0] != "status" || rows[0][1] != "success" {
		t.Fatalf("stats_mysql_migrations: %v", rows)
	}
	if n, _ := strconv.Atoi(rows[0][2]); n != perPort[off]+1 {
		t.Errorf("%d migrations counted, want %d", n, perPort[off]+1)
	}
	t.Logf("sessions per port before: %v; %d drained off port %s in %v; migrations %v", perPort, perPort[off], off,
		drained.Round(time.Millisecond), strings.Join(rows[0], " "))
}

// TestOfflineHardAndRemoval: as ProxySQL, a server set OFFLINE_HARD, or
// deleted from mysql_servers and LOADed, serves no further statement of a
// session pinned to it. A session whose state the proxy carries (@x)
// continues on another server with it; one holding a temporary table, or
// in a transaction, gets ERR 1927 naming what was lost and stays usable —
// the one in a transaction whatever its next statement is: a COMMIT the
// proxy would have answered itself gets the error, never OK.
func TestOfflineHardAndRemoval(t *testing.T) {
	bs := testenv.Backends(t, 3)
	s := startFresh(t, "")
	admin(t, s, `
		SET mysql-balance_policy='connection'; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 1, bs[0].Port, bs[1].Port, bs[2].Port)
	for _, b := range bs {
		testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.hard_trx (id INT PRIMARY KEY); DELETE FROM sbtest.hard_trx")
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(60)
	ctx := context.Background()
	// sessionOn opens sessions until one lands on port, with setup run
	// first.
	sessionOn := func(port int, setup ...string) *sql.Conn {
		t.Helper()
		for range 40 {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			for _, q := range setup {
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			var p int
			if err := c.QueryRowContext(ctx, "SELECT @@port").Scan(&p); err != nil {
				t.Fatal(err)
			}
			if p == port {
				return c
			}
		}
		t.Fatalf("no session landed on %d", port)
		return nil
	}
	check := func(what string, port int, down func()) {
		t.Helper()
		vars := sessionOn(port, "SET @x = 41")
		temp := sessionOn(port, "SET @x = 42", "CREATE TEMPORARY TABLE tt (a INT)")
		trx := sessionOn(port, "SET @x = 43", "BEGIN")
		// Not carried either, and were not named as pins: such a session
		// went on elsewhere as if nothing was lost.
		handler := sessionOn(port, "SET @x = 44", "HANDLER hard_trx OPEN AS hh")
		backup := sessionOn(port, "SET @x = 45", "BACKUP LOCK sbtest.hard_trx")
		committer := sessionOn(port, "BEGIN", "INSERT INTO hard_trx VALUES (CONNECTION_ID())")
		down()
		if _, err := committer.ExecContext(ctx, "COMMIT"); err == nil || !strings.Contains(err.Error(), "1927") {
			t.Fatalf("%s: COMMIT of a transaction whose server left: %v, want ERR 1927", what, err)
		}
		for _, b := range bs {
			if out := testenv.MustCLI(t, b.Port, "root", "test", "SELECT COUNT(*) FROM sbtest.hard_trx", "-N"); strings.TrimSpace(out) != "0" {
				t.Fatalf("%s: the lost transaction's row is on %d", what, b.Port)
			}
		}
		var x, p int
		if err := vars.QueryRowContext(ctx, "SELECT @x, @@port").Scan(&x, &p); err != nil || x != 41 || p == port {
			t.Fatalf("%s: the session with @x: @x=%d port=%d err=%v", what, x, p, err)
		}
		for _, c := range []struct {
			conn *sql.Conn
			lost string
		}{{temp, "temporary tables"}, {trx, "an open transaction"}, {handler, "an open HANDLER"}, {backup, "BACKUP LOCK"}} {
			_, err := c.conn.ExecContext(ctx, "SELECT 1")
			if err == nil || !strings.Contains(err.Error(), "1927") || !strings.Contains(err.Error(), c.lost) {
				t.Fatalf("%s: want ERR 1927 naming %q, got %v", what, c.lost, err)
			}
			if c.conn == trx {
				// A lost transaction: statements are refused until the
				// client ends it, so that the rest of it cannot
				// autocommit piece by piece.
				if _, err := c.conn.ExecContext(ctx, "SELECT 2"); err == nil || !strings.Contains(err.Error(), "until ROLLBACK") {
					t.Fatalf("%s: a statement after the lost transaction's error: %v, want it refused", what, err)
				}
				if _, err := c.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
					t.Fatalf("%s: ROLLBACK after the lost transaction: %v", what, err)
				}
			}
			err = c.conn.QueryRowContext(ctx, "SELECT @@port").Scan(&p)
			if err != nil || p == port {
				t.Fatalf("%s: after the error: port %d, %v", what, p, err)
			}
		}
	}
	check("OFFLINE_HARD", bs[0].Port, func() {
		admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME;", bs[0].Port))
	})
	check("removed", bs[1].Port, func() {
		admin(t, s, fmt.Sprintf("DELETE FROM mysql_servers WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME;", bs[1].Port))
	})
	for _, p := range []int{bs[0].Port, bs[1].Port} {
		n := adminInt(t, s, fmt.Sprintf("SELECT COUNT(*) FROM stats_mysql_connection_pool WHERE srv_port=%d AND ConnUsed > 0", p))
		if n != 0 {
			t.Errorf("port %d still has connections in use", p)
		}
	}
	rows := adminRows(t, s, "SELECT reason, outcome, SUM(count_star) FROM stats_mysql_migrations GROUP BY reason, outcome")
	t.Logf("OFFLINE_HARD and removal: @x moved, temporary table, transaction, HANDLER and backup lock reported lost (1927); migrations %v", rows)
}

// TestMoveKeepsServerState: a session that moves off an OFFLINE_SOFT
// server keeps what it had there.
//   - LAST_INSERT_ID() in an expression (run by the server, not answered
//     by the proxy) gives the session's insert id after the move, not 0.
//   - A PREPARE that failed leaves no statement of its name: the move does
//     not bring back the one it replaced (1243, as on the server).
func TestMoveKeepsServerState(t *testing.T) {
	bs := testenv.Backends(t, 2)
	for _, b := range bs {
		backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS move_db; CREATE TABLE IF NOT EXISTS move_db.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	}
	s := startFresh(t, "")
	routeTo(t, s, 1, bs[0].Port, bs[1].Port)
	c, ctx := oneConn(t, s.DataPort)
	one := func(q string) string { t.Helper(); return queryOne(t, c, q) }
	exec := func(q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	status := func(port, st string) {
		admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='%s' WHERE port=%s; LOAD MYSQL SERVERS TO RUNTIME", st, port))
	}
	// moved drives commands until the session has left port.
	moved := func(port string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for one("SELECT @@port") == port {
			if time.Now().After(deadline) {
				t.Fatalf("the session did not leave the OFFLINE_SOFT server %s", port)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	exec("SET @pin = 1") // state the proxy carries: the session keeps one connection

	exec("INSERT INTO move_db.t (v) VALUES (1)")
	id := one("SELECT LAST_INSERT_ID()")
	// An explicit id: the OK packet reports it, LAST_INSERT_ID() keeps
	// the generated one (the move used to replay the explicit one).
	exec("INSERT INTO move_db.t (id, v) VALUES (2000000000, 2) ON DUPLICATE KEY UPDATE v = v + 1")
	port := one("SELECT @@port")
	status(port, "OFFLINE_SOFT")
	moved(port)
	if got := one("SELECT LAST_INSERT_ID() + 0"); got != id {
		t.Fatalf("LAST_INSERT_ID() + 0 after the move: %s, want %s", got, id)
	}
	status(port, "ONLINE")

	// A PREPARE the server could not parse leaves the old statement.
	exec("PREPARE s5 FROM 'SELECT 51'")
	if _, err := c.ExecContext(ctx, "PREPARE s5 FROM 'SELECT 52' garbage"); err == nil {
		t.Fatal("a PREPARE with trailing garbage succeeded")
	}
	exec("PREPARE s4 FROM 'SELECT 41'")
	if _, err := c.ExecContext(ctx, "PREPARE s4 FROM 'SELEC bad'"); err == nil {
		t.Fatal("a bad PREPARE succeeded")
	}
	port = one("SELECT @@port")
	status(port, "OFFLINE_SOFT")
	moved(port)
	if _, err := c.ExecContext(ctx, "EXECUTE s4"); err == nil || !strings.Contains(err.Error(), "1243") {
		t.Fatalf("EXECUTE of the statement a failed PREPARE replaced, after the move: %v, want 1243", err)
	}
	if got := one("EXECUTE s5"); got != "51" {
		t.Fatalf("EXECUTE s5 after the move: %q, want 51 (a PREPARE the server could not parse left it)", got)
	}
	if got := one("SELECT @pin"); got != "1" {
		t.Fatalf("@pin after two moves: %q", got)
	}
}

// TestStrandedSessionCountedOnce: a session whose server goes OFFLINE_SOFT
// while no other server of its hostgroup can take it stays, and goes on
// working there; the failed migration is counted once (it was counted at
// every command and balancer tick: 70 rows in 9 s) and logged.
func TestStrandedSessionCountedOnce(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 1, bs[0].Port, bs[1].Port)
	c, ctx := oneConn(t, s.DataPort)
	if _, err := c.ExecContext(ctx, "SET @stay = 1"); err != nil {
		t.Fatal(err)
	}
	admin(t, s, "UPDATE mysql_servers SET status='OFFLINE_SOFT'; LOAD MYSQL SERVERS TO RUNTIME")
	for i := range 20 {
		var v int
		if err := c.QueryRowContext(ctx, "SELECT @stay").Scan(&v); err != nil || v != 1 {
			t.Fatalf("query %d on the stranded session: %d %v", i, v, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if n := adminInt(t, s, "SELECT IFNULL(SUM(count_star), 0) FROM stats_mysql_migrations WHERE outcome='failed'"); n != 1 {
		t.Fatalf("failed migrations counted: %d, want 1", n)
	}
	waitLog(t, s, "session cannot leave its server")
}

// TestIgnoredVariableOnLockedSession: a variable the proxy ignores
// (wait_timeout) reaches the server when the session's SETs run on its
// connection (a session locked by SET @x := …); the session then stays
// with that connection when its server goes OFFLINE_SOFT, instead of
// moving without the value (it came back as 28800 after the move).
func TestIgnoredVariableOnLockedSession(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 1, bs[0].Port, bs[1].Port)
	c, ctx := oneConn(t, s.DataPort)
	one := func(q string) string { t.Helper(); return queryOne(t, c, q) }
	for _, q := range []string{"SET @x := 1", "SET SESSION wait_timeout = 777"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	port := one("SELECT @@port")
	if got := one("SELECT @@session.wait_timeout"); got != "777" {
		t.Fatalf("wait_timeout on the locked session: %s", got)
	}
	admin(t, s, "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port="+port+"; LOAD MYSQL SERVERS TO RUNTIME")
	for range 10 {
		if got := one("SELECT CONCAT(@@port, ' ', @@session.wait_timeout)"); got != port+" 777" {
			t.Fatalf("after OFFLINE_SOFT: %q, want %s 777 (the session stays with its value)", got, port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIgnoredVariableWithComputedSet: a SET that assigns an expression to a
// tracked variable runs on the server (its value is read back), and an
// ignored variable in the same statement (wait_timeout) runs there too:
// the session keeps that connection, so it reads its own value every time
// and no other session gets it from the pool (1 session in 4 read 28800).
func TestIgnoredVariableWithComputedSet(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	other := connOf(t, db)
	queryOne(t, other, "SELECT 1")
	for i := range 4 {
		c := connOf(t, db)
		queryOne(t, c, "SELECT 1")
		if _, err := c.ExecContext(context.Background(), "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES'), wait_timeout = 100"); err != nil {
			t.Fatal(err)
		}
		// Another session's next query takes the pool's most recent
		// connection: the one the SET ran on, were it given back.
		if got := queryOne(t, other, "SELECT @@session.wait_timeout"); got == "100" {
			t.Fatalf("session %d's wait_timeout reached another session through the pool", i)
		}
		if got := queryOne(t, c, "SELECT @@session.wait_timeout"); got != "100" {
			t.Fatalf("session %d: wait_timeout %s after SET … wait_timeout = 100", i, got)
		}
	}
}
