package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestConnectionWarming: with mysql-connection_warming, a server with fewer
// connections than free_connections_pct of its max_connections gets a new
// connection for each request instead of a reused one, up to that number;
// then connections are reused. The hostgroup's attributes row replaces the
// variables.
func TestConnectionWarming(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `UPDATE mysql_servers SET max_connections=10; LOAD MYSQL SERVERS TO RUNTIME;
		SET mysql-connection_warming='true'; SET mysql-free_connections_pct=50; LOAD MYSQL VARIABLES TO RUNTIME`)
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("connection_warming warned: %q", w)
	}
	opened := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(admin(t, s, "SELECT SUM(ConnOK) FROM stats_mysql_connection_pool WHERE hostgroup=0")))
		return n
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(1) // one client session, queries one after another
	for i := 0; i < 8; i++ {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened(); n != 5 {
		t.Fatalf("warming to 50%% of 10: %d connections opened by 8 sequential queries, want 5", n)
	}
	// The attributes row turns warming off for the hostgroup.
	admin(t, s, "INSERT INTO mysql_hostgroup_attributes (hostgroup_id, connection_warming, free_connections_pct) VALUES (0, 0, 90); LOAD MYSQL SERVERS TO RUNTIME")
	for i := 0; i < 5; i++ {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened(); n != 5 {
		t.Fatalf("warming off for the hostgroup: %d connections opened, want still 5", n)
	}
}
