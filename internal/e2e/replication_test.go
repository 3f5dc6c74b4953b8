package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestReplicationLagShunsReplica runs sluice's monitor against a real
// MariaDB primary/replica pair of the test's own (GTID replication set up
// by scripts/backends.sh replicate). The pair is in
// mysql_replication_hostgroups (writer 0, reader 1); the replica has
// max_replication_lag=2. Two ways to lag:
//
//   - a numeric lag: a transaction on the replica holds a row lock that
//     the replication SQL thread needs for a write made on the primary, so
//     Seconds_Behind_Master grows past 2;
//   - a NULL lag: STOP SLAVE, which mysql-monitor_slave_lag_when_null (60)
//     turns into a lag over the limit;
//   - then, with mysql-monitor_replication_lag_use_percona_heartbeat, an
//     old pt-heartbeat row (heartbeatLag).
//
// Each time the replica becomes SHUNNED_REPLICATION_LAG in
// stats_mysql_connection_pool (SHUNNED in runtime_mysql_servers, as in
// ProxySQL), reads of the reader hostgroup go to the primary only, and the
// replica comes back ONLINE once replication catches up.
func TestReplicationLagShunsReplica(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	own := testenv.OwnBackendsBinlog(t, 2)
	primary, replica := own.Backends[0], own.Backends[1]
	own.Replicate(t, 0, 1)

	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := testenv.WriteConfig(t, dir, adminPort, dataPort, "")
	s := testenv.StartWithMonitor(t, cfg, dir, adminPort, dataPort)
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_ping_interval=200; SET mysql-monitor_read_only_interval=200;
		SET mysql-monitor_replication_lag_interval=200; SET mysql-monitor_replication_lag_timeout=500;
		SET mysql-balance_policy='random';
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port, max_replication_lag) VALUES
			(0, '127.0.0.1', %d, 0), (1, '127.0.0.1', %d, 2);
		INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup) VALUES (0, 1);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 1);
		LOAD MYSQL USERS TO RUNTIME;`, primary.Port, replica.Port))

	poll := func(what, q string, timeout time.Duration, want func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			out := admin(t, s, q)
			if want(out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after %v; last answer %q\n%s", what, timeout, out, s.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	is := func(v string) func(string) bool { return func(out string) bool { return out == v } }
	poolStatus := fmt.Sprintf("SELECT status FROM stats_mysql_connection_pool WHERE hostgroup=1 AND srv_port=%d", replica.Port)
	runtimeStatus := fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE hostgroup_id=1 AND port=%d", replica.Port)

	// Settled: the primary is also a reader (writer_is_also_reader), the
	// replica is ONLINE with a lag of 0 in the log.
	poll("the primary copied into the reader hostgroup",
		fmt.Sprintf("SELECT hostgroup_id, status FROM runtime_mysql_servers WHERE port=%d ORDER BY hostgroup_id", primary.Port),
		10*time.Second, is("0\tONLINE\n1\tONLINE\n"))
	poll("a lag of 0 in the log",
		fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_replication_lag_log WHERE port=%d AND repl_lag=0 AND error IS NULL", replica.Port),
		10*time.Second, func(out string) bool { return out != "0\n" })
	poll("the replica ONLINE", poolStatus, 5*time.Second, is("ONLINE\n"))
	if out := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_replication_lag_log WHERE port=%d", primary.Port)); out != "0\n" {
		t.Errorf("the primary (max_replication_lag 0 in the writer hostgroup, 0 in its reader copy) was checked: %q rows", out)
	}

	rootP := testenv.DB(t, primary.Port, "root", "test", "", "")
	rootR := testenv.DB(t, replica.Port, "root", "test", "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS repltest",
		"CREATE TABLE IF NOT EXISTS repltest.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"REPLACE INTO repltest.t VALUES (1, 0)",
	} {
		if _, err := rootP.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitRow := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := rootR.QueryRowContext(ctx, "SELECT COUNT(*) FROM repltest.t").Scan(&n); err == nil && n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the table did not reach the replica in 10s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitRow()

	// Reads of the reader hostgroup through sluice: which servers answer.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(4)
	reads := func(n int) map[int]int {
		t.Helper()
		seen := map[int]int{}
		for range n {
			var port int
			// Not "SELECT @@port", which would pin the backend connection.
			if err := db.QueryRowContext(ctx,
				"SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME='PORT'").Scan(&port); err != nil {
				t.Fatalf("read through sluice: %v", err)
			}
			seen[port]++
		}
		return seen
	}
	if seen := reads(200); seen[replica.Port] == 0 || seen[primary.Port] == 0 {
		t.Fatalf("both servers should serve reads before the lag: %v", seen)
	}

	// 1. A numeric lag: the replica's SQL thread waits for our row lock.
	lockConn, err := rootR.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockConn.Close()
	for _, q := range []string{"SET SESSION innodb_lock_wait_timeout=60", "BEGIN", "SELECT v FROM repltest.t WHERE id=1 FOR UPDATE"} {
		if _, err := lockConn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	lagStart := time.Now()
	if _, err := rootP.ExecContext(ctx, "UPDATE repltest.t SET v=v+1 WHERE id=1"); err != nil {
		t.Fatal(err)
	}
	poll("the replica SHUNNED_REPLICATION_LAG (numeric lag)", poolStatus, 20*time.Second, is("SHUNNED_REPLICATION_LAG\n"))
	shunAfter := time.Since(lagStart)
	if out := admin(t, s, runtimeStatus); out != "SHUNNED\n" {
		t.Errorf("runtime_mysql_servers shows %q for the lagging replica, want SHUNNED (as ProxySQL)", out)
	}
	maxLag := admin(t, s, fmt.Sprintf("SELECT MAX(repl_lag) FROM monitor.mysql_server_replication_lag_log WHERE port=%d", replica.Port))
	if n, _ := strconv.Atoi(strings.TrimSpace(maxLag)); n <= 2 {
		t.Errorf("highest lag in the log = %q, want > 2", maxLag)
	}
	if seen := reads(100); seen[replica.Port] != 0 || seen[primary.Port] != 100 {
		t.Errorf("reads while the replica lags: %v, want all on the primary %d", seen, primary.Port)
	}
	if _, err := lockConn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	poll("the replica back ONLINE (numeric lag)", poolStatus, 20*time.Second, is("ONLINE\n"))
	backAfter := time.Since(released)
	t.Logf("numeric lag: SHUNNED_REPLICATION_LAG %v after the blocked write (highest logged lag %ss), ONLINE %v after the lock was released",
		shunAfter.Round(time.Millisecond), strings.TrimSpace(maxLag), backAfter.Round(time.Millisecond))
	if seen := reads(200); seen[replica.Port] == 0 {
		t.Errorf("the replica serves no reads once back: %v", seen)
	}

	// 2. A NULL lag: replication stopped.
	stopped := time.Now()
	if _, err := rootR.ExecContext(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	poll("the replica SHUNNED_REPLICATION_LAG (NULL lag)", poolStatus, 20*time.Second, is("SHUNNED_REPLICATION_LAG\n"))
	nullShun := time.Since(stopped)
	if out := admin(t, s, fmt.Sprintf(
		"SELECT repl_lag FROM monitor.mysql_server_replication_lag_log WHERE port=%d ORDER BY time_start_us DESC LIMIT 1", replica.Port)); out != "60\n" {
		t.Errorf("latest logged lag with replication stopped = %q, want 60 (mysql-monitor_slave_lag_when_null)", out)
	}
	if seen := reads(100); seen[replica.Port] != 0 {
		t.Errorf("reads while replication is stopped: %v, want none on the replica", seen)
	}
	restarted := time.Now()
	if _, err := rootR.ExecContext(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	poll("the replica back ONLINE (NULL lag)", poolStatus, 20*time.Second, is("ONLINE\n"))
	nullBack := time.Since(restarted)
	t.Logf("NULL lag: SHUNNED_REPLICATION_LAG %v after STOP SLAVE, ONLINE %v after START SLAVE",
		nullShun.Round(time.Millisecond), nullBack.Round(time.Millisecond))

	out := s.Output()
	for _, want := range []string{
		fmt.Sprintf("Shunning server 127.0.0.1:%d from HG 1 with replication lag of", replica.Port),
		fmt.Sprintf("Re-enabling server 127.0.0.1:%d from HG 1 with replication lag of", replica.Port),
		fmt.Sprintf("Replication lag on server 127.0.0.1:%d is NULL, using the value 60", replica.Port),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no log line %q in the output:\n%s", want, out)
		}
	}

	// 3. The same replica, its lag read from a pt-heartbeat table.
	heartbeatLag(t, s, primary, replica)
}

// heartbeatLag (the end of TestReplicationLagShunsReplica, on its servers):
// with mysql-monitor_replication_lag_use_percona_heartbeat the replica's
// lag is the age of the newest row of the pt-heartbeat table it receives by
// replication (ProxySQL's query), not SHOW SLAVE STATUS: a heartbeat 60 s
// old shuns the replica (max_replication_lag 20) while its SQL thread is
// idle and up to date, a fresh one brings it back. A value that is not a
// table name is refused at LOAD.
func heartbeatLag(t *testing.T, s *testenv.Sluice, primary, replica testenv.Backend) {
	t.Helper()
	if out, err := testenv.CLI(t, s.AdminPort, "admin", "admin",
		"SET mysql-monitor_replication_lag_use_percona_heartbeat='percona.heartbeat; DROP TABLE x'; LOAD MYSQL VARIABLES TO RUNTIME"); err == nil ||
		!strings.Contains(err.Error(), "not a table name") {
		t.Fatalf("a heartbeat value that is not a table name: %v %s", err, out)
	}
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_replication_lag_use_percona_heartbeat='percona.heartbeat'; LOAD MYSQL VARIABLES TO RUNTIME;
		UPDATE mysql_servers SET max_replication_lag=20 WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME;`, replica.Port))
	beat := func(age int) {
		t.Helper()
		testenv.MustCLI(t, primary.Port, "root", "test", fmt.Sprintf(
			"REPLACE INTO percona.heartbeat (ts, server_id) VALUES (DATE_FORMAT(NOW(6) - INTERVAL %d SECOND, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), 1)", age))
	}
	// pt-heartbeat's table.
	testenv.MustCLI(t, primary.Port, "root", "test", "CREATE DATABASE IF NOT EXISTS percona; "+
		"CREATE TABLE IF NOT EXISTS percona.heartbeat (ts varchar(26) NOT NULL, server_id int unsigned NOT NULL PRIMARY KEY, "+
		"file varchar(255) DEFAULT NULL, position bigint unsigned DEFAULT NULL); "+
		"GRANT SELECT ON percona.* TO 'monitor'@'127.0.0.1'; GRANT SELECT ON percona.* TO 'monitor'@'%'")
	beat(0)
	status := fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE hostgroup_id=1 AND port=%d", replica.Port)
	await := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := strings.TrimSpace(admin(t, s, status))
			if out == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q, want %q; lag log:\n%s", what, out, want,
					admin(t, s, "SELECT port, repl_lag, error FROM monitor.mysql_server_replication_lag_log ORDER BY time_start_us DESC LIMIT 5"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	await("a fresh heartbeat", "ONLINE")
	beat(60)
	await("a heartbeat 60 s old", "SHUNNED")
	lag := admin(t, s, fmt.Sprintf("SELECT repl_lag FROM monitor.mysql_server_replication_lag_log WHERE port=%d AND error IS NULL ORDER BY time_start_us DESC LIMIT 1", replica.Port))
	if n, _ := strconv.Atoi(strings.TrimSpace(lag)); n < 59 || n > 70 {
		t.Errorf("last lag logged %q, want about 60", lag)
	}
	beat(0)
	await("a fresh heartbeat again", "ONLINE")
}

