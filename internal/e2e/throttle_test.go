package e2e

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestThrottleNewConnections: mysql-throttle_connections_per_sec_to_hostgroup
// lets a hostgroup open that many backend connections a second; requests
// past it wait for the next second (Server_Connections_delayed counts them),
// and mysql_hostgroup_attributes.throttle_connections_per_sec replaces the
// variable for its hostgroup.
func TestThrottleNewConnections(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, "SET mysql-throttle_connections_per_sec_to_hostgroup=2; SET mysql-free_connections_pct=100; LOAD MYSQL VARIABLES TO RUNTIME")
	if w := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); strings.TrimSpace(w) != "" {
		t.Fatalf("LOAD with a throttle warned: %q", w)
	}
	delayed := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(admin(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Server_Connections_delayed'")))
		return n
	}
	// Six sessions each hold a backend connection for 1.5 s at once: the
	// hostgroup needs six new connections.
	burst := func() time.Duration {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		start := time.Now()
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT SLEEP(1.5)"); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	took := burst()
	if took < 2500*time.Millisecond {
		t.Fatalf("six new connections at 2 a second: the burst took %v, want over 2.5 s", took)
	}
	if d := delayed(); d == 0 {
		t.Fatal("Server_Connections_delayed is 0 after a throttled burst")
	}
	pool := admin(t, s, "SELECT ConnUsed + ConnFree, ConnOK FROM stats_mysql_connection_pool")
	t.Logf("throttled burst: %v, delayed %d, pool (connections, opened) %s", took, delayed(), strings.TrimSpace(pool))

	// The hostgroup's attributes row replaces the variable (1000000: none).
	admin(t, s, `INSERT INTO mysql_hostgroup_attributes (hostgroup_id, throttle_connections_per_sec) VALUES (0, 1000000);
		LOAD MYSQL SERVERS TO RUNTIME; UPDATE global_variables SET variable_value='0' WHERE variable_name='mysql-free_connections_pct';
		LOAD MYSQL VARIABLES TO RUNTIME`)
	before := delayed()
	// Twelve at once now need new connections beyond the six kept.
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT SLEEP(1)")
		}()
	}
	wg.Wait()
	if d := delayed(); d != before {
		t.Fatalf("Server_Connections_delayed went from %d to %d with the hostgroup unthrottled (took %v)", before, d, time.Since(start))
	}
}
