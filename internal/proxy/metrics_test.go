package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
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
