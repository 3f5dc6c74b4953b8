package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// greetingCollation reads the collation id the data port announces.
func greetingCollation(t *testing.T, port int) uint8 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	p, err := wire.NewClientConn(nc).ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.ParseInitialHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	return h.Charset
}

// TestVariablesActedOn checks global variables a ProxySQL user sets and
// expects to change behaviour: mysql-default_charset and
// mysql-default_collation_connection (the handshake's collation, what a
// client naming none gets), mysql-handle_warnings (and its hostgroup
// override in hostgroup_settings) and mysql-set_query_lock_on_hostgroup.
func TestVariablesActedOn(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Port, bs[1].Port))
	ctx := context.Background()

	// Character set: utf8_general_ci (33) by default, as ProxySQL.
	if c := greetingCollation(t, s.DataPort); c != 33 {
		t.Fatalf("default handshake collation %d, want 33", c)
	}
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=php)")
	}
	// PHP's mysqlnd takes the server's announced character set when the
	// DSN names none.
	script := filepath.Join(t.TempDir(), "cs.php")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`<?php
$db = new PDO("mysql:host=127.0.0.1;port=%d;dbname=sbtest", "sbtest", "sbtest", [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
echo implode(" ", $db->query("SELECT @@character_set_client, @@collation_connection")->fetch(PDO::FETCH_NUM)), "\n";
`, s.DataPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	php := func(want string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, "php", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("PDO without a charset: %q, %v; want %q", out, err, want)
		}
	}
	php("utf8mb3 utf8mb3_general_ci")
	// Only the character set: its default collation.
	admin(t, s, "SET mysql-default_charset='utf8mb4'; LOAD MYSQL VARIABLES TO RUNTIME;")
	if c := greetingCollation(t, s.DataPort); c != 45 {
		t.Fatalf("utf8mb4: handshake collation %d, want 45", c)
	}
	php("utf8mb4 utf8mb4_general_ci")
	admin(t, s, "SET mysql-default_collation_connection='utf8mb4_unicode_ci'; LOAD MYSQL VARIABLES TO RUNTIME;")
	if c := greetingCollation(t, s.DataPort); c != 224 {
		t.Fatalf("utf8mb4_unicode_ci: handshake collation %d, want 224", c)
	}
	php("utf8mb4 utf8mb4_unicode_ci")
	// Bad values are reset at LOAD with a warning, as ProxySQL resets
	// them; the runtime keeps its own.
	for _, q := range []string{"SET mysql-default_charset='klingon'", "SET mysql-default_collation_connection='utf8mb4_nope'",
		"SET mysql-default_collation_connection='utf8mb4_unicode_520_nopad_ci'"} {
		out := admin(t, s, q+"; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS;")
		if !strings.Contains(out, "Impossible to set variable") {
			t.Fatalf("%s was accepted: %s", q, out)
		}
		if c := greetingCollation(t, s.DataPort); c != 224 {
			t.Fatalf("after %s: handshake collation %d, want 224 still", q, c)
		}
	}
	admin(t, s, "SET mysql-default_charset='utf8'; SET mysql-default_collation_connection='utf8_general_ci'; LOAD MYSQL VARIABLES TO RUNTIME;")
	if c := greetingCollation(t, s.DataPort); c != 33 {
		t.Fatalf("back to utf8: handshake collation %d", c)
	}
	// A collation of another character set than mysql-default_charset:
	// as ProxySQL, the collation wins and the character set follows it, in
	// MEMORY too, with a warning (it used to be accepted and ignored).
	out := admin(t, s, "SET mysql-default_collation_connection='utf8mb4_unicode_ci'; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS;")
	if !strings.Contains(out, "Found incompatible values") {
		t.Fatalf("an incompatible collation was not warned about: %q", out)
	}
	if c := greetingCollation(t, s.DataPort); c != 224 {
		t.Fatalf("utf8mb4_unicode_ci with default_charset utf8: handshake collation %d, want 224", c)
	}
	if got := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-default_charset'")); got != "utf8mb4" {
		t.Fatalf("mysql-default_charset in MEMORY after the collation won: %q", got)
	}
	php("utf8mb4 utf8mb4_unicode_ci")
	admin(t, s, "SET mysql-default_charset='utf8'; SET mysql-default_collation_connection='utf8_general_ci'; LOAD MYSQL VARIABLES TO RUNTIME;")

	// mysql-handle_warnings: a query leaving warnings keeps its connection
	// (for SHOW WARNINGS) only when handled.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := func() int {
		t.Helper()
		var raw string
		if err := c.QueryRowContext(ctx, "PROXYSQL INTERNAL SESSION").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d struct {
			Backends []json.RawMessage `json:"backends"`
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatal(err)
		}
		n := 0 // indexed by hostgroup, null between
		for _, b := range d.Backends {
			if string(b) != "null" {
				n++
			}
		}
		return n
	}
	warn := func(hg int) {
		t.Helper()
		if _, err := c.ExecContext(ctx, fmt.Sprintf("SELECT /* hostgroup=%d */ CAST('1x' AS INT)", hg)); err != nil {
			t.Fatal(err)
		}
	}
	warn(0)
	if n := held(); n != 1 {
		t.Fatalf("handle_warnings=1: %d connections held after a warning, want 1", n)
	}
	var level, code, msg string
	if err := c.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != "1292" {
		t.Fatalf("SHOW WARNINGS: %s %s %s, %v", level, code, msg, err)
	}
	admin(t, s, "SET mysql-handle_warnings=0; LOAD MYSQL VARIABLES TO RUNTIME;")
	warn(0)
	if n := held(); n != 0 {
		t.Fatalf("handle_warnings=0: %d connections held after a warning", n)
	}
	// The hostgroup's own setting wins: hostgroup 1 handles them, 0 not.
	admin(t, s, `INSERT INTO mysql_hostgroup_attributes(hostgroup_id, hostgroup_settings) VALUES (1, '{"handle_warnings": 1}');
		LOAD MYSQL SERVERS TO RUNTIME;`)
	warn(0)
	if n := held(); n != 0 {
		t.Fatalf("hostgroup 0 with handle_warnings=0: %d held", n)
	}
	warn(1)
	if n := held(); n != 1 {
		t.Fatalf("hostgroup 1 with hostgroup_settings handle_warnings=1: %d held, want 1", n)
	}
	if _, err := c.ExecContext(ctx, "SELECT /* hostgroup=1 */ 1"); err != nil { // no warnings there: released
		t.Fatal(err)
	}
	if n := held(); n != 0 {
		t.Fatalf("after a query without warnings: %d held", n)
	}
	// An unknown hostgroup_settings key is a warning at LOAD.
	out = testenv.MustCLI(t, s.AdminPort, "admin", "admin", `UPDATE mysql_hostgroup_attributes SET hostgroup_settings='{"handle_warnings": 1, "frobnicate": 2}';
		LOAD MYSQL SERVERS TO RUNTIME; SHOW WARNINGS;`)
	if !strings.Contains(out, "hostgroup_settings.frobnicate") {
		t.Fatalf("unknown hostgroup_settings key not warned: %s", out)
	}

	// mysql-set_query_lock_on_hostgroup: 1 locks the session on the
	// hostgroup of an unparsable SET (elsewhere: 9006); 0 does not.
	if _, err := c.ExecContext(ctx, "SET @sluice_lock := 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "SELECT /* hostgroup=1 */ 1"); err == nil || !strings.Contains(err.Error(), "9006") {
		t.Fatalf("set_query_lock_on_hostgroup=1: %v, want 9006", err)
	}
	c.Raw(func(any) error { return driverBadConn }) // not back to the pool: it is locked
	c.Close()
	admin(t, s, "SET mysql-set_query_lock_on_hostgroup=0; LOAD MYSQL VARIABLES TO RUNTIME;")
	c, err = db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "SET @sluice_lock := 2"); err != nil {
		t.Fatal(err)
	}
	var one, v string
	if err := c.QueryRowContext(ctx, "SELECT /* hostgroup=1 */ 1").Scan(&one); err != nil || one != "1" {
		t.Fatalf("set_query_lock_on_hostgroup=0: %q, %v", one, err)
	}
	// The SET pinned its connection: the variable is there.
	if err := c.QueryRowContext(ctx, "SELECT /* hostgroup=0 */ @sluice_lock").Scan(&v); err != nil || v != "2" {
		t.Fatalf("the SET's connection: %q, %v", v, err)
	}
}
