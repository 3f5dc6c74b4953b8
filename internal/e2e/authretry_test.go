package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestAuthRefusedByOneServer: a password changed on one server of a
// hostgroup first (a rolling change) refuses the proxy's logins there; a
// session that drew that server got the 1045 although the other server
// takes the credentials. The login is now tried on the other servers
// before the client is told, as ProxySQL picks again after a failed
// connect.
func TestAuthRefusedByOneServer(t *testing.T) {
	bs := testenv.Backends(t, 2)
	for _, b := range bs {
		testenv.MustCLI(t, b.Port, "root", "test", "DROP USER IF EXISTS rolling@'%'; CREATE USER rolling@'%' IDENTIFIED BY 'pw'; GRANT ALL ON sbtest.* TO rolling@'%'")
	}
	t.Cleanup(func() {
		for _, b := range bs {
			testenv.MustCLI(t, b.Port, "root", "test", "DROP USER IF EXISTS rolling@'%'")
		}
	})
	testenv.MustCLI(t, bs[1].Port, "root", "test", "ALTER USER rolling@'%' IDENTIFIED BY 'changed'")
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d), (0, '%s', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('rolling', 'pw', 0);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Host, bs[0].Port, bs[1].Host, bs[1].Port))

	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "rolling", "pw", "sbtest", "")
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 16 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Each session keeps its connection (a transaction), so each
		// needs a login of its own.
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		var port int
		if err := c.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if port != bs[0].Port {
			t.Fatalf("session %d ran on %d, the server that refuses the login", i, port)
		}
	}
}
