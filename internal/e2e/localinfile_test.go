package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestLoadDataLocalInfile: LOAD DATA LOCAL INFILE through the proxy. Off
// (ProxySQL's default) the client gets ProxySQL's ERR 1047 and nothing is
// loaded, except for a fast_forward user (relayed, as in ProxySQL); on, the file streams from the client (mariadb CLI, go-sql-driver)
// to the server, whatever its size; a client that did not enable local
// files is refused; a client that goes away mid-file costs only its own
// backend connection.
func TestLoadDataLocalInfile(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.ldl_%d", time.Now().UnixNano())
	backendSQL(t, bs[0], fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(80))", table))
	defer backendSQL(t, bs[0], "DROP TABLE IF EXISTS "+table)
	count := func() string {
		return strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM "+table))
	}

	// 300 000 rows, about 20 MB: well over the proxy's buffers and over
	// one 16 MiB protocol packet.
	const rows = 300_000
	var file bytes.Buffer
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&file, "%d,row %d %s\n", i, i, strings.Repeat("x", 50))
	}
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	load := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ','", path, table)

	// Off: ProxySQL's error, nothing loaded, the session goes on.
	out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", load, "--local-infile=1")
	if err == nil || !strings.Contains(err.Error(), "ERROR 1047 (08S01)") ||
		!strings.Contains(err.Error(), "Unsupported 'LOAD DATA LOCAL INFILE' command") {
		t.Fatalf("LOAD DATA LOCAL with the variable off: %q, %v; want ERROR 1047 (08S01)", out, err)
	}
	if c := count(); c != "0" {
		t.Fatalf("%s rows loaded with the variable off", c)
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "multiStatements=true")
	mysql.RegisterReaderHandler("ldl", func() io.Reader { return strings.NewReader("1,a\n2,b\n") })
	defer mysql.DeregisterReaderHandler("ldl")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::ldl' INTO TABLE %s FIELDS TERMINATED BY ','; SELECT 1", table))
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1047 {
		t.Fatalf("multi-statement LOAD DATA LOCAL with the variable off: %v, want ERR 1047", err)
	}
	var one int
	if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the same connection after the refusal: %d, %v", one, err)
	}
	conn.Close()

	// A fast_forward user's packets are relayed, as ProxySQL relays them:
	// its LOAD DATA LOCAL works with the variable off.
	backendSQL(t, bs[0], "CREATE USER IF NOT EXISTS 'ffload'@'%' IDENTIFIED BY 'ffload'; GRANT ALL ON sbtest.* TO 'ffload'@'%'; GRANT RELOAD ON *.* TO 'ffload'@'%'")
	admin(t, s, "INSERT INTO mysql_users(username, password, default_hostgroup, fast_forward) VALUES ('ffload', 'ffload', 0, 1); LOAD MYSQL USERS TO RUNTIME")
	small := filepath.Join(t.TempDir(), "small.csv")
	if err := os.WriteFile(small, []byte("1,ff\n2,ff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.MustCLI(t, s.DataPort, "ffload", "ffload", fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ','", small, table), "--local-infile=1")
	if c := count(); c != "2" {
		t.Fatalf("fast_forward LOAD DATA LOCAL with the variable off: %s rows, want 2", c)
	}
	// So is its COM_REFRESH (mariadb-admin refresh, flush-threads).
	if out, err := exec.Command("mariadb-admin", "-h127.0.0.1", fmt.Sprintf("-P%d", s.DataPort), "-uffload", "-pffload", "flush-threads", "refresh").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-admin flush-threads refresh as a fast_forward user: %v\n%s", err, out)
	}
	backendSQL(t, bs[0], "TRUNCATE TABLE "+table)

	// On: a LOAD warns of nothing, and the file comes from the client.
	out = admin(t, s, "UPDATE global_variables SET variable_value='true' WHERE variable_name='mysql-enable_load_data_local_infile'; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("LOAD MYSQL VARIABLES with load_data_local_infile on warned: %q", out)
	}
	out = testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", load+"; SELECT COUNT(*), SUM(id) FROM "+table, "--local-infile=1", "-N")
	if want := fmt.Sprintf("%d\t%d", rows, rows*(rows+1)/2); strings.TrimSpace(out) != want {
		t.Fatalf("after loading %d rows through the CLI: %q, want %q", rows, out, want)
	}

	// A client without local files is told so, with the server's own
	// error (as directly); nothing is loaded.
	backendSQL(t, bs[0], "TRUNCATE TABLE "+table)
	out, err = testenv.CLI(t, s.DataPort, "sbtest", "sbtest", load, "--local-infile=0")
	_, derr := testenv.CLI(t, bs[0].Port, "sbtest", "sbtest", load, "--local-infile=0")
	if err == nil || derr == nil || !strings.Contains(err.Error(), "ERROR 4166 (HY000)") || err.Error() != derr.Error() {
		t.Fatalf("LOAD DATA LOCAL from a client without local files: %q, %v; directly %v, want the same ERROR 4166", out, err, derr)
	}
	if c := count(); c != "0" {
		t.Fatalf("%s rows loaded from a client without local files", c)
	}

	// go-sql-driver: a registered reader, then the rows are there.
	if _, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::ldl' INTO TABLE %s FIELDS TERMINATED BY ','", table)); err != nil {
		t.Fatalf("go-sql-driver LOAD DATA LOCAL: %v", err)
	}
	var v string
	if err := db.QueryRow("SELECT GROUP_CONCAT(v ORDER BY id) FROM " + table).Scan(&v); err != nil || v != "a,b" {
		t.Fatalf("rows after the go-sql-driver load: %q, %v", v, err)
	}

	// A client that stops mid-file and goes away: its LOAD is not
	// committed, and the proxy serves on.
	backendSQL(t, bs[0], "TRUNCATE TABLE "+table)
	pr, pw := io.Pipe()
	mysql.RegisterReaderHandler("stall", func() io.Reader { return pr })
	defer mysql.DeregisterReaderHandler("stall")
	go func() {
		_, _ = pw.Write([]byte("1,a\n2,b\n"))
		// Then nothing: the context below closes the client's socket
		// after a second, and the reader ends a second later.
	}()
	time.AfterFunc(2*time.Second, func() { pw.CloseWithError(errors.New("test: the client gave up")) })
	stallCtx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = db.ExecContext(stallCtx, fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::stall' INTO TABLE %s FIELDS TERMINATED BY ','", table))
	cancel()
	if err == nil {
		t.Fatal("a LOAD whose client went away mid-file succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		loading := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'LOAD DATA LOCAL%'"))
		if loading == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still runs the abandoned LOAD 10 s later (%s threads)", loading)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := count(); c != "0" {
		t.Fatalf("%s rows committed by the abandoned LOAD", c)
	}
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the proxy after an abandoned LOAD: %v", err)
	}
}
