package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// scrape fetches url with curl and parses it as Prometheus text.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	out, err := exec.Command("curl", "-sf", "--max-time", "10", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("%s does not parse as Prometheus text: %v\n%s", url, err, out)
	}
	return mfs
}

// sample returns the value of the series of family name whose labels
// include want, and whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsAndHealth: GET /metrics on admin-restapi_port (curl) parses as
// Prometheus text with ProxySQL's metric names; proxysql_questions_total
// and the connection-pool series move by what a known workload did; SHOW
// PROMETHEUS METRICS on the admin port carries the same families; GET
// /health is 200 with a routable server and 503, with a reason, without.
func TestMetricsAndHealth(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	base := "http://127.0.0.1:" + port
	ep := map[string]string{"hostgroup": "0", "endpoint": fmt.Sprintf("127.0.0.1:%d", bs[0].Port)}

	before := scrape(t, base+"/metrics")
	q0, ok := sample(before, "proxysql_questions_total", nil)
	if !ok {
		t.Fatalf("no proxysql_questions_total in /metrics: %v", keys(before))
	}
	for _, name := range []string{"proxysql_client_connections_connected", "proxysql_uptime_seconds_total", "proxysql_version_info",
		"proxysql_connpool_conns", "proxysql_connpool_conns_status", "process_resident_memory_bytes", "process_cpu_seconds_total",
		// ProxySQL's prepared-statement, injection and monitor families,
		// which its dashboards and alerts read.
		"proxysql_stmt_client_active", "proxysql_stmt_server_active", "proxysql_fds_in_use", "proxysql_stmt_cached", "proxysql_stmt_max_stmt_id",
		"proxysql_automatic_detected_sql_injection_total", "proxysql_whitelisted_sqli_fingerprint_total",
		"proxysql_client_host_error_killed_connections", "proxysql_mysql_monitor_ping_check_total",
		"proxysql_mysql_monitor_connect_check_total"} {
		if before[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	cq0, _ := sample(before, "proxysql_connpool_conns_queries_total", ep)

	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 50
	for i := range n {
		var v int
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	// Server errors: mysql_error_total by server and code, as ProxySQL's
	// (its dashboards chart it); a reset of stats_mysql_errors does not
	// move the counter back.
	for range 3 {
		if _, err := db.ExecContext(ctx, "SELECT * FROM no_such_table_for_metrics"); err == nil {
			t.Fatal("a query of a missing table succeeded")
		}
	}
	admin(t, s, "SELECT COUNT(*) FROM stats_mysql_errors_reset")
	errLabels := map[string]string{"hostgroup": "0", "address": "127.0.0.1", "port": strconv.Itoa(bs[0].Port), "code": "1146"}
	after := scrape(t, base+"/metrics")
	if v, ok := sample(after, "mysql_error_total", errLabels); v != 3 {
		t.Errorf("mysql_error_total%v = %v (%v), want 3", errLabels, v, ok)
	}
	q1, _ := sample(after, "proxysql_questions_total", nil)
	cq1, _ := sample(after, "proxysql_connpool_conns_queries_total", ep)
	if q1-q0 != n+3 {
		t.Errorf("proxysql_questions_total moved by %v, want %d", q1-q0, n+3)
	}
	if cq1-cq0 != n+3 {
		t.Errorf("proxysql_connpool_conns_queries_total%v moved by %v, want %d", ep, cq1-cq0, n+3)
	}
	if v, ok := sample(after, "proxysql_client_connections_connected", nil); !ok || v < 1 {
		t.Errorf("proxysql_client_connections_connected = %v with a client connected", v)
	}
	if v, _ := sample(after, "proxysql_connpool_conns_status", ep); v != 1 {
		t.Errorf("proxysql_connpool_conns_status = %v, want 1 (ONLINE)", v)
	}
	used, _ := sample(after, "proxysql_connpool_conns", map[string]string{"hostgroup": "0", "endpoint": ep["endpoint"], "status": "free"})
	if used < 1 {
		t.Errorf("proxysql_connpool_conns{status=free} = %v after the workload", used)
	}

	// SHOW PROMETHEUS METRICS: the same families.
	text := admin(t, s, "SHOW PROMETHEUS METRICS")
	text = strings.ReplaceAll(text, `\n`, "\n")
	p := expfmt.NewTextParser(model.UTF8Validation)
	viaAdmin, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("SHOW PROMETHEUS METRICS does not parse: %v", err)
	}
	for name := range after {
		if strings.HasPrefix(name, "proxysql_") && viaAdmin[name] == nil {
			t.Errorf("SHOW PROMETHEUS METRICS lacks %s", name)
		}
	}

	// /health.
	health := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := health(); code != 200 || body["status"] != "ok" {
		t.Fatalf("/health with a routable server: %d %v", code, body)
	}
	admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME;", bs[0].Port))
	code, body := health()
	if code != 503 || !strings.Contains(fmt.Sprint(body["reason"]), "routable") {
		t.Fatalf("/health with every server OFFLINE_SOFT: %d %v", code, body)
	}
	admin(t, s, fmt.Sprintf("UPDATE mysql_servers SET status='ONLINE' WHERE port=%d; LOAD MYSQL SERVERS TO RUNTIME;", bs[0].Port))
	if code, _ := health(); code != 200 {
		t.Fatalf("/health after ONLINE again: %d", code)
	}

	// A port that cannot be bound fails the LOAD, and the endpoint stays.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out, err := testenv.CLI(t, s.AdminPort, "admin", "admin",
		fmt.Sprintf("SET admin-restapi_port=%d; LOAD ADMIN VARIABLES TO RUNTIME;", taken.Addr().(*net.TCPAddr).Port))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("LOAD ADMIN VARIABLES with a taken port: %v %s", err, out)
	}
	if code, _ := health(); code != 200 {
		t.Fatalf("/health after the failed LOAD: %d", code)
	}
	// Disabled: nothing listens.
	admin(t, s, fmt.Sprintf("SET admin-restapi_port=%s; SET admin-restapi_enabled='false'; LOAD ADMIN VARIABLES TO RUNTIME;", port))
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("/health answers with admin-restapi_enabled=false")
	}
	t.Logf("/metrics: %d families; %d queries moved proxysql_questions_total by %v and the pool's queries by %v; /health 200 → 503 (%v) → 200",
		len(after), n, q1-q0, cq1-cq0, body["reason"])
}

