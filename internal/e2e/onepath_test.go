package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The tests of one execute path and one runtime swap (issue 7): behaviour
// that used to differ between the text and the binary protocol, or between
// a LOAD of one module and another, is the same now.

// twoHostgroups starts Sluice with hostgroup 1 and 2 on two real servers,
// the user sbtest (default hostgroup 1), the variables vars and the rule.
func twoHostgroups(t *testing.T, vars, rule string) (*testenv.Sluice, []testenv.Backend) {
	t.Helper()
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	if vars != "" {
		admin(t, s, vars+"; LOAD MYSQL VARIABLES TO RUNTIME;")
	}
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d), (2, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;
		%s; LOAD MYSQL QUERY RULES TO RUNTIME;`, bs[0].Port, bs[1].Port, rule))
	return s, bs
}

// TestKillQueryPrepared: KILL QUERY <session id> stops a binary-protocol
// SELECT SLEEP(20) (go-sql-driver with interpolateParams=false, which sends
// COM_STMT_PREPARE/EXECUTE) within 2 s with error 1317, and the session
// stays usable. SELECT CONNECTION_ID() answers the session id in both
// protocols, and it is the id stats_mysql_processlist shows.
func TestKillQueryPrepared(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "interpolateParams=false")
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var textID, binID uint64
	if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&textID); err != nil {
		t.Fatal(err)
	}
	st, err := victim.PrepareContext(ctx, "SELECT CONNECTION_ID()")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.QueryRowContext(ctx).Scan(&binID); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if textID == 0 || textID != binID {
		t.Fatalf("CONNECTION_ID(): text protocol %d, binary protocol %d: want the same session id", textID, binID)
	}

	type outcome struct {
		took time.Duration
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		var r sql.NullInt64
		err := victim.QueryRowContext(ctx, "SELECT SLEEP(?)", 20).Scan(&r)
		done <- outcome{time.Since(start), err}
	}()
	// The processlist shows the running EXECUTE under the same id.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := admin(t, s, "SELECT SessionID, command FROM stats_mysql_processlist WHERE info LIKE 'SELECT SLEEP%'")
		if strings.TrimSpace(out) == fmt.Sprintf("%d\tExecute", textID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the prepared SLEEP never showed in stats_mysql_processlist as session %d: %q", textID, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", textID)); err != nil {
		t.Fatalf("KILL QUERY: %v", err)
	}
	select {
	case o := <-done:
		var me *mysql.MySQLError
		if !errors.As(o.err, &me) || me.Number != 1317 {
			t.Fatalf("the killed EXECUTE returned %v, want error 1317", o.err)
		}
		if since := time.Since(killed); since > 2*time.Second {
			t.Fatalf("KILL QUERY took %v to stop the EXECUTE", since)
		}
		t.Logf("prepared SLEEP(20) stopped %v after KILL QUERY (ran %v)", time.Since(killed).Round(time.Millisecond), o.took.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY did not stop the prepared statement")
	}
	var one int
	if err := victim.QueryRowContext(ctx, "SELECT ?", 1).Scan(&one); err != nil || one != 1 {
		t.Fatalf("session unusable after KILL QUERY: %d %v", one, err)
	}
	// The 1317 of a query the proxy killed is the proxy's error, as
	// ProxySQL files it (proxysql_mysql_error_total, not mysql_error_total).
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	m := scrape(t, "http://127.0.0.1:"+port+"/metrics")
	code := map[string]string{"code": "1317"}
	if v, ok := sample(m, "proxysql_mysql_error_total", code); !ok || v != 1 {
		t.Errorf("proxysql_mysql_error_total{code=1317} = %v (%v), want 1", v, ok)
	}
	if v, ok := sample(m, "mysql_error_total", code); ok {
		t.Errorf("mysql_error_total{code=1317} = %v, want none: the server did not make this error", v)
	}
}

// TestKillQueryPDO: the same with PHP's PDO and native prepares
// (PDO::ATTR_EMULATE_PREPARES off), the client the issue was found with.
func TestKillQueryPDO(t *testing.T) {
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=php)")
	}
	s, _ := multiplexSetup(t, 10, "")
	script := filepath.Join(t.TempDir(), "kill.php")
	// The script prints its session id, then runs SLEEP(20) as a native
	// prepared statement and prints the outcome, then proves the session
	// still works.
	php := fmt.Sprintf(`<?php
$db = new PDO("mysql:host=127.0.0.1;port=%d;dbname=sbtest", "sbtest", "sbtest",
	[PDO::ATTR_EMULATE_PREPARES => false, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$id = $db->query("SELECT CONNECTION_ID()")->fetchColumn();
$st = $db->prepare("SELECT CONNECTION_ID()"); $st->execute();
echo "id ", $id, " ", $st->fetchColumn(), "\n";
flush();
$t = microtime(true);
try {
	$st = $db->prepare("SELECT SLEEP(?)");
	$st->execute([20]);
	echo "result ", $st->fetchColumn(), "\n";
} catch (PDOException $e) {
	echo "error ", $e->errorInfo[1], "\n";
}
printf("took %%.3f\n", microtime(true) - $t);
$st = $db->prepare("SELECT ? + 1"); $st->execute([41]);
echo "after ", $st->fetchColumn(), "\n";
`, s.DataPort)
	if err := os.WriteFile(script, []byte(php), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "php", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first line, whole: PHP may write it in pieces.
	br := bufio.NewReader(stdout)
	line, _ := br.ReadString('\n')
	out.WriteString(line)
	f := strings.Fields(out.String())
	if len(f) < 3 || f[0] != "id" || f[1] != f[2] {
		t.Fatalf("PDO CONNECTION_ID() text vs native prepare: %q", out.String())
	}
	id := f[1]
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(admin(t, s, "SELECT command FROM stats_mysql_processlist WHERE SessionID="+id), "Execute") {
		if time.Now().After(deadline) {
			t.Fatal("the PDO EXECUTE never showed in the processlist")
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	if _, err := db.Exec("KILL QUERY " + id); err != nil {
		t.Fatalf("KILL QUERY: %v", err)
	}
	rest, _ := io.ReadAll(br)
	out.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("php: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "error 1317") || !strings.Contains(text, "after 42") {
		t.Fatalf("PDO output %q: want error 1317 and a usable session", text)
	}
	if since := time.Since(killed); since > 5*time.Second {
		t.Fatalf("the PDO script ended %v after KILL QUERY", since)
	}
	t.Logf("PDO: %s", strings.ReplaceAll(strings.TrimSpace(text), "\n", "; "))
}

// TestRetriesPreparedLikeText: a rule's retries apply to COM_STMT_EXECUTE as
// to COM_QUERY. The only server sits behind a relay that the test cuts
// between statements: the session's next statement finds its pooled
// connection dead. With the rule's retries=0 the statement fails in both
// protocols; with retries=2 it runs on a fresh connection in both.
func TestRetriesPreparedLikeText(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	rl := testenv.NewRelay(t, b.Addr())
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port, max_connections) VALUES (1, '127.0.0.1', %d, 1);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, retries, apply)
		       VALUES (1, 1, '^SELECT', 1, 0, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`, rl.Port()))
	ctx := context.Background()
	text := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	bin := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "interpolateParams=false")
	// Each statement opens its own client connection, so that only the
	// backend connection (pooled, then cut) carries over.
	text.SetMaxIdleConns(0)
	bin.SetMaxIdleConns(0)
	run := func(db *sql.DB, args ...any) error {
		q := "SELECT 1"
		if len(args) > 0 {
			q = "SELECT ?"
		}
		var v int
		return db.QueryRowContext(ctx, q, args...).Scan(&v)
	}
	protocols := []struct {
		name string
		db   *sql.DB
		args []any
	}{{"text", text, nil}, {"binary", bin, []any{1}}}
	// afterCut runs a statement on a pooled connection, cuts it, and runs
	// the statement again: the second run meets the dead connection first.
	afterCut := func(db *sql.DB, args []any) error {
		if err := run(db, args...); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		rl.SetDown(true)
		rl.SetDown(false)
		return run(db, args...)
	}
	for _, c := range protocols {
		if err := afterCut(c.db, c.args); err == nil {
			t.Fatalf("%s: with the rule's retries=0 a dead pooled connection must fail the statement", c.name)
		}
	}
	admin(t, s, "UPDATE mysql_query_rules SET retries=2 WHERE rule_id=1; LOAD MYSQL QUERY RULES TO RUNTIME;")
	for _, c := range protocols {
		if err := afterCut(c.db, c.args); err != nil {
			t.Fatalf("%s: with the rule's retries=2 the statement should have been retried: %v", c.name, err)
		}
	}
}

