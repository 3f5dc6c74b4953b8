package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestCompressedProtocol: the compressed protocol (CLIENT_COMPRESS) on
// both sides, with real clients and a real server. The client side is
// offered by mysql-have_compress (on by default, as ProxySQL); the server
// side is asked for by mysql_servers.compression=1, which the server
// confirms itself (its Compression status variable). Each side works
// without the other, what crosses the client's link is really compressed,
// and big packets (a 17 MB row, a 17 MB query: each spans two protocol
// packets) arrive byte for byte.
func TestCompressedProtocol(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	// Hostgroup 0 reaches the server compressed, hostgroup 1 does not.
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers(hostgroup_id, hostname, port, compression) VALUES (0, '%[1]s', %[2]d, 1), (1, '%[1]s', %[2]d, 0);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0);
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', 'test', 1);
		LOAD MYSQL USERS TO RUNTIME;`, b.Host, b.Port))
	if out := admin(t, s, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-have_compress'"); !strings.Contains(out, "true") {
		t.Fatalf("mysql-have_compress default: %q, want true", out)
	}
	relay := testenv.NewRelay(t, fmt.Sprintf("127.0.0.1:%d", s.DataPort))
	// sent runs the CLI through the relay and returns its output and the
	// bytes the proxy sent it.
	sent := func(user, pass, q string, args ...string) (string, int64) {
		t.Helper()
		before := relay.BytesToClient()
		out := testenv.MustCLI(t, relay.Port(), user, pass, q, append([]string{"-N"}, args...)...)
		time.Sleep(50 * time.Millisecond) // the relay's copy ends after the CLI's last read
		return out, relay.BytesToClient() - before
	}
	const mb2 = "SHOW SESSION STATUS LIKE 'Compression'; SELECT LENGTH(x), MD5(x) FROM (SELECT 1) d JOIN (SELECT REPEAT('abcdef', 333334) x) t; SELECT REPEAT('abcdef', 333334)"

	// Both sides compressed.
	out, n := sent("sbtest", "sbtest", mb2, "--compress")
	if !strings.HasPrefix(out, "Compression\tON\n2000004\t") {
		t.Fatalf("compressed client, compression=1 server:\n%.200s", out)
	}
	if n > 200_000 {
		t.Fatalf("a 2 MB compressible row cost the compressed client %d bytes", n)
	}
	t.Logf("compressed client, compressed server: 2 MB row in %d bytes", n)
	plainOut, plainN := sent("sbtest", "sbtest", mb2)
	if plainOut != out || plainN < 2_000_000 {
		t.Fatalf("uncompressed client: %d bytes, same output %v", plainN, plainOut == out)
	}
	// Only the client compressed; only the server.
	if out, n := sent("root", "test", mb2, "--compress"); !strings.HasPrefix(out, "Compression\tOFF\n2000004\t") || n > 200_000 {
		t.Fatalf("compressed client, compression=0 server (%d bytes):\n%.200s", n, out)
	}
	if out, n := sent("sbtest", "sbtest", "SHOW SESSION STATUS LIKE 'Compression'"); out != "Compression\tON\n" || n > 1000 {
		t.Fatalf("plain client, compression=1 server: %q", out)
	}

	// Big packets: a 17 MB row (above 16 MiB, so two protocol packets,
	// and hundreds of compressed ones) with 165 kB of random-looking text
	// through both compressed sides, and a 1 MB one through each side
	// alone, against the same rows from the server directly. (Each 17 MB
	// costs seconds under the race detector.)
	const big = "SELECT CONCAT(REPEAT(MD5('x'), 530000), (SELECT GROUP_CONCAT(MD5(seq)) FROM sbtest.seq_1_to_5000))"
	const mid = "SELECT CONCAT(REPEAT(MD5('y'), 25000), (SELECT GROUP_CONCAT(MD5(seq)) FROM sbtest.seq_1_to_5000))"
	sum := func(q string, port int, user, pass string, args ...string) [32]byte {
		t.Helper()
		out := testenv.MustCLI(t, port, user, pass, q, append([]string{"-N", "--max-allowed-packet=64M"}, args...)...)
		if len(out) < 900_000 {
			t.Fatalf("big row: %d bytes", len(out))
		}
		return sha256.Sum256([]byte(out))
	}
	for _, c := range []struct {
		q          string
		user, pass string
		args       []string
	}{{big, "sbtest", "sbtest", []string{"--compress"}}, {mid, "root", "test", []string{"--compress"}}, {mid, "sbtest", "sbtest", nil}} {
		if got := sum(c.q, s.DataPort, c.user, c.pass, c.args...); got != sum(c.q, b.Port, "root", "test") {
			t.Fatalf("%.40s… through the proxy (%s %v) differs from the server's", c.q, c.user, c.args)
		}
	}
	// go-sql-driver/mysql with compress=true: a 2 MB query (text and
	// prepared: the 17 MB row above already crossed packet boundaries), a
	// transaction, a multi-row result.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, params := range []string{"compress=true&interpolateParams=true", "compress=true"} {
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", params)
		db.SetMaxOpenConns(2)
		arg := strings.Repeat("0123456789abcdef", 2_000_000/16)
		var sha string
		if err := db.QueryRowContext(ctx, "SELECT SHA2(?, 256)", arg).Scan(&sha); err != nil {
			t.Fatalf("%s: %d-byte argument: %v", params, len(arg), err)
		}
		if want := fmt.Sprintf("%x", sha256.Sum256([]byte(arg))); sha != want {
			t.Fatalf("%s: the server hashed something else", params)
		}
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS zcomp (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB"); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM zcomp"); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, err := tx.ExecContext(ctx, "INSERT INTO zcomp VALUES (?, ?)", i, strings.Repeat(fmt.Sprint(i), 100)); err != nil {
				t.Fatalf("%s: insert %d: %v", params, i, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT id, v FROM zcomp WHERE id >= ? ORDER BY id", 0)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for rows.Next() {
			var id int
			var v string
			if err := rows.Scan(&id, &v); err != nil || v != strings.Repeat(fmt.Sprint(id), 100) || id != got {
				t.Fatalf("%s: row %d: %d %.20q %v", params, got, id, v, err)
			}
			got++
		}
		if err := rows.Err(); err != nil || got != 50 {
			t.Fatalf("%s: %d rows, %v", params, got, err)
		}
		rows.Close()
	}

	// PHP's PDO (mysqlnd) with PDO::MYSQL_ATTR_COMPRESS.
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=php)")
	}
	script := filepath.Join(t.TempDir(), "z.php")
	php := fmt.Sprintf(`<?php
