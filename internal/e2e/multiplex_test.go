package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// multiplexSetup starts sluice with one backend in hostgroup 0 and the
// users sbtest (clear-text password) and root (hash only).
func multiplexSetup(t *testing.T, maxConns int, extraSQL string) (*testenv.Sluice, testenv.Backend) {
	t.Helper()
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port, max_connections) VALUES (0, '%s', %d, %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 0);
		LOAD MYSQL USERS TO RUNTIME;
		%s`, b.Host, b.Port, maxConns, extraSQL))
	return s, b
}

// TestMultiplexingConditions checks, for each condition of reference §5.2,
// that a session keeps its backend connection exactly as long as ProxySQL
// would. The only server allows one connection and a query that cannot get
// one fails after mysql-connect_timeout_server_max, so a second session can
// tell whether the first still holds the connection.
func TestMultiplexingConditions(t *testing.T) {
	s, _ := multiplexSetup(t, 1, "SET mysql-connect_timeout_server_max=300; LOAD MYSQL VARIABLES TO RUNTIME;")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "multiStatements=true")
	testenv.MustCLI(t, testenv.Backends(t, 1)[0].Port, "root", "test",
		"CREATE TABLE IF NOT EXISTS sbtest.mux (id INT PRIMARY KEY) ENGINE=InnoDB; REPLACE INTO sbtest.mux VALUES (1); "+
			"CREATE OR REPLACE PROCEDURE sbtest.mux_proc() SELECT 1; CREATE SEQUENCE IF NOT EXISTS sbtest.sq_mux")

	cases := []struct {
		name    string
		pin     []string // statements after which the connection must stay with the session
		release []string // statements after which it must go back to the pool ("" = never released)
	}{
		{"plain select", nil, []string{"SELECT 1"}},
		{"tracked SET", nil, []string{"SET NAMES utf8mb4", "SET sql_mode='ANSI'", "SELECT 1"}},
		{"keep_multiplexing_variables", nil, []string{"SELECT @@tx_isolation"}},
		{"transaction", []string{"BEGIN", "SELECT * FROM mux"}, []string{"COMMIT"}},
		{"autocommit=0 write", []string{"SET autocommit=0", "UPDATE mux SET id = id WHERE id = 1", "SELECT * FROM mux"}, []string{"COMMIT", "SET autocommit=1", "SELECT 1"}},
		// mysql-enforce_autocommit_on_reads=false (the default): a read of
		// an autocommit=0 session runs with autocommit=1 and starts nothing.
		{"autocommit=0 read", nil, []string{"SET autocommit=0", "SELECT * FROM mux"}},
		{"savepoint", []string{"START TRANSACTION", "SAVEPOINT a", "SELECT 1"}, []string{"ROLLBACK"}},
		{"user variable", []string{"SET @x = 1", "SELECT 1"}, nil},
		{"user variable read", []string{"SELECT @y"}, nil},
		{"temporary table", []string{"CREATE TEMPORARY TABLE tmp_mux (a INT)"}, nil},
		{"MariaDB's CREATE OR REPLACE TEMPORARY TABLE", []string{"CREATE OR REPLACE TEMPORARY TABLE tmp_mux2 (a INT)"}, nil},
		{"multi-statement SET", []string{"SELECT 1; SET time_zone = '+01:00'"}, nil},
		// SELECT 1 does not consume it on MariaDB; a COMMIT does.
		{"SET TRANSACTION for the next one", []string{"SET TRANSACTION READ ONLY", "SELECT 1"}, []string{"COMMIT"}},
		{"handler", []string{"HANDLER mux OPEN AS hmux", "HANDLER hmux READ FIRST"}, nil},
		{"handlers closed", []string{"HANDLER mux OPEN hm1", "HANDLER mux OPEN AS hm2", "HANDLER hm1 READ FIRST", "HANDLER hm1 CLOSE", "HANDLER hm2 READ FIRST"}, []string{"HANDLER hm2 CLOSE"}},
		{"lock tables", []string{"LOCK TABLES mux READ", "SELECT * FROM mux"}, []string{"UNLOCK TABLES"}},
		{"get_lock", []string{"SELECT GET_LOCK('sluice', 1)"}, nil},
		{"sql_calc_found_rows", []string{"SELECT SQL_CALC_FOUND_ROWS * FROM mux"}, nil},
		{"text prepare", []string{"PREPARE st FROM 'SELECT 1'"}, nil},
		{"warnings", []string{"SELECT 1/0", "SHOW WARNINGS"}, []string{"SELECT 1"}},
		{"stored procedure", []string{"CALL mux_proc()"}, nil},
		{"execute immediate", []string{`EXECUTE IMMEDIATE 'SET time_zone = "+03:00"'`}, nil},
		{"SET STATEMENT … FOR SET", []string{"SET STATEMENT sql_mode = '' FOR SET time_zone = '+08:00'"}, nil},
		{"SET STATEMENT … FOR CREATE TEMPORARY TABLE", []string{"SET STATEMENT max_statement_time = 10 FOR CREATE TEMPORARY TABLE tmp_mux3 (a INT)"}, nil},
		{"GET_LOCK spelled with a space", []string{"SELECT GET_LOCK ('sluice2', 1)"}, nil},
		{"FLUSH TABLES WITH READ LOCK", []string{"FLUSH TABLES WITH READ LOCK"}, []string{"UNLOCK TABLES"}},
		{"LOCK TABLE, UNLOCK TABLE", []string{"LOCK TABLE mux WRITE", "SELECT * FROM mux"}, []string{"UNLOCK TABLE"}},
		{"MariaDB's temporary sequence", []string{"CREATE TEMPORARY SEQUENCE tseq_mux"}, nil},
		{"MariaDB's BACKUP STAGE", []string{"BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"}, []string{"BACKUP STAGE END"}},
		{"MariaDB's BACKUP LOCK", []string{"BACKUP LOCK sbtest.mux"}, []string{"BACKUP UNLOCK"}},
		// LASTVAL(s) reads what the connection generated last: through
		// the pool it gave another session's value.
		{"MariaDB's NEXTVAL", []string{"SELECT NEXTVAL(sq_mux)", "SELECT LASTVAL(sq_mux)"}, nil},
		{"MariaDB's NEXT VALUE FOR", []string{"SELECT NEXT VALUE FOR sq_mux", "SELECT PREVIOUS VALUE FOR sq_mux"}, nil},
	}
	probe := func() error {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		var one int
		return c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				a.Raw(func(any) error { return driverBadConn })
				a.Close()
				// The server's connection is freed when the session ends.
				deadline := time.Now().Add(5 * time.Second)
				for probe() != nil && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
			}()
			for _, q := range tc.pin {
				execOrQuery(t, a, q)
			}
			if len(tc.pin) > 0 {
				if err := probe(); err == nil || !strings.Contains(err.Error(), "9001") {
					t.Fatalf("after %q another session got a connection (err=%v): the session should hold it", tc.pin, err)
				}
			}
			if tc.release == nil {
				execOrQuery(t, a, "SELECT 1")
				if err := probe(); err == nil {
					t.Fatalf("after %q the connection went back to the pool; ProxySQL keeps it for the session", tc.pin)
				}
				return
			}
			for _, q := range tc.release {
				execOrQuery(t, a, q)
			}
			if err := probe(); err != nil {
				t.Fatalf("after %q the connection should be back in the pool: %v", tc.release, err)
			}
		})
	}
}

// TestStoredProcedureState: a procedure may change its caller's session
// (here time_zone and autocommit=0) in ways the proxy cannot see, so after
// a CALL the connection stays with the session: the caller keeps what the
// procedure set, and no other session gets a connection left with
// autocommit=0, where its writes would never commit. Before, the connection
// went back to the pool after the CALL.
func TestStoredProcedureState(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	testenv.MustCLI(t, b.Port, "root", "test", `CREATE TABLE IF NOT EXISTS sbtest.sp_rows (id INT PRIMARY KEY) ENGINE=InnoDB;
		DELETE FROM sbtest.sp_rows;
		CREATE OR REPLACE PROCEDURE sbtest.sp_session() SET time_zone = '+05:00', autocommit = 0`)
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	caller, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	if _, err := caller.ExecContext(ctx, "CALL sp_session()"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		other, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var tz string
		var ac int
		if err := other.QueryRowContext(ctx, "SELECT @@time_zone, @@autocommit").Scan(&tz, &ac); err != nil {
			t.Fatal(err)
		}
		if tz != "SYSTEM" || ac != 1 {
			t.Fatalf("another session sees time_zone %s, autocommit %d: the procedure's changes leaked through the pool", tz, ac)
		}
		if _, err := other.ExecContext(ctx, "INSERT INTO sp_rows VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
		other.Close()
	}
	var tz string
	var ac int
	if err := caller.QueryRowContext(ctx, "SELECT @@time_zone, @@autocommit").Scan(&tz, &ac); err != nil {
		t.Fatal(err)
	}
	if tz != "+05:00" || ac != 0 {
		t.Errorf("the caller sees time_zone %s, autocommit %d after its CALL, want +05:00 and 0 as on a direct connection", tz, ac)
	}
	if out := testenv.MustCLI(t, b.Port, "root", "test", "SELECT COUNT(*) FROM sbtest.sp_rows", "--skip-column-names"); strings.TrimSpace(out) != "5" {
		t.Errorf("%s rows committed by the other sessions, want 5", out)
	}
}

func execOrQuery(t *testing.T, c *sql.Conn, q string) {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	rows.Close()
}

// TestThousandClients runs 1000 concurrent client connections of point
// selects through sluice with max_connections=20 on each server and checks
// that no query fails and no server ever sees more than 20 connections.
func TestThousandClients(t *testing.T) {
	const clients, perClient, maxConns = 1000, 20, 20
	// A user of its own, so that counting the server's connections of that
	// user counts this test's and nothing else.
	s, b := multiplexSetup(t, maxConns, `INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('mux1000', 'mux1000', 0);
		LOAD MYSQL USERS TO RUNTIME;`)
	testenv.MustCLI(t, b.Port, "root", "test", `CREATE USER IF NOT EXISTS 'mux1000'@'%' IDENTIFIED BY 'mux1000';
		GRANT ALL ON sbtest.* TO 'mux1000'@'%';
		CREATE TABLE IF NOT EXISTS sbtest.points (id INT PRIMARY KEY, v INT); REPLACE INTO sbtest.points VALUES (1,1),(2,2),(3,3),(4,4),(5,5)`)
	db := testenv.DB(t, s.DataPort, "mux1000", "mux1000", "sbtest", "")
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	direct := testenv.DB(t, b.Port, "root", "test", "", "")
	go func() {
		defer close(sampled)
		for {
			var n int64
			if err := direct.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='mux1000'").Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failures atomic.Int64
	var firstErr atomic.Value
	start := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := db.Conn(ctx)
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			<-start
			for j := 0; j < perClient; j++ {
				var v int
				id := (i+j)%5 + 1
				if err := c.QueryRowContext(ctx, "SELECT v FROM points WHERE id = ?", id).Scan(&v); err != nil || v != id {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("client %d: %v (v=%d)", i, err, v))
					return
				}
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(stop)
	<-sampled
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d clients failed; first: %v", n, firstErr.Load())
	}
	if p := peak.Load(); p > maxConns || p == 0 {
		t.Fatalf("the backend saw at most %d sluice connections, want 1..%d", p, maxConns)
	} else {
		t.Logf("%d clients × %d queries served by at most %d backend connections", clients, perClient, p)
	}
}

// TestMultiStatementStateNotLeaked: a SET or USE further into a
// multi-statement query changes the backend connection in ways the proxy
// does not see. The session keeps that connection (locked, as after a SET
// the proxy cannot parse) and sees its own change; other sessions never get
// it. Before, the connection went back to the pool recorded as unchanged:
// the next sessions to take it ran in the other schema, time zone and
// sql_mode.
func TestMultiStatementStateNotLeaked(t *testing.T) {
	s, b := multiplexSetup(t, 2, "")
	backendSQL(t, b, "CREATE DATABASE IF NOT EXISTS sluice_ms_other")
	a := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "multiStatements=true")
	a.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, "SELECT 1; SET time_zone = '+07:00', sql_mode = 'ANSI_QUOTES'; USE sluice_ms_other"); err != nil {
		t.Fatal(err)
	}
	// No '@' in these reads: a query with one pins its connection by itself.
	const read = "SELECT DATABASE(), (SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME = 'TIME_ZONE'), " +
		"(SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME = 'SQL_MODE')"
	var db, tz, mode string
	for i := range 10 {
		other := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
		err := other.QueryRowContext(ctx, read).Scan(&db, &tz, &mode)
		other.Close()
		if err != nil || db != "sbtest" || tz == "+07:00" || mode == "ANSI_QUOTES" {
			t.Fatalf("session %d after another's multi-statement SET: %q %q %q %v", i, db, tz, mode, err)
		}
	}
	if err := a.QueryRowContext(ctx, read).Scan(&db, &tz, &mode); err != nil ||
		db != "sluice_ms_other" || tz != "+07:00" || mode != "ANSI_QUOTES" {
		t.Fatalf("the session itself: %q %q %q %v", db, tz, mode, err)
	}
}

// TestNextTransactionSetNotLeaked: SET TRANSACTION without SESSION applies
// to the session's next transaction only (go-sql-driver sends it before
// START TRANSACTION for BeginTx with an isolation level). The connection it
// ran on stays with the session until a statement consumes it. Before, it
// went back to the pool: another session's next transaction became READ
// ONLY (its INSERT failed with 1792) and this session's did not.
func TestNextTransactionSetNotLeaked(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	// No AUTO_INCREMENT: an insert id would keep each writer's connection
	// for its next queries (mysql-auto_increment_delay_multiplex), and the
	// four connections would not be enough.
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.nexttrx2 (who VARCHAR(10))")
	a, ctx := oneConn(t, s.DataPort)
	if _, err := a.ExecContext(ctx, "SET TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	write := func(c *sql.Conn, who string) error {
		if _, err := c.ExecContext(ctx, "START TRANSACTION"); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "INSERT INTO sbtest.nexttrx2 (who) VALUES (?)", who)
		if _, rerr := c.ExecContext(ctx, "COMMIT"); err == nil {
			err = rerr
		}
		return err
	}
	othersWrite := func(after string) {
		t.Helper()
		for i := range 3 {
			other, _ := oneConn(t, s.DataPort)
			err := write(other, "other")
			other.Close()
			if err != nil {
				t.Fatalf("another session's transaction %d after %s: %v", i, after, err)
			}
		}
	}
	othersWrite("SET TRANSACTION READ ONLY")
	if err := write(a, "a"); err == nil || !strings.Contains(err.Error(), "1792") {
		t.Fatalf("the session's own next transaction: %v, want 1792 (read-only transaction)", err)
	}
	// Consumed: the one after is read-write again.
	if err := write(a, "a"); err != nil {
		t.Fatalf("the transaction after: %v", err)
	}

	// A statement outside a transaction may leave it waiting: on MariaDB
	// SELECT 1 and DO do not consume it (a read of a table does). The
	// connection stayed with the session only until such a statement, and
	// another session's transaction then got READ ONLY.
	if _, err := a.ExecContext(ctx, "SET TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "DO 1"); err != nil {
		t.Fatal(err)
	}
	othersWrite("SET TRANSACTION READ ONLY and DO 1")
	if err := write(a, "a"); err == nil || !strings.Contains(err.Error(), "1792") {
		t.Fatalf("the session's own next transaction after DO 1: %v, want 1792", err)
	}
	// A COMMIT with no transaction open consumes it too: it goes to the
	// server (it was answered by the proxy, and the next transaction was
	// READ ONLY where a direct connection's is not).
	for _, end := range []string{"COMMIT", "ROLLBACK"} {
		if _, err := a.ExecContext(ctx, "SET TRANSACTION READ ONLY"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.ExecContext(ctx, end); err != nil {
			t.Fatal(err)
		}
		if err := write(a, "a"); err != nil {
			t.Fatalf("the transaction after SET TRANSACTION READ ONLY and %s: %v", end, err)
		}
	}
}

// TestPreparedSetKept: a SET run as a prepared statement (go-sql-driver
// prepares "SET time_zone = ?" when given an argument) changes its
// connection with values the proxy never parses. The session keeps that
// connection, locked as after an unparsable SET, and sees its setting;
// other sessions never get it. Before, the connection went back to the
// pool: the session lost its time zone and another could get it.
func TestPreparedSetKept(t *testing.T) {
	s, _ := multiplexSetup(t, 2, "")
	c, ctx := oneConn(t, s.DataPort)
	if _, err := c.ExecContext(ctx, "SET time_zone = ?", "+07:00"); err != nil {
		t.Fatal(err)
	}
	const read = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME = 'TIME_ZONE'"
	var tz string
	for i := range 4 {
		other, octx := oneConn(t, s.DataPort)
		if err := other.QueryRowContext(octx, read).Scan(&tz); err != nil || tz == "+07:00" {
			t.Fatalf("session %d after another's prepared SET: %q %v", i, tz, err)
		}
		other.Close()
	}
	if err := c.QueryRowContext(ctx, read).Scan(&tz); err != nil || tz != "+07:00" {
		t.Fatalf("the session's own time zone after its prepared SET: %q %v, want +07:00", tz, err)
	}
	// A prepared SET without parameters is read as its text: tracked, no
	// lock, and it follows the session to any connection.
	d, dctx := oneConn(t, s.DataPort)
	st, err := d.PrepareContext(dctx, "SET sql_mode = 'ANSI_QUOTES'")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExecContext(dctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var mode string
	if err := d.QueryRowContext(dctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME = 'SQL_MODE'").Scan(&mode); err != nil || mode != "ANSI_QUOTES" {
		t.Fatalf("sql_mode after a prepared SET without parameters: %q %v", mode, err)
	}
	if n := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_processlist WHERE extended_info LIKE '%prepared SET%'"); n != 1 {
		t.Errorf("sessions pinned by a prepared SET: %d, want 1 (the one with a parameter)", n)
	}
}
