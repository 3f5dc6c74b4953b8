package e2e

import (
	"strings"
	"testing"
	"time"

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

	// A client looping on a bad statement: at most 10 lines a second, the
	// next saying how many were held back; every error is counted.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	before := strings.Count(s.Output(), "Error during query")
	start := time.Now()
	const n = 300
	for range n {
		if _, err := db.Exec("SELECT * FROM nothere_loop"); err == nil {
			t.Fatal("the failing query succeeded")
		}
	}
	took := time.Since(start)
	time.Sleep(1100 * time.Millisecond)
	db.Exec("SELECT * FROM nothere_after") // in a new second: carries the count held back
	waitLog(t, s, "more_not_logged=")
	logged := strings.Count(s.Output(), "Error during query") - before
	if max := 10*(int(took/time.Second)+2) + 1; logged > max {
		t.Errorf("%d errors in %v logged %d lines, want at most %d", n, took, logged, max)
	}
	if c := adminInt(t, s, "SELECT SUM(count_star) FROM stats_mysql_errors WHERE errno = 1146 AND schemaname = 'sbtest'"); c != n+1 {
		t.Errorf("stats_mysql_errors counts %d of the %d errors", c, n+1)
	}
}
