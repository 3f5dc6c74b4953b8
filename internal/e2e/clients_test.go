package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestGoDriverAndCLI drives sluice with go-sql-driver/mysql (text and
// binary protocol) and the mariadb CLI: transactions, USE, SET NAMES,
// SET autocommit=0, a user stored only as its hash.
func TestGoDriverAndCLI(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	testenv.MustCLI(t, b.Port, "root", "test", `CREATE DATABASE IF NOT EXISTS sluice_t1; CREATE DATABASE IF NOT EXISTS sluice_t2;
		CREATE TABLE IF NOT EXISTS sluice_t1.kv (k INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;
		CREATE TABLE IF NOT EXISTS sluice_t2.other (x INT); DELETE FROM sluice_t1.kv;`)
	ctx := context.Background()

	for _, mode := range []string{"interpolateParams=false", "interpolateParams=true"} {
		t.Run(mode, func(t *testing.T) {
			db := testenv.DB(t, s.DataPort, "root", "test", "sluice_t1", mode)
			db.SetMaxOpenConns(4)
			base := 0
			if mode == "interpolateParams=true" {
				base = 1000
			}
			// Prepared (or interpolated) inserts, then reads.
			for i := 1; i <= 20; i++ {
				if _, err := db.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", base+i, fmt.Sprintf("v%d", i)); err != nil {
					t.Fatalf("insert %d: %v", i, err)
				}
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv WHERE k > ? AND k <= ?", base, base+20).Scan(&n); err != nil || n != 20 {
				t.Fatalf("count = %d, %v", n, err)
			}
			var v string
			if err := db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = ?", base+7).Scan(&v); err != nil || v != "v7" {
				t.Fatalf("point select = %q, %v", v, err)
			}
			// A transaction that rolls back and one that commits.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec("UPDATE kv SET v='rolled back' WHERE k = ?", base+1); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			tx, err = db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec("UPDATE kv SET v='committed' WHERE k = ?", base+2); err != nil {
				t.Fatal(err)
			}
			var inTx string
			if err := tx.QueryRow("SELECT v FROM kv WHERE k = ?", base+2).Scan(&inTx); err != nil || inTx != "committed" {
				t.Fatalf("read inside the transaction = %q, %v", inTx, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			rows, err := db.QueryContext(ctx, "SELECT k, v FROM kv WHERE k IN (?, ?)", base+1, base+2)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k int
				var v string
				rows.Scan(&k, &v)
				got[k] = v
			}
			rows.Close()
			if got[base+1] != "v1" || got[base+2] != "committed" {
				t.Fatalf("after rollback/commit: %v", got)
			}

			// Session state on one connection: USE, SET NAMES, autocommit=0.
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			mustExec := func(q string) {
				t.Helper()
				if _, err := c.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			query1 := func(q string) string {
				t.Helper()
				var out sql.NullString
				if err := c.QueryRowContext(ctx, q).Scan(&out); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return out.String
			}
			mustExec("USE sluice_t2")
			if db := query1("SELECT DATABASE()"); db != "sluice_t2" {
				t.Fatalf("after USE: DATABASE() = %q", db)
			}
			mustExec("SET NAMES latin1")
			if cs := query1("SELECT @@character_set_client"); cs != "latin1" {
				t.Fatalf("after SET NAMES latin1: character_set_client = %q", cs)
			}
			mustExec("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci")
			if co := query1("SELECT @@collation_connection"); co != "utf8mb4_unicode_ci" {
				t.Fatalf("collation_connection = %q", co)
			}
			mustExec("USE sluice_t1")
			mustExec("SET autocommit=0")
			if ac := query1("SELECT @@autocommit"); ac != "0" {
				t.Fatalf("@@autocommit = %q after SET autocommit=0", ac)
			}
			mustExec(fmt.Sprintf("INSERT INTO kv VALUES (%d, 'uncommitted')", base+500))
			var other int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv WHERE k = ?", base+500).Scan(&other); err != nil || other != 0 {
				t.Fatalf("another session sees the uncommitted row: %d %v", other, err)
			}
			mustExec("COMMIT")
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv WHERE k = ?", base+500).Scan(&other); err != nil || other != 1 {
				t.Fatalf("after COMMIT another session sees %d rows, %v", other, err)
			}
			mustExec("SET autocommit=1")

			// Errors from the backend reach the client and the session goes on.
			if _, err := c.ExecContext(ctx, "INSERT INTO kv VALUES (?, 'dup')", base+3); err == nil || !strings.Contains(err.Error(), "1062") {
				t.Fatalf("duplicate key: %v", err)
			}
			if _, err := c.QueryContext(ctx, "SELECT * FROM no_such_table"); err == nil || !strings.Contains(err.Error(), "1146") {
				t.Fatalf("missing table: %v", err)
			}
			if query1("SELECT 'still here'") != "still here" {
				t.Fatal("session unusable after errors")
			}
		})
	}

	// The mariadb CLI: text protocol, multi-statements, USE, errors.
	out := testenv.MustCLI(t, s.DataPort, "root", "test", "USE sluice_t1; SET NAMES utf8mb4; SELECT COUNT(*) FROM kv WHERE k <= 20; SELECT DATABASE(); BEGIN; UPDATE kv SET v='cli' WHERE k=5; COMMIT; SELECT v FROM kv WHERE k=5", "-N")
	if out != "20\nsluice_t1\ncli\n" {
		t.Fatalf("mariadb CLI output %q", out)
	}
	if _, err := testenv.CLI(t, s.DataPort, "root", "wrong", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("wrong password through the data port: %v", err)
	}
	if _, err := testenv.CLI(t, s.DataPort, "nobody", "x", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestStreamingMemory passes a 64 MiB result and a 20 MiB row through
// sluice and checks that its resident memory grows by less than 8 MiB:
// results are streamed, not buffered.
func TestStreamingMemory(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	db := testenv.DB(t, s.DataPort, "root", "test", "sbtest", "maxAllowedPacket=67108864")
	db.SetMaxOpenConns(1)
	// Warm up: one connection, buffers allocated once.
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	base := rss(t, s.Cmd.Process.Pid)

	var total int64
	rows, err := db.Query("SELECT REPEAT('x', 1048576) FROM seq_1_to_64")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v sql.RawBytes
		rows.Scan(&v)
		total += int64(len(v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if total != 64<<20 {
		t.Fatalf("got %d bytes, want 64 MiB", total)
	}
	var big string
	if err := db.QueryRow("SELECT REPEAT('y', 20971520)").Scan(&big); err != nil {
		t.Fatal(err)
	}
	if len(big) != 20<<20 {
		t.Fatalf("20 MiB row arrived as %d bytes", len(big))
	}
	peak := hwm(t, s.Cmd.Process.Pid)
	t.Logf("sluice RSS before %d KiB, peak %d KiB, growth %d KiB", base, peak, peak-base)
	if peak-base >= 8<<10 {
		t.Fatalf("sluice RSS grew by %d KiB while streaming 84 MiB (limit 8 MiB)", peak-base)
	}
}

func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// rss is the current resident set size in KiB; hwm its peak so far.
func rss(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmRSS") }
func hwm(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmHWM") }

// TestSysbenchReadWrite runs sysbench oltp_read_write for 15 s through
// sluice with server-side prepared statements and with the text protocol,
// then 5 s of prepared statements over the compressed protocol
// (--mysql-compression=on), and requires zero errors.
func TestSysbenchReadWrite(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=sysbench)")
	}
	s, b := multiplexSetup(t, 50, "")
	secs := "8"
	if testing.Short() {
		secs = "5"
	}
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=sbtest", "--tables=4", "--table-size=10000"}
	prep := exec.Command("sysbench", append(append([]string{"oltp_read_write"}, common...), fmt.Sprintf("--mysql-port=%d", b.Port), "cleanup")...)
	prep.CombinedOutput()
	prep = exec.Command("sysbench", append(append([]string{"oltp_read_write"}, common...), fmt.Sprintf("--mysql-port=%d", b.Port), "prepare")...)
	if out, err := prep.CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	// Uniform keys over 40000 rows keep InnoDB deadlocks (which sysbench
	// counts as "ignored errors" with or without a proxy) out of the way, so
	// any error left is the proxy's.
	for _, mode := range []string{"auto", "disable", "compressed"} {
		args := append(append([]string{"oltp_read_write"}, common...), fmt.Sprintf("--mysql-port=%d", s.DataPort),
			"--threads=4", "--rand-type=uniform", "--report-interval=0")
		if mode == "compressed" {
			args = append(args, "--time=5", "--db-ps-mode=auto", "--mysql-compression=on", "run")
		} else {
			args = append(args, "--time="+secs, "--db-ps-mode="+mode, "run")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := exec.CommandContext(ctx, "sysbench", args...).CombinedOutput()
		cancel()
		text := string(out)
		if err != nil {
			t.Fatalf("sysbench (%s): %v\n%s", mode, err, text)
		}
		m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(text)
		q := regexp.MustCompile(`queries:\s+(\d+)\s+\(([\d.]+) per sec`).FindStringSubmatch(text)
		if m == nil || q == nil {
			t.Fatalf("cannot read sysbench output:\n%s", text)
		}
		if m[1] != "0" {
			t.Fatalf("sysbench (%s): %s ignored errors\n%s", mode, m[1], text)
		}
		t.Logf("sysbench oltp_read_write (%s): %s queries (%s qps), 0 errors", mode, q[1], q[2])
		os.WriteFile(filepath.Join(s.Datadir, "sysbench-"+mode+".txt"), out, 0o644)
	}
}

// TestKillOnDataPort checks that KILL takes Sluice session ids (what
// SELECT CONNECTION_ID() returns), as in ProxySQL: KILL QUERY interrupts the
// backend query of that session, KILL CONNECTION ends it; another user's
// KILL is refused (1095). The thread id a server's processlist shows names
// the session whose query runs on it.
func TestKillOnDataPort(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var id uint64
	if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil || id == 0 {
		t.Fatalf("SELECT CONNECTION_ID(): %d %v", id, err)
	}
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		var r sql.NullInt64
		victim.QueryRowContext(ctx, "SELECT SLEEP(20)").Scan(&r)
		done <- time.Since(start)
	}()
	time.Sleep(500 * time.Millisecond)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatalf("KILL QUERY: %v", err)
	}
	select {
	case d := <-done:
		t.Logf("SLEEP(20) interrupted after %v", d)
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY did not interrupt the query")
	}
	// Session ids sit above any server's thread ids.
	if id < 1<<30 {
		t.Errorf("CONNECTION_ID() = %d, want a session id from 2^30 up", id)
	}
	// KILL QUERY with the id SHOW PROCESSLIST shows, the backend thread's:
	// the session whose query runs there.
	go func() {
		start := time.Now()
		var r sql.NullInt64
		victim.QueryRowContext(ctx, "SELECT SLEEP(20) AS by_thread").Scan(&r)
		done <- time.Since(start)
	}()
	var thread uint64
	for i := 0; thread == 0; i++ {
		if i > 50 {
			t.Fatal("the query never showed in the processlist")
		}
		time.Sleep(100 * time.Millisecond)
		_ = db.QueryRowContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%by_thread%' AND INFO NOT LIKE '%PROCESSLIST%'").Scan(&thread)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", thread)); err != nil {
		t.Fatalf("KILL QUERY <thread id %d>: %v", thread, err)
	}
	select {
	case d := <-done:
		t.Logf("SLEEP(20) interrupted by its thread id after %v", d)
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY <thread id> did not interrupt the query")
	}
	// Another user may not stop the session (MySQL's 1095 without
	// CONNECTION ADMIN; ProxySQL kills only sessions of the killer's user).
	other := testenv.DB(t, s.DataPort, "root", "test", "sbtest", "")
	for _, q := range []string{"KILL QUERY %d", "KILL %d", "KILL CONNECTION %d"} {
		if _, err := other.ExecContext(ctx, fmt.Sprintf(q, id)); err == nil || !strings.Contains(err.Error(), "1095") {
			t.Fatalf("%s by another user: %v, want ERR 1095", fmt.Sprintf(q, id), err)
		}
	}
	if err := victim.PingContext(ctx); err != nil {
		t.Fatalf("the session another user tried to kill: %v", err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := victim.PingContext(ctx); err == nil {
		t.Fatal("the killed session still answers")
	}
	if _, err := db.ExecContext(ctx, "KILL 999999"); err == nil || !strings.Contains(err.Error(), "1094") {
		t.Fatalf("KILL of an unknown id: %v", err)
	}
}

// TestMySQL8Collation connects the way MySQL 8 clients do, with collation
// utf8mb4_0900_ai_ci (id 255), which MariaDB backends do not know: queries
// must work, with the utf8mb4 character set.
func TestMySQL8Collation(t *testing.T) {
	// One backend connection, opened by a client with another collation and
	// then reused: the proxy must switch it to utf8mb4 without naming a
	// collation MariaDB refuses.
	s, _ := multiplexSetup(t, 1, "")
	first := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "collation=latin1_swedish_ci")
	var one int
	if err := first.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	first.Close()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "collation=utf8mb4_0900_ai_ci")
	var cs string
	if err := db.QueryRow("SELECT @@character_set_client").Scan(&cs); err != nil {
		t.Fatal(err)
	}
	if cs != "utf8mb4" {
		t.Fatalf("character_set_client = %q, want utf8mb4", cs)
	}
}

// TestClientCharsetRefused: a character set no server parses statements in
// (ucs2, utf16, utf16le, utf32) is refused as MariaDB refuses it, at login
// and in SET NAMES / SET CHARACTER SET / SET character_set_client, with ERR
// 1231 on that statement. Accepted at login, the mariadb CLI crashed on
// the OK; accepted in a SET, the error came on the next statement.
func TestClientCharsetRefused(t *testing.T) {
	s, b := multiplexSetup(t, 1, "")
	for _, port := range []int{b.Port, s.DataPort} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", port),
			"-usbtest", "-psbtest", "--default-character-set=utf16", "-e", "SELECT 1").CombinedOutput()
		cancel()
		if want := "ERROR 1231 (42000): Variable 'character_set_client' can't be set to the value of 'utf16'"; err == nil ||
			!strings.Contains(string(out), want) {
			t.Fatalf("port %d: login with utf16: %v\n%s\nwant %q", port, err, out, want)
		}
	}
	c, ctx := oneConn(t, s.DataPort)
	for _, set := range []string{"SET NAMES utf16", "SET NAMES 'UTF32' COLLATE utf32_bin", "SET CHARACTER SET ucs2",
		"SET @@session.character_set_client = utf16le", "SET character_set_client = 'utf32', sql_mode = ''"} {
		_, err := c.ExecContext(ctx, set)
		if err == nil || !strings.Contains(err.Error(), "1231") || !strings.Contains(err.Error(), "character_set_client") {
			t.Errorf("%s: %v, want ERR 1231", set, err)
		}
		var cs string
		if err := c.QueryRowContext(ctx, "SELECT @@character_set_client").Scan(&cs); err != nil || cs != "utf8mb4" {
			t.Errorf("after %s: character_set_client %q %v, want utf8mb4 unchanged", set, cs, err)
		}
	}
	// Results and connection may use them.
	if _, err := c.ExecContext(ctx, "SET character_set_results = utf16, character_set_connection = utf32"); err != nil {
		t.Fatalf("character_set_results = utf16: %v", err)
	}
	// A character set no server has, or a collation of another one, is
	// refused on the SET itself with the server's error, through Sluice as
	// directly; the next statement runs.
	direct, dctx := oneConn(t, b.Port)
	if _, err := c.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"SET NAMES nosuch", "SET NAMES latin1 COLLATE utf8mb4_bin", "SET CHARACTER SET nosuch",
		"SET character_set_results = nosuch", "SET NAMES utf8mb4 COLLATE utf8mb4_bin", "SET NAMES DEFAULT",
		"SET character_set_results = NULL", "SET NAMES 'utf8'", "SET NAMES latin1", "SET NAMES utf8mb4"} {
		_, perr := c.ExecContext(ctx, set)
		_, derr := direct.ExecContext(dctx, set)
		if fmt.Sprint(perr) != fmt.Sprint(derr) {
			t.Errorf("%s: through Sluice %v, directly %v", set, perr, derr)
		}
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Errorf("the statement after %s: %v", set, err)
		}
	}
}

