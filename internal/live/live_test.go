package live

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/rules"
)

func snapWith(vars map[string]string) *config.Snapshot {
	return &config.Snapshot{MySQLVars: vars}
}

// TestVariablesToSettings: each part's settings come from the variables,
// with the list's defaults for what the snapshot lacks.
func TestVariablesToSettings(t *testing.T) {
	rt, err := Build(nil, snapWith(map[string]string{
		"mysql-connect_timeout_server": "250", "mysql-ping_interval_server_msec": "5000",
		"mysql-free_connections_pct": "30", "mysql-enable_server_deprecate_eof": "false",
		"mysql-init_connect": "SET @x=1", "mysql-shun_recovery_time_sec": "3",
		"mysql-query_digests_lowercase": "true", "mysql-query_digests_grouping_limit": "5",
		"mysql-query_digests": "false", "mysql-query_digests_track_hostname": "true",
		"mysql-commands_stats": "0", "mysql-query_digests_max_entries": "5", "mysql-long_query_time": "250",
		"mysql-mirror_max_concurrency": "3", "mysql-mirror_max_queue_length": "7",
		"mysql-query_processor_first_comment_parsing": "1", "mysql-query_processor_iterations": "2",
		"mysql-max_connections": "77", "mysql-eventslog_default_log": "1",
	}), config.ModMySQLVariables)
	if err != nil {
		t.Fatal(err)
	}
	b := rt.Backend
	if b.ConnectTimeout != 250*time.Millisecond || b.PingInterval != 5*time.Second || b.FreeConnectionsPct != 30 ||
		b.DeprecateEOF || b.InitConnect != "SET @x=1" || b.ShunRecoveryTime != 3*time.Second ||
		b.PingTimeout != 200*time.Millisecond || b.ConnectTimeoutMax != 10*time.Second {
		t.Errorf("backend options %+v", *b)
	}
	want := sqlscan.DefaultOptions()
	want.Lowercase, want.GroupingLimit = true, 5
	if rt.Digest != want {
		t.Errorf("digest options %+v, want %+v", rt.Digest, want)
	}
	if *rt.Stats != (stats.Options{Digests: false, TrackHostname: true, CommandsStats: false, MaxEntries: 5, LongQueryTime: 250 * time.Millisecond, MaxDigestText: 2048}) {
		t.Errorf("stats options %+v", *rt.Stats)
	}
	if rt.Mirror != (Mirror{MaxConcurrency: 3, MaxQueue: 7}) {
		t.Errorf("mirror %+v", rt.Mirror)
	}
	if o := rt.Rules.Options(); o != (rules.CompileOptions{Iterations: 2, FirstCommentParsing: 1}) {
		t.Errorf("rule options %+v", o)
	}
	if rt.Router.MaxConnections != 77 || !rt.Router.EventsDefaultLog || rt.Router.ServerVersion != "8.0.11" ||
		rt.Router.WaitTimeout != 28800*time.Second || !rt.Router.Multiplexing {
		t.Errorf("router settings %+v", rt.Router)
	}
	if rt.Monitor == nil || !rt.Monitor.Enabled || rt.Monitor.PingInterval != 8*time.Second {
		t.Errorf("monitor options %+v", rt.Monitor)
	}
}

// TestBuildReusesRules: a LOAD of another module keeps the compiled rules
// (and their hit counters) but evaluates them with the new variables.
func TestBuildReusesRules(t *testing.T) {
	snap := snapWith(nil)
	snap.QueryRules = []config.QueryRule{{RuleID: 1, Active: true, MatchDigest: sql.NullString{String: "^SELECT", Valid: true},
		DestinationHostgroup: sql.NullInt64{Int64: 10, Valid: true}, Apply: true}}
	first, err := Build(nil, snap, config.ModMySQLQueryRules)
	if err != nil {
		t.Fatal(err)
	}
	q := &rules.Query{Text: []byte("SELECT /* hostgroup=2 */ 1"), DigestText: []byte("SELECT ?"),
		FirstComment: []byte(" hostgroup=2 "), NextQueryFlagIN: -1, MirrorFlagOUT: -1, MirrorHostgroup: -1}
	var d rules.Decision
	first.Rules.Match(q, &d)
	if d.DestinationHostgroup != 2 {
		t.Fatalf("default first_comment_parsing: annotation should win, got %d", d.DestinationHostgroup)
	}
	vars := snap.Clone()
	vars.MySQLVars = map[string]string{"mysql-query_processor_first_comment_parsing": "1"}
	second, err := Build(first, vars, config.ModMySQLVariables)
	if err != nil {
		t.Fatal(err)
	}
	second.Rules.Match(q, &d)
	if d.DestinationHostgroup != 10 {
		t.Fatalf("first_comment_parsing=1 without reloading the rules: got %d, want the rule's 10", d.DestinationHostgroup)
	}
	if second.Gen != first.Gen+1 || second.compiled != first.compiled {
		t.Errorf("gen %d→%d, rules recompiled: %v", first.Gen, second.Gen, second.compiled != first.compiled)
	}
	if h := second.Rules.Hits()[1]; h != 2 {
		t.Errorf("hits %d, want 2 (shared across runtimes)", h)
	}
}

func TestBuildRefusesBadConfig(t *testing.T) {
	snap := snapWith(nil)
	snap.QueryRules = []config.QueryRule{{RuleID: 42, Active: true, MatchPattern: sql.NullString{String: "(", Valid: true}}}
	// A rule that does not compile is refused by a LOAD (Refusal) but left
	// out, not fatal, at start-up: the runtime has the other rules.
	snap.QueryRules = append(snap.QueryRules, config.QueryRule{RuleID: 43, Active: true, MatchPattern: sql.NullString{String: "^SELECT", Valid: true}})
	rt, err := Build(nil, snap, config.ModMySQLQueryRules)
	if err != nil {
		t.Fatalf("bad regex: Build: %v", err)
	}
	if err := rt.Refusal(); !errors.Is(err, rules.ErrBadRule) || !strings.Contains(err.Error(), "rule_id 42") {
		t.Errorf("bad regex: refusal %v", err)
	}
	if w := rt.Warnings(true); len(w) != 1 || !strings.Contains(w[0], "left out of the runtime") {
		t.Errorf("bad regex: start-up warnings %q", w)
	}
	if n := rt.Rules.Len(); n != 1 {
		t.Errorf("bad regex: %d rules in the runtime, want the good one", n)
	}
	snap = snapWith(nil)
	snap.Servers = []config.Server{{HostgroupID: 1, Hostname: "", Port: 1, Status: "ONLINE"}}
	if _, err := Build(nil, snap, config.ModMySQLServers); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("bad server: %v", err)
	}
	h := NewHolder()
	rt, err = Build(h.Load(), snapWith(nil), config.ModMySQLUsers)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Store(rt); err != nil || h.Load() != rt {
		t.Fatalf("store: %v", err)
	}
	if err := h.Store(rt); err == nil {
		t.Error("storing the same generation twice was accepted")
	}
}
