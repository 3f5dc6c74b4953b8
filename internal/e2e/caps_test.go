package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestClientCapabilitiesFollow: the client capabilities that change what a
// server answers reach the backend connection that serves the client, and
// a connection opened with other ones never serves it. CLIENT_IGNORE_SPACE
// (MariaDB Connector/J sets it) puts IGNORE_SPACE in the session's
// sql_mode, so "COUNT (*)" parses; a client without
// CLIENT_PS_MULTI_RESULTS (PHP's mysqlnd, go-sql-driver) gets no
// OUT-parameter result set from a prepared CALL. Before, the first was
// dropped and the second always asked for, so Connector/J sessions failed
// with 1064 and PHP's next query after a CALL failed with 2014 "Commands out
// of sync".
func TestClientCapabilitiesFollow(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	testenv.MustCLI(t, b.Port, "root", "test", `CREATE TABLE IF NOT EXISTS sbtest.caps (id INT PRIMARY KEY, v VARCHAR(10));
		REPLACE INTO sbtest.caps VALUES (1, 'one');
		DROP PROCEDURE IF EXISTS sbtest.caps_out;
		CREATE PROCEDURE sbtest.caps_out(IN i INT, OUT o VARCHAR(10)) SELECT v INTO o FROM sbtest.caps WHERE id = i`)
	connect := func(caps uint32) *client.Conn {
		t.Helper()
		return sbtestConn(t, s.DataPort, func(c *client.Conn) error {
			if caps != 0 {
				return c.SetCapability(caps)
			}
			return nil
		})
	}
	const spaced = "SELECT COUNT (*) FROM sbtest.caps"
	plain := connect(0)
	spacey := connect(mysql.CLIENT_IGNORE_SPACE)
	// Interleaved, so that a pooled connection could serve either.
	for i := 0; i < 3; i++ {
		if _, err := plain.Execute(spaced); err == nil || !strings.Contains(err.Error(), "1064") {
			t.Fatalf("%q without CLIENT_IGNORE_SPACE: %v, want ERR 1064 as from the server", spaced, err)
		}
		r, err := spacey.Execute("SELECT COUNT (*), @@sql_mode LIKE '%IGNORE_SPACE%' FROM sbtest.caps")
		if err != nil {
			t.Fatalf("%q with CLIENT_IGNORE_SPACE: %v", spaced, err)
		}
		if n, _ := r.GetInt(0, 1); n != 1 {
			t.Fatalf("a CLIENT_IGNORE_SPACE session's sql_mode lacks IGNORE_SPACE")
		}
		r.Close()
	}

	php := func(port int) string {
		t.Helper()
		out, err := runPHP(t, "callout.php", fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$m = new mysqli('127.0.0.1', 'sbtest', 'sbtest', 'sbtest', %d);
$i = 1; $o = '';
$st = $m->prepare('CALL caps_out(?, ?)');
$st->bind_param('is', $i, $o);
$st->execute();
echo "call: fields ", $st->field_count, "\n";
$st->close();
echo "next: ", $m->query("SELECT 'next'")->fetch_row()[0], "\n";
`, port))
		if err != nil {
			t.Fatalf("php: %v\n%s", err, out)
		}
		return string(out)
	}
	direct, proxied := php(b.Port), php(s.DataPort)
	if want := "call: fields 0\nnext: next\n"; direct != want {
		t.Fatalf("PHP's prepared CALL with an OUT parameter, directly:\n%s\nthe test expects\n%s", direct, want)
	}
	if proxied != direct {
		t.Fatalf("PHP's prepared CALL with an OUT parameter through Sluice printed\n%s\ndirectly\n%s", proxied, direct)
	}
}