// TestMariaDBDumpSingleTransaction runs mariadb-dump --single-transaction
// through sluice: it changes tracked variables (character_set_results…)
// inside its transaction and relies on a savepoint, so a proxy that resets
// or re-syncs the connection mid-transaction breaks it ("SAVEPOINT sp does
// not exist").
func TestMariaDBDumpSingleTransaction(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	testenv.MustCLI(t, b.Port, "root", "test", `CREATE DATABASE IF NOT EXISTS sluice_dump;
		CREATE TABLE IF NOT EXISTS sluice_dump.t (id INT PRIMARY KEY, v VARCHAR(20));
		REPLACE INTO sluice_dump.t VALUES (1, 'one'), (2, 'two');`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb-dump", "--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", s.DataPort),
		"-uroot", "-ptest", "--single-transaction", "--routines", "--triggers", "sluice_dump").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-dump through sluice: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "INSERT INTO `t` VALUES") || !strings.Contains(string(out), "(1,'one')") ||
		!strings.Contains(string(out), "(2,'two')") {
		t.Fatalf("dump lacks the rows:\n%s", out)
	}
}

// TestMariaDBSlap runs mariadb-slap through sluice twice: it creates its
// schema, selects it with COM_INIT_DB, loads it from 20 concurrent clients
// and drops it at the end — from a session whose current database it is,
// which leaves that backend connection with no database selected. The
// second run reuses the pool, so a proxy that forgot that would answer
// "No database selected".
func TestMariaDBSlap(t *testing.T) {
	s, _ := multiplexSetup(t, 50, "")
	for run := 1; run <= 2; run++ {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		out, err := exec.CommandContext(ctx, "mariadb-slap", "--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", s.DataPort),
			"-uroot", "-ptest", "--concurrency=20", "--iterations=2", "--auto-generate-sql",
			"--auto-generate-sql-load-type=mixed", "--number-of-queries=1000", "--create-schema=sluice_slap").CombinedOutput()
		cancel()
		if err != nil || strings.Contains(string(out), "ERROR") {
			t.Fatalf("mariadb-slap run %d through sluice: %v\n%s", run, err, out)
		}
	}
}

