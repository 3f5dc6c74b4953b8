package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// seedWalkthrough starts sluice and runs the seed admin script against 3
// real MariaDB servers: hostgroup 1 = backend 1, hostgroup 2 = backends 2
// and 3; user root is stored only as its *HEX hash.
func seedWalkthrough(t *testing.T) (*testenv.Sluice, []testenv.Backend) {
	t.Helper()
	bs := testenv.Backends(t, 3)
	s := startFresh(t, "")
	admin(t, s, seedScript(bs...))
	return s, bs
}

// backendSQL runs SQL directly on a backend as root.
func backendSQL(t *testing.T, b testenv.Backend, sql string) string {
	t.Helper()
	return testenv.MustCLI(t, b.Port, "root", "test", sql, "-N")
}

func TestSeedWalkthroughDataPlane(t *testing.T) {
	s, bs := seedWalkthrough(t)
	table := fmt.Sprintf("sbtest.seed_%d", time.Now().UnixNano())
	for _, b := range bs {
		backendSQL(t, b, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20))", table))
	}
	defer func() {
		for _, b := range bs {
			backendSQL(t, b, "DROP TABLE IF EXISTS "+table)
		}
	}()

	// Every query runs on hostgroup 1 (backend 1): the rule sends '.' there.
	for i := 0; i < 5; i++ {
		out := testenv.MustCLI(t, s.DataPort, "root", "test", "SELECT @@port", "-N")
		if strings.TrimSpace(out) != fmt.Sprint(bs[0].Port) {
			t.Fatalf("SELECT @@port through sluice = %q, want %d (hostgroup 1)", out, bs[0].Port)
		}
	}
	testenv.MustCLI(t, s.DataPort, "root", "test", fmt.Sprintf("INSERT INTO %s (v) VALUES ('mirrored')", table))

	// The INSERT ran on backend 1, and the mirror applied it on exactly one
	// of the hostgroup-2 servers.
	count := func(b testenv.Backend) string {
		return strings.TrimSpace(backendSQL(t, b, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE v='mirrored'", table)))
	}
	if c := count(bs[0]); c != "1" {
		t.Errorf("backend 1 (hostgroup 1) has %s rows, want 1", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c2, c3 := count(bs[1]), count(bs[2])
		if c2+c3 == "10" || c2+c3 == "01" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror: hostgroup-2 servers have %s and %s rows, want exactly one copy", c2, c3)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A statement prepared on a backend is logged with that backend (it
	// used to be logged as if the cache had answered: hostgroup -1).
	db := testenv.DB(t, s.DataPort, "root", "test", "", "")
	var port int
	if err := db.QueryRow("SELECT @@port + ?", 0).Scan(&port); err != nil || port != bs[0].Port {
		t.Fatalf("prepared SELECT @@port: %d %v", port, err)
	}

	// The events log: one JSON object per query with ProxySQL's keys.
	logPath := filepath.Join(s.Datadir, "proxysql_queries.log.00000001")
	var events []map[string]any
	deadline = time.Now().Add(5 * time.Second)
	for {
		// Wait for the events checked below, not for a count: the writer is
		// asynchronous and a client may add queries of its own.
		events = readEvents(t, logPath)
		n := 0
		for _, e := range events {
			if q, _ := e["query"].(string); q == "SELECT @@port" || strings.HasPrefix(q, "INSERT INTO") || q == "SELECT @@port + ?" {
				n++
			}
		}
		if n >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var selects, inserts, prepares int
	for _, e := range events {
		for _, k := range []string{"hostgroup_id", "thread_id", "event", "username", "schemaname", "client", "query",
			"starttime_timestamp_us", "endtime_timestamp_us", "starttime", "endtime", "duration_us", "digest"} {
			if _, ok := e[k]; !ok {
				t.Errorf("event lacks %q: %v", k, e)
			}
		}
		q, _ := e["query"].(string)
		switch {
		case q == "SELECT @@port":
			selects++
			if e["hostgroup_id"] != float64(1) || e["server"] != bs[0].Addr() || e["username"] != "root" || e["event"] != "COM_QUERY" {
				t.Errorf("SELECT event: %v", e)
			}
			if _, ok := e["rows_sent"]; !ok {
				t.Errorf("SELECT event lacks rows_sent: %v", e)
			}
		case q == "SELECT @@port + ?" && e["event"] == "COM_STMT_PREPARE":
			prepares++
			if e["hostgroup_id"] != float64(1) || e["server"] != bs[0].Addr() {
				t.Errorf("PREPARE event: %v, want hostgroup 1 on %s", e, bs[0].Addr())
			}
		case strings.HasPrefix(q, "INSERT INTO"):
			inserts++
			if e["rows_affected"] != float64(1) || e["last_insert_id"] == nil {
				t.Errorf("INSERT event: %v", e)
			}
		}
	}
	if selects != 5 || inserts != 1 || prepares != 1 {
		t.Errorf("events log has %d SELECT @@port, %d INSERT and %d PREPARE events, want 5, 1 and 1:\n%v", selects, inserts, prepares, events)
	}
}

func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("events log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestUnixSocketBackend: a mysql_servers row with port 0 names a Unix
// socket, as in ProxySQL (its sample proxysql.cnf lists
// /var/lib/mysql/mysql.sock that way). Text and prepared queries and a
// write go through it, and the monitor pings it there.
func TestUnixSocketBackend(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	sock := strings.TrimSpace(backendSQL(t, b, "SELECT @@socket"))
	s := startIn(t, t.TempDir(), fmt.Sprintf(`mysql_servers = ( { address = "%s", port = 0, hostgroup = 0 } )
mysql_users = ( { username = "sbtest", password = "sbtest", default_hostgroup = 0 } )`, sock), true)
	admin(t, s, "SET mysql-monitor_ping_interval=300; LOAD MYSQL VARIABLES TO RUNTIME")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	var port int
	var socket string
	if err := db.QueryRow("SELECT @@port, @@socket").Scan(&port, &socket); err != nil || port != b.Port || socket != sock {
		t.Fatalf("through the socket backend: port %d socket %q err %v, want %d %q", port, socket, err, b.Port, sock)
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS unix_backend (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendSQL(t, b, "DROP TABLE IF EXISTS sbtest.unix_backend") })
	if _, err := db.Exec("REPLACE INTO unix_backend VALUES (?)", 7); err != nil { // prepared
		t.Fatal(err)
	}
	if got := backendSQL(t, b, "SELECT id FROM sbtest.unix_backend"); got != "7\n" {
		t.Fatalf("row written through the socket backend: %q", got)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_ping_log WHERE hostname='%s' AND port=0 AND ping_error IS NULL", sock))
		if out != "0\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful monitor ping of %s in 15 s:\n%s\n%s", sock, admin(t, s, "SELECT * FROM monitor.mysql_server_ping_log"), s.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if row := adminRows(t, s, "SELECT srv_host, srv_port, status, ConnERR FROM stats_mysql_connection_pool"); len(row) != 1 || row[0][0] != sock || row[0][1] != "0" || row[0][2] != "ONLINE" || row[0][3] != "0" {
		t.Errorf("stats_mysql_connection_pool: %v", row)
	}
}
