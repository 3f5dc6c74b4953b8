package e2e

import (
	"context"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestLoadUsersKeepsSessions: a LOAD MYSQL USERS changes who may log in,
// not the sessions in progress, as in ProxySQL (authentication is at
// connect; a session keeps the credentials it logged in with). A session
// whose user was deactivated, removed, or given a hashed password no client
// has logged in with since goes on — its open transaction can be rolled
// back — and new logins follow the new table. The session used to get 1045
// on every statement, ROLLBACK included, with the transaction's locks held.
func TestLoadUsersKeepsSessions(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	ctx := context.Background()
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.ulk (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; REPLACE INTO sbtest.ulk VALUES (1, 0)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	for _, c := range []struct {
		change   string
		newLogin bool // whether a new login succeeds after it
	}{
		{"UPDATE mysql_users SET active = 0 WHERE username = 'sbtest'", false},
		{"DELETE FROM mysql_users WHERE username = 'sbtest'", false},
		{"UPDATE mysql_users SET password = MYSQL_NATIVE_PASSWORD('sbtest') WHERE username = 'sbtest'", true},
	} {
		change := c.change
		admin(t, s, "DELETE FROM mysql_users WHERE username = 'sbtest'; INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0); LOAD MYSQL USERS TO RUNTIME;")
		idle, trx := connOf(t, db), connOf(t, db)
		if _, err := idle.ExecContext(ctx, "SET @who = 'idle'"); err != nil {
			t.Fatal(err)
		}
		if _, err := trx.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := trx.ExecContext(ctx, "UPDATE ulk SET v = v + 1 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		admin(t, s, change+"; LOAD MYSQL USERS TO RUNTIME;")
		var who string
		if err := idle.QueryRowContext(ctx, "SELECT @who").Scan(&who); err != nil || who != "idle" {
			t.Errorf("after %q: the idle session's next query: %q %v", change, who, err)
		}
		var one int
		if err := idle.QueryRowContext(ctx, "SELECT 1 FROM ulk WHERE id = 1").Scan(&one); err != nil {
			t.Errorf("after %q: the idle session's next read: %v", change, err)
		}
		if _, err := trx.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("after %q: ROLLBACK of the open transaction: %v", change, err)
		}
		idle.Close()
		trx.Close()
		var v int
		if err := testenv.DB(t, b.Port, "root", "test", "sbtest", "").QueryRow("SELECT v FROM ulk WHERE id = 1").Scan(&v); err != nil || v != 0 {
			t.Errorf("after %q: the rolled back update left v = %d (%v)", change, v, err)
		}
		// New logins follow the table.
		if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); c.newLogin != (err == nil) {
			t.Errorf("after %q: a new login: %v", change, err)
		}
	}
}
