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

// TestRewriteFollowsTheQuery: what a replace_pattern makes of a query is
// what runs everywhere after it, as in ProxySQL.
//   - A PREPARE is rewritten like a query (ProxySQL #238): mysqli's,
//     JDBC's and go-sql-driver's prepared statements used to run the
//     original text. After a LOAD MYSQL QUERY RULES, a cached statement
//     whose rewrite changed is prepared anew.
//   - The digest stats count the rewritten query (ProxySQL digests the new
//     packet again).
//   - A mirror_flagOUT chain may rewrite the copy, or answer it (no copy
//     runs); it used to take only the chain's hostgroup.
//   - A query answered by an OK_msg rule leaves next_query_flagIN alone.
func TestRewriteFollowsTheQuery(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.rewrite_%d", time.Now().UnixNano())
	for _, b := range bs {
		backendSQL(t, b, fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(40))", table))
	}
	t.Cleanup(func() {
		for _, b := range bs {
			backendSQL(t, b, "DROP TABLE IF EXISTS "+table)
		}
	})
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_query_rules (rule_id, active, match_pattern, replace_pattern, apply)
		       VALUES (10, 1, '^SELECT ''rw_before'' AS rw', 'SELECT ''rw_after'' AS rw_new', 1);
		INSERT INTO mysql_query_rules (rule_id, active, match_pattern, destination_hostgroup, mirror_flagOUT, apply)
		       VALUES (20, 1, '^INSERT INTO %[2]s ', 0, 7, 1);
		INSERT INTO mysql_query_rules (rule_id, active, flagIN, match_pattern, replace_pattern, destination_hostgroup, apply)
		       VALUES (21, 1, 7, 'from_client', 'from_mirror_rule', 1, 1);
		INSERT INTO mysql_query_rules (rule_id, active, flagIN, match_pattern, error_msg, destination_hostgroup, apply)
		       VALUES (22, 1, 7, 'not_mirrored', 'no copy', 1, 1);
		INSERT INTO mysql_query_rules (rule_id, active, match_pattern, OK_msg, next_query_flagIN, apply)
		       VALUES (30, 1, '^DO rw_ok', 'ok', 9, 1);
		INSERT INTO mysql_query_rules (rule_id, active, flagIN, destination_hostgroup, apply) VALUES (31, 1, 9, 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`, bs[1].Port, table))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "") // arguments: server-side prepares
	one := func(q string, args ...any) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	if got := one("SELECT 'rw_before' AS rw"); got != "rw_after" {
		t.Fatalf("text query: %q, want the rewrite's rw_after", got)
	}
	if got := one("SELECT 'rw_before' AS rw WHERE ? = 1", 1); got != "rw_after" {
		t.Fatalf("prepared statement: %q, want the rewrite's rw_after", got)
	}
	// PHP's mysqli prepares without a driver of ours in between.
	out, err := runPHP(t, "rw.php", fmt.Sprintf(`<?php
$m = new mysqli("127.0.0.1", "sbtest", "sbtest", "sbtest", %d);
$st = $m->prepare("SELECT 'rw_before' AS rw");
$st->execute(); $st->bind_result($v); $st->fetch(); echo $v, "\n";
`, s.DataPort))
	if err != nil || strings.TrimSpace(string(out)) != "rw_after" {
		t.Fatalf("mysqli prepared statement: %s %v", out, err)
	}
	waitDigest := func(like string, want string) {
		t.Helper()
		q := "SELECT digest_text FROM stats_mysql_query_digest WHERE digest_text LIKE '" + like + "' ORDER BY digest_text"
		deadline := time.Now().Add(5 * time.Second)
		for got := admin(t, s, q); got != want; got = admin(t, s, q) {
			if time.Now().After(deadline) {
				t.Fatalf("digest rows like %s: %q, want %q", like, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitDigest("SELECT ? AS rw%", "SELECT ? AS rw_new\nSELECT ? AS rw_new WHERE ? = ?\n")

	// A rewrite that depends on the session (here its user) is that
	// session's: the statement cache is keyed by what the rules made of
	// the text, so another user preparing the same text gets its own.
	admin(t, s, `INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('monitor', 'monitor', 0); LOAD MYSQL USERS TO RUNTIME;
		INSERT INTO mysql_query_rules (rule_id, active, username, match_pattern, replace_pattern, apply)
		       VALUES (11, 1, 'monitor', '^SELECT ''rw_user''', 'SELECT ''rw_user_monitor''', 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`)
	mon := testenv.DB(t, s.DataPort, "monitor", "monitor", "", "")
	byUser := func(db *sql.DB) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, "SELECT 'rw_user' WHERE ? = 1", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i, c := range []struct {
		db   *sql.DB
		want string
	}{{mon, "rw_user_monitor"}, {db, "rw_user"}, {mon, "rw_user_monitor"}, {db, "rw_user"}} {
		if got := byUser(c.db); got != c.want {
			t.Fatalf("prepare %d: %q, want %q (a rewrite for one user served to another)", i, got, c.want)
		}
	}

	// New rules: the cached statement is prepared again with the new
	// rewrite; one whose rewrite did not change is reused.
	admin(t, s, `UPDATE mysql_query_rules SET replace_pattern = 'SELECT ''rw_again'' AS rw_new' WHERE rule_id = 10;
		LOAD MYSQL QUERY RULES TO RUNTIME`)
	if got := one("SELECT 'rw_before' AS rw WHERE ? = 1", 1); got != "rw_again" {
		t.Fatalf("prepared statement after new rules: %q, want rw_again", got)
	}
	if got := one("SELECT 'rw_before' AS rw WHERE ? = 1", 1); got != "rw_again" {
		t.Fatalf("prepared statement again: %q, want rw_again", got)
	}

	// The mirror's own chain rewrites the copy, or answers it.
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (1, 'from_client')", table)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (2, 'not_mirrored')", table)); err != nil {
		t.Fatal(err)
	}
	rows := func(b testenv.Backend) string {
		return strings.TrimSpace(backendSQL(t, b, "SELECT IFNULL(GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id), '') FROM "+table))
	}
	if got := rows(bs[0]); got != "1=from_client,2=not_mirrored" {
		t.Fatalf("primary: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rows(bs[1]) != "1=from_mirror_rule" {
		if time.Now().After(deadline) {
			t.Fatalf("mirror: %q, want only the copy its chain rewrote", rows(bs[1]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a copy the error_msg rule let through would have landed by now
	if got := rows(bs[1]); got != "1=from_mirror_rule" {
		t.Fatalf("mirror after the error_msg chain: %q", got)
	}

	// OK_msg with next_query_flagIN: the next query starts at flagIN 0
	// (hostgroup 0), not at 9 (hostgroup 1).
	c := connOf(t, db)
	if _, err := c.ExecContext(ctx, "DO rw_ok"); err != nil {
		t.Fatal(err)
	}
	var port string
	if err := c.QueryRowContext(ctx, "SELECT "+portQ).Scan(&port); err != nil || port != strconv.Itoa(bs[0].Port) {
		t.Fatalf("after an OK_msg rule with next_query_flagIN: port %q %v, want %d", port, err, bs[0].Port)
	}
}
