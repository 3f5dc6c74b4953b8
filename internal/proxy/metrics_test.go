package proxy

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/stats"
)

// TestDashboardUsesEmittedMetrics: every metric the Grafana dashboard in
// docs/ queries is one /metrics emits (with a server configured and a
// migration-free, cache-empty proxy, the families still appear).
func TestDashboardUsesEmittedMetrics(t *testing.T) {
	p := newTestProxy(t)
	snap := p.Runtime().Clone()
	snap.Servers = []config.Server{{HostgroupID: 0, Hostname: "127.0.0.1", Port: 1, Status: "ONLINE", Weight: 1, MaxConnections: 10}}
	if err := p.Apply(config.ModMySQLServers, snap); err != nil {
		t.Fatal(err)
	}
	text, err := p.PrometheusText()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "sluice-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\b(?:proxysql|sluice|process)_[a-z0-9_]+`)
	// Families that only appear once they have a series.
	lazy := map[string]bool{"sluice_migrations_total": true}
	n := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				n++
				if !lazy[m] && !strings.Contains(string(text), "\n"+m) && !strings.HasPrefix(string(text), m) {
					t.Errorf("panel %q queries %s, which /metrics does not emit", panel.Title, m)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d metric names in the dashboard: the walk is broken", n)
	}
}

// TestStatusCode: proxysql_connpool_conns_status has ProxySQL's values,
// SHUNNED_REPLICATION_LAG its own 5 (it was shown as SHUNNED's 2).
func TestStatusCode(t *testing.T) {
	for st, want := range map[backend.Status]float64{backend.StatusOnline: 1, backend.StatusShunned: 2,
		backend.StatusOfflineSoft: 3, backend.StatusOfflineHard: 4, backend.StatusShunnedReplicationLag: 5} {
		if got := statusCode(st); got != want {
			t.Errorf("%v: %v, want %v", st, got, want)
		}
	}
}

// TestMemoryAndPoolRows: stats_mysql_global and stats_memory_metrics carry
// ProxySQL's memory and pool rows, measured: SQLite's memory grows with
// what SQLite holds, Auth_memory and mysql_query_rules_memory with the
// users and rules loaded; /metrics exports them under ProxySQL's names.
func TestMemoryAndPoolRows(t *testing.T) {
	p := newTestProxy(t)
	vars := func(vs []stats.Var) map[string]int64 {
		m := make(map[string]int64, len(vs))
		for _, v := range vs {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				t.Fatalf("%s = %q", v.Name, v.Value)
			}
			m[v.Name] = n
		}
		return m
	}
	g := vars(p.globalVars())
	for _, name := range []string{"mysql_backend_buffers_bytes", "mysql_frontend_buffers_bytes", "MyHGM_myconnpoll_get",
		"MyHGM_myconnpoll_get_ok", "MyHGM_myconnpoll_push", "MyHGM_myconnpoll_destroy", "SQLite3_memory_bytes",
		"ConnPool_memory_bytes", "Com_backend_stmt_close", "Com_frontend_set_names", "Com_frontend_reset_connection",
		"MySQL_Monitor_Workers", "MySQL_Monitor_Workers_Started", "mysql_session_internal_bytes"} {
		if _, ok := g[name]; !ok {
			t.Errorf("stats_mysql_global lacks %s", name)
		}
	}
	m0 := vars(p.memoryVars())

	db, err := sql.Open("sqlite", "file:memrows?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := db.Exec("INSERT INTO t VALUES (?)", strings.Repeat("x", 500+i)); err != nil {
			t.Fatal(err)
		}
	}
	snap := p.Runtime().Clone()
	snap.Users = append(snap.Users, config.User{Username: "someone", Password: "secret", Active: true, Frontend: true, Backend: true})
	if err := p.Apply(config.ModMySQLUsers, snap); err != nil {
		t.Fatal(err)
	}
	snap = p.Runtime().Clone()
	snap.QueryRules = []config.QueryRule{{RuleID: 1, Active: true, MatchDigest: sql.NullString{String: "^SELECT", Valid: true}}}
	if err := p.Apply(config.ModMySQLQueryRules, snap); err != nil {
		t.Fatal(err)
	}
	m1 := vars(p.memoryVars())
	for _, name := range []string{"SQLite3_memory_bytes", "Auth_memory", "mysql_query_rules_memory"} {
		if m1[name] <= m0[name] {
			t.Errorf("%s %d → %d: did not grow", name, m0[name], m1[name])
		}
	}
	if g := vars(p.globalVars()); g["SQLite3_memory_bytes"] < 100*500 {
		t.Errorf("SQLite3_memory_bytes %d with over 100 KB in an in-memory database", g["SQLite3_memory_bytes"])
	}

	text, err := p.PrometheusText()
	if err != nil {
		t.Fatal(err)
	}
	for _, metric := range []string{"proxysql_mysql_backend_buffers_bytes", "proxysql_mysql_frontend_buffers_bytes",
		"proxysql_myhgm_myconnpool_get_total", "proxysql_myhgm_myconnpool_destroy_total", "proxysql_sqlite3_memory_bytes",
		"proxysql_connpool_memory_bytes", `proxysql_com_backend_stmt_total{op="close"}`, "proxysql_com_frontend_set_names_total",
		"proxysql_mysql_session_internal_bytes"} {
		if !strings.Contains(string(text), "\n"+metric+" ") {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
}
