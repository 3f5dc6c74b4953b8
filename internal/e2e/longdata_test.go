package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestLongDataBounded: COM_STMT_SEND_LONG_DATA is held by the proxy until
// the EXECUTE (the statement may run on another connection), so what a
// client sends is bounded as the server bounds it: at most
// mysql-max_allowed_packet bytes for one parameter. Past that the data is
// dropped and the EXECUTE answers MariaDB's error — every EXECUTE, until
// COM_STMT_RESET, as MariaDB's statement in its error state does (checked
// against a server with the same bound); the session goes on. PHP mysqli's
// send_long_data, 1 MiB bound. The session as a whole holds at most that
// much: chunks spread over parameters and statements count together.
func TestLongDataBounded(t *testing.T) {
	s, b := multiplexSetup(t, 4, "SET mysql-max_allowed_packet=1048576; LOAD MYSQL VARIABLES TO RUNTIME;")
	backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.longdata (id INT PRIMARY KEY, b LONGBLOB); DELETE FROM sbtest.longdata")
	php := fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli("127.0.0.1", "sbtest", "sbtest", "sbtest", %d);
$st = $db->prepare("INSERT INTO longdata VALUES (?, ?)");
$null = null;
$id = 1;
$st->bind_param("ib", $id, $null);
// 3 chunks of 256 KiB: within the bound.
for ($i = 0; $i < 3; $i++) $st->send_long_data(1, str_repeat(chr(65 + $i), 262144));
$st->execute();
echo "within: ", $st->affected_rows, "\n";
// 5 chunks of 256 KiB: past it.
$id = 2;
for ($i = 0; $i < 5; $i++) $st->send_long_data(1, str_repeat("x", 262144));
try { $st->execute(); echo "past: ran\n"; } catch (mysqli_sql_exception $e) { echo "past: ", $e->getCode(), " ", $e->getMessage(), "\n"; }
// As on the server, the statement fails every EXECUTE until it is reset.
$id = 3;
try { $st->execute(); echo "again: ran\n"; } catch (mysqli_sql_exception $e) { echo "again: ", $e->getCode(), "\n"; }
$st->reset();
$st->send_long_data(1, "small");
$st->execute();
echo "after: ", $st->affected_rows, "\n";
// Spread over two statements, each parameter within the bound, the
// session's total past it: the proxy does not hold what a client sends.
$st2 = $db->prepare("SELECT LENGTH(?)");
$st2->bind_param("b", $null);
$st2->send_long_data(0, str_repeat("y", 786432));
$id = 4;
$st->send_long_data(1, str_repeat("z", 786432));
try { $st->execute(); echo "spread: ran\n"; } catch (mysqli_sql_exception $e) { echo "spread: ", $e->getCode(), "\n"; }
$st2->execute();
$st2->bind_result($len);
$st2->fetch();
echo "first statement: ", $len, "\n";
$st2->close();
$r = $db->query("SELECT id, LENGTH(b), MD5(b) = MD5(CONCAT(REPEAT('A', 262144), REPEAT('B', 262144), REPEAT('C', 262144))) FROM longdata ORDER BY id");
foreach ($r->fetch_all() as $row) echo implode(" ", $row), "\n";
`, s.DataPort)
	out, err := runPHP(t, "longdata.php", php)
	want := "within: 1\n" +
		"past: 1105 Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes\n" +
		"again: 1105\n" +
		"after: 1\n" +
		"spread: 1105\n" +
		"first statement: 786432\n" +
		"1 786432 1\n" +
		"3 5 0\n"
	if err != nil || string(out) != want {
		t.Fatalf("PHP mysqli long data against a 1 MiB bound: %v\n%s\nwant:\n%s", err, out, want)
	}
	t.Logf("%s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
}

// TestPreparedStatementsBounded: a session keeps at most 16 382 prepared
// statements open (MySQL's default max_prepared_stmt_count, which a direct
// connection meets at the server); the next PREPARE gets 1461 and the
// session goes on. Statements from the proxy's cache cost no backend round
// trip, so without the bound a client could grow the proxy without limit.
func TestPreparedStatementsBounded(t *testing.T) {
	s, _ := multiplexSetup(t, 4, "")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stmts []*sql.Stmt
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for i := 0; i < 16382; i++ {
		st, err := c.PrepareContext(ctx, "SELECT ?")
		if err != nil {
			t.Fatalf("PREPARE %d: %v", i+1, err)
		}
		stmts = append(stmts, st)
	}
	_, err = c.PrepareContext(ctx, "SELECT ?")
	if err == nil || !strings.Contains(err.Error(), "1461") {
		t.Fatalf("PREPARE 16 383: %v, want error 1461", err)
	}
	stmts[0].Close()
	stmts = stmts[1:]
	st, err := c.PrepareContext(ctx, "SELECT ?")
	if err != nil {
		t.Fatalf("PREPARE after one was closed: %v", err)
	}
	stmts = append(stmts, st)
	var v int
	if err := st.QueryRowContext(ctx, 7).Scan(&v); err != nil || v != 7 {
		t.Fatalf("EXECUTE: %d %v", v, err)
	}
}

// TestLongDataDroppedWithFailedExecute: an EXECUTE consumes its long data
// whatever comes of it, as on a server. One that failed because its
// connection could not prepare the statement (the table dropped behind
// the proxy) kept it, sent it ahead of the next EXECUTE, and the server
// took it for the parameter the client then sent inline. A raw client:
// PHP's mysqlnd resets a statement before executing it again.
func TestLongDataDroppedWithFailedExecute(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	backendSQL(t, b, "CREATE OR REPLACE TABLE sbtest.ld_drop (x INT); INSERT INTO sbtest.ld_drop VALUES (1)")
	m, _ := metaLogin(t, s.DataPort, true, false)
	id, _ := m.prepare("SELECT ? AS v, x FROM sbtest.ld_drop")
	execute := func(inline string) {
		p := []byte{wire.ComStmtExecute}
		p = binary.LittleEndian.AppendUint32(p, id)
		p = append(p, 0, 1, 0, 0, 0, 0, 1, wire.TypeVarString, 0)
		if inline != "" {
			p = append(append(p, byte(len(inline))), inline...)
		}
		m.send(p)
	}
	// The server leaves and comes back: the pool is emptied, and the
	// execute prepares the statement on a new connection, where the
	// table is gone.
	admin(t, s, "UPDATE mysql_servers SET status='OFFLINE_HARD'; LOAD MYSQL SERVERS TO RUNTIME; UPDATE mysql_servers SET status='ONLINE'; LOAD MYSQL SERVERS TO RUNTIME;")
	backendSQL(t, b, "DROP TABLE sbtest.ld_drop")
	ld := binary.LittleEndian.AppendUint32([]byte{wire.ComStmtSendLongData}, id)
	m.send(append(ld, 0, 0, 'L', 'O', 'N', 'G'))
	execute("")
	if p, err := m.c.ReadPacket(); err != nil || !wire.IsERR(p) {
		t.Fatalf("the execute on a dropped table: %v % x, want ERR 1146", err, p)
	}
	// The next execute goes to that connection again, where the statement
	// is prepared now.
	backendSQL(t, b, "CREATE TABLE sbtest.ld_drop (x INT); INSERT INTO sbtest.ld_drop VALUES (1)")
	execute("inline")
	r := m.readResult(2)
	if len(r.rows) != 1 || !bytes.Contains(r.rows[0], []byte("inline")) {
		t.Fatalf("the next execute, its parameter inline: rows % x", r.rows)
	}
}

// TestStaleStatementMetadataRefreshed: a table altered behind the proxy
// changes what a PREPARE of a cached text must answer. When a server
// prepares the statement again and its answer differs from the cached one,
// the cache entry goes and the next PREPARE asks a server (ProxySQL
// refreshes its global statement so). Before, once the connections that
// had the old statement were gone, every PREPARE answered the old columns
// for good, and every EXECUTE returned the new ones.
func TestStaleStatementMetadataRefreshed(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	backendSQL(t, b, "CREATE OR REPLACE TABLE sbtest.meta_t (a INT, b INT); INSERT INTO sbtest.meta_t VALUES (1, 2)")
	const q = "SELECT * FROM sbtest.meta_t WHERE a = ?"
	m, _ := metaLogin(t, s.DataPort, true, false)
	id, cols := m.prepare(q)
	if len(cols) != 2 {
		t.Fatalf("PREPARE: %d columns", len(cols))
	}
	backendSQL(t, b, "ALTER TABLE sbtest.meta_t DROP COLUMN b, ADD COLUMN c VARCHAR(10) DEFAULT 'new', ADD COLUMN d INT DEFAULT 4")
	// The connections that had the statement prepared go.
	admin(t, s, "UPDATE mysql_servers SET status='OFFLINE_HARD'; LOAD MYSQL SERVERS TO RUNTIME; UPDATE mysql_servers SET status='ONLINE'; LOAD MYSQL SERVERS TO RUNTIME;")
	if r := m.execute(id, 1, 3); len(r.rows) != 1 {
		t.Fatalf("EXECUTE after the ALTER: %d rows", len(r.rows))
	}
	m2, _ := metaLogin(t, s.DataPort, true, false)
	if _, cols := m2.prepare(q); len(cols) != 3 {
		t.Fatalf("a PREPARE after the ALTER answered %d columns, want the table's 3", len(cols))
	}
}