func keys(m map[string]*dto.MetricFamily) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestErrorsAndFreeConnections: stats_mysql_errors counts what backends
// answered with an error, by server, user, client, schema and code, and
// _reset starts it again; stats_mysql_free_connections lists the idle
// pooled connections with the state they hold.
func TestErrorsAndFreeConnections(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		if _, err := db.ExecContext(ctx, "SELECT * FROM no_such_table_here"); err == nil {
			t.Fatal("query on a missing table succeeded")
		}
	}
	if _, err := db.ExecContext(ctx, "SET time_zone='+02:00'"); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	rows := adminRows(t, s, "SELECT hostgroup, port, username, schemaname, errno, count_star, last_error FROM stats_mysql_errors")
	if len(rows) != 1 || rows[0][1] != fmt.Sprint(bs[0].Port) || rows[0][2] != "sbtest" || rows[0][3] != "sbtest" ||
		rows[0][4] != "1146" || rows[0][5] != "3" || !strings.Contains(rows[0][6], "no_such_table_here") {
		t.Fatalf("stats_mysql_errors: %v", rows)
	}
	if r := adminRows(t, s, "SELECT count_star FROM stats_mysql_errors_reset"); len(r) != 1 || r[0][0] != "3" {
		t.Fatalf("stats_mysql_errors_reset: %v", r)
	}
	if r := adminRows(t, s, "SELECT * FROM stats_mysql_errors"); len(r) != 0 {
		t.Fatalf("stats_mysql_errors after _reset: %v", r)
	}
	free := adminRows(t, s, "SELECT fd, srv_port, user, schema, time_zone, autocommit, statistics FROM stats_mysql_free_connections")
	found := false
	for _, r := range free {
		if r[1] == fmt.Sprint(bs[0].Port) && r[2] == "sbtest" && r[3] == "sbtest" && r[4] == "+02:00" && r[5] == "1" &&
			r[0] != "-1" && strings.Contains(r[6], "address") {
			found = true
		}
	}
	if !found {
		t.Fatalf("stats_mysql_free_connections lacks the idle connection with time_zone +02:00: %v", free)
	}

	// A failed connect is an error of its server, as ProxySQL counts it in
	// stats_mysql_errors and mysql_error_total: a server nothing listens on.
	dead := testenv.FreePort(t)
	admin(t, s, fmt.Sprintf(`
		INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (30, '127.0.0.1', %d);
		INSERT INTO mysql_query_rules (rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, '^SELECT 42', 30, 1);
		SET mysql-connect_timeout_server_max=1000; SET mysql-connect_retries_on_failure=1000;
		LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL QUERY RULES TO RUNTIME; LOAD MYSQL VARIABLES TO RUNTIME;`, dead))
	if _, err := db.ExecContext(ctx, "SELECT 42"); err == nil || !strings.Contains(err.Error(), "9001") {
		t.Fatalf("a query for a server nothing listens on: %v, want 9001", err)
	}
	connErrs := adminRows(t, s, "SELECT port, errno, count_star > 0 FROM stats_mysql_errors WHERE hostgroup = 30")
	if len(connErrs) != 1 || connErrs[0][0] != strconv.Itoa(dead) || connErrs[0][1] != "2003" || connErrs[0][2] != "1" {
		t.Errorf("stats_mysql_errors of hostgroup 30 after failed connects: %v, want one 2003 row", connErrs)
	}
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	m := scrape(t, "http://127.0.0.1:"+port+"/metrics")
	if v, ok := sample(m, "mysql_error_total", map[string]string{"hostgroup": "30", "port": strconv.Itoa(dead), "code": "2003"}); !ok || v < 1 {
		t.Errorf("mysql_error_total of the dead server = %v (%v), want ≥ 1", v, ok)
	}
	t.Logf("stats_mysql_errors: %v; free connections: %v; failed connects: %v", rows, free, connErrs)
}