// TestRefusedTrackedSet: a SET the proxy answers itself but the server
// refuses (MariaDB has no max_execution_time) fails the next statement with
// the server's error, and the session then goes on without that setting
// instead of failing every statement. A USE of a schema that does not
// exist fails itself, as on a server, unless the schema steers routing.
func TestRefusedTrackedSet(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	c, ctx := oneConn(t, s.DataPort)
	if _, err := c.ExecContext(ctx, "SET max_execution_time = 1000"); err != nil {
		t.Fatalf("SET is answered by the proxy: %v", err)
	}
	var one int
	err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	if err == nil || !strings.Contains(err.Error(), "1193") {
		t.Fatalf("the statement after a refused SET: %v, want the server's 1193", err)
	}
	for i := 0; i < 3; i++ {
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("the session stays broken after the refused SET: %v", err)
		}
	}
	// A good SET still sticks.
	if _, err := c.ExecContext(ctx, "SET sql_mode = 'ANSI_QUOTES'"); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := c.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME='SQL_MODE'").Scan(&mode); err != nil || mode != "ANSI_QUOTES" {
		t.Fatalf("sql_mode after a good SET: %q %v", mode, err)
	}
	// USE of a schema that does not exist gets the server's 1049 itself, as
	// from a server, and the session stays in its schema; a good SET
	// answered before it is kept.
	if _, err := c.ExecContext(ctx, "SET div_precision_increment = 7"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "USE no_such_schema"); err == nil || !strings.Contains(err.Error(), "1049") {
		t.Fatalf("USE of an unknown schema: %v, want the server's 1049", err)
	}
	var cur sql.NullString
	for i := 0; i < 3; i++ {
		if err := c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur); err != nil || cur.String != "sbtest" {
			t.Fatalf("after the refused USE: %q %v, want sbtest", cur.String, err)
		}
	}
	if err := c.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME='DIV_PRECISION_INCREMENT'").Scan(&cur); err != nil || cur.String != "7" {
		t.Fatalf("the SET before the refused USE: %q %v, want 7", cur.String, err)
	}
	// Any refusal of the server's, on the USE itself: a name too long
	// (1102) as well as an unknown one.
	if _, err := c.ExecContext(ctx, "USE "+strings.Repeat("d", 65)); err == nil || !strings.Contains(err.Error(), "1102") {
		t.Fatalf("USE of a 65-character name: %v, want the server's 1102", err)
	}
	if _, err := c.ExecContext(ctx, "USE mysql"); err != nil {
		t.Fatalf("USE of a schema that exists: %v", err)
	}
	if err := c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur); err != nil || cur.String != "mysql" {
		t.Fatalf("after USE mysql: %q %v", cur.String, err)
	}

	// Where the schema steers routing (here a fast routing row), the USE
	// is answered as ProxySQL answers it: the schema may exist only where
	// its queries go. The statement after gets the server's 1049, then
	// the session is back in its schema (it used to fail every statement
	// with 1049 until the next USE).
	admin(t, s, `INSERT INTO mysql_query_rules_fast_routing(username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('sbtest', 'routed', 0, 0, '');
		LOAD MYSQL QUERY RULES TO RUNTIME`)
	if _, err := c.ExecContext(ctx, "USE no_such_schema"); err != nil {
		t.Fatalf("USE with schema routing is answered by the proxy: %v", err)
	}
	if _, err := c.ExecContext(ctx, "SET div_precision_increment = 8"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur); err == nil || !strings.Contains(err.Error(), "1049") {
		t.Fatalf("the statement after USE of an unknown schema: %v, want the server's 1049", err)
	}
	for i := 0; i < 3; i++ {
		if err := c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&cur); err != nil || cur.String != "mysql" {
			t.Fatalf("after the refused USE: %q %v, want mysql", cur.String, err)
		}
	}
	if err := c.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME='DIV_PRECISION_INCREMENT'").Scan(&cur); err != nil || cur.String != "8" {
		t.Fatalf("the SET after the refused USE: %q %v, want 8", cur.String, err)
	}
}

