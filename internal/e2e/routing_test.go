package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// portQ asks a backend for its port without reading a session variable
// (which would pin the connection to the session, as in ProxySQL).
const portQ = "VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME='PORT'"

// TestRoutingFeatures drives the query-rule actions and session rules of
// reference §3–§4 end to end on three real servers, one per hostgroup:
// annotations, error_msg (1148), OK_msg, replace_pattern, a PCRE lookaround
// pattern, fast routing,
// transaction_persistent, lock_hostgroup (9006), per-user and global
// max_connections (1226, 1040) and fast_forward.
func TestRoutingFeatures(t *testing.T) {
	bs := testenv.Backends(t, 3)
	for _, b := range bs {
		backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS routed_db")
	}
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d), (2, '127.0.0.1', %d), (3, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup, max_connections) VALUES ('sbtest', 'sbtest', 1, 3);
		INSERT INTO mysql_users(username, password, default_hostgroup, fast_forward) VALUES ('monitor', 'monitor', 2, 1);
		LOAD MYSQL USERS TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, error_msg, apply) VALUES (20, 1, '^DROP TABLE', 'no drops here', 1);
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, OK_msg, apply) VALUES (30, 1, '^DO sluice_ping', 'pong', 1);
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, replace_pattern, destination_hostgroup, apply)
		       VALUES (40, 1, 'FROM sluice_alias', 'FROM information_schema.GLOBAL_VARIABLES', 2, 1);
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, destination_hostgroup, apply)
		       VALUES (50, 1, '^SELECT (?=.*lookaround_probe)(?!.*FOR UPDATE)', 2, 1);
		INSERT INTO mysql_query_rules_fast_routing(username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('sbtest', 'routed_db', 0, 3, 'e2e');
		LOAD MYSQL QUERY RULES TO RUNTIME;`, bs[0].Port, bs[1].Port, bs[2].Port))
	port := func(b testenv.Backend) string { return strconv.Itoa(b.Port) }
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	one := func(q string) (string, error) {
		var v sql.NullString
		err := c.QueryRowContext(ctx, q).Scan(&v)
		return v.String, err
	}
	must := func(q, want string) {
		t.Helper()
		got, err := one(q)
		if err != nil || got != want {
			t.Fatalf("%s: got %q, %v; want %q", q, got, err, want)
		}
	}
	mustErr := func(q, code string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), code) {
			t.Fatalf("%s: %v, want error %s", q, err, code)
		}
	}

	must("SELECT "+portQ, port(bs[0]))                                                      // user default hostgroup 1
	must("SELECT /* hostgroup=3 */ "+portQ, port(bs[2]))                                    // annotation
	must("SELECT VARIABLE_VALUE FROM sluice_alias WHERE VARIABLE_NAME='PORT'", port(bs[1])) // replace_pattern + destination
	// PCRE lookaround (the backtracking engine): reads to 2, FOR UPDATE not.
	must("SELECT "+portQ+" AND 'lookaround_probe' <> ''", port(bs[1]))
	must("SELECT "+portQ+" AND 'lookaround_probe' <> '' FOR UPDATE", port(bs[0]))
	mustErr("DROP TABLE whatever", "1148")
	if _, err := c.ExecContext(ctx, "DROP TABLE whatever"); err == nil || !strings.Contains(err.Error(), "no drops here") {
		t.Fatalf("error_msg text: %v", err)
	}
	if _, err := c.ExecContext(ctx, "DO sluice_ping"); err != nil {
		t.Fatalf("OK_msg: %v", err)
	}
	if _, err := c.ExecContext(ctx, "USE routed_db"); err != nil {
		t.Fatal(err)
	}
	must("SELECT "+portQ, port(bs[2])) // fast routing (sbtest, routed_db, 0) → 3
	if _, err := c.ExecContext(ctx, "USE sbtest"); err != nil {
		t.Fatal(err)
	}

	// transaction_persistent: the transaction stays on hostgroup 1.
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	must("SELECT /* hostgroup=3 */ "+portQ, port(bs[0]))
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	must("SELECT /* hostgroup=3 */ "+portQ, port(bs[2]))

	// An unparseable SET locks the session to its hostgroup: elsewhere is 9006.
	if _, err := c.ExecContext(ctx, "SET @sluice_x := 1"); err != nil {
		t.Fatal(err)
	}
	mustErr("SELECT /* hostgroup=3 */ 1", "9006")
	must("SELECT @sluice_x", "1") // same backend connection: the variable is there
	c.Raw(func(any) error { return driverBadConn })
	c.Close()

	// Per-user max_connections = 3: the fourth concurrent login gets 1226.
	var conns []*sql.Conn
	db.SetMaxOpenConns(10)
	for i := 0; i < 3; i++ {
		cc, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, cc)
	}
	if _, err := db.Conn(ctx); err == nil || !strings.Contains(err.Error(), "1226") {
		t.Fatalf("fourth connection of a user limited to 3: %v", err)
	}
	for _, cc := range conns {
		cc.Close()
	}
	db.Close()

	// fast_forward: bytes pass through to hostgroup 2, even a session
	// variable read (which a multiplexed session would pin) just works.
	out := testenv.MustCLI(t, s.DataPort, "monitor", "monitor", "SELECT @@port; SELECT CONNECTION_ID() > 0", "-N")
	if f := strings.Fields(out); len(f) != 2 || f[0] != port(bs[1]) {
		t.Fatalf("fast_forward session: %q, want port %d", out, bs[1].Port)
	}

	// Global mysql-max_connections: 1040 once it is reached.
	admin(t, s, "SET mysql-max_connections=2; LOAD MYSQL VARIABLES TO RUNTIME")
	db2 := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	var held []*sql.Conn
	for i := 0; i < 2; i++ {
		cc, err := db2.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cc.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		held = append(held, cc)
	}
	if _, err := db2.Conn(ctx); err == nil || !strings.Contains(err.Error(), "1040") {
		t.Fatalf("connection over mysql-max_connections: %v", err)
	}
	for _, cc := range held {
		cc.Close()
	}
}

// TestSchemaLocked: a schema_locked user stays in its default_schema: USE
// and COM_INIT_DB of another schema get 9005, and so does a login asking
// for one (it used to be logged in to the locked schema without a word,
// so an application configured for another database wrote there).
func TestSchemaLocked(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, "UPDATE mysql_users SET default_schema='sbtest', schema_locked=1 WHERE username='sbtest'; LOAD MYSQL USERS TO RUNTIME")
	for _, db := range []string{"", "sbtest"} {
		out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT DATABASE()", "-N", "--database="+db)
		if err != nil || strings.TrimSpace(out) != "sbtest" {
			t.Fatalf("login asking for %q: %q %v, want sbtest", db, out, err)
		}
	}
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT DATABASE()", "-N", "--database=mysql"); err == nil || !strings.Contains(err.Error(), "9005") {
		t.Fatalf("login asking for another schema: %v, want ERROR 9005", err)
	}
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "USE mysql", "-N"); err == nil || !strings.Contains(err.Error(), "9005") {
		t.Fatalf("USE of another schema: %v, want ERROR 9005", err)
	}
}

// TestQueryDigestsOff: with mysql-query_digests=false the query processor
// has no digest, as in ProxySQL: a rule's match_digest and digest
// conditions are skipped (the rule matches on its other conditions) and
// first-comment annotations are not read; match_pattern still reads the
// text. The variable was accepted and ignored.
func TestQueryDigestsOff(t *testing.T) {
	bs := testenv.Backends(t, 3)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d), (2, '127.0.0.1', %d), (3, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, 'pattern_marker', 3, 1);
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, apply) VALUES (2, 1, '^UPDATE', 2, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`, bs[0].Port, bs[1].Port, bs[2].Port))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	port := func(q string) int {
		t.Helper()
		var p int
		if err := db.QueryRow(q).Scan(&p); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return p
	}
	plain, annotated, marked := "SELECT "+portQ, "/* hostgroup=3 */ SELECT "+portQ, "SELECT "+portQ+" AND 'pattern_marker' <> ''"
	if p := port(plain); p != bs[0].Port {
		t.Fatalf("digests on: a SELECT ran on %d, want the default hostgroup's %d", p, bs[0].Port)
	}
	if p := port(annotated); p != bs[2].Port {
		t.Fatalf("digests on: an annotated SELECT ran on %d, want %d", p, bs[2].Port)
	}
	admin(t, s, "SET mysql-query_digests='false'; LOAD MYSQL VARIABLES TO RUNTIME;")
	if p := port(plain); p != bs[1].Port {
		t.Fatalf("digests off: a SELECT ran on %d, want %d (the match_digest rule matches every query)", p, bs[1].Port)
	}
	if p := port(annotated); p != bs[1].Port {
		t.Fatalf("digests off: an annotated SELECT ran on %d, want %d (no annotation read)", p, bs[1].Port)
	}
	if p := port(marked); p != bs[2].Port {
		t.Fatalf("digests off: match_pattern: ran on %d, want %d", p, bs[2].Port)
	}
}

