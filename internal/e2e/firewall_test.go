package e2e

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestFirewallWhitelist follows ProxySQL's test_firewall-t: with
// mysql-firewall_whitelist_enabled and no whitelist every query fails with
// ERR 1148; a user and a rule for a digest, loaded with LOAD MYSQL FIREWALL
// TO RUNTIME, let that query through (text and prepared) and nothing else;
// active=0 on the rule or the user blocks it again; DETECTING lets unknown
// queries through and logs them; OFF lets everything through; a row for
// the client's own address wins over the ” row; SAVE and LOAD FROM DISK
// restore the whitelist.
func TestFirewallWhitelist(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	// The digest of the whitelisted query, as stats_mysql_query_digest shows it.
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 42 AS allowed")
	digest := strings.TrimSpace(admin(t, s, "SELECT digest FROM stats_mysql_query_digest WHERE digest_text LIKE 'SELECT ? AS allowed'"))
	if !strings.HasPrefix(digest, "0x") {
		t.Fatalf("digest of the whitelisted query: %q", digest)
	}
	admin(t, s, "SET mysql-firewall_whitelist_enabled='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("enabling the firewall warned: %q", w)
	}
	run := func(q string) error {
		t.Helper()
		_, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", q, "-D", "sbtest")
		return err
	}
	blocked := func(q string) {
		t.Helper()
		err := run(q)
		if err == nil || !strings.Contains(err.Error(), "ERROR 1148") || !strings.Contains(err.Error(), "Firewall blocked this query") {
			t.Fatalf("%s: %v, want ERR 1148 Firewall blocked this query", q, err)
		}
	}
	allowed := func(q string) {
		t.Helper()
		if err := run(q); err != nil {
			t.Fatalf("%s: %v, want it let through", q, err)
		}
	}
	blocked("SELECT 42 AS allowed") // no whitelist: PROTECTING

	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_firewall_whitelist_users (active, username, client_address, mode, comment) VALUES (1, 'sbtest', '', 'PROTECTING', '');
		INSERT INTO mysql_firewall_whitelist_rules (active, username, client_address, schemaname, flagIN, digest, comment) VALUES (1, 'sbtest', '', 'sbtest', 0, '%s', '');
		LOAD MYSQL FIREWALL TO RUNTIME`, digest))
	allowed("SELECT 43 AS allowed") // same digest, another literal
	blocked("SELECT 1")
	// Prepared statements are checked too (go-sql-driver prepares).
	db, err := sql.Open("mysql", fmt.Sprintf("sbtest:sbtest@tcp(127.0.0.1:%d)/sbtest?timeout=5s", s.DataPort))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("SELECT ? AS allowed", 7).Scan(&v); err != nil || v != 7 {
		t.Fatalf("prepared whitelisted query: %d, %v", v, err)
	}
	if err := db.QueryRow("SELECT ? AS other", 7).Scan(&v); err == nil || !strings.Contains(err.Error(), "1148") {
		t.Fatalf("prepared unlisted query: %v, want ERR 1148", err)
	}

	admin(t, s, "UPDATE mysql_firewall_whitelist_rules SET active=0; LOAD MYSQL FIREWALL TO RUNTIME")
	blocked("SELECT 42 AS allowed")
	admin(t, s, "UPDATE mysql_firewall_whitelist_rules SET active=1; UPDATE mysql_firewall_whitelist_users SET active=0; LOAD MYSQL FIREWALL TO RUNTIME")
	blocked("SELECT 42 AS allowed")

	admin(t, s, "UPDATE mysql_firewall_whitelist_users SET active=1, mode='DETECTING'; LOAD MYSQL FIREWALL TO RUNTIME")
	allowed("SELECT 2 AS detected")
	waitLog(t, s, "Firewall detected unknown query")
	admin(t, s, "UPDATE mysql_firewall_whitelist_users SET mode='OFF'; LOAD MYSQL FIREWALL TO RUNTIME")
	allowed("SELECT 3 AS anything")

	// The row for the client's address (127.0.0.1) wins over the '' row.
	admin(t, s, "INSERT INTO mysql_firewall_whitelist_users VALUES (1, 'sbtest', '127.0.0.1', 'PROTECTING', ''); LOAD MYSQL FIREWALL TO RUNTIME")
	blocked("SELECT 42 AS allowed") // the rule is for client_address ''
	admin(t, s, fmt.Sprintf("INSERT INTO mysql_firewall_whitelist_rules VALUES (1, 'sbtest', '127.0.0.1', 'sbtest', 0, '%s', ''); LOAD MYSQL FIREWALL TO RUNTIME", digest))
	allowed("SELECT 42 AS allowed")

	// Saved and reloaded from disk.
	admin(t, s, "SAVE MYSQL FIREWALL TO DISK; DELETE FROM mysql_firewall_whitelist_rules; LOAD MYSQL FIREWALL TO RUNTIME")
	blocked("SELECT 42 AS allowed")
	admin(t, s, "LOAD MYSQL FIREWALL FROM DISK; LOAD MYSQL FIREWALL TO RUNTIME")
	allowed("SELECT 42 AS allowed")
	if n := strings.TrimSpace(admin(t, s, "SELECT COUNT(*) FROM runtime_mysql_firewall_whitelist_rules")); n != "2" {
		t.Fatalf("runtime_mysql_firewall_whitelist_rules has %s rows, want 2", n)
	}
	// A digest that is not hexadecimal is refused at LOAD, and the running
	// whitelist stays.
	if _, err := testenv.CLI(t, s.AdminPort, "admin", "admin", "UPDATE mysql_firewall_whitelist_rules SET digest='nothex'; LOAD MYSQL FIREWALL TO RUNTIME"); err == nil {
		t.Fatal("a rule with digest 'nothex' loaded")
	}
	allowed("SELECT 42 AS allowed")
}