// TestFieldListOnLockedSession: COM_FIELD_LIST takes its hostgroup the way
// every command does, so a session locked to hostgroup 2 (an unparseable
// SET routed there) gets ERR 9006 for a COM_FIELD_LIST aimed at its default
// hostgroup 1, as a query would.
func TestFieldListOnLockedSession(t *testing.T) {
	s, _ := twoHostgroups(t, "", "INSERT INTO mysql_query_rules(rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, '^SET @', 2, 1)")
	c := wireLogin(t, s.DataPort, "sbtest", "sbtest")
	if _, e := wireQuery(t, c, "USE sbtest"); e != nil {
		t.Fatal(e)
	}
	// Unlocked, COM_FIELD_LIST works: column definitions, then EOF.
	fieldList := func() (*wire.SQLError, int) {
		t.Helper()
		c.ResetSeq()
		c.WritePacket(append([]byte{wire.ComFieldList}, "sbtest_fl\x00"...))
		c.Flush()
		n := 0
		for {
			p, err := c.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case wire.IsERR(p):
				e, _ := wire.ParseERR(p)
				return e, n
			case wire.IsEOF(p):
				return nil, n
			}
			n++
		}
	}
	if _, e := wireQuery(t, c, "CREATE TABLE IF NOT EXISTS sbtest_fl (a INT, b INT)"); e != nil {
		t.Fatal(e)
	}
	if e, n := fieldList(); e != nil || n != 2 {
		t.Fatalf("COM_FIELD_LIST before the lock: %v, %d columns", e, n)
	}
	if _, e := wireQuery(t, c, "SET @sluice_lock := 1"); e != nil {
		t.Fatalf("SET @x := 1: %v", e)
	}
	if e, _ := fieldList(); e == nil || e.Code != 9006 {
		t.Fatalf("COM_FIELD_LIST on a session locked to hostgroup 2: %v, want ERR 9006", e)
	}
	if _, e := wireQuery(t, c, "SELECT 1"); e == nil || e.Code != 9006 {
		t.Fatalf("a query to hostgroup 1 on the locked session: %v, want ERR 9006", e)
	}
}

