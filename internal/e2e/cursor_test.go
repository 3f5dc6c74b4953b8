package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestServerSideCursor: PHP mysqli with a read-only cursor
// (MYSQLI_STMT_ATTR_CURSOR_TYPE) through read/write rules. The execute
// opens a cursor on the reader and answers with the column definitions and
// one terminator carrying SERVER_STATUS_CURSOR_EXISTS; the rows come one
// COM_STMT_FETCH at a time from the connection holding the cursor. Before
// the fix the client got an extra EOF, read an empty result set and never
// fetched: 0 rows. While the cursor is open its connection stays with the
// session (another query runs there meanwhile); once the last row is sent
// the server has closed it and the connection goes back to the pool.
func TestServerSideCursor(t *testing.T) {
	table := "CREATE TABLE IF NOT EXISTS sbtest.cur (id INT PRIMARY KEY, v VARCHAR(20)); TRUNCATE sbtest.cur"
	s, bs := rwSplit(t, table, "")
	// The reader holds 50 rows, the writer 3: the count tells where a read ran.
	backendSQL(t, bs[1], "INSERT INTO sbtest.cur SELECT seq, CONCAT('r', seq) FROM sbtest.seq_1_to_50")
	backendSQL(t, bs[0], "INSERT INTO sbtest.cur SELECT seq, CONCAT('w', seq) FROM sbtest.seq_1_to_3")
	php := fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli("127.0.0.1", "sbtest", "sbtest", "sbtest", %d);
$adm = new mysqli("127.0.0.1", "admin", "admin", "", %d);
function used($adm) { return $adm->query("SELECT COALESCE(SUM(ConnUsed), 0) FROM stats_mysql_connection_pool")->fetch_row()[0]; }
$st = $db->prepare("SELECT id, v FROM cur WHERE id > ? ORDER BY id");
$st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
$from = 0;
$st->bind_param("i", $from);
for ($round = 0; $round < 3; $round++) {
	$st->execute();
	$st->bind_result($id, $v);
	$n = 0; $last = "";
	while ($st->fetch()) { $n++; $last = $v; }
	echo "round $round: $n rows, last $last, used ", used($adm), "\n";
}
$st->execute();
$st->bind_result($id, $v);
$st->fetch();
echo "open after 1 row: used ", used($adm), "\n";
$mid = $db->query("SELECT COUNT(*) FROM cur")->fetch_row()[0];
$ins = $db->query("INSERT INTO cur VALUES (100, 'w100')");
$n = 1;
while ($st->fetch()) $n++;
echo "interleaved: mid count $mid, $n rows\n";
$st->close();
echo "closed: used ", used($adm), "\n";
// A statement re-executed with its cursor half read: the server closes
// the old cursor; the new one starts from the first row.
$st = $db->prepare("SELECT v FROM cur ORDER BY id");
$st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
$st->execute(); $st->bind_result($v); $st->fetch(); $st->fetch();
$st->execute(); $st->bind_result($v); $st->fetch();
echo "re-executed: first $v\n";
$st->close();
// Two cursors open at once on one connection: the first read to its end
// must not give the connection back while the second is open (its fetch
// used to hang).
$a = $db->prepare("SELECT v FROM cur WHERE id <= 3 ORDER BY id");
$a->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
$b = $db->prepare("SELECT v FROM cur WHERE id > 47 ORDER BY id");
$b->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
$a->execute(); $b->execute();
$ra = []; $a->bind_result($va); while ($a->fetch()) $ra[] = $va;
$rb = []; $b->bind_result($vb); while ($b->fetch()) $rb[] = $vb;
echo "two cursors: ", implode(",", $ra), " / ", implode(",", $rb), "\n";
$a->close(); $b->close();
echo "end: used ", used($adm), "\n";
`, s.DataPort, s.AdminPort)
	out, err := runPHP(t, "cursor.php", php)
	if err != nil {
		t.Fatalf("PHP mysqli cursor: %s %v", out, err)
	}
	want := []string{
		"round 0: 50 rows, last r50, used 0",
		"round 1: 50 rows, last r50, used 0",
		"round 2: 50 rows, last r50, used 0",
		"open after 1 row: used 1",
		"interleaved: mid count 50, 50 rows",
		"closed: used 0",
		"re-executed: first r1",
		"two cursors: r1,r2,r3 / r48,r49,r50",
		"end: used 0",
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Fatalf("PHP mysqli cursor through read/write rules:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if got := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM sbtest.cur")); got != "4" {
		t.Fatalf("the INSERT between fetches must run on the writer: writer has %s rows, want 4", got)
	}
	t.Logf("PHP mysqli read-only cursor: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
}
