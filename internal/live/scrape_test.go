package live

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/scrape"
)

// TestScrapeSettings: mysql_servers_balance.metrics_url and the labels
// that say how to read it become the scraper's targets; a bad preset,
// URL or number fails the LOAD with the row named.
func TestScrapeSettings(t *testing.T) {
	snap := snapWith(map[string]string{"mysql-balance_metrics_interval_ms": "750", "mysql-balance_metrics_timeout_ms": "400"})
	snap.ServersBalance = []config.ServerBalance{
		{Hostname: "10.0.0.1", Port: 4000, MetricsURL: "http://10.0.0.1:10080/metrics"},
		{Hostname: "10.0.0.2", Port: 3306, MetricsURL: "http://10.0.0.2:9100/metrics", Labels: `{"metrics_preset":"node"}`},
		{Hostname: "10.0.0.3", Port: 9030, MetricsURL: "http://10.0.0.3:8030/metrics", Labels: `{"metrics_preset":"starrocks_fe","memory_limit_bytes":"8e9"}`},
		{Hostname: "10.0.0.4", Port: 3306, MetricsURL: "https://10.0.0.4/m", Labels: `{"metrics_preset":"process","cpu_count":"4"}`},
		{Hostname: "10.0.0.5", Port: 3306, Labels: `{"zone":"east"}`}, // no metrics_url: not scraped
	}
	rt, err := Build(nil, snap, config.ModMySQLServers)
	if err != nil {
		t.Fatal(err)
	}
	st := rt.Scrape
	if st.Interval != 750*time.Millisecond || st.Timeout != 400*time.Millisecond || len(st.Targets) != 4 {
		t.Fatalf("settings %+v", st)
	}
	want := map[string]scrape.Target{
		"10.0.0.1:4000": {URL: "http://10.0.0.1:10080/metrics", Preset: scrape.PresetTiDB},
		"10.0.0.2:3306": {URL: "http://10.0.0.2:9100/metrics", Preset: scrape.PresetNode},
		"10.0.0.3:9030": {URL: "http://10.0.0.3:8030/metrics", Preset: scrape.PresetStarRocksFE, MemLimit: 8e9},
		"10.0.0.4:3306": {URL: "https://10.0.0.4/m", Preset: scrape.PresetProcess, CPUs: 4},
	}
	for addr, w := range want {
		if st.Targets[addr] != w {
			t.Errorf("%s: %+v, want %+v", addr, st.Targets[addr], w)
		}
	}

	for _, c := range []struct{ url, labels, err string }{
		{"ftp://x/metrics", "", "is not an http(s) URL"},
		{"http:///metrics", "", "is not an http(s) URL"},
		{"http://x/metrics", `{"metrics_preset":"mysqld"}`, `labels.metrics_preset "mysqld" is not one of tidb, process, node, starrocks_fe`},
		{"http://x/metrics", `{"cpu_count":"-2"}`, `labels.cpu_count "-2" is not a positive number`},
		{"http://x/metrics", `{"memory_limit_bytes":"8G"}`, `labels.memory_limit_bytes "8G" is not a positive number`},
		{"http://x/metrics", `{"metrics_preset":"process"}`, "needs labels.cpu_count or labels.memory_limit_bytes"},
	} {
		snap := snapWith(nil)
		snap.ServersBalance = []config.ServerBalance{{Hostname: "h", Port: 1, MetricsURL: c.url, Labels: c.labels}}
		_, err := Build(nil, snap, config.ModMySQLServers)
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "hostname='h', port=1") {
			t.Errorf("%s %s: %v, want %q", c.url, c.labels, err, c.err)
		}
	}
}