// TestFirstCommentParsingWithoutRuleReload: mysql-query_processor_first_comment_parsing
// takes effect with LOAD MYSQL VARIABLES TO RUNTIME alone: at 1 the rule
// wins over a /* hostgroup=2 */ annotation, at 2 the annotation wins.
func TestFirstCommentParsingWithoutRuleReload(t *testing.T) {
	s, bs := twoHostgroups(t, "", "INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, apply) VALUES (1, 1, '.', 1, 1)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	port := func() string {
		t.Helper()
		var p string
		if err := db.QueryRow("SELECT /* hostgroup=2 */ " + portQ).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := port(); got != strconv.Itoa(bs[1].Port) {
		t.Fatalf("default (2): the annotation should win: port %s", got)
	}
	admin(t, s, "SET mysql-query_processor_first_comment_parsing=1; LOAD MYSQL VARIABLES TO RUNTIME;")
	if got := port(); got != strconv.Itoa(bs[0].Port) {
		t.Fatalf("first_comment_parsing=1: the rule should win: port %s", got)
	}
	admin(t, s, "SET mysql-query_processor_first_comment_parsing=2; LOAD MYSQL VARIABLES TO RUNTIME;")
	if got := port(); got != strconv.Itoa(bs[1].Port) {
		t.Fatalf("first_comment_parsing=2: the annotation should win: port %s", got)
	}
	if v := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-query_processor_first_comment_parsing'")); v != "2" {
		t.Fatalf("runtime_global_variables shows %q", v)
	}
}

