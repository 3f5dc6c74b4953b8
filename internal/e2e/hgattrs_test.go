package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestHostgroupAttributesAndNotReusable: mysql_hostgroup_attributes
// multiplex=0 keeps a session's connection while it is idle;
// max_num_online_servers below the ONLINE count stops traffic to the
// hostgroup (ERR 9001); mysql-autocommit_false_not_reusable closes a
// connection left with autocommit=0 instead of pooling it.
func TestHostgroupAttributesAndNotReusable(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	pool := func(col string) int {
		t.Helper()
		n, _ := strconv.Atoi(strings.TrimSpace(admin(t, s, "SELECT SUM("+col+") FROM stats_mysql_connection_pool WHERE hostgroup=0")))
		return n
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	ctx := context.Background()
	idleUsed := func() int {
		t.Helper()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		return pool("ConnUsed") // the session is idle now
	}
	if n := idleUsed(); n != 0 {
		t.Fatalf("multiplexing: %d connections in use by an idle session", n)
	}
	admin(t, s, "INSERT INTO mysql_hostgroup_attributes (hostgroup_id, multiplex) VALUES (0, 0); LOAD MYSQL SERVERS TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL SERVERS TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("multiplex=0 warned: %q", w)
	}
	if n := idleUsed(); n != 1 {
		t.Fatalf("multiplex=0: %d connections in use by an idle session, want 1", n)
	}
	db.SetMaxIdleConns(0) // the sessions above end
	admin(t, s, "DELETE FROM mysql_hostgroup_attributes; LOAD MYSQL SERVERS TO RUNTIME")

	// autocommit=0 connections are closed on release when asked.
	admin(t, s, "SET mysql-autocommit_false_not_reusable='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	opened := pool("ConnOK")
	for i := 0; i < 3; i++ {
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SET autocommit=0; DO 1; ROLLBACK")
	}
	if d := pool("ConnOK") - opened; d < 3 {
		t.Fatalf("autocommit_false_not_reusable: %d connections opened for 3 sessions with autocommit=0, want 3", d)
	}
	admin(t, s, "SET mysql-autocommit_false_not_reusable='false'; LOAD MYSQL VARIABLES TO RUNTIME")
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SET autocommit=0; DO 1; ROLLBACK") // leaves one pooled
	opened = pool("ConnOK")
	for i := 0; i < 3; i++ {
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SET autocommit=0; DO 1; ROLLBACK")
	}
	if d := pool("ConnOK") - opened; d != 0 {
		t.Fatalf("reusable: %d connections opened for 3 sessions, want 0 (reused)", d)
	}

	// Two ONLINE servers where at most one may be: no traffic.
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d);
		INSERT INTO mysql_hostgroup_attributes (hostgroup_id, max_num_online_servers) VALUES (0, 1);
		LOAD MYSQL SERVERS TO RUNTIME; SET mysql-connect_timeout_server_max=1000; LOAD MYSQL VARIABLES TO RUNTIME`, bs[1].Port))
	start := time.Now()
	_, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
	if err == nil || !strings.Contains(err.Error(), "9001") {
		t.Fatalf("a hostgroup over max_num_online_servers: %v, want ERR 9001", err)
	}
	t.Logf("refused after %v", time.Since(start))
	// The log says why (an operator sees 9001 with every server healthy).
	waitLog(t, s, "max_num_online_servers", "num_online_servers=2", "max_online_servers=1")
	admin(t, s, "UPDATE mysql_hostgroup_attributes SET max_num_online_servers=2; LOAD MYSQL SERVERS TO RUNTIME")
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
}
