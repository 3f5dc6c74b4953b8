package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestStateFollowsLostBackend: two real servers in one hostgroup, each
// behind a relay the test can cut. A session between transactions with
// user variables (a literal and an expression), a schema, SET NAMES,
// sql_mode and a text PREPARE loses its server: its next statements run
// on the other server with all of it intact and no error. A session with
// an open transaction, or with a temporary table, gets an error 1927 that
// names what was lost, keeps its user variables, and stays usable.
func TestStateFollowsLostBackend(t *testing.T) {
	bs := testenv.Backends(t, 2)
	for _, b := range bs {
		backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS carry_db; CREATE TABLE IF NOT EXISTS carry_db.t (a INT); DELETE FROM carry_db.t; "+
			"CREATE DATABASE IF NOT EXISTS carry_db2; CREATE TABLE IF NOT EXISTS carry_db2.t (a INT); DELETE FROM carry_db2.t; INSERT INTO carry_db2.t VALUES (1), (2)")
	}
	relays := []*testenv.Relay{testenv.NewRelay(t, bs[0].Addr()), testenv.NewRelay(t, bs[1].Addr())}
	byPort := map[string]*testenv.Relay{strconv.Itoa(bs[0].Port): relays[0], strconv.Itoa(bs[1].Port): relays[1]}
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-connect_timeout_server_max=3000; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d), (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;`, relays[0].Port(), relays[1].Port()))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx := context.Background()
	session := func() *sql.Conn {
		t.Helper()
		return connOf(t, db)
	}
	one := func(c *sql.Conn, q string) (string, error) {
		var v sql.NullString
		err := c.QueryRowContext(ctx, q).Scan(&v)
		return v.String, err
	}
	must := func(c *sql.Conn, q string) string {
		t.Helper()
		v, err := one(c, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	exec := func(c *sql.Conn, q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// restore brings every relay back after a cut.
	restore := func() {
		for _, r := range relays {
			r.SetDown(false)
		}
	}

	// 1. Movable state: carried to the other server.
	c := session()
	exec(c, "SET @v = 42, @s = 'naïve ''quoted''', @f = 1.5e0, @n = NULL")
	exec(c, "SET @w = (SELECT 40) + 2")
	exec(c, "USE carry_db")
	exec(c, "SET NAMES utf8mb4")
	exec(c, "SET SESSION sql_mode = 'ANSI_QUOTES'")
	exec(c, "PREPARE p FROM 'SELECT ? + 1'")
	// Strings keep their own bytes, character set and collation.
	exec(c, "SET @l = _latin1 X'E9', @k = _utf8mb4 'k' COLLATE utf8mb4_bin")
	// A PREPARE reads its tables in the schema it was prepared in, and its
	// text from what the variable held then.
	exec(c, "PREPARE pa FROM 'SELECT COUNT(*) FROM t'")
	exec(c, "SET @pq = 'SELECT 1 AS one'")
	exec(c, "PREPARE pb FROM @pq")
	exec(c, "SET @pq = 'SELECT 2 AS two'")
	exec(c, "USE carry_db2")
	exec(c, "USE carry_db")
	before := must(c, "SELECT @@port")
	const check = `SELECT CONCAT_WS('|', @v, @w, @s, @f, @n IS NULL, DATABASE(), @@character_set_client, @@sql_mode, HEX(@l), COLLATION(@l), COLLATION(@k), @k = 'K', @pq)`
	want := must(c, check)
	if want != "42|42|naïve 'quoted'|1.5|1|carry_db|utf8mb4|ANSI_QUOTES|E9|latin1_swedish_ci|utf8mb4_bin|0|SELECT 2 AS two" {
		t.Fatalf("state before the cut: %q", want)
	}
	byPort[before].SetDown(true)
	if got, err := one(c, check); err != nil || got != want {
		t.Fatalf("after losing its server: %q, %v; want %q and no error", got, err, want)
	}
	after := must(c, "SELECT @@port")
	if after == before {
		t.Fatalf("still on port %s", after)
	}
	exec(c, "USE carry_db2")
	if got := must(c, "EXECUTE pa"); got != "0" {
		t.Fatalf("EXECUTE pa after the move, in another schema: %s rows, want carry_db.t's 0", got)
	}
	if got := must(c, "EXECUTE pb"); got != "1" {
		t.Fatalf("EXECUTE pb after the move: %s, want the text @pq held at the PREPARE (1)", got)
	}
	exec(c, "USE carry_db")
	exec(c, "SET @in = 5")
	exec(c, "EXECUTE p USING @in")
	if got := must(c, "SELECT @in + 1"); got != "6" {
		t.Fatalf("@in after EXECUTE: %q", got)
	}
	var typ string
	if err := c.QueryRowContext(ctx, "SELECT @v + 0.5").Scan(&typ); err != nil || typ != "42.5" {
		t.Fatalf("@v stayed a number: %q %v", typ, err)
	}
	t.Logf("session moved from port %s to %s with its user variables, schema, charset, sql_mode and PREPARE", before, after)
	restore()

	// 2. An open transaction: lost, named, the session stays usable once
	// the client ends the transaction (ROLLBACK), and keeps its user
	// variables.
	c2 := session()
	exec(c2, "SET @keep = 7")
	exec(c2, "BEGIN")
	exec(c2, "INSERT INTO carry_db.t VALUES (1)")
	port := must(c2, "SELECT @@port")
	byPort[port].SetDown(true)
	_, err := one(c2, "SELECT COUNT(*) FROM carry_db.t")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1927 || !strings.Contains(me.Message, "an open transaction") {
		t.Fatalf("statement after losing the transaction's server: %v, want error 1927 naming the transaction", err)
	}
	exec(c2, "ROLLBACK")
	if got := must(c2, "SELECT @keep"); got != "7" {
		t.Fatalf("@keep after the lost transaction: %q", got)
	}
	restore()

	// 3. A temporary table: lost and named, visible first in the
	// processlist as what keeps the session on its connection.
	c3 := session()
	var id string
	if err := c3.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	exec(c3, "CREATE TEMPORARY TABLE carry_db.tmp (a INT)")
	if ext := strings.TrimSpace(admin(t, s, "SELECT extended_info FROM stats_mysql_processlist WHERE SessionID="+id)); !strings.Contains(ext, `"pinned_by":"temporary tables"`) {
		t.Fatalf("processlist extended_info %q: want it to name the temporary table", ext)
	}
	port = must(c3, "SELECT @@port")
	byPort[port].SetDown(true)
	if _, err := one(c3, "SELECT 1"); !errors.As(err, &me) || me.Number != 1927 || !strings.Contains(me.Message, "temporary tables") {
		t.Fatalf("after losing the temporary table's server: %v", err)
	}
	if got := must(c3, "SELECT 2"); got != "2" {
		t.Fatalf("session unusable after the error: %q", got)
	}
	restore()
}