// TestMirrorResizedUnderLoad: a LOAD of mysql-mirror_max_concurrency takes
// effect on a running mirror. With a limit of 1, no more than one mirrored
// query runs at once and the rest wait in the queue; raised to 6 under the
// same load, more run at once.
func TestMirrorResizedUnderLoad(t *testing.T) {
	s, _ := twoHostgroups(t, "SET mysql-mirror_max_concurrency=1; SET mysql-mirror_max_queue_length=100000",
		"INSERT INTO mysql_query_rules(rule_id, active, match_digest, mirror_hostgroup, apply) VALUES (1, 1, '^SELECT SLEEP', 2, 1)")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(8)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failures atomic.Int64
	end := time.Now().Add(40 * time.Second) // bound, whatever happens
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(end) {
				if _, err := db.Exec("SELECT SLEEP(0.02)"); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	sample := func(d time.Duration) (maxRunning, maxQueued int64) {
		for until := time.Now().Add(d); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
			rows := adminRows(t, s, "SELECT Variable_Name, Variable_Value FROM stats_mysql_global WHERE Variable_Name IN ('Mirror_concurrency','Mirror_queue_length')")
			for _, r := range rows {
				n, _ := strconv.ParseInt(r[1], 10, 64)
				switch r[0] {
				case "Mirror_concurrency":
					maxRunning = max(maxRunning, n)
				case "Mirror_queue_length":
					maxQueued = max(maxQueued, n)
				}
			}
		}
		return
	}
	run1, queue1 := sample(2 * time.Second)
	if run1 > 1 || queue1 == 0 {
		t.Fatalf("mirror_max_concurrency=1: up to %d running, %d queued; want at most 1 running and a queue", run1, queue1)
	}
	admin(t, s, "SET mysql-mirror_max_concurrency=6; LOAD MYSQL VARIABLES TO RUNTIME;")
	run6, _ := sample(3 * time.Second)
	if run6 < 2 || run6 > 6 {
		t.Fatalf("after raising mirror_max_concurrency to 6 under load: up to %d running, want 2..6", run6)
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d client queries failed", n)
	}
	t.Logf("mirror running at most %d with limit 1 (queue up to %d), %d with limit 6", run1, queue1, run6)
}

// TestLoadsUnderSysbench: 100 LOAD … TO RUNTIME of every module while
// sysbench runs point selects and read-only transactions through Sluice.
// Every command loads the runtime once; the proxy counts a command that
// finds anything it used from another runtime (Runtime_mixed_commands).
// Both must stay 0, with 0 sysbench errors and 100 new generations.
func TestLoadsUnderSysbench(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	s, b := multiplexSetup(t, 50, "")
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=sbtest", "--tables=2", "--table-size=5000"}
	sb := func(port int, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		full := append(append([]string{args[0]}, common...), fmt.Sprintf("--mysql-port=%d", port))
		out, err := exec.CommandContext(ctx, "sysbench", append(full, args[1:]...)...).CombinedOutput()
		return string(out), err
	}
	sb(b.Port, "oltp_read_only", "cleanup")
	if out, err := sb(b.Port, "oltp_read_only", "prepare"); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	gen0 := adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Runtime_generation'")

	type result struct {
		out string
		err error
	}
	var results [2]chan result
	for i, wl := range []string{"oltp_point_select", "oltp_read_only"} {
		results[i] = make(chan result, 1)
		go func() {
			out, err := sb(s.DataPort, wl, "--threads=4", "--time=16", "--report-interval=0", "--db-ps-mode=auto", "run")
			results[i] <- result{out, err}
		}()
	}
	time.Sleep(2 * time.Second)
	loads := []string{
		"UPDATE mysql_servers SET comment='gen%d'; LOAD MYSQL SERVERS TO RUNTIME;",
		"UPDATE mysql_users SET comment='gen%d'; LOAD MYSQL USERS TO RUNTIME;",
		"REPLACE INTO mysql_query_rules(rule_id, active, match_digest, apply, comment) VALUES (99, 1, '^NEVER_%d', 0, 'x'); LOAD MYSQL QUERY RULES TO RUNTIME;",
		"SET mysql-connect_timeout_server=%d; LOAD MYSQL VARIABLES TO RUNTIME;",
		"SET admin-refresh_interval=%d; LOAD ADMIN VARIABLES TO RUNTIME;",
	}
	// 100 LOADs take 10–12 s here, inside sysbench's 16.
	const loadCount = 100
	start := time.Now()
	for i := range loadCount {
		q := fmt.Sprintf(loads[i%len(loads)], 1000+i)
		if _, err := testenv.CLI(t, s.AdminPort, "admin", "admin", q); err != nil {
			t.Fatalf("LOAD %d (%s): %v", i, q, err)
		}
	}
	took := time.Since(start)
	for i, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("sysbench %d: %v\n%s", i, r.err, r.out)
		}
		m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(r.out)
		if m == nil || m[1] != "0" {
			t.Fatalf("sysbench %d reported errors:\n%s", i, r.out)
		}
		for _, line := range strings.Split(r.out, "\n") {
			if strings.Contains(line, "transactions:") || strings.Contains(line, "queries:") {
				t.Logf("sysbench %d %s", i, strings.TrimSpace(line))
			}
		}
	}
	gen := adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Runtime_generation'")
	mixed := adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Runtime_mixed_commands'")
	if gen-gen0 != loadCount {
		t.Errorf("runtime generation went from %d to %d, want %d new ones", gen0, gen, loadCount)
	}
	if mixed != 0 {
		t.Errorf("Runtime_mixed_commands = %d, want 0", mixed)
	}
	t.Logf("%d LOADs in %v under sysbench: generations %d→%d, mixed commands %d", loadCount, took.Round(time.Millisecond), gen0, gen, mixed)
}