// TestJDBC runs MariaDB Connector/J (a single-file Java program,
// testdata/JdbcCheck.java) through read/write rules, with client-side and
// server-side prepared statements: its connect statement (set autocommit=1,
// sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')) is tracked, not a
// hostgroup lock (it used to be: every read then failed with 9006); with
// autocommit off its read goes to the reader and its INSERT to the writer,
// getGeneratedKeys and LAST_INSERT_ID() agree, a 50 000-row result streams
// with a fetch size, isolation and batches work.
func TestJDBC(t *testing.T) {
	const jar = "/usr/share/java/mariadb-java-client.jar"
	if _, err := os.Stat(jar); err != nil {
		t.Fatal("MariaDB Connector/J is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=java)")
	}
	s, bs := rwSplit(t, "CREATE TABLE IF NOT EXISTS sbtest.jdbc_t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); DELETE FROM sbtest.jdbc_t", "")
	src := filepath.Join(testenv.RepoRoot(), "internal", "e2e", "testdata", "JdbcCheck.java")
	for i, opts := range []string{"", "&useServerPrepStmts=true"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "java", "-cp", jar, src, strconv.Itoa(s.DataPort), opts).CombinedOutput()
		cancel()
		want := "strict 1\ncount 0\nown row true\nautocommit false\nparam 42\nrows 50000\nisolation READ-COMMITTED\nbatch 100\n"
		if err != nil || string(out) != want {
			t.Fatalf("Connector/J%s: %v\n%s", opts, err, out)
		}
		if w, r := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM sbtest.jdbc_t")),
			strings.TrimSpace(backendSQL(t, bs[1], "SELECT COUNT(*) FROM sbtest.jdbc_t")); w != strconv.Itoa(101*(i+1)) || r != "0" {
			t.Fatalf("Connector/J%s: writer has %s rows, reader %s", opts, w, r)
		}
	}
	if strings.Contains(s.Output(), "Unable to parse unknown SET") {
		t.Fatalf("Connector/J's connect statement locked a session:\n%s", s.Output())
	}
}

