package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestBackendDiesBetweenQueries puts two servers in one hostgroup, one of
// them behind a relay, and cuts the relay while a client runs reads in
// autocommit mode: every read must succeed (retried on the surviving
// server), and the dead one is shunned.
func TestBackendDiesBetweenQueries(t *testing.T) {
	bs := testenv.Backends(t, 2)
	r := testenv.NewRelay(t, bs[0].Addr())
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-balance_policy='random'; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (0, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;`, r.Port(), bs[1].Port))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	query := func() (int, error) {
		var port int
		// Not "SELECT @@port": reading a session variable pins the backend
		// connection to the session, as in ProxySQL.
		err := db.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME='PORT'").Scan(&port)
		return port, err
	}
	seen := map[int]int{}
	for i := 0; i < 200; i++ {
		p, err := query()
		if err != nil {
			t.Fatalf("before the cut: %v", err)
		}
		seen[p]++
	}
	if seen[bs[0].Port] == 0 || seen[bs[1].Port] == 0 {
		t.Fatalf("both servers should serve before the cut: %v", seen)
	}
	r.Cut()
	seen = map[int]int{}
	for i := 0; i < 300; i++ {
		p, err := query()
		if err != nil {
			t.Fatalf("read %d after the backend died: %v", i, err)
		}
		seen[p]++
	}
	if seen[bs[0].Port] != 0 {
		t.Fatalf("the dead server answered: %v", seen)
	}
	status := admin(t, s, fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE port=%d", r.Port()))
	if status != "SHUNNED\n" {
		t.Errorf("the dead server's runtime status is %q, want SHUNNED", status)
	}
	t.Logf("after the cut: %v; dead server's runtime status %q", seen, status)
}

// TestBackendDiesInTransaction cuts the only server of a hostgroup while a
// client is inside a transaction on it: the client gets a clear ERR (the
// transaction is lost with its server), its connection to sluice stays
// usable, and once another server is loaded into the hostgroup the same
// client connection goes on.
func TestBackendDiesInTransaction(t *testing.T) {
	bs := testenv.Backends(t, 2)
	r := testenv.NewRelay(t, bs[0].Addr())
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-connect_timeout_server_max=1500; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;`, r.Port()))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exec := func(q string) error {
		rows, err := c.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	}
	if err := exec("BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	r.Cut()
	err = exec("SELECT 2")
	if err == nil || !strings.Contains(err.Error(), "1927") || !strings.Contains(err.Error(), "transaction") {
		t.Fatalf("query in a transaction on a dead server: %v", err)
	}
	err = exec("SELECT 3")
	if err == nil || !strings.Contains(err.Error(), "9001") {
		t.Fatalf("with no server left: %v", err)
	}
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;`, bs[1].Port))
	if err := exec("SELECT 4"); err != nil {
		t.Fatalf("the same client connection after a server was added: %v", err)
	}
}

// stallListener accepts TCP connections and never answers: a server that
// hangs (as under SIGSTOP) without stopping a shared one.
func stallListener(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestHungBackend puts a server that accepts connections but never speaks
// next to a healthy one: queries still succeed (logins to the hung one time
// out after mysql-connect_timeout_server and the query goes elsewhere), and
// the hung server ends up SHUNNED.
func TestHungBackend(t *testing.T) {
	bs := testenv.Backends(t, 1)
	hung := stallListener(t)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		SET mysql-connect_timeout_server=300;
		-- ProxySQL's weighted random keeps trying the hung server until connect
		-- errors shun it; the factor policies would already avoid it by health.
		SET mysql-balance_policy='random';
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (0, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		LOAD MYSQL USERS TO RUNTIME;`, hung, bs[0].Port))
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				var port int
				if err := db.QueryRowContext(ctx, "SELECT "+portQ).Scan(&port); err != nil {
					errs <- err
					return
				}
				if port != bs[0].Port {
					errs <- fmt.Errorf("answered by port %d", port)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("query with a hung server in the hostgroup: %v", err)
	}
	if st := admin(t, s, fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE port=%d", hung)); st != "SHUNNED\n" {
		t.Fatalf("hung server status %q, want SHUNNED", st)
	}
}
