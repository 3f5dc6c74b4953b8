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

// TestLogQueryErrors: every server error for a query is logged, as
// ProxySQL logs "Error during query on (hostgroup,host,port,thread_id)"
// whatever mysql-verbose_query_error says; the variable adds the user,
// schema and digest text. It used to log nothing unless it was on.
func TestLogQueryErrors(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT no_such_column_quiet FROM sbtest.nothere_quiet"); err == nil {
		t.Fatal("the failing query succeeded")
	}
	waitLog(t, s, "Error during query", "errno=1146", "nothere_quiet")
	for _, line := range strings.Split(s.Output(), "\n") {
		if strings.Contains(line, "nothere_quiet") && strings.Contains(line, "digest_text") {
			t.Fatalf("digest text logged without mysql-verbose_query_error: %s", line)
		}
	}
	admin(t, s, "SET mysql-verbose_query_error='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT no_such_column_loud FROM sbtest.nothere_loud"); err == nil {
		t.Fatal("the failing query succeeded")
	}
	waitLog(t, s, "Error during query", "errno=1146", "digest_text", "user=sbtest", "nothere_loud")
}