// TestPerlAndNodeDrivers: Perl's DBD::MariaDB and DBD::mysql (client- and
// server-side prepares) and Node's mysqljs through read/write rules. Reads
// land on the reader, writes, LAST_INSERT_ID() and transactions on the
// writer, a procedure's result sets and multi-statements come whole.
// DBD::MariaDB connects with SET character_set_server and SET
// collation_server: ProxySQL locks the hostgroup there (ProxySQL #2522) and
// every read fails with 9006; Sluice tracks both, so they follow the
// session to the reader.
func TestPerlAndNodeDrivers(t *testing.T) {
	for _, m := range []string{"DBD::MariaDB", "DBD::mysql"} {
		if err := exec.Command("perl", "-M"+m, "-e1").Run(); err != nil {
			t.Fatalf("%s is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=perl)", m)
		}
	}
	// Debian's node modules live in /usr/share/nodejs, which a node not
	// from Debian does not search.
	nodeEnv := append(os.Environ(), "NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs")
	check := exec.Command("node", "-e", "require('mysql')")
	check.Env = nodeEnv
	if err := check.Run(); err != nil {
		t.Fatal("node-mysql is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=node)")
	}
	s, bs := rwSplit(t, `CREATE TABLE IF NOT EXISTS sbtest.drv (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); DELETE FROM sbtest.drv;
		DROP PROCEDURE IF EXISTS sbtest.drv_two;
		DELIMITER //
		CREATE PROCEDURE sbtest.drv_two(IN x INT) BEGIN SELECT x AS n; SELECT x * 2 AS m; END//
		DELIMITER ;`, "")
	backendSQL(t, bs[1], "INSERT INTO sbtest.drv (v) SELECT 'reader' FROM sbtest.seq_1_to_7")
	readerCharset := strings.Join(strings.Fields(backendSQL(t, bs[1], "SELECT @@character_set_server, @@collation_server")), " ")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "perl", filepath.Join(testenv.RepoRoot(), "internal", "e2e", "testdata", "drivers.pl"), strconv.Itoa(s.DataPort)).CombinedOutput()
	if err != nil {
		t.Fatalf("perl: %v\n%s", err, out)
	}
	want := ""
	for _, drv := range []string{"MariaDB", "mysql"} {
		cs := readerCharset
		if drv == "MariaDB" {
			cs = "utf8mb4 utf8mb4_unicode_ci" // what DBD::MariaDB sets at connect
		}
		want += fmt.Sprintf("%s ps=0: count 7, server charset %s, ids agree, tx tx%s0, call 3,6,ok, multi 7,2\n", drv, cs, drv)
		want += fmt.Sprintf("%s ps=1: count 7, server charset %s, ids agree, tx tx%s1, call -, multi -\n", drv, cs, drv)
	}
	if string(out) != want {
		t.Fatalf("Perl DBI through read/write rules:\n%s\nwant:\n%s", out, want)
	}
	node := exec.CommandContext(ctx, "node", filepath.Join(testenv.RepoRoot(), "internal", "e2e", "testdata", "drivers.js"), strconv.Itoa(s.DataPort))
	node.Env = nodeEnv
	nout, err := node.CombinedOutput()
	if wantNode := "node: count 7, ids agree, tx txnode, call 4/8,ok, multi 7,2, big 20000000\n"; err != nil || string(nout) != wantNode {
		t.Fatalf("node mysqljs: %v\n%s\nwant:\n%s", err, nout, wantNode)
	}
	if w, r := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM sbtest.drv")),
		strings.TrimSpace(backendSQL(t, bs[1], "SELECT COUNT(*) FROM sbtest.drv")); w != "5" || r != "7" {
		t.Fatalf("writes: writer has %s rows (want 5), reader %s (want 7)", w, r)
	}
	if strings.Contains(s.Output(), "Unable to parse unknown SET") {
		t.Fatalf("a driver's connect statement locked a session:\n%s", s.Output())
	}
	t.Logf("%s%s", out, nout)
}

