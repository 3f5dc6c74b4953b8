package e2e

import (
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestLogMySQLWarnings: with mysql-log_mysql_warnings_enabled a query that
// leaves warnings is logged with them, and the client's own SHOW WARNINGS
// still sees them.
func TestLogMySQLWarnings(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, "SET mysql-log_mysql_warnings_enabled='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("log_mysql_warnings_enabled warned: %q", w)
	}
	out := testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT CAST('abc' AS UNSIGNED) AS v; SHOW WARNINGS", "-N")
	if !strings.Contains(out, "Truncated incorrect INTEGER value") {
		t.Fatalf("the client's SHOW WARNINGS after the proxy logged them: %q", out)
	}
	waitLog(t, s, "warnings detected during query", "Truncated incorrect INTEGER value", "SELECT CAST")
	// Off: nothing logged.
	admin(t, s, "SET mysql-log_mysql_warnings_enabled='false'; LOAD MYSQL VARIABLES TO RUNTIME")
	before := strings.Count(s.Output(), "warnings detected during query")
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT CAST('xyz' AS UNSIGNED)")
	if after := strings.Count(s.Output(), "warnings detected during query"); after != before {
		t.Fatalf("warnings logged with the variable off (%d → %d)", before, after)
	}
}
