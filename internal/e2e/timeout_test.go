package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestQueryTimeout: a rule's timeout (and the query_timeout annotation)
// stops a query on a real MariaDB with KILL QUERY; the client gets ERR 1907
// "Query execution was interrupted, query_timeout exceeded", through the
// text protocol, prepared statements and the mariadb CLI, and its session
// goes on.
func TestQueryTimeout(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, timeout, apply) VALUES (1, 1, 'SLEEP', 500, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	expect1907 := func(what string, f func() error) time.Duration {
		t.Helper()
		start := time.Now()
		err := f()
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "1907") || !strings.Contains(err.Error(), "query_timeout exceeded") {
			t.Fatalf("%s: %v, want ERR 1907", what, err)
		}
		if took > 4*time.Second {
			t.Fatalf("%s: the error came after %v (the query sleeps 5 s, the timeout is 0.5 s)", what, took)
		}
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("%s: the session is not usable after the timeout: %v", what, err)
		}
		return took
	}
	text := expect1907("text", func() error { _, err := db.ExecContext(ctx, "SELECT SLEEP(5)"); return err })
	stmt, err := db.PrepareContext(ctx, "SELECT SLEEP(?)")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	prepared := expect1907("prepared", func() error { _, err := stmt.ExecContext(ctx, 5); return err })
	annotated := expect1907("annotation", func() error {
		_, err := db.ExecContext(ctx, "SELECT /* query_timeout=300 */ 1 FROM (SELECT 1) x WHERE 0 = SLEEP(3)")
		return err
	})
	start := time.Now()
	out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT SLEEP(5)")
	if err == nil || !strings.Contains(out+err.Error(), "ERROR 1907") {
		t.Fatalf("mariadb CLI: %v\n%s", err, out)
	}
	cli := time.Since(start)
	// The killed queries did not leave the server busy.
	if n := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(%' AND INFO NOT LIKE '%PROCESSLIST%'")); n != "0" {
		t.Fatalf("%s sleeping queries still on the server", n)
	}
	t.Logf("ERR 1907 after: text %v, prepared %v, annotation (300 ms) %v, mariadb CLI %v",
		text.Round(time.Millisecond), prepared.Round(time.Millisecond), annotated.Round(time.Millisecond), cli.Round(time.Millisecond))

	// A fast_forward user's queries are relayed as they are: no rule and
	// no mysql-default_query_timeout stops them, prepared ones included
	// (those used to get 1907 where the same text query did not).
	admin(t, s, `INSERT INTO mysql_users(username, password, default_hostgroup, fast_forward) VALUES ('monitor', 'monitor', 0, 1);
		LOAD MYSQL USERS TO RUNTIME; SET mysql-default_query_timeout=500; LOAD MYSQL VARIABLES TO RUNTIME;`)
	ff := testenv.DB(t, s.DataPort, "monitor", "monitor", "", "")
	var r sql.NullInt64
	if err := ff.QueryRowContext(ctx, "SELECT SLEEP(1)").Scan(&r); err != nil {
		t.Fatalf("fast_forward text query past the timeout: %v", err)
	}
	if err := ff.QueryRowContext(ctx, "SELECT SLEEP(?)", 1).Scan(&r); err != nil {
		t.Fatalf("fast_forward prepared query past the timeout: %v", err)
	}
}

