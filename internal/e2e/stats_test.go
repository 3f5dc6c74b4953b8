package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// sluiceDigest runs `sluice digest` on a query: the hash and text the stats
// tables must show for it.
func sluiceDigest(t *testing.T, q string) (hash, text string) {
	t.Helper()
	out, err := exec.Command(testenv.Binary(t), "digest", q).Output()
	if err != nil {
		t.Fatalf("sluice digest: %v", err)
	}
	hash, text, ok := strings.Cut(strings.TrimRight(string(out), "\n"), "\t")
	if !ok {
		t.Fatalf("sluice digest output %q", out)
	}
	return hash, text
}

// adminRows runs one admin query and splits the batch output into rows of
// tab-separated fields.
func adminRows(t *testing.T, s *testenv.Sluice, q string) [][]string {
	t.Helper()
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(admin(t, s, q), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

func adminInt(t *testing.T, s *testenv.Sluice, q string) int64 {
	t.Helper()
	out := strings.TrimSpace(admin(t, s, q))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", q, out)
	}
	return n
}

// TestStatsTables runs queries through the data port with the mariadb CLI
// and go-sql-driver/mysql and reads ProxySQL's live tables on the admin
// port: digests, connection pool, processlist, global counters, command
// counters, users, rule hits, runtime_mysql_servers' live status, and the
// _reset and TRUNCATE semantics.
func TestStatsTables(t *testing.T) {
	s, b := multiplexSetup(t, 10, `
		SET mysql-connect_timeout_server_max=1500;
		SET mysql-shun_recovery_time_sec=60;
		SET mysql-connect_retries_on_failure=1000;
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_query_rules(rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, '^SELECT 4242', 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	const q = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'mysql'"
	hash, text := sluiceDigest(t, q)

	// Three through the CLI, two through the driver, then a prepared one.
	testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", q+"; "+q+"; "+q+"; SET NAMES utf8mb4")
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 1 {
			t.Fatalf("query through sluice: %v (n=%d)", err, n)
		}
	}
	var sum int
	if err := db.QueryRowContext(ctx, "SELECT ? + 1", 41).Scan(&sum); err != nil || sum != 42 {
		t.Fatalf("prepared statement: %v (%d)", err, sum)
	}

	t.Run("query_digest", func(t *testing.T) {
		rows := adminRows(t, s, fmt.Sprintf(`SELECT hostgroup, schemaname, username, client_address, digest, count_star,
			sum_time >= min_time, max_time >= min_time, last_seen >= first_seen, sum_rows_sent
			FROM stats_mysql_query_digest WHERE digest_text = '%s'`, strings.ReplaceAll(text, "'", "''")))
		want := []string{"0", "information_schema", "sbtest", "", hash, "5", "1", "1", "1", "5"}
		if len(rows) != 1 || strings.Join(rows[0], "|") != strings.Join(want, "|") {
			t.Fatalf("digest rows %q, want one row %q", rows, want)
		}
		// The tracked SET is answered by the proxy: hostgroup -1, no backend time.
		rows = adminRows(t, s, "SELECT hostgroup, count_star, sum_time FROM stats_mysql_query_digest WHERE digest_text = 'SET NAMES utf8mb4'")
		if len(rows) != 1 || rows[0][0] != "-1" || rows[0][1] != "1" {
			t.Fatalf("SET NAMES rows %q, want hostgroup -1 count 1", rows)
		}
		if us, _ := strconv.Atoi(rows[0][2]); us > 20000 {
			t.Errorf("SET NAMES answered locally took %d µs", us)
		}
		// COM_STMT_EXECUTE is counted under the statement's digest.
		_, ptext := sluiceDigest(t, "SELECT ? + 1")
		if n := adminInt(t, s, fmt.Sprintf("SELECT count_star FROM stats_mysql_query_digest WHERE hostgroup = 0 AND digest_text = '%s'", ptext)); n != 1 {
			t.Errorf("prepared statement executions counted %d, want 1", n)
		}
		if n := adminInt(t, s, "SELECT Variable_Value FROM stats_memory_metrics WHERE Variable_Name = 'query_digest_memory'"); n <= 0 {
			t.Errorf("query_digest_memory = %d", n)
		}
	})

	t.Run("connection_pool", func(t *testing.T) {
		rows := adminRows(t, s, fmt.Sprintf(`SELECT status, ConnUsed, ConnFree, ConnOK, Queries, Bytes_data_sent > 0, Bytes_data_recv > 0
			FROM stats_mysql_connection_pool WHERE hostgroup = 0 AND srv_host = '%s' AND srv_port = %d`, b.Host, b.Port))
		if len(rows) != 1 {
			t.Fatalf("pool rows %q", rows)
		}
		r := rows[0]
		used, _ := strconv.Atoi(r[1])
		free, _ := strconv.Atoi(r[2])
		ok, _ := strconv.Atoi(r[3])
		queries, _ := strconv.Atoi(r[4])
		if r[0] != "ONLINE" || used != 0 || free < 1 || ok < 1 || queries < 6 || r[5] != "1" || r[6] != "1" {
			t.Fatalf("pool row %q: want ONLINE, nothing in use, >=1 free, >=6 queries (5 text, 1 prepared), bytes both ways", r)
		}
	})

	t.Run("commands_users_rules", func(t *testing.T) {
		if n := adminInt(t, s, "SELECT Total_cnt FROM stats_mysql_commands_counters WHERE Command = 'SELECT'"); n < 6 {
			t.Errorf("SELECT Total_cnt = %d, want >= 6", n)
		}
		if n := adminInt(t, s, "SELECT Total_cnt FROM stats_mysql_commands_counters WHERE Command = 'SET'"); n < 1 {
			t.Errorf("SET Total_cnt = %d", n)
		}
		if n := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_commands_counters"); n < 50 {
			t.Errorf("%d command rows, want every command", n)
		}
		rows := adminRows(t, s, "SELECT username, frontend_connections, frontend_max_connections FROM stats_mysql_users ORDER BY username")
		if len(rows) != 2 || strings.Join(rows[1], "|") != "sbtest|1|10000" {
			t.Errorf("stats_mysql_users %q, want root and sbtest with the driver's one connection", rows)
		}
		if rows := adminRows(t, s, "SELECT rule_id, hits FROM stats_mysql_query_rules"); len(rows) != 1 || rows[0][0] != "1" || rows[0][1] != "0" {
			t.Errorf("stats_mysql_query_rules %q, want rule 1 with no hits yet", rows)
		}
	})

	t.Run("processlist", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			var n int
			done <- db.QueryRowContext(ctx, "SELECT SLEEP(2)").Scan(&n)
		}()
		var row []string
		deadline := time.Now().Add(1500 * time.Millisecond)
		for row == nil && time.Now().Before(deadline) {
			rows := adminRows(t, s, "SELECT SessionID, user, cli_host, command, hostgroup, srv_host, srv_port, info, time_ms FROM stats_mysql_processlist WHERE info LIKE 'SELECT SLEEP%'")
			if len(rows) == 1 {
				row = rows[0]
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if row == nil {
			t.Fatal("the running SELECT SLEEP(2) never showed in stats_mysql_processlist")
		}
		want := []string{"sbtest", "127.0.0.1", "Query", "0", b.Host, strconv.Itoa(b.Port), "SELECT SLEEP(2)"}
		if strings.Join(row[1:8], "|") != strings.Join(want, "|") {
			t.Errorf("processlist row %q, want %q", row, want)
		}
		show := admin(t, s, "SHOW PROCESSLIST")
		if !strings.Contains(show, row[0]+"\tsbtest\t") || !strings.Contains(show, "SELECT SLEEP(2)") {
			t.Errorf("SHOW PROCESSLIST:\n%s", show)
		}
		if full := admin(t, s, "SHOW FULL PROCESSLIST"); !strings.Contains(full, "SELECT SLEEP(2)") {
			t.Errorf("SHOW FULL PROCESSLIST:\n%s", full)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Idle now: still listed, as Sleep, without info.
		rows := adminRows(t, s, "SELECT command, info IS NULL FROM stats_mysql_processlist WHERE SessionID = "+row[0])
		if len(rows) != 1 || rows[0][0] != "Sleep" || rows[0][1] != "1" {
			t.Errorf("idle session row %q, want Sleep with NULL info", rows)
		}
	})

	t.Run("global", func(t *testing.T) {
		get := func(name string) int64 {
			return adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = '"+name+"'")
		}
		q1, in1, out1 := get("Questions"), get("Queries_frontends_bytes_recv"), get("Queries_frontends_bytes_sent")
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", q)
		if q2 := get("Questions"); q2 != q1+1 { // the batch-mode CLI sends q only
			t.Errorf("Questions went from %d to %d", q1, q2)
		}
		// As ProxySQL: SELECT @@<status variable> reads stats_mysql_global.
		if v := adminInt(t, s, "SELECT @@questions"); v != q1+1 {
			t.Errorf("SELECT @@questions = %d, want %d", v, q1+1)
		}
		if got := admin(t, s, "SELECT @@questions, @@mysql-threads"); got != fmt.Sprintf("%d\t4\n", q1+1) {
			t.Errorf("SELECT @@questions, @@mysql-threads = %q", got)
		}
		// A prepared statement's PREPARE and CLOSE are questions too, as
		// ProxySQL counts them: prepare, two executes, close = 4.
		pdb := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
		pdb.SetMaxOpenConns(1)
		if err := pdb.Ping(); err != nil {
			t.Fatal(err)
		}
		qp := get("Questions")
		ps, err := pdb.Prepare("SELECT ?")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			var v int
			if err := ps.QueryRow(i).Scan(&v); err != nil {
				t.Fatal(err)
			}
		}
		ps.Close() // COM_STMT_CLOSE has no answer: wait for it to be counted
		for deadline := time.Now().Add(3 * time.Second); get("Questions") < qp+4 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if v := get("Questions"); v != qp+4 {
			t.Errorf("Questions went from %d to %d over a prepare, two executes and a close, want +4", qp, v)
		}
		pdb.Close()
		// The CLI's query and its login went in, the result and the
		// handshake came out: more than the query text each way.
		if in2, out2 := get("Queries_frontends_bytes_recv"), get("Queries_frontends_bytes_sent"); in2-in1 < int64(len(q)) || out2-out1 < int64(len(q)) {
			t.Errorf("Queries_frontends_bytes_recv %d → %d, _sent %d → %d", in1, in2, out1, out2)
		}
		if _, err := testenv.CLI(t, s.DataPort, "sbtest", "wrong", "SELECT 1"); err == nil {
			t.Fatal("a wrong password logged in")
		}
		for name, min := range map[string]int64{"Access_Denied_Wrong_Password": 1, "Client_Connections_created": 4,
			"Client_Connections_aborted": 1, "Client_Connections_connected": 1, "ConnPool_get_conn_success": 6,
			"Com_frontend_stmt_prepare": 1, "Com_frontend_stmt_execute": 1, "Server_Connections_created": 1,
			"Servers_table_version": 1, "ProxySQL_Uptime": 0} {
			if v := get(name); v < min {
				t.Errorf("%s = %d, want >= %d", name, v, min)
			}
		}
		// A transaction gets its connection from the pool once: its
		// statements on it are no pool gets (as in ProxySQL; each used to
		// count as ConnPool_get_conn_immediate).
		succ, imm := get("ConnPool_get_conn_success"), get("ConnPool_get_conn_immediate")
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "BEGIN; SELECT 1; SELECT 2; SELECT 3; COMMIT")
		if v, w := get("ConnPool_get_conn_success"), get("ConnPool_get_conn_immediate"); v != succ+1 || w != imm {
			t.Errorf("a transaction of three SELECTs: ConnPool_get_conn_success %d → %d (want +1), _immediate %d → %d (want +0)", succ, v, imm, w)
		}
		// Bringing a pooled connection to a session's schema and
		// character set, and to another user, is counted.
		initDB, setNames, changeUser := get("Com_backend_init_db"), get("Com_backend_set_names"), get("Com_backend_change_user")
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "USE mysql; SELECT 1; SET NAMES latin1; SELECT 2")
		testenv.MustCLI(t, s.DataPort, "root", "test", "SELECT 3")
		if v := get("Com_backend_init_db"); v <= initDB {
			t.Errorf("Com_backend_init_db %d → %d after a USE", initDB, v)
		}
		if v := get("Com_backend_set_names"); v <= setNames {
			t.Errorf("Com_backend_set_names %d → %d after SET NAMES", setNames, v)
		}
		if v := get("Com_backend_change_user"); v <= changeUser {
			t.Errorf("Com_backend_change_user %d → %d after another user's query", changeUser, v)
		}
		// The pool's MyHGM rows move where their events happen: a query
		// looks up an idle connection, takes it and gives it back; a
		// session whose connection holds a user variable ends with it
		// closed instead. The SET NAMES above was answered by the proxy.
		if v := get("Com_frontend_set_names"); v < 1 {
			t.Errorf("Com_frontend_set_names = %d after SET NAMES latin1", v)
		}
		hgGet, hgOK, hgPush, hgDestroy := get("MyHGM_myconnpoll_get"), get("MyHGM_myconnpoll_get_ok"), get("MyHGM_myconnpoll_push"), get("MyHGM_myconnpoll_destroy")
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
		if v, w, x := get("MyHGM_myconnpoll_get"), get("MyHGM_myconnpoll_get_ok"), get("MyHGM_myconnpoll_push"); v <= hgGet || w <= hgOK || x <= hgPush {
			t.Errorf("a query on an idle pooled connection: MyHGM_myconnpoll_get %d → %d, _get_ok %d → %d, _push %d → %d", hgGet, v, hgOK, w, hgPush, x)
		}
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SET @stats_e2e = 1; SELECT @stats_e2e")
		for deadline := time.Now().Add(3 * time.Second); get("MyHGM_myconnpoll_destroy") == hgDestroy && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if v := get("MyHGM_myconnpoll_destroy"); v <= hgDestroy {
			t.Errorf("MyHGM_myconnpoll_destroy %d → %d after a session ended holding a user variable", hgDestroy, v)
		}
		// Buffers: an idle pooled connection's are the pool's
		// (ConnPool_memory_bytes); a query running holds a client's and a
		// backend connection's.
		if v := get("ConnPool_memory_bytes"); v <= 0 {
			t.Errorf("ConnPool_memory_bytes = %d with idle pooled connections", v)
		}
		if v := get("SQLite3_memory_bytes"); v <= 0 {
			t.Errorf("SQLite3_memory_bytes = %d", v)
		}
		sleeping := make(chan error, 1)
		go func() {
			_, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT SLEEP(2)")
			sleeping <- err
		}()
		var back, front int64
		for deadline := time.Now().Add(1900 * time.Millisecond); (back <= 0 || front <= 0) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			back, front = get("mysql_backend_buffers_bytes"), get("mysql_frontend_buffers_bytes")
		}
		if back <= 0 || front <= 0 {
			t.Errorf("during SELECT SLEEP(2): mysql_backend_buffers_bytes %d, mysql_frontend_buffers_bytes %d", back, front)
		}
		if v := get("mysql_session_internal_bytes"); v <= 0 {
			t.Errorf("during SELECT SLEEP(2): mysql_session_internal_bytes %d", v)
		}
		if err := <-sleeping; err != nil {
			t.Fatal(err)
		}

		// A SET the proxy cannot track locks the session on its
		// hostgroup; the gauge counts it until the session ends.
		locked := get("Client_Connections_hostgroup_locked")
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
		db.SetMaxOpenConns(1)
		if _, err := db.Exec("SET completion_type = 0"); err != nil {
			t.Fatal(err)
		}
		if v := get("Client_Connections_hostgroup_locked"); v != locked+1 {
			t.Errorf("Client_Connections_hostgroup_locked %d after a locking SET, want %d", v, locked+1)
		}
		db.Close()
		deadline := time.Now().Add(5 * time.Second)
		for get("Client_Connections_hostgroup_locked") != locked && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if v := get("Client_Connections_hostgroup_locked"); v != locked {
			t.Errorf("Client_Connections_hostgroup_locked %d after the session ended, want %d", v, locked)
		}
		status := admin(t, s, "SHOW MYSQL STATUS")
		if !strings.Contains(status, "Questions\t") || !strings.Contains(status, "Client_Connections_connected\t") {
			t.Errorf("SHOW MYSQL STATUS:\n%s", status)
		}
	})

	t.Run("runtime_mysql_servers", func(t *testing.T) {
		// A server on a port where nothing listens: the rule's query tries
		// it until mysql-connect_timeout_server_max (the retries set high
		// enough not to end it first: TestConnectRetriesOnFailure), and the connect errors
		// shun it. Only the live table can show that. (A recovery time of
		// 60 s keeps the desperate pass, a tenth of it, from bringing it
		// back before the query ends, which on a loaded machine can happen
		// within the 1.5 s.)
		dead := testenv.FreePort(t)
		admin(t, s, fmt.Sprintf("INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d); LOAD MYSQL SERVERS TO RUNTIME;", dead))
		if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 4242"); err == nil || !strings.Contains(err.Error(), "9001") {
			t.Fatalf("SELECT 4242 on the dead hostgroup: %v, want ERR 9001", err)
		}
		rows := adminRows(t, s, "SELECT hostgroup_id, status FROM runtime_mysql_servers ORDER BY hostgroup_id")
		if len(rows) != 2 || rows[0][1] != "ONLINE" || rows[1][1] != "SHUNNED" {
			t.Errorf("runtime_mysql_servers %q, want hostgroup 0 ONLINE and the dead one SHUNNED", rows)
		}
		if st := strings.TrimSpace(admin(t, s, "SELECT status FROM mysql_servers WHERE hostgroup_id = 1")); st != "ONLINE" {
			t.Errorf("mysql_servers (MEMORY) status %q: the live status must not leak into the config", st)
		}
		if n := adminInt(t, s, "SELECT hits FROM stats_mysql_query_rules WHERE rule_id = 1"); n != 1 {
			t.Errorf("rule 1 hits = %d, want 1", n)
		}
		if n := adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'max_connect_timeouts'"); n != 1 {
			t.Errorf("max_connect_timeouts = %d, want 1", n)
		}
		admin(t, s, "UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostgroup_id = 0; LOAD MYSQL SERVERS TO RUNTIME;")
		if st := strings.TrimSpace(admin(t, s, "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id = 0")); st != "OFFLINE_SOFT" {
			t.Errorf("after UPDATE + LOAD: runtime status %q, want OFFLINE_SOFT", st)
		}
		if st := strings.TrimSpace(admin(t, s, "SELECT status FROM stats_mysql_connection_pool WHERE hostgroup = 0")); st != "OFFLINE_SOFT" {
			t.Errorf("pool status %q, want OFFLINE_SOFT", st)
		}
		admin(t, s, "UPDATE mysql_servers SET status = 'ONLINE'; LOAD MYSQL SERVERS TO RUNTIME;")
	})

	t.Run("reset_and_truncate", func(t *testing.T) {
		total := adminInt(t, s, "SELECT SUM(count_star) FROM stats_mysql_query_digest_reset")
		if total < 8 {
			t.Fatalf("the _reset read saw %d queries", total)
		}
		if n := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest"); n != 0 {
			t.Fatalf("%d digest rows after reading stats_mysql_query_digest_reset, want 0", n)
		}
		if n := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest_reset"); n != 0 {
			t.Fatalf("a second _reset read returned %d rows, want 0", n)
		}
		// The connection pool's _reset zeroes its counters the same way.
		if n := adminInt(t, s, "SELECT Queries FROM stats_mysql_connection_pool_reset WHERE hostgroup = 0"); n < 5 {
			t.Errorf("pool _reset Queries = %d", n)
		}
		if n := adminInt(t, s, "SELECT Queries FROM stats_mysql_connection_pool WHERE hostgroup = 0"); n != 0 {
			t.Errorf("pool Queries after _reset = %d, want 0", n)
		}
		// A LOAD that replaces the server (removed, then back) starts its
		// counters again: never below zero.
		admin(t, s, "DELETE FROM mysql_servers WHERE hostgroup_id = 0; LOAD MYSQL SERVERS TO RUNTIME")
		admin(t, s, fmt.Sprintf("INSERT INTO mysql_servers(hostgroup_id, hostname, port, max_connections) VALUES (0, '%s', %d, 10); LOAD MYSQL SERVERS TO RUNTIME", b.Host, b.Port))
		testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1")
		if rows := adminRows(t, s, "SELECT ConnOK, Queries, Bytes_data_sent FROM stats_mysql_connection_pool WHERE hostgroup = 0 AND (ConnOK < 0 OR Queries < 1 OR Bytes_data_sent < 0)"); len(rows) != 0 {
			t.Errorf("pool counters of a server a LOAD replaced after a _reset: %v", rows)
		}
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if c := adminInt(t, s, fmt.Sprintf("SELECT count_star FROM stats_mysql_query_digest WHERE digest = '%s'", hash)); c != 1 {
			t.Fatalf("count after reset = %d, want 1", c)
		}
		admin(t, s, "TRUNCATE TABLE stats.stats_mysql_query_digest")
		if c := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest"); c != 0 {
			t.Fatalf("%d digest rows after TRUNCATE", c)
		}
	})
}