$db = new PDO("mysql:host=127.0.0.1;port=%d;dbname=sbtest", "sbtest", "sbtest",
	[PDO::MYSQL_ATTR_COMPRESS => true, PDO::ATTR_EMULATE_PREPARES => false, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$st = $db->prepare("SELECT COUNT(*), MAX(LENGTH(v)) FROM zcomp WHERE id < ?"); $st->execute([150]);
echo implode(" ", $st->fetch(PDO::FETCH_NUM)), "\n";
echo $db->query("SHOW SESSION STATUS LIKE 'Compression'")->fetch(PDO::FETCH_NUM)[1], "\n";
echo strlen($db->query("SELECT REPEAT('p', 3000000)")->fetchColumn()), "\n";
`, relay.Port())
	if err := os.WriteFile(script, []byte(php), 0o644); err != nil {
		t.Fatal(err)
	}
	before := relay.BytesToClient()
	pout, err := exec.CommandContext(ctx, "php", script).CombinedOutput()
	if err != nil || string(pout) != "50 200\nON\n3000000\n" {
		t.Fatalf("PDO with compression: %v\n%s", err, pout)
	}
	time.Sleep(50 * time.Millisecond)
	if n := relay.BytesToClient() - before; n > 200_000 {
		t.Fatalf("PDO's compressed session received %d bytes for a 3 MB row", n)
	}

	// mysql-have_compress=false: the offer is gone, the client that asks
	// works uncompressed. The admin port takes compressed clients.
	admin(t, s, "SET mysql-have_compress='false'; LOAD MYSQL VARIABLES TO RUNTIME")
	if out, n := sent("sbtest", "sbtest", mb2, "--compress"); out != plainOut || n < 2_000_000 {
		t.Fatalf("have_compress=false: %d bytes, same output %v", n, out == plainOut)
	}
	if out := testenv.MustCLI(t, s.AdminPort, "admin", "admin", "SELECT COUNT(*) FROM global_variables WHERE variable_name='mysql-have_compress'", "-N", "--compress"); out != "1\n" {
		t.Fatalf("compressed admin session: %q", out)
	}
}

// TestThrottleToClient: mysql-throttle_max_bytes_per_second_to_client
// holds what a session sends to its client to that rate, read by each
// command from the runtime (a LOAD applies to open sessions from their
// next command); the server is not read faster than the client is
// written (the result streams through two 16 KiB buffers).
func TestThrottleToClient(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	fetch := func() time.Duration {
		t.Helper()
		start := time.Now()
		var v string
		if err := db.QueryRowContext(ctx, "SELECT REPEAT(MD5(RAND()), 75000)").Scan(&v); err != nil || len(v) != 2_400_000 {
			t.Fatalf("2.4 MB row: %d bytes, %v", len(v), err)
		}
		return time.Since(start)
	}
	free := fetch()
	// Both throttle variables load without a warning (the ratio is met by
	// streaming: nothing is buffered beyond 16 KiB per side).
	if out := testenv.MustCLI(t, s.AdminPort, "admin", "admin", `SET mysql-throttle_max_bytes_per_second_to_client=1000000;
		SET mysql-throttle_ratio_server_to_client=2; LOAD MYSQL VARIABLES TO RUNTIME`, "-N", "--show-warnings"); strings.Contains(out, "Warning") {
		t.Fatalf("LOAD of the throttle variables: %q", out)
	}
	// The session is open (one connection, reused): the limit reaches it
	// at its next command. 2.4 MB at 1 MB/s: 2.3 s at least (the first
	// window's 100 kB go at once).
	limited := fetch()
	if limited < 2300*time.Millisecond {
		t.Fatalf("2.4 MB at 1 MB/s took %v", limited)
	}
	admin(t, s, "SET mysql-throttle_max_bytes_per_second_to_client=0; LOAD MYSQL VARIABLES TO RUNTIME")
	again := fetch()
	t.Logf("2.4 MB row: %v unlimited, %v at 1 MB/s, %v after the limit was lifted", free, limited, again)
}