// TestBinlogThroughFastForward: a MariaDB replica replicates through the
// proxy (CHANGE MASTER TO the data port, a fast_forward user), and
// mariadb-binlog reads the primary's binary log through it, as ProxySQL
// allows fast_forward users: COM_REGISTER_SLAVE and COM_BINLOG_DUMP are
// relayed, the events as they come.
func TestBinlogThroughFastForward(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	own := testenv.OwnBackendsBinlog(t, 2)
	primary, replica := own.Backends[0], own.Backends[1]
	backendSQL(t, primary, `CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
		GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1';
		CREATE USER IF NOT EXISTS 'repl2'@'127.0.0.1' IDENTIFIED BY 'repl2';
		GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl2'@'127.0.0.1';
		CREATE DATABASE IF NOT EXISTS bl; CREATE TABLE IF NOT EXISTS bl.t (id INT PRIMARY KEY, v VARCHAR(20))`)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup, fast_forward) VALUES ('repl', 'repl', 0, 1), ('repl2', 'repl2', 0, 0);
		LOAD MYSQL USERS TO RUNTIME;`, primary.Port))

	// The replica starts from the primary's current position, with the
	// table already in place.
	backendSQL(t, replica, "CREATE DATABASE IF NOT EXISTS bl; CREATE TABLE IF NOT EXISTS bl.t (id INT PRIMARY KEY, v VARCHAR(20))")
	pos := strings.TrimSpace(backendSQL(t, primary, "SELECT @@gtid_binlog_pos"))
	backendSQL(t, replica, fmt.Sprintf(`STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos='%s';
		CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', MASTER_PASSWORD='repl',
		MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
		START SLAVE;`, pos, s.DataPort))
	t.Cleanup(func() { testenv.CLI(t, replica.Port, "root", "test", "STOP SLAVE; RESET SLAVE ALL") })
	slave := func(field string) string {
		out := testenv.MustCLI(t, replica.Port, "root", "test", "SHOW SLAVE STATUS\\G") // with names: no -N
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && k == field {
				return v
			}
		}
		return ""
	}
	for i := 0; slave("Slave_IO_Running") != "Yes"; i++ {
		if i > 100 {
			t.Fatalf("the replica's IO thread did not start through the proxy: %s\n%s", slave("Last_IO_Error"), s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := slave("Master_Port"); p != strconv.Itoa(s.DataPort) {
		t.Fatalf("the replica's master port is %s, want the proxy's %d", p, s.DataPort)
	}
	// Writes on the primary arrive, one at a time (each event is relayed
	// when it comes, not when a buffer fills).
	for i := 1; i <= 3; i++ {
		backendSQL(t, primary, fmt.Sprintf("INSERT INTO bl.t VALUES (%d, 'through the proxy')", i))
		deadline := time.Now().Add(10 * time.Second)
		for strings.TrimSpace(backendSQL(t, replica, fmt.Sprintf("SELECT COUNT(*) FROM bl.t WHERE id=%d", i))) != "1" {
			if time.Now().After(deadline) {
				t.Fatalf("row %d did not reach the replica: IO %s SQL %s %s", i, slave("Slave_IO_Running"), slave("Slave_SQL_Running"), slave("Last_IO_Error"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// mariadb-binlog reads the log through the proxy (a non-blocking dump
	// that ends with the log).
	file := strings.Fields(backendSQL(t, primary, "SHOW MASTER STATUS"))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb-binlog", "--read-from-remote-server", "-h127.0.0.1", "-P"+strconv.Itoa(s.DataPort),
		"-urepl", "-prepl", "--base64-output=decode-rows", "-v", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "INSERT INTO `bl`.`t`") {
		t.Fatalf("mariadb-binlog through the proxy: %v\n%.2000s", err, out)
	}

	// A user without fast_forward: its session turns fast_forward at the
	// replication command, as in ProxySQL (it used to get ERR 1047).
	out, err = exec.CommandContext(ctx, "mariadb-binlog", "--read-from-remote-server", "-h127.0.0.1", "-P"+strconv.Itoa(s.DataPort),
		"-urepl2", "-prepl2", "--base64-output=decode-rows", "-v", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "INSERT INTO `bl`.`t`") {
		t.Fatalf("mariadb-binlog through the proxy as a multiplexed user: %v\n%.2000s", err, out)
	}
	if !strings.Contains(s.Output(), "the session switches to fast_forward") {
		t.Errorf("the switch to fast_forward is not logged")
	}

	// When a non-blocking dump ends, the session ends, as the server
	// closes the connection then: a client that had a transaction open
	// learns it is gone (it used to go on, its status still saying
	// "in a transaction").
	c, _ := wireLoginSalt(t, s.DataPort, "repl2", "repl2")
	for _, q := range []string{"SET @master_binlog_checksum = @@global.binlog_checksum", "SET @mariadb_slave_capability = 4"} {
		c.ResetSeq()
		if err := c.WritePacket(append([]byte{wire.ComQuery}, q...)); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if p, err := c.ReadPacket(); err != nil || wire.IsERR(p) {
			t.Fatalf("%s: %q %v", q, p, err)
		}
	}
	dump := []byte{wire.ComBinlogDump, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0} // position 4, BINLOG_DUMP_NON_BLOCK, server id 0
	dump = append(dump, file...)
	c.ResetSeq()
	if err := c.WritePacket(dump); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	events := 0
	for {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("the dump ended with %v after %d events, before its EOF", err, events)
		}
		if wire.IsERR(p) {
			t.Fatalf("COM_BINLOG_DUMP: %q", p)
		}
		if len(p) < 9 && p[0] == 0xFE {
			break // the end of the log
		}
		events++
	}
	_ = c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := c.ReadPacket(); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("after the dump ended: %v, want the connection closed", err)
	}
	t.Logf("a non-blocking dump through the proxy: %d events, then the session closed", events)
}

// TestUnknownReplicationCommandKeepsSession: MariaDB does not know
// COM_BINLOG_DUMP_GTID (MySQL's): it answers 1047 and the connection goes
// on. Through the proxy the client gets that answer and its session goes
// on too (it used to be closed, as after a binlog dump).
func TestUnknownReplicationCommandKeepsSession(t *testing.T) {
	s, _ := multiplexSetup(t, 4, "")
	m, _ := metaLogin(t, s.DataPort, true, false)
	defer m.c.Close()
	m.send([]byte{wire.ComBinlogDumpGTID, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	p, err := m.c.ReadPacket()
	if err != nil || !wire.IsERR(p) {
		t.Fatalf("COM_BINLOG_DUMP_GTID: % x %v, want the server's ERR 1047", p, err)
	}
	if e, _ := wire.ParseERR(p); e.Code != 1047 {
		t.Fatalf("COM_BINLOG_DUMP_GTID: %v, want 1047", e)
	}
	m.send([]byte("\x03SELECT 1"))
	if r := m.readResult(1); len(r.rows) != 1 {
		t.Fatalf("after the refused command: %d rows", len(r.rows))
	}
}
