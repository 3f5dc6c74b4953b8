package e2e

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// driverBadConn makes database/sql drop a connection instead of pooling it.
var driverBadConn = driver.ErrBadConn

func itoa(n int) string { return strconv.Itoa(n) }

// routeTo puts the servers on ports in hostgroup hg and lets sbtest/sbtest
// in with hg as its default hostgroup: the setup most tests start with.
func routeTo(t *testing.T, s *testenv.Sluice, hg int, ports ...int) {
	t.Helper()
	var vals []string
	for _, p := range ports {
		vals = append(vals, fmt.Sprintf("(%d, '127.0.0.1', %d)", hg, p))
	}
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES %s;
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', %d);
		LOAD MYSQL USERS TO RUNTIME;`, strings.Join(vals, ", "), hg))
}