// TestRulesOnEveryPrepare: every COM_STMT_PREPARE goes through the rules,
// as in ProxySQL: an error_msg rule added after a text was first prepared
// answers the next PREPARE of it (it ran only when a server prepared the
// text: the cached statement was handed out and the error came at
// EXECUTE), and stats_mysql_query_rules counts prepares and executes.
func TestRulesOnEveryPrepare(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	routeTo(t, s, 1, b.Port)
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.rules_ps (a INT)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	const q = "DELETE FROM rules_ps WHERE a = ?"
	st, err := db.Prepare(q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Exec(1); err != nil {
		t.Fatal(err)
	}
	st.Close()
	admin(t, s, `INSERT INTO mysql_query_rules(rule_id, active, match_digest, error_msg, apply) VALUES (1, 1, '^DELETE', 'no deletes', 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	c := connOf(t, db)
	if _, err := c.PrepareContext(context.Background(), q); err == nil || !strings.Contains(err.Error(), "no deletes") {
		t.Fatalf("PREPARE of a cached text a rule now refuses: %v", err)
	}
	if hits := adminInt(t, s, "SELECT hits FROM stats_mysql_query_rules WHERE rule_id = 1"); hits != 1 {
		t.Fatalf("rule hits %d, want 1 (the refused PREPARE)", hits)
	}
}
