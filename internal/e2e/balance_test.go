package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestBalanceLabelIsolation puts two servers in one hostgroup, labels them
// biz=a and biz=b in mysql_servers_balance, and gives the proxy biz=a with
// mysql-balance_label_name='biz': under the factor policies every query
// lands on the biz=a server (TiProxy never routes to another business's
// servers); under random, ProxySQL's weighted random, both serve.
func TestBalanceLabelIsolation(t *testing.T) {
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (0, '127.0.0.1', %d);
		INSERT INTO mysql_servers_balance(hostname, port, labels) VALUES
			('127.0.0.1', %d, '{"biz":"a","zone":"z1"}'), ('127.0.0.1', %d, '{"biz":"b","zone":"z1"}');
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;
		SET mysql-balance_label_name='biz';
		SET mysql-proxy_labels='{"biz":"a","zone":"z1"}';
		LOAD MYSQL VARIABLES TO RUNTIME;`, bs[0].Port, bs[1].Port, bs[0].Port, bs[1].Port))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spread := func(n int) map[int]int {
		t.Helper()
		seen := map[int]int{}
		for range n {
			var port int
			if err := db.QueryRowContext(ctx, "SELECT "+portQ).Scan(&port); err != nil {
				t.Fatal(err)
			}
			seen[port]++
		}
		return seen
	}
	for _, policy := range []string{"resource", "location", "connection"} {
		admin(t, s, fmt.Sprintf("SET mysql-balance_policy='%s'; LOAD MYSQL VARIABLES TO RUNTIME", policy))
		if seen := spread(100); seen[bs[0].Port] != 100 {
			t.Fatalf("%s: queries must all land on the biz=a server %d: %v", policy, bs[0].Port, seen)
		}
	}
	// The biz=a server leaves: the biz=b one is never used, and the query
	// that waited for a server says why it found none.
	admin(t, s, fmt.Sprintf(`SET mysql-balance_policy='resource'; SET mysql-connect_timeout_server_max=500; LOAD MYSQL VARIABLES TO RUNTIME;
		UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME`, bs[0].Port))
	var port int
	if err := db.QueryRowContext(ctx, "SELECT "+portQ).Scan(&port); err == nil || !strings.Contains(err.Error(), "9001") ||
		!strings.Contains(err.Error(), "label isolation") {
		t.Fatalf("with only the biz=b server online: port %d, %v; want ERR 9001 naming label isolation", port, err)
	}
	admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='ONLINE' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME", bs[0].Port))

	admin(t, s, "SET mysql-balance_policy='random'; LOAD MYSQL VARIABLES TO RUNTIME")
	seen := spread(200)
	if seen[bs[0].Port] == 0 || seen[bs[1].Port] == 0 {
		t.Fatalf("random must spread over both servers: %v", seen)
	}
	t.Logf("random: %v", seen)
}