// TestClearPasswordKeptAsWritten: ProxySQL 2.6+ stores passwords as
// written; a clear-text password reads back unchanged from mysql_users and
// runtime_mysql_users after LOAD and after SAVE … TO MEMORY, and admin OK
// packets carry last_insert_id 0.
func TestClearPasswordKeptAsWritten(t *testing.T) {
	s := startFresh(t, "")
	admin(t, s, `INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('app', 'S3cret!', 0);
		LOAD MYSQL USERS TO RUNTIME; SAVE MYSQL USERS TO MEMORY;`)
	for _, q := range []string{
		"SELECT DISTINCT password FROM mysql_users WHERE username='app'",
		"SELECT DISTINCT password FROM runtime_mysql_users WHERE username='app'",
	} {
		if got := strings.TrimSpace(admin(t, s, q)); got != "S3cret!" {
			t.Errorf("%s: %q, want the password as written", q, got)
		}
	}
	db := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
	for _, q := range []string{
		"INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (5, 'a', 1)",
		"INSERT INTO mysql_query_rules(rule_id, active) VALUES (7, 0)",
		"DELETE FROM mysql_query_rules WHERE rule_id=7",
		"UPDATE mysql_servers SET comment='x' WHERE hostgroup_id=5",
		"LOAD MYSQL SERVERS TO RUNTIME",
	} {
		res, err := db.Exec(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if id, err := res.LastInsertId(); err != nil || id != 0 {
			t.Errorf("%s: last_insert_id %d (%v), want 0 as ProxySQL sends", q, id, err)
		}
	}
}

// TestPreparedStatementKeepsItsSchema: a statement's table names resolve in
// the schema it was prepared in, as on a server, even when the session has
// moved to another schema with USE and the EXECUTE lands on a backend
// connection that has never seen the statement (Sluice prepares it there
// lazily). Here the first session's transaction pins the connection that
// prepared it, so the second session's EXECUTE needs another one.
func TestPreparedStatementKeepsItsSchema(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	testenv.MustCLI(t, b.Port, "root", "test", `
		CREATE DATABASE IF NOT EXISTS sl_ps_a; CREATE DATABASE IF NOT EXISTS sl_ps_b;
		CREATE TABLE IF NOT EXISTS sl_ps_a.t (v VARCHAR(8)); CREATE TABLE IF NOT EXISTS sl_ps_b.t (v VARCHAR(8));
		DELETE FROM sl_ps_a.t; DELETE FROM sl_ps_b.t;
		INSERT INTO sl_ps_a.t VALUES ('a'); INSERT INTO sl_ps_b.t VALUES ('b');
		GRANT ALL ON sl_ps_a.* TO 'root'@'%'; GRANT ALL ON sl_ps_b.* TO 'root'@'%'`)
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "root", "test", "sl_ps_a", "interpolateParams=false")
	db.SetMaxIdleConns(10)

	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	const q = "SELECT v, DATABASE() FROM t WHERE v <> ?"
	st1, err := holder.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer st1.Close()
	var v, cur string
	if err := st1.QueryRowContext(ctx, "x").Scan(&v, &cur); err != nil || v != "a" {
		t.Fatalf("first execute: %q %q %v", v, cur, err)
	}
	// Pin the connection that prepared it.
	if _, err := holder.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	defer holder.ExecContext(ctx, "ROLLBACK")

	mover, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mover.Close()
	st2, err := mover.PrepareContext(ctx, q) // the same statement: answered from Sluice's cache
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := mover.ExecContext(ctx, "USE sl_ps_b"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st2.QueryRowContext(ctx, "x").Scan(&v, &cur); err != nil {
			t.Fatal(err)
		}
		if v != "a" {
			t.Fatalf("execute %d after USE sl_ps_b: read %q (DATABASE() %q); a server reads sl_ps_a.t ('a')", i, v, cur)
		}
		// The connection went back to the session's schema.
		if err := mover.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur); err != nil || cur != "sl_ps_b" {
			t.Fatalf("the session's schema after execute %d: %q %v", i, cur, err)
		}
	}
	// Prepared after the USE, the same text reads the new schema's table.
	st3, err := mover.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer st3.Close()
	if err := st3.QueryRowContext(ctx, "x").Scan(&v, &cur); err != nil || v != "b" {
		t.Fatalf("prepared in sl_ps_b: %q %q %v", v, cur, err)
	}
	// And the old statement still reads sl_ps_a on the connection that now
	// holds both.
	if err := st2.QueryRowContext(ctx, "x").Scan(&v, &cur); err != nil || v != "a" {
		t.Fatalf("prepared in sl_ps_a, again: %q %q %v", v, cur, err)
	}
}

