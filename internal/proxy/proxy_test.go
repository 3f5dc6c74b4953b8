package proxy

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/rules"
)

func newTestProxy(t *testing.T) *Proxy {
	t.Helper()
	p := New(Config{Datadir: t.TempDir(), Log: zerolog.Nop()})
	t.Cleanup(func() { p.Close() })
	return p
}

// TestApplyAllOrNothing: a LOAD that fails anywhere — a bad rule, an events
// log that cannot be opened — leaves the running runtime exactly as it was
// (same value, same generation); one that succeeds publishes the next
// generation with every part built from the same snapshot.
func TestApplyAllOrNothing(t *testing.T) {
	p := newTestProxy(t)
	snap := p.Runtime().Clone()
	snap.MySQLVars = map[string]string{"mysql-max_connections": "77"}
	if err := p.Apply(config.ModMySQLVariables, snap); err != nil {
		t.Fatal(err)
	}
	before := p.Live()
	if before.Gen != 1 || before.Router.MaxConnections != 77 {
		t.Fatalf("first LOAD: gen %d, max_connections %d", before.Gen, before.Router.MaxConnections)
	}

	bad := p.Runtime().Clone()
	bad.QueryRules = []config.QueryRule{{RuleID: 42, Active: true, MatchPattern: sql.NullString{String: "(", Valid: true}}}
	if err := p.Apply(config.ModMySQLQueryRules, bad); !errors.Is(err, rules.ErrBadRule) {
		t.Fatalf("bad rule: %v", err)
	}
	unopenable := p.Runtime().Clone()
	unopenable.MySQLVars = map[string]string{"mysql-max_connections": "5",
		"mysql-eventslog_filename": filepath.Join(t.TempDir(), "missing", "dir", "q.log")}
	if err := p.Apply(config.ModMySQLVariables, unopenable); err == nil {
		t.Fatal("an events log in a missing directory was accepted")
	}
	if p.Live() != before {
		t.Fatalf("a failed LOAD changed the runtime: gen %d → %d", before.Gen, p.Live().Gen)
	}

	ok := p.Runtime().Clone()
	ok.MySQLVars = map[string]string{"mysql-max_connections": "5", "mysql-query_processor_first_comment_parsing": "1"}
	if err := p.Apply(config.ModMySQLVariables, ok); err != nil {
		t.Fatal(err)
	}
	after := p.Live()
	if after.Gen != before.Gen+1 || after.Router.MaxConnections != 5 || after.Rules.Options().FirstCommentParsing != 1 ||
		after.Snap != ok {
		t.Fatalf("second LOAD: gen %d, max_connections %d, rules %+v", after.Gen, after.Router.MaxConnections, after.Rules.Options())
	}
}
