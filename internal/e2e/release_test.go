package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestCommitRelease: COMMIT RELEASE and ROLLBACK RELEASE end the client's
// session after their OK, as the server ends a direct connection — with a
// transaction open or none (the proxy answers that COMMIT itself). The
// session went on before, on a backend connection the server had closed.
func TestCommitRelease(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	routeTo(t, s, 1, b.Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx := context.Background()
	for _, steps := range [][]string{
		{"BEGIN", "SELECT 1", "COMMIT RELEASE"},
		{"BEGIN", "SELECT 1", "ROLLBACK WORK RELEASE"},
		{"COMMIT RELEASE"},
		{"SET @a = 1", "ROLLBACK AND NO CHAIN RELEASE"},
	} {
		c := connOf(t, db)
		for _, q := range steps {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%v: %s: %v", steps, q, err)
			}
		}
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
			t.Fatalf("%v: the session went on after the RELEASE", steps)
		}
	}
	// Under completion_type=RELEASE a plain COMMIT or ROLLBACK releases
	// (the session went on, its next statement got 1927).
	for _, end := range []string{"COMMIT", "ROLLBACK"} {
		c := connOf(t, db)
		for _, q := range []string{"SET completion_type = 2", "BEGIN", "SELECT 1", end} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("completion_type=2: %s: %v", q, err)
			}
		}
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil || strings.Contains(err.Error(), "1927") {
			t.Fatalf("completion_type=2, %s: the session went on (%v)", end, err)
		}
	}
	// NO RELEASE keeps it.
	c := connOf(t, db)
	for _, q := range []string{"BEGIN", "COMMIT NO RELEASE", "SELECT 1"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The pool is sound after the server closed the released connections.
	for i := range 5 {
		var port int
		if err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil || port != b.Port {
			t.Fatal(fmt.Sprint("query ", i, " after the releases: ", port, err))
		}
	}
}

// TestBeginRetriedOnClosedConnection: a pooled connection the server
// closed a moment after its last use (a DBA's KILL, COMMIT RELEASE) is not
// looked at before reuse (docs/architecture.md, awaitWindow), so the next
// statement meets the close. A read was sent again on another connection;
// a BEGIN got ERR 1927, though a transaction begun on a connection that
// broke died with it: it is sent again now too.
func TestBeginRetriedOnClosedConnection(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	routeTo(t, s, 1, b.Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx := context.Background()
	for i := range 3 {
		var id int64
		if err := db.QueryRowContext(ctx, "SELECT CONNECTION_ID() + 0").Scan(&id); err != nil {
			t.Fatal(err)
		}
		backendSQL(t, b, fmt.Sprintf("KILL %d", id))
		c := connOf(t, db)
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatalf("round %d: BEGIN on the pool after its connection was killed: %v", i, err)
		}
		var now int64
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID() + 0").Scan(&now); err != nil || now == id {
			t.Fatalf("round %d: the transaction runs on %d (killed %d): %v", i, now, id, err)
		}
		if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestUseWithComments: a USE with the comments ORMs and agents add is read
// as a USE (the session's schema changes, nothing reaches the pool); one
// the proxy cannot read runs on the server with the session locked to the
// connection, and its schema read back. Before, both went to the server
// unseen and the connection went back to the pool: the next session ran
// in that schema.
func TestUseWithComments(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS use_other")
	ctx := context.Background()
	for _, q := range []string{"/* c */ USE use_other", "USE use_other /* c */", "USE /* c */ use_other", "USE use_other -- c", "USE use_other#c",
		"/*!40101 USE use_other */", "/*M!100000 USE use_other */"} {
		a, _ := oneConn(t, s.DataPort)
		if _, err := a.ExecContext(ctx, q); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		var db string
		if err := a.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil || db != "use_other" {
			t.Fatalf("%q: the session's schema is %q (%v)", q, db, err)
		}
		// The client leaves: its connection goes back to the pool, or is
		// closed when the session held it.
		a.Raw(func(any) error { return driverBadConn })
		a.Close()
		other, _ := oneConn(t, s.DataPort)
		if err := other.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil || db != "sbtest" {
			t.Fatalf("after %q in another session: a new session's schema is %q (%v)", q, db, err)
		}
		other.Close()
	}
}

// TestMariaDBDumpThroughReadWriteSplit: mariadb-dump (without
// --single-transaction) through ProxySQL's usual read/write rules. It sends
// "/*M!100100 SET @@MAX_STATEMENT_TIME=0.000000 */" first: an executable
// comment MySQL skips, which locked the session to the writer's hostgroup,
// and every SELECT of the dump then got 9006. Once every server is known
// to be MariaDB (their handshakes), the comment's SET is read as the SET
// it is.
func TestMariaDBDumpThroughReadWriteSplit(t *testing.T) {
	s, _ := rwSplit(t, "CREATE DATABASE IF NOT EXISTS dumpsrc; CREATE OR REPLACE TABLE dumpsrc.t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO dumpsrc.t VALUES (1, 'one'), (2, 'two')", "")
	// A connection to each hostgroup: the proxy has seen every server's
	// handshake (the monitor's connections would do it too).
	db := testenv.DB(t, s.DataPort, "root", "test", "", "")
	for _, q := range []string{"SELECT 1", "DO 1"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("mariadb-dump", "-h127.0.0.1", fmt.Sprintf("-P%d", s.DataPort), "-uroot", "-ptest", "dumpsrc").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CREATE TABLE `t`") || !strings.Contains(string(out), "(1,'one')") || !strings.Contains(string(out), "(2,'two')") {
		t.Fatalf("mariadb-dump through read/write rules: %v\n%s", err, out)
	}
}
