package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// wireQuery sends one COM_QUERY on a raw connection (logged in without
// CLIENT_DEPRECATE_EOF) and returns the first column of the first row, ""
// for NULL or an OK, or the ERR.
func wireQuery(t *testing.T, c *wire.Conn, q string) (string, *wire.SQLError) {
	t.Helper()
	c.ResetSeq()
	if err := c.WritePacket(append([]byte{wire.ComQuery}, q...)); err != nil {
		t.Fatal(err)
	}
	c.Flush()
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	switch {
	case wire.IsERR(p):
		e, _ := wire.ParseERR(p)
		return "", e
	case wire.IsOK(p):
		return "", nil
	}
	ncols, _, _, _ := wire.ReadLenEncInt(p)
	for i := uint64(0); i < ncols+1; i++ { // column definitions, then EOF
		if _, err := c.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	for row := 0; ; row++ {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if wire.IsEOF(p) {
			return first, nil
		}
		if row == 0 {
			v, null, _, _ := wire.ReadLenEncString(p)
			if !null {
				first = string(v)
			}
		}
	}
}

// TestResetConnectionAndChangeUser checks ProxySQL's semantics of
// COM_RESET_CONNECTION and COM_CHANGE_USER (test_com_reset_connection_com_change_user):
// both roll back the transaction, clear user variables and tracked session
// variables; COM_CHANGE_USER logs in as the other user, a hash-only one
// included.
func TestResetConnectionAndChangeUser(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.cu (id INT PRIMARY KEY) ENGINE=InnoDB; DELETE FROM sbtest.cu")
	c, salt := wireLoginSalt(t, s.DataPort, "sbtest", "sbtest")
	must := func(q, want string) {
		t.Helper()
		got, e := wireQuery(t, c, q)
		if e != nil || got != want {
			t.Fatalf("%s: got %q, %v; want %q", q, got, e, want)
		}
	}
	must("USE sbtest", "")
	must("SET @v := 5", "")
	must("SET sql_mode = 'ANSI_QUOTES'", "")
	must("BEGIN", "")
	must("INSERT INTO cu VALUES (1)", "")
	must("SELECT @v", "5")

	c.ResetSeq()
	c.WritePacket([]byte{wire.ComResetConnection})
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsOK(p) {
		t.Fatalf("COM_RESET_CONNECTION: %q %v", p, err)
	}
	must("SELECT @v", "")
	if mode, _ := wireQuery(t, c, "SELECT @@sql_mode"); mode == "ANSI_QUOTES" {
		t.Fatalf("tracked sql_mode survived COM_RESET_CONNECTION")
	}
	must("SELECT COUNT(*) FROM sbtest.cu", "0") // the transaction was rolled back

	// COM_CHANGE_USER to root, stored in mysql_users only as its hash.
	must("SET @w := 7", "")
	cu := &wire.ChangeUser{User: "root", AuthResponse: wire.NativeScramble(salt, []byte("test")), DB: "sbtest",
		Charset: 33, AuthPlugin: "mysql_native_password"}
	c.ResetSeq()
	c.WritePacket(wire.AppendChangeUser(nil, wire.ClientProtocol41|wire.ClientSecureConnection|wire.ClientPluginAuth, cu))
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsOK(p) {
		t.Fatalf("COM_CHANGE_USER: %q %v", p, err)
	}
	must("SELECT @w", "")
	if u, e := wireQuery(t, c, "SELECT CURRENT_USER()"); e != nil || len(u) < 5 || u[:5] != "root@" {
		t.Fatalf("after COM_CHANGE_USER, CURRENT_USER() = %q %v", u, e)
	}
	must("SELECT DATABASE()", "sbtest")

	// A wrong password ends the session with 1045.
	cu.AuthResponse = wire.NativeScramble(salt, []byte("wrong"))
	c.ResetSeq()
	c.WritePacket(wire.AppendChangeUser(nil, wire.ClientProtocol41|wire.ClientSecureConnection|wire.ClientPluginAuth, cu))
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsERR(p) {
		t.Fatalf("COM_CHANGE_USER with a wrong password: %q %v", p, err)
	}
}

// TestUserAttributes: mysql_users.attributes default-transaction_isolation
// is the session's isolation level at login and again after
// COM_RESET_CONNECTION, on every backend connection the session uses (a
// tracked variable); spiffe_id is refused at LOAD, other keys warned.
func TestUserAttributes(t *testing.T) {
	s, _ := multiplexSetup(t, 10, `UPDATE mysql_users SET attributes='{"default-transaction_isolation": "READ-COMMITTED"}' WHERE username='sbtest';
		LOAD MYSQL USERS TO RUNTIME;`)
	c, _ := wireLoginSalt(t, s.DataPort, "sbtest", "sbtest")
	must := func(q, want string) {
		t.Helper()
		got, e := wireQuery(t, c, q)
		if e != nil || got != want {
			t.Fatalf("%s: got %q, %v; want %q", q, got, e, want)
		}
	}
	must("SELECT @@tx_isolation", "READ-COMMITTED")
	must("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "")
	must("SELECT @@tx_isolation", "SERIALIZABLE")
	c.ResetSeq()
	c.WritePacket([]byte{wire.ComResetConnection})
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsOK(p) {
		t.Fatalf("COM_RESET_CONNECTION: %q %v", p, err)
	}
	must("SELECT @@tx_isolation", "READ-COMMITTED")
	// Another user keeps the server's default.
	c2, _ := wireLoginSalt(t, s.DataPort, "root", "test")
	if got, e := wireQuery(t, c2, "SELECT @@tx_isolation"); e != nil || got != "REPEATABLE-READ" {
		t.Fatalf("root: %q %v", got, e)
	}

	out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", `UPDATE mysql_users SET attributes='{"default-transaction_isolation": "SOMETIMES"}' WHERE username='sbtest';
		LOAD MYSQL USERS TO RUNTIME;`)
	if err == nil || !strings.Contains(err.Error()+out, "default-transaction_isolation") {
		t.Fatalf("a bad isolation level loaded: %v %s", err, out)
	}
	out, err = testenv.CLI(t, s.AdminPort, "admin", "admin", `UPDATE mysql_users SET attributes='{"spiffe_id": "spiffe://example.org/app"}' WHERE username='sbtest';
		LOAD MYSQL USERS TO RUNTIME;`)
	if err == nil || !strings.Contains(err.Error()+out, "spiffe_id") {
		t.Fatalf("spiffe_id loaded: %v %s", err, out)
	}
	out = admin(t, s, `UPDATE mysql_users SET attributes='{"frobnicate": 1}' WHERE username='sbtest';
		LOAD MYSQL USERS TO RUNTIME; SHOW WARNINGS;`)
	if !strings.Contains(out, "sbtest: frobnicate") {
		t.Fatalf("unknown attribute not warned: %s", out)
	}
}

// TestChangeUserKeepsCapabilities: a change of user (PHP's
// mysqli::change_user, which connection pools use) keeps the client's
// capabilities as a server does: multi-statements still run, and
// CLIENT_FOUND_ROWS still makes an UPDATE count the rows it matched. Both
// were lost: the next multi-statement query failed with 1064, and the
// session got connections without found-rows.
func TestChangeUserKeepsCapabilities(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.cu_caps (id INT PRIMARY KEY, v INT); REPLACE INTO sbtest.cu_caps VALUES (1, 0)")
	out, err := runPHP(t, "cucaps.php", fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$m = mysqli_init();
$m->real_connect('127.0.0.1', 'sbtest', 'sbtest', 'sbtest', %d, null, MYSQLI_CLIENT_FOUND_ROWS);
function both($m, $when) {
  $m->query("UPDATE sbtest.cu_caps SET v = 0 WHERE id = 1");
  $matched = $m->affected_rows;
  $rows = [];
  $m->multi_query("SELECT 1; SELECT 2");
  do { if ($r = $m->store_result()) { $rows[] = $r->fetch_row()[0]; $r->free(); } } while ($m->more_results() && $m->next_result());
  echo $when, ": matched ", $matched, ", results ", implode(",", $rows), "\n";
}
both($m, "login");
$m->change_user('root', 'test', 'sbtest');
both($m, "changed");
// Default flags: mysqlnd asks for CLIENT_MULTI_STATEMENTS at login and
// sends no COM_SET_OPTION before a multi-statement query.
$d = new mysqli('127.0.0.1', 'sbtest', 'sbtest', 'sbtest', %d);
function multi($d) {
  $rows = [];
  $d->multi_query("SELECT 3; SELECT 4");
  do { if ($r = $d->store_result()) { $rows[] = $r->fetch_row()[0]; $r->free(); } } while ($d->more_results() && $d->next_result());
  return implode(",", $rows);
}
$before = multi($d);
$d->change_user('root', 'test', 'sbtest');
echo "default flags: ", $before, ", changed: ", multi($d), "\n";
`, s.DataPort, s.DataPort))
	if want := "login: matched 1, results 1,2\nchanged: matched 1, results 1,2\ndefault flags: 3,4, changed: 3,4\n"; err != nil || string(out) != want {
		t.Fatalf("PHP: %v\n%s\nwant\n%s", err, out, want)
	}
}

