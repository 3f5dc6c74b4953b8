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
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d), (1, '127.0.0.1', %d), (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Port, bs[1].Port, bs[2].Port))
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
