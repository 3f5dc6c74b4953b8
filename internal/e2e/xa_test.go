package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestXATransaction: an XA transaction lives on its connection from
// XA START to its XA COMMIT or ROLLBACK, through XA END and XA PREPARE,
// where a server reports no transaction in its status flags. With
// multiplexing, other sessions running between each step must not get
// that connection, and the XA session's statements must all reach it.
func TestXATransaction(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;`, b.Port))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(10)
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS xa_t (id INT PRIMARY KEY, v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS xa_t") })
	xa := connOf(t, db)
	other := connOf(t, db)
	// Each step is followed by another session's statements, which take
	// whatever connection the pool has idle.
	busy := func(step string) {
		t.Helper()
		for range 3 {
			var n int
			if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM xa_t").Scan(&n); err != nil {
				t.Fatalf("another session after %s: %v", step, err)
			}
			if n != 0 {
				t.Fatalf("another session after %s sees %d rows of an uncommitted XA transaction", step, n)
			}
		}
	}
	for _, round := range []string{"commit", "rollback", "one phase"} {
		xid := "'sluice-" + round + "'"
		steps := []string{"XA START " + xid, "INSERT INTO xa_t VALUES (1, 'a')", "INSERT INTO xa_t VALUES (2, 'b')", "XA END " + xid}
		switch round {
		case "commit":
			steps = append(steps, "XA PREPARE "+xid, "XA COMMIT "+xid)
		case "rollback":
			steps = append(steps, "XA PREPARE "+xid, "XA ROLLBACK "+xid)
		default:
			steps = append(steps, "XA COMMIT "+xid+" ONE PHASE")
		}
		for i, q := range steps {
			if _, err := xa.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %s: %v", round, q, err)
			}
			if i < len(steps)-1 {
				busy(q)
			}
		}
		var n int
		if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM xa_t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		want := 2
		if round == "rollback" {
			want = 0
		}
		if n != want {
			t.Fatalf("%s: %d rows after the XA transaction, want %d", round, n, want)
		}
		if _, err := db.Exec("DELETE FROM xa_t"); err != nil {
			t.Fatal(err)
		}
	}
	// No XA transaction is left behind on a pooled connection.
	rows, err := db.Query("XA RECOVER")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		t.Fatal("XA RECOVER lists a transaction after all were ended")
	}
}