// TestFrozenBackendQueryFreed: a query waits on a server that froze
// (SIGSTOP: its port accepts, nothing answers). After
// mysql-default_query_timeout the proxy's KILL QUERY cannot reach it
// either, so the proxy cuts the query's connection: the client gets ERR
// 1907 within the timeout plus the kill grace, and its session goes on.
func TestFrozenBackendQueryFreed(t *testing.T) {
	t.Parallel() // own server, mostly waiting: see doc.go
	own := testenv.OwnBackends(t, 1)
	s := startFresh(t, "")
	admin(t, s, `
		SET mysql-default_query_timeout=1500; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, own.Backends[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	own.Signal(t, 0, syscall.SIGSTOP)
	t.Cleanup(func() { own.Signal(t, 0, syscall.SIGCONT) })
	start := time.Now()
	err := db.QueryRowContext(ctx, "SELECT 2").Scan(&one)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "1907") {
		t.Fatalf("query on the frozen server: %v after %v, want ERR 1907", err, took)
	}
	if took > 10*time.Second {
		t.Fatalf("the query was freed only after %v", took)
	}
	own.Signal(t, 0, syscall.SIGCONT)
	if err := db.QueryRowContext(ctx, "SELECT 3").Scan(&one); err != nil || one != 3 {
		t.Fatalf("the session after the server thawed: %v", err)
	}
	if !strings.Contains(s.Output(), "closed the query's backend connection") {
		t.Errorf("the log does not say what happened:\n%s", s.Output())
	}
	t.Logf("query on a frozen server freed with ERR 1907 after %v (timeout 1.5 s + kill grace)", took.Round(time.Millisecond))
}

// TestTransactionLimits: mysql-max_transaction_idle_time and
// mysql-max_transaction_time close the session of a transaction idle or
// open too long, as ProxySQL; the server rolls it back. A session outside a
// transaction may idle as long as it likes.
func TestTransactionLimits(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], "CREATE DATABASE IF NOT EXISTS trxlim; CREATE TABLE IF NOT EXISTS trxlim.t (a INT); DELETE FROM trxlim.t")
	s := startFresh(t, "")
	admin(t, s, `
		SET mysql-max_transaction_idle_time=1000; SET mysql-max_transaction_time=3000; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, bs[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "trxlim", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exec := func(c interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, q string) error {
		_, err := c.ExecContext(ctx, q)
		return err
	}

	// Idle in a transaction for 2 s: closed.
	idle, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := exec(idle, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := exec(idle, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := exec(idle, "COMMIT"); err == nil {
		t.Fatal("COMMIT after 2 s idle in a transaction succeeded; mysql-max_transaction_idle_time is 1 s")
	}

	// Busy but open for more than 3 s: closed.
	busy, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := exec(busy, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lastErr error
	for time.Since(start) < 10*time.Second {
		if lastErr = exec(busy, "INSERT INTO t SELECT SLEEP(0.5)"); lastErr != nil {
			break
		}
	}
	took := time.Since(start)
	if lastErr == nil {
		t.Fatal("a 10 s transaction survived mysql-max_transaction_time=3000")
	}

	// Outside a transaction, idling is fine.
	free, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	if err := exec(free, "SET @x = 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	var n int
	if err := free.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("a session idle outside a transaction: %v", err)
	}
	if n != 0 {
		t.Fatalf("%d rows committed by transactions that were closed", n)
	}
	if out := s.Output(); !strings.Contains(out, "mysql-max_transaction_idle_time") || !strings.Contains(out, "mysql-max_transaction_time") {
		t.Errorf("the log does not name the limits:\n%s", out)
	}
	t.Logf("idle transaction closed after 1 s idle; busy transaction closed %v after BEGIN (limit 3 s): %v", took.Round(time.Millisecond), lastErr)
}

// TestShunFreesQueriesInFlight: a server freezes (SIGSTOP) under a read
// load; the monitor's pings fail, it shuns the server and aborts the
// connections in use there, so the reads that were waiting on it move to
// the other server of the hostgroup: none fails, and none waits much longer
// than the shun took.
func TestShunFreesQueriesInFlight(t *testing.T) {
	bs := testenv.Backends(t, 1)
	own := testenv.OwnBackends(t, 1)
	s := startIn(t, t.TempDir(), "", true)
	admin(t, s, `
		SET mysql-monitor_ping_interval=500; SET mysql-monitor_ping_timeout=200; SET mysql-monitor_ping_max_failures=3;
		SET mysql-balance_policy='random'; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, bs[0].Port, own.Backends[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		took time.Duration
		err  error
	}
	var frozenAt time.Time
	results := make(chan result, 1000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				var port int
				err := db.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME='PORT'").Scan(&port)
				select {
				case results <- result{time.Since(start), err}:
				default:
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	own.Signal(t, 0, syscall.SIGSTOP)
	frozenAt = time.Now()
	t.Cleanup(func() { own.Signal(t, 0, syscall.SIGCONT) })
	deadline := time.Now().Add(20 * time.Second)
	var shunnedAfter time.Duration
	for shunnedAfter == 0 {
		if strings.Contains(admin(t, s, fmt.Sprintf("SELECT status FROM stats_mysql_connection_pool WHERE srv_port=%d", own.Backends[0].Port)), "SHUNNED") {
			shunnedAfter = time.Since(frozenAt)
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen server was not shunned within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	close(results)
	var n int
	var slowest time.Duration
	for r := range results {
		n++
		if r.err != nil {
			t.Fatalf("a read failed: %v", r.err)
		}
		slowest = max(slowest, r.took)
	}
	if slowest > shunnedAfter+5*time.Second {
		t.Fatalf("a read waited %v; the server was shunned %v after it froze", slowest, shunnedAfter)
	}
	out := s.Output()
	if !strings.Contains(out, "in use aborted") {
		t.Errorf("the log does not say the connections in use were aborted:\n%s", out)
	}
	t.Logf("frozen server shunned %v after SIGSTOP; %d reads, 0 errors, slowest %v (moved to the other server)",
		shunnedAfter.Round(time.Millisecond), n, slowest.Round(time.Millisecond))
}

// TestClientGoneKillsQuery: mysql-kill_backend_connection_when_disconnect
// (ProxySQL's default true). A client that goes away while its query runs
// — the mariadb CLI killed, a go-sql-driver query whose context is
// cancelled — does not leave the query running on the server; nor does a
// session ended by KILL CONNECTION on the admin port or the data port.
func TestClientGoneKillsQuery(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	running := func(marker string) bool {
		t.Helper()
		out := backendSQL(t, bs[0], "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%"+marker+"%' AND INFO NOT LIKE '%PROCESSLIST%'")
		return strings.TrimSpace(out) != "0"
	}
	waitGone := func(marker string) time.Duration {
		t.Helper()
		start := time.Now()
		for running(marker) {
			// The watchdog looks at a query's client a second after the
			// query starts, then every second; it used to wait for its
			// 10 s rescan when the query started after its last look.
			if time.Since(start) > 6*time.Second {
				t.Fatalf("%s still runs on the server 6 s after its client left\n%s\n%s", marker, s.Output(),
					backendSQL(t, bs[0], "SELECT ID, USER, COMMAND, TIME, STATE, INFO FROM information_schema.PROCESSLIST"))
			}
			time.Sleep(200 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitRunning := func(marker string) {
		t.Helper()
		for i := 0; !running(marker); i++ {
			if i > 50 {
				t.Fatalf("%s never started", marker)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Both at once: the mariadb CLI, killed, and a go-sql-driver query
	// whose context is cancelled (the driver closes the connection).
	cmd := exec.Command("mariadb", "-h127.0.0.1", "-P"+strconv.Itoa(s.DataPort), "-usbtest", "-psbtest", "-e", "SELECT SLEEP(60) AS gone_cli")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "SELECT SLEEP(60) AS gone_driver")
		done <- err
	}()
	waitRunning("gone_cli")
	waitRunning("gone_driver")
	time.Sleep(time.Second) // past goneAfter
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := <-done; err == nil {
		t.Fatal("the query was not cancelled")
	}
	t.Logf("mariadb CLI killed: its query ended on the server %v later", waitGone("gone_cli"))
	t.Logf("go-sql-driver cancelled: its query ended on the server %v later", waitGone("gone_driver"))

	// A session killed while its query runs, from either port.
	killedQ := func() string {
		return admin(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='mysql_killed_backend_queries'")
	}
	before := killedQ()
	for _, via := range []string{"admin", "data"} {
		victim, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var id string
		if err := victim.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		marker := "killed_via_" + via
		go victim.ExecContext(context.Background(), "SELECT SLEEP(60) AS "+marker)
		waitRunning(marker)
		if via == "admin" {
			admin(t, s, "KILL CONNECTION "+id)
		} else if _, err := db.Exec("KILL CONNECTION " + id); err != nil {
			t.Fatal(err)
		}
		t.Logf("KILL CONNECTION on the %s port: its query ended on the server %v later", via, waitGone(marker))
		victim.Close()
	}
	// Two more queries killed: stats_mysql_global says so. (Their
	// connections, healthy after KILL QUERY, may be given back before the
	// proxy would cut them: mysql_killed_backend_connections counts only
	// those cut.)
	var b, a int
	fmt.Sscan(before, &b)
	fmt.Sscan(killedQ(), &a)
	if a != b+2 {
		t.Errorf("mysql_killed_backend_queries went from %d to %d, want +2\n%s", b, a, s.Output())
	}

	// The proxy still serves.
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after: %d, %v", one, err)
	}
}

// TestKillAtPoolLimit: a query timeout and a client's KILL QUERY reach a
// server whose pool is full (mysql_servers.max_connections=1, the one
// connection busy with the query to stop): the KILL goes over a connection
// of its own, as ProxySQL's kill_query_thread's, not a pool slot. They used
// to wait for a slot that only the query could free, left the query running
// on the server, and the client's KILL QUERY got ERR 1094. A KILL QUERY
// whose query has ended does not stop the session's next one on the same
// (pinned) connection.
func TestKillAtPoolLimit(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `UPDATE mysql_servers SET max_connections=1; LOAD MYSQL SERVERS TO RUNTIME;
		SET mysql-connect_timeout_server_max=3000; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, timeout, apply) VALUES (1, 1, 'SLEEP\(6\)', 600, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sleeping := func() string {
		return strings.TrimSpace(backendSQL(t, bs[0],
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(%' AND INFO NOT LIKE '%PROCESSLIST%'"))
	}
	gone := func(what string) {
		t.Helper()
		for i := 0; sleeping() != "0"; i++ {
			if i == 20 {
				t.Fatalf("%s: the query still runs on the server:\n%s", what,
					backendSQL(t, bs[0], "SELECT ID, COMMAND, TIME, INFO FROM information_schema.PROCESSLIST"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The timeout.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "SELECT SLEEP(6)"); err == nil || !strings.Contains(err.Error(), "1907") {
		t.Fatalf("SELECT SLEEP(6) under a 600 ms timeout: %v, want ERR 1907", err)
	}
	gone("after ERR 1907")
	if strings.Contains(s.Output(), "did not stop it") {
		t.Fatalf("the KILL did not reach the server:\n%s", s.Output())
	}

	// A client's KILL QUERY of a session in a transaction (its connection
	// pinned), then the same session's next statement, which must run.
	victim, id := sessionOf(ctx, t, db)
	if _, err := victim.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := victim.ExecContext(ctx, "SELECT SLEEP(5)"); done <- err }()
	for i := 0; sleeping() != "1"; i++ {
		if i == 50 {
			t.Fatal("the victim's query never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	killer := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	start := time.Now()
	if _, err := killer.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatalf("KILL QUERY at the pool's limit: %v", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "1317") {
		t.Fatalf("the killed query: %v, want ERR 1317", err)
	}
	took := time.Since(start)
	gone("after KILL QUERY")
	var got string
	if err := victim.QueryRowContext(ctx, "SELECT 'next'").Scan(&got); err != nil || got != "next" {
		t.Fatalf("the statement after the killed one: %q, %v", got, err)
	}
	if _, err := victim.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	t.Logf("KILL QUERY answered and the query stopped %v after it was sent", took.Round(time.Millisecond))
}

// TestKillQueryFrozenServer: a KILL QUERY whose server does not answer
// (SIGSTOP) cuts the query's backend connection, so the query's client is
// not left waiting, and the KILL itself succeeds as on a server. It used to
// fail with ERR 1094 and the proxy's internal error text, and the query
// went on when the server thawed.
func TestKillQueryFrozenServer(t *testing.T) {
	t.Parallel() // own server, mostly waiting: see doc.go
	own := testenv.OwnBackends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, own.Backends[0].Port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	victim, id := sessionOf(ctx, t, db)
	done := make(chan error, 1)
	go func() { _, err := victim.ExecContext(ctx, "SELECT SLEEP(20)"); done <- err }()
	time.Sleep(500 * time.Millisecond)
	own.Signal(t, 0, syscall.SIGSTOP)
	t.Cleanup(func() { own.Signal(t, 0, syscall.SIGCONT) })
	start := time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatalf("KILL QUERY of a query on a frozen server: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the killed query succeeded")
		}
		t.Logf("KILL QUERY answered, and the query ended %v after it, with %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the query still waits on the frozen server 10 s after KILL QUERY\n%s", s.Output())
	}
	own.Signal(t, 0, syscall.SIGCONT)
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after the server thawed: %v", err)
	}
}
