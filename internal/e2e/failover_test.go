package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
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
	admin(t, s, `
		SET mysql-balance_policy='random'; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, r.Port(), bs[1].Port)
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
// transaction is lost with its server), its statements are refused until
// it ends the transaction (ROLLBACK), its connection to sluice stays
// usable, and once another server is loaded into the hostgroup the same
// client connection goes on.
func TestBackendDiesInTransaction(t *testing.T) {
	bs := testenv.Backends(t, 2)
	r := testenv.NewRelay(t, bs[0].Addr())
	s := startFresh(t, "")
	// Retries high enough that the wait for a server ends the query
	// (9001), not the connects to the dead one (9002).
	admin(t, s, `
		SET mysql-connect_timeout_server_max=1500; SET mysql-connect_retries_on_failure=1000; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 1, r.Port())
	c, ctx := oneConn(t, s.DataPort)
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
	err := exec("SELECT 2")
	if err == nil || !strings.Contains(err.Error(), "1927") || !strings.Contains(err.Error(), "transaction") {
		t.Fatalf("query in a transaction on a dead server: %v", err)
	}
	if err = exec("SELECT 3"); err == nil || !strings.Contains(err.Error(), "until ROLLBACK") {
		t.Fatalf("a statement after the lost transaction: %v, want it refused until ROLLBACK", err)
	}
	if err := exec("ROLLBACK"); err != nil {
		t.Fatalf("ROLLBACK of the lost transaction: %v", err)
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
	admin(t, s, `
		SET mysql-connect_timeout_server=300;
		-- ProxySQL's weighted random keeps trying the hung server until connect
		-- errors shun it; the factor policies would already avoid it by health.
		SET mysql-balance_policy='random';
		LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, hung, bs[0].Port)
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

// TestLostTransactionRealClients: what the mariadb CLI and sysbench (both
// MariaDB Connector/C, which reads a client-range code such as 2013 inside
// an ERR packet as "malformed packet") make of a transaction whose backend
// died: ERR 1927 with its message. sysbench oltp_read_write with 1927 added
// to --mysql-ignore-errors rolls back the failed transaction and goes on
// on the same connection: the session stays usable.
func TestLostTransactionRealClients(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	bs := testenv.Backends(t, 2)
	const dbName = "losttrx"
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=" + dbName, "--tables=1", "--table-size=1000"}
	sysbench := func(port int, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		full := append(append([]string{args[0]}, common...), fmt.Sprintf("--mysql-port=%d", port))
		out, err := exec.CommandContext(ctx, "sysbench", append(full, args[1:]...)...).CombinedOutput()
		return string(out), err
	}
	for _, b := range bs {
		backendSQL(t, b, "DROP DATABASE IF EXISTS "+dbName+"; CREATE DATABASE "+dbName)
		if out, err := sysbench(b.Port, "oltp_read_write", "prepare"); err != nil {
			t.Fatalf("prepare on %d: %v\n%s", b.Port, err, out)
		}
	}
	t.Cleanup(func() {
		for _, b := range bs {
			testenv.CLI(t, b.Port, "root", "test", "DROP DATABASE IF EXISTS "+dbName)
		}
	})
	// Two relays to the same server: sysbench's dies first, then the CLI's
	// (a server that died stays shunned for a while, so each part gets its
	// own).
	rSB, rCLI := testenv.NewRelay(t, bs[0].Addr()), testenv.NewRelay(t, bs[0].Addr())
	s := startFresh(t, "")
	routeTo(t, s, 1, rSB.Port(), rCLI.Port(), bs[1].Port)

	// sysbench read/write transactions while the relayed server dies.
	type result struct {
		out string
		err error
	}
	generated := func() int64 {
		return adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='generated_error_packets'")
	}
	gen0 := generated()
	done := make(chan result, 1)
	go func() {
		out, err := sysbench(s.DataPort, "oltp_read_write", "--threads=4", "--time=12", "--report-interval=0",
			"--mysql-ignore-errors=1213,1020,1205,1927", "run")
		done <- result{out, err}
	}()
	time.Sleep(4 * time.Second)
	rSB.SetDown(true)
	res := <-done
	if res.err != nil {
		t.Fatalf("sysbench: %v\n%s", res.err, res.out)
	}
	// The errors Sluice generated during the run are the lost
	// transactions' 1927s (deadlocks, also ignored, come from the server).
	lost := generated() - gen0
	m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(res.out)
	if lost == 0 || m == nil || m[1] == "0" || strings.Contains(res.out, "FATAL") || strings.Contains(res.out, "2027") {
		t.Fatalf("sysbench should have met ERR 1927 (%d generated) and gone on:\n%s", lost, res.out)
	}
	// The mariadb CLI, in a transaction on the server that dies.
	var cliOut string
	for i := 0; ; i++ {
		if i == 30 {
			t.Fatal("no CLI session landed on the relayed server")
		}
		done := make(chan string, 1)
		go func() {
			out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest",
				fmt.Sprintf("BEGIN; SELECT IF(@@port=%d, SLEEP(2), 0) INTO @s; SELECT 'after'", bs[0].Port), "-D", dbName)
			if err != nil {
				out += err.Error()
			}
			done <- out
		}()
		time.Sleep(700 * time.Millisecond)
		rCLI.SetDown(true)
		cliOut = <-done
		rCLI.SetDown(false)
		if strings.Contains(cliOut, "ERROR") {
			break
		}
	}
	if !strings.Contains(cliOut, "ERROR 1927 (70100)") || !strings.Contains(cliOut, "an open transaction") || strings.Contains(cliOut, "2027") {
		t.Fatalf("mariadb CLI: %s", cliOut)
	}

	var summary []string
	for _, line := range strings.Split(res.out, "\n") {
		if strings.Contains(line, "transactions:") || strings.Contains(line, "ignored errors:") || strings.Contains(line, "reconnects:") {
			summary = append(summary, strings.Join(strings.Fields(line), " "))
		}
	}
	t.Logf("CLI: %q; sysbench: %s; ERR 1927 sent by Sluice: %d", strings.TrimSpace(cliOut[strings.Index(cliOut, "ERROR"):]), strings.Join(summary, "; "), lost)
}

// TestServerRestartBetweenWrites: a server restarts (every connection to it
// closed, the port answering again at once) while a client sits idle. The
// pooled connections are dead; a write sent on one would fail on the read,
// and a write cannot be repeated (it may have run). The pool looks at a
// connection idle for a second or more before handing it out, so the
// client's next write, text or prepared, goes to a new connection instead
// of failing with 1927.
func TestServerRestartBetweenWrites(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], "CREATE TABLE IF NOT EXISTS sbtest.restart_w (id INT PRIMARY KEY, n INT); REPLACE INTO sbtest.restart_w VALUES (1, 0)")
	r := testenv.NewRelay(t, bs[0].Addr())
	s := startFresh(t, "")
	routeTo(t, s, 0, r.Port())
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stmt, err := db.PrepareContext(ctx, "UPDATE restart_w SET n = n + ? WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	writes := 0
	for round := 0; round < 3; round++ {
		if _, err := db.ExecContext(ctx, "UPDATE restart_w SET n = n + 1 WHERE id = 1"); err != nil {
			t.Fatalf("round %d, text write before the restart: %v", round, err)
		}
		if _, err := stmt.ExecContext(ctx, 1); err != nil {
			t.Fatalf("round %d, prepared write before the restart: %v", round, err)
		}
		writes += 2
		r.SetDown(true) // every connection to the server closed
		r.SetDown(false)
		time.Sleep(1200 * time.Millisecond) // idle past the pool's look-again window
		if round%2 == 0 {
			_, err = db.ExecContext(ctx, "UPDATE restart_w SET n = n + 1 WHERE id = 1")
		} else {
			_, err = stmt.ExecContext(ctx, 1)
		}
		if err != nil {
			t.Fatalf("round %d, the first write after the restart: %v", round, err)
		}
		writes++
	}
	if got := strings.TrimSpace(backendSQL(t, bs[0], "SELECT n FROM sbtest.restart_w WHERE id = 1")); got != fmt.Sprint(writes) {
		t.Fatalf("the server counted %s writes, want %d (each exactly once)", got, writes)
	}
	t.Logf("%d writes across 3 restarts, each applied once, none refused", writes)
}

// TestSoleServerBackSoon: a hostgroup of one server — the usual writer
// hostgroup — whose server restarts. The failed connects while it is down
// shun it; with nothing else to pick, ProxySQL's desperate pass (#531)
// tries it again after a tenth of the recovery time, so queries succeed
// about that long after the server is back, not after the whole recovery
// time (20 s here, so the two cannot be confused: 2 s against up to 20).
func TestSoleServerBackSoon(t *testing.T) {
	t.Parallel() // own server, mostly waiting: see doc.go
	own := testenv.OwnBackends(t, 1)
	s := startIn(t, t.TempDir(), "", false)
	admin(t, s, "SET mysql-shun_recovery_time_sec=20; SET mysql-connect_timeout_server_max=30000; LOAD MYSQL VARIABLES TO RUNTIME")
	routeTo(t, s, 0, own.Backends[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	query := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
	if err := query(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	own.Kill(t, 0)
	if err := query(1500 * time.Millisecond); err == nil {
		t.Fatal("a query succeeded with the only server down")
	}
	deadline := time.Now().Add(10 * time.Second)
	for adminRows(t, s, "SELECT status FROM stats_mysql_connection_pool")[0][0] != "SHUNNED" {
		if time.Now().After(deadline) {
			t.Fatalf("the dead server was not shunned: %v", adminRows(t, s, "SELECT * FROM stats_mysql_connection_pool"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	shunned := time.Since(start)
	own.Start(t)
	up := time.Now()
	for {
		if err := query(time.Second); err == nil {
			break
		}
		if time.Since(up) > 12*time.Second {
			t.Fatalf("no query served %v after the only server was back (recovery time 20 s)", time.Since(up).Round(time.Millisecond))
		}
	}
	t.Logf("killed, shunned after %v, started again in %v; queries served again %v after it was up",
		shunned.Round(time.Millisecond), up.Sub(start.Add(shunned)).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
}

// TestLostTransactionRefusesUntilRollback: after ERR 1927 for a
// transaction lost with its backend connection, the session went on in
// autocommit: a client that carried on got the rest of its transaction
// committed row by row, and its ROLLBACK undid nothing. Statements are now
// refused until the client ends the transaction; ROLLBACK does, and the
// session goes on.
func TestLostTransactionRefusesUntilRollback(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	testenv.MustCLI(t, b.Port, "root", "test", "CREATE TABLE IF NOT EXISTS sbtest.losttx (a INT); DELETE FROM sbtest.losttx")
	ctx := context.Background()
	c := connOf(t, testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", ""))
	for _, q := range []string{"BEGIN", "INSERT INTO losttx VALUES (1)"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	testenv.MustCLI(t, b.Port, "root", "test", "SELECT CONCAT('KILL ', id, ';') FROM information_schema.processlist WHERE user = 'sbtest' INTO @k; EXECUTE IMMEDIATE @k")
	if _, err := c.ExecContext(ctx, "INSERT INTO losttx VALUES (2)"); err == nil || !strings.Contains(err.Error(), "an open transaction") {
		t.Fatalf("the statement that found the transaction lost: %v", err)
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO losttx VALUES (3)"); err == nil || !strings.Contains(err.Error(), "until ROLLBACK") {
		t.Fatalf("a statement after it: %v, want it refused", err)
	}
	if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO losttx VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(testenv.MustCLI(t, b.Port, "root", "test", "SELECT GROUP_CONCAT(a) FROM sbtest.losttx", "-N")); out != "4" {
		t.Fatalf("rows: %q, want only the one written after the ROLLBACK", out)
	}
}

// TestConnectRetriesOnFailure: mysql-connect_retries_on_failure bounds the
// connects a command tries, as in ProxySQL: past them the client gets 9002
// "Max connect failure" at once, not 9001 after connect_timeout_server_max.
// It bounded only the shun threshold, and a client that had lowered it to
// fail fast waited the whole timeout.
func TestConnectRetriesOnFailure(t *testing.T) {
	dead := testenv.FreePort(t)
	s := startFresh(t, "")
	admin(t, s, `SET mysql-connect_retries_on_failure=2; SET mysql-connect_timeout_server_max=8000; SET mysql-shun_on_failures=100;
		LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 1, dead)
	start := time.Now()
	_, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "9002") || !strings.Contains(err.Error(), "Max connect failure while reaching hostgroup 1") {
		t.Fatalf("a query to a dead server with 2 retries: %v, want ERR 9002", err)
	}
	if took > 4*time.Second {
		t.Fatalf("the 9002 came after %v: the retries did not bound the wait", took)
	}
	if n := adminInt(t, s, fmt.Sprintf("SELECT COALESCE(SUM(count_star), 0) FROM stats_mysql_errors WHERE port = %d", dead)); n != 3 {
		t.Errorf("%d connect errors counted, want 3 (one attempt and two retries)", n)
	}
}