// TestChangeUserConnectionCounts: a session that logs in as one user and
// changes to another counts against the second from then on, and gives
// that slot back when it ends. The slot used to be given back to the login
// user: the new user stayed one over for good (a real login then got 1226)
// and the first drifted below zero. max_connections=0 admits nobody, as in
// ProxySQL.
func TestChangeUserConnectionCounts(t *testing.T) {
	s, b := multiplexSetup(t, 10, `
		INSERT INTO mysql_users(username, password, default_hostgroup, max_connections) VALUES ('cu_a', 'cu_a', 0, 1), ('cu_b', 'cu_b', 0, 1), ('cu_zero', 'cu_zero', 0, 0);
		LOAD MYSQL USERS TO RUNTIME;`)
	for _, u := range []string{"cu_a", "cu_b", "cu_zero"} {
		backendSQL(t, b, fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'; GRANT USAGE ON *.* TO '%s'@'%%'", u, u, u))
	}
	out, err := runPHP(t, "cucount.php", fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$m = new mysqli('127.0.0.1', 'cu_b', 'cu_b', '', %[1]d);
$m->change_user('cu_a', 'cu_a', null);
$m->close();
usleep(300000);
function try_login($u) {
  try { $c = new mysqli('127.0.0.1', $u, $u, '', %[1]d); return $c; } catch (mysqli_sql_exception $e) { return $e->getCode(); }
}
$a = try_login('cu_a');
echo "cu_a: ", is_object($a) ? "in" : $a, "\n";
$b1 = try_login('cu_b');
$b2 = try_login('cu_b');
echo "cu_b twice: ", is_object($b1) ? "in" : $b1, " ", is_object($b2) ? "in" : $b2, "\n";
$z = try_login('cu_zero');
echo "cu_zero: ", is_object($z) ? "in" : $z, "\n";
`, s.DataPort))
	if want := "cu_a: in\ncu_b twice: in 1226\ncu_zero: 1226\n"; err != nil || string(out) != want {
		t.Fatalf("PHP: %v\n%s\nwant\n%s", err, out, want)
	}
	if rows := admin(t, s, "SELECT username, frontend_connections FROM stats_mysql_users WHERE username LIKE 'cu_%' ORDER BY username"); strings.Contains(rows, "-") {
		t.Fatalf("stats_mysql_users went below zero:\n%s", rows)
	}
}
