package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestMirrorPreparedStatements: a rule's mirror_hostgroup copies
// COM_STMT_EXECUTEs too: the mirror prepares the statement on its own
// connection and runs it with the client's parameters.
func TestMirrorPreparedStatements(t *testing.T) {
	s, bs, table := mirrorSetup(t, "mirror_ps", "id INT PRIMARY KEY, v VARCHAR(20)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "") // server-side prepared statements
	stmt, err := db.Prepare(fmt.Sprintf("INSERT INTO %s (id, v) VALUES (?, ?)", table))
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for i := 1; i <= 3; i++ {
		if _, err := stmt.Exec(i, fmt.Sprintf("row %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	checkMirrored(t, bs, func(b testenv.Backend) string {
		return strings.TrimSpace(backendSQL(t, b, "SELECT GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id) FROM "+table))
	}, "1=row 1,2=row 2,3=row 3")
	// The copies are counted as ProxySQL counts them: a digest row of the
	// mirror's hostgroup beside the original's.
	q := fmt.Sprintf("SELECT hostgroup, count_star FROM stats_mysql_query_digest WHERE digest_text LIKE 'INSERT INTO %s %%' ORDER BY hostgroup", table)
	deadline := time.Now().Add(5 * time.Second)
	for got := admin(t, s, q); got != "0\t3\n1\t3\n"; got = admin(t, s, q) {
		if time.Now().After(deadline) {
			t.Fatalf("digest rows of the mirrored INSERT: %q, want hostgroups 0 and 1 with 3 each", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMirrorSessionSettings: the mirrored copy runs with the session's
// settings — character set, time_zone, sql_mode — so the mirror stores what
// the primary stored. It used to run with utf8mb3 and the servers'
// defaults: a 4-byte character failed there, '||' was OR, NOW() was UTC.
func TestMirrorSessionSettings(t *testing.T) {
	s, bs, table := mirrorSetup(t, "mirror_set", "id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb4, t DATETIME")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "charset=utf8mb4")
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"SET time_zone = '+05:00', sql_mode = 'PIPES_AS_CONCAT'",
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'a' || '\U0001F600', CONVERT_TZ('2024-01-02 03:04:05', '+00:00', @@session.time_zone))", table),
		"SET NAMES latin1",
		fmt.Sprintf("INSERT INTO %s VALUES (2, CONVERT(X'E9' USING latin1), NULL)", table),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	checkMirrored(t, bs, func(b testenv.Backend) string {
		return strings.TrimSpace(backendSQL(t, b, "SELECT GROUP_CONCAT(CONCAT(id, '=', HEX(v), '@', IFNULL(t, '-')) ORDER BY id) FROM "+table))
	}, "1=61F09F9880@2024-01-02 08:04:05,2=C3A9@-")
}

// mirrorSetup starts Sluice with hostgroup 0 on one backend, hostgroup 1 on
// another and a rule that mirrors INSERTs to hostgroup 1, and creates a
// table (columns cols) on both backends, dropped when the test ends.
func mirrorSetup(t *testing.T, prefix, cols string) (*testenv.Sluice, []testenv.Backend, string) {
	t.Helper()
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.%s_%d", prefix, time.Now().UnixNano())
	for _, b := range bs {
		backendSQL(t, b, fmt.Sprintf("CREATE TABLE %s (%s)", table, cols))
	}
	t.Cleanup(func() {
		for _, b := range bs {
			backendSQL(t, b, "DROP TABLE IF EXISTS "+table)
		}
	})
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_query_rules (rule_id, active, match_digest, mirror_hostgroup, apply) VALUES (1, 1, '^INSERT', 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`, bs[1].Port))
	return s, bs, table
}

// checkMirrored waits until rows(the mirror) is want, having checked that
// rows(the primary) is.
func checkMirrored(t *testing.T, bs []testenv.Backend, rows func(testenv.Backend) string, want string) {
	t.Helper()
	if got := rows(bs[0]); got != want {
		t.Fatalf("hostgroup 0: %q, want %q", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rows(bs[1]) != want {
		if time.Now().After(deadline) {
			t.Fatalf("the mirror (hostgroup 1) has %q, want %q", rows(bs[1]), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMirrorLeavesNoState: a mirrored copy that leaves state on its
// connection — a named lock, a user variable — has that connection closed
// afterwards, as a client's would be pinned: it used to go back to the
// pool, so the mirror server kept the lock held by an idle connection and
// the next session given it read another client's @variable and "owned"
// its lock.
func TestMirrorLeavesNoState(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_query_rules (rule_id, active, match_digest, mirror_hostgroup, apply) VALUES (2, 1, '^SELECT (GET_LOCK|@)', 1, 1);
		INSERT INTO mysql_query_rules (rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, 'on_mirror', 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`, bs[1].Port))
	lock := fmt.Sprintf("mirror_lock_%d", time.Now().UnixNano())
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(1)
	for _, q := range []string{"SELECT GET_LOCK('" + lock + "', 0)", "SELECT @mirror_v := 42"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Both copies ran on hostgroup 1 once they are counted there.
	for i := 0; strings.TrimSpace(admin(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest WHERE hostgroup=1")) != "2"; i++ {
		if i == 100 {
			t.Fatalf("the copies did not run:\n%s", admin(t, s, "SELECT hostgroup, digest_text, count_star FROM stats_mysql_query_digest"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; ; i++ {
		held := strings.TrimSpace(backendSQL(t, bs[1], "SELECT IFNULL(IS_USED_LOCK('"+lock+"'), 'free')"))
		if held == "free" {
			break
		}
		if i == 60 {
			t.Fatalf("the mirror server still holds the copy's lock on connection %s", held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	var v, owner string
	if err := other.QueryRow("SELECT /* on_mirror */ IFNULL(@mirror_v, 'unset'), IFNULL(IS_USED_LOCK('"+lock+"') = CONNECTION_ID(), 'free')").Scan(&v, &owner); err != nil {
		t.Fatal(err)
	}
	if v != "unset" || owner != "free" {
		t.Fatalf("another session on the mirror hostgroup reads @mirror_v=%s, lock %s", v, owner)
	}
}