// TestKillForms: MariaDB's KILL HARD/SOFT QUERY and a comment between the
// words stop another session's query by its proxy id (they used to reach a
// backend, which had never seen the id: 1094); KILL of one's own session
// sends ERR 1927 "Connection was killed" before the close, as MariaDB.
func TestKillForms(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	for _, form := range []string{"KILL HARD QUERY %d", "KILL SOFT QUERY %d", "KILL /* stop it */ QUERY %d"} {
		victim := connOf(t, db)
		var id uint64
		if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			var r sql.NullInt64
			done <- victim.QueryRowContext(ctx, "SELECT SLEEP(20)").Scan(&r)
		}()
		deadline := time.Now().Add(5 * time.Second)
		for adminInt(t, s, fmt.Sprintf("SELECT COUNT(*) FROM stats_mysql_processlist WHERE SessionID = %d AND info LIKE 'SELECT SLEEP%%'", id)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the SLEEP never showed in the processlist", form)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(form, id)); err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		select {
		case err := <-done:
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1317 {
				t.Fatalf("%s: the killed query returned %v, want 1317", form, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop the query", form)
		}
	}
	self := connOf(t, db)
	var id uint64
	if err := self.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// One id whatever the spelling (others used to run on a backend and
	// give its thread id).
	for _, q := range []string{"select  connection_id()", "/* c */ SELECT CONNECTION_ID() AS id", "SELECT connection_id ( ) cid;"} {
		var other uint64
		if err := self.QueryRowContext(ctx, q).Scan(&other); err != nil || other != id {
			t.Fatalf("%s: %d %v, want the session id %d", q, other, err, id)
		}
	}
	// And prepared, with an alias (the column is named by it).
	st, err := self.PrepareContext(ctx, "select connection_id() as id")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.QueryContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	var prepared uint64
	if !rows.Next() || rows.Scan(&prepared) != nil || prepared != id || len(cols) != 1 || cols[0] != "id" {
		t.Fatalf("prepared select connection_id() as id: %d, columns %v; want %d in column id", prepared, cols, id)
	}
	rows.Close()
	st.Close()
	// KILL QUERY of one's own session interrupts the KILL itself (1317),
	// and the session goes on, as on MariaDB.
	var me *mysql.MySQLError
	if _, err := self.ExecContext(ctx, fmt.Sprintf("KILL SOFT QUERY %d", id)); !errors.As(err, &me) || me.Number != 1317 {
		t.Fatalf("KILL QUERY of one's own session: %v, want 1317", err)
	}
	queryOne(t, self, "SELECT 1")
	_, err = self.ExecContext(ctx, fmt.Sprintf("KILL (%d)", id))
	if !errors.As(err, &me) || me.Number != 1927 || me.Message != "Connection was killed" {
		t.Fatalf("KILL of one's own session: %v, want ERR 1927 Connection was killed", err)
	}
}
