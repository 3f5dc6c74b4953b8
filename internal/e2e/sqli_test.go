package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestAutomaticDetectSQLi: with mysql-automatic_detect_sqli a text query
// libinjection flags is refused and its connection closed (counted in
// automatic_detected_sql_injection, logged with the fingerprint); an
// ordinary query passes; a whitelisted fingerprint passes (counted in
// whitelisted_sqli_fingerprint); a firewall user in OFF mode is not
// checked.
func TestAutomaticDetectSQLi(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, "SET mysql-automatic_detect_sqli='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("automatic_detect_sqli warned: %q", w)
	}
	global := func(name string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(admin(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='"+name+"'")))
		return n
	}
	const attack = "SELECT id FROM sbtest.t WHERE name = '' OR 1=1 -- '"
	// libinjection reads whole statements: "SELECT 1" passes, but any
	// SELECT … WHERE gets a fingerprint (ProxySQL has the same limit: its
	// answer is the fingerprint whitelist).
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
	out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", attack+"; SELECT 2")
	if err == nil || !strings.Contains(err.Error(), "ERROR 1148") || !strings.Contains(err.Error(), "SQL injection detected") {
		t.Fatalf("an injection: %q %v, want ERR 1148 SQL injection detected", out, err)
	}
	if n := global("automatic_detected_sql_injection"); n != 1 {
		t.Fatalf("automatic_detected_sql_injection = %d, want 1", n)
	}
	waitLog(t, s, "SQL injection detected", "fingerprint")
	fp := ""
	for _, line := range strings.Split(s.Output(), "\n") {
		if i := strings.Index(line, "fingerprint="); i >= 0 && strings.Contains(line, "SQL injection detected") {
			fp = strings.Fields(line[i+len("fingerprint="):])[0]
		}
	}
	if fp == "" {
		t.Fatal("no fingerprint in the log")
	}
	// Whitelisted fingerprint: the query runs.
	admin(t, s, "INSERT INTO mysql_firewall_whitelist_sqli_fingerprints (active, fingerprint) VALUES (1, '"+fp+"'); LOAD MYSQL FIREWALL TO RUNTIME")
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", attack); err == nil || strings.Contains(err.Error(), "SQL injection") {
		// The table does not exist: the backend's error proves the query ran.
		t.Fatalf("a whitelisted fingerprint: %v, want the server's own error", err)
	}
	if n := global("whitelisted_sqli_fingerprint"); n != 1 {
		t.Fatalf("whitelisted_sqli_fingerprint = %d, want 1", n)
	}
	// A firewall user in OFF mode is not checked.
	admin(t, s, `DELETE FROM mysql_firewall_whitelist_sqli_fingerprints;
		INSERT INTO mysql_firewall_whitelist_users (active, username, client_address, mode, comment) VALUES (1, 'sbtest', '', 'OFF', '');
		LOAD MYSQL FIREWALL TO RUNTIME; SET mysql-firewall_whitelist_enabled='true'; LOAD MYSQL VARIABLES TO RUNTIME`)
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", attack); err == nil || strings.Contains(err.Error(), "SQL injection") {
		t.Fatalf("firewall OFF user: %v, want the server's own error", err)
	}
	if n := global("automatic_detected_sql_injection"); n != 1 {
		t.Fatalf("automatic_detected_sql_injection = %d after the OFF user, want still 1", n)
	}
}