// TestNoBackslashEscapesStatus: with NO_BACKSLASH_ESCAPES in sql_mode the
// server sets SERVER_STATUS_NO_BACKSLASH_ESCAPES in every status, and
// drivers escape strings by it (mysqli::real_escape_string). The answers
// the proxy writes itself (the OK of a SET it tracks, SHOW WARNINGS…) carry
// it too: without it PHP escaped a quote with a backslash the server does
// not honour, and "nobody\' OR 1=1 -- " matched every row.
func TestNoBackslashEscapesStatus(t *testing.T) {
	bs := testenv.Backends(t, 1)
	backendSQL(t, bs[0], "CREATE TABLE IF NOT EXISTS sbtest.nbe (name VARCHAR(40), secret VARCHAR(40)); DELETE FROM sbtest.nbe; INSERT INTO sbtest.nbe VALUES ('alice', 'a'), ('bob', 'b')")
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	out, err := runPHP(t, "nbe.php", fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
foreach ([%d, %d] as $port) {
	$m = new mysqli("127.0.0.1", "sbtest", "sbtest", "sbtest", $port);
	$m->query("SET SESSION sql_mode='NO_BACKSLASH_ESCAPES'");
	$e = $m->real_escape_string("nobody\\' OR 1=1 -- ");
	echo $m->query("SELECT COUNT(*) FROM nbe WHERE name='$e'")->fetch_row()[0], " ";
	$m->query("SET SESSION sql_mode=DEFAULT");
	$e = $m->real_escape_string("nobody\\' OR 1=1 -- ");
	echo $m->query("SELECT COUNT(*) FROM nbe WHERE name='$e'")->fetch_row()[0], "\n";
}
`, bs[0].Port, s.DataPort))
	if err != nil || strings.TrimSpace(string(out)) != "0 0\n0 0" {
		t.Fatalf("injection through escaping (direct, then Sluice): %q %v, want no row matched", out, err)
	}
}