// TestAuditLog: mysql-auditlog_filename writes ProxySQL's audit events as
// JSON lines — data-port connect OK and ERR, COM_INIT_DB, quit and close
// (with duration), the admin's own connections — and PROXYSQL FLUSH LOGS
// rotates to the next file.
func TestAuditLog(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, `
		SET mysql-auditlog_filename='audit.log'; LOAD MYSQL VARIABLES TO RUNTIME;`)
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "use sbtest; select 1"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "wrong", "select 1"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	admin(t, s, "SELECT 1")
	// read waits (up to 5 s) until the file holds events for which done is
	// true: the writer is asynchronous, and the first admin connection's
	// quit and close are in the file before the later ones arrive.
	read := func(name string, done func([]map[string]any) bool) []map[string]any {
		t.Helper()
		var events []map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(s.Datadir, name))
			if err == nil {
				events = events[:0]
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if line == "" {
						continue
					}
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("%s: %q is not JSON: %v", name, line, err)
					}
					events = append(events, m)
				}
				if done(events) || time.Now().After(deadline) {
					return events
				}
			} else if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	want := []string{"MySQL_Client_Connect_OK", "MySQL_Client_Init_DB", "MySQL_Client_Quit", "MySQL_Client_Close",
		"MySQL_Client_Connect_ERR", "Admin_Connect_OK", "Admin_Close"}
	seen := map[string]map[string]any{}
	events := read("audit.log.00000001", func(events []map[string]any) bool {
		clear(seen)
		for _, e := range events {
			seen[fmt.Sprint(e["event"])] = e
		}
		for _, name := range want {
			if seen[name] == nil {
				return false
			}
		}
		return true
	})
	for _, name := range want {
		if seen[name] == nil {
			t.Errorf("no %s event in %v", name, events)
		}
	}
	if c := seen["MySQL_Client_Close"]; c != nil && (c["duration"] == nil || c["creation_time"] == nil || c["username"] != "sbtest") {
		t.Errorf("close event: %v", c)
	}
	if e := seen["MySQL_Client_Init_DB"]; e != nil && e["schemaname"] != "sbtest" {
		t.Errorf("init db event: %v", e)
	}
	// An admin session's events carry its connection id (they all said 0,
	// so two admin sessions' logins and closes could not be told apart).
	if a, c := seen["Admin_Connect_OK"], seen["Admin_Close"]; a != nil && c != nil {
		if id, _ := a["thread_id"].(float64); id == 0 {
			t.Errorf("admin connect event without a thread_id: %v", a)
		}
	}
	admin(t, s, "PROXYSQL FLUSH LOGS")
	if _, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "select 1"); err != nil {
		t.Fatal(err)
	}
	if next := read("audit.log.00000002", func(e []map[string]any) bool { return len(e) > 0 }); len(next) == 0 {
		t.Fatal("PROXYSQL FLUSH LOGS did not rotate the audit log")
	}
	t.Logf("%d audit events, e.g. %v", len(events), seen["MySQL_Client_Close"])
}
