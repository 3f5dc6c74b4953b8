package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestQueryDelay: mysql_query_rules.delay, the query_delay annotation and
// mysql-default_query_delay hold a query back before it goes to a backend,
// the rule's delay added to the default as in ProxySQL; what the proxy
// answers itself (a tracked SET) is not delayed; KILL CONNECTION ends a
// delayed session at once.
func TestQueryDelay(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `INSERT INTO mysql_query_rules (rule_id, active, match_pattern, delay, apply) VALUES (1, 1, '^SELECT 1 AS slow', 400, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`)
	if w := admin(t, s, "LOAD MYSQL QUERY RULES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("a rule with delay warned: %q", w)
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(1)
	took := func(q string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return time.Since(start)
	}
	took("SELECT 0") // the connection is open
	if d := took("SELECT 1 AS slow"); d < 400*time.Millisecond || d > 10*time.Second {
		t.Fatalf("a query with a 400 ms rule delay took %v", d)
	}
	if d := took("SELECT /* query_delay=300 */ 2"); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("a query with a 300 ms query_delay annotation took %v", d)
	}

	admin(t, s, "SET mysql-default_query_delay=250; LOAD MYSQL VARIABLES TO RUNTIME")
	if d := took("SELECT 3"); d < 250*time.Millisecond || d > 10*time.Second {
		t.Fatalf("a query with a 250 ms default delay took %v", d)
	}
	if d := took("SELECT 1 AS slow"); d < 650*time.Millisecond || d > 10*time.Second {
		t.Fatalf("a query with the default and a rule delay (650 ms) took %v", d)
	}

	// KILL CONNECTION while a query waits out a long delay.
	admin(t, s, "SET mysql-default_query_delay=60000; LOAD MYSQL VARIABLES TO RUNTIME")
	done := make(chan error, 1)
	go func() {
		_, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 4")
		done <- err
	}()
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" {
		id = strings.TrimSpace(admin(t, s, "SELECT SessionID FROM stats_mysql_processlist WHERE info='SELECT 4'"))
		if time.Now().After(deadline) {
			t.Fatal("the delayed query is not in the processlist")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	admin(t, s, "KILL CONNECTION "+id)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a killed delayed query succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("KILL CONNECTION did not end a delayed query within 10 s")
	}
	t.Logf("killed after %v", time.Since(start))

	// KILL QUERY while a query waits out a delay, before it reaches a
	// server: it stops with 1317 when it would have gone there, as a
	// server's KILL QUERY stops a query it is still parsing (the KILL used
	// to find nothing running, and the query ran after its delay).
	admin(t, s, "SET mysql-default_query_delay=1500; LOAD MYSQL VARIABLES TO RUNTIME")
	kdb := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	qdone := make(chan error, 1)
	go func() {
		_, err := kdb.Exec("SELECT SLEEP(20) AS killed_early")
		qdone <- err
	}()
	id = ""
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
		id = strings.TrimSpace(admin(t, s, "SELECT SessionID FROM stats_mysql_processlist WHERE info LIKE 'SELECT SLEEP(20)%'"))
		if time.Now().After(deadline) {
			t.Fatal("the delayed SLEEP is not in the processlist")
		}
	}
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "KILL QUERY "+id); err != nil {
		t.Fatalf("KILL QUERY %s: %v %s", id, err, out)
	}
	select {
	case err := <-qdone:
		if err == nil || !strings.Contains(err.Error(), "1317") {
			t.Fatalf("a query killed during its delay: %v, want 1317", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY during the delay did not stop the query: it ran")
	}
}
