package rules

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

func ns(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
func ni(n int64) sql.NullInt64   { return sql.NullInt64{Int64: n, Valid: true} }

type ruleOpt func(*config.QueryRule)

// qr builds an active rule with the table defaults (re_modifiers CASELESS).
func qr(id int, opts ...ruleOpt) config.QueryRule {
	r := config.QueryRule{RuleID: id, Active: true, ReModifiers: ns("CASELESS")}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func matchDigest(p string) ruleOpt    { return func(r *config.QueryRule) { r.MatchDigest = ns(p) } }
func matchPattern(p string) ruleOpt   { return func(r *config.QueryRule) { r.MatchPattern = ns(p) } }
func replacePattern(p string) ruleOpt { return func(r *config.QueryRule) { r.ReplacePattern = ns(p) } }
func dest(hg int64) ruleOpt           { return func(r *config.QueryRule) { r.DestinationHostgroup = ni(hg) } }
func apply() ruleOpt                  { return func(r *config.QueryRule) { r.Apply = true } }
func flagIN(n int) ruleOpt            { return func(r *config.QueryRule) { r.FlagIN = n } }
func flagOUT(n int64) ruleOpt         { return func(r *config.QueryRule) { r.FlagOUT = ni(n) } }
func user(u string) ruleOpt           { return func(r *config.QueryRule) { r.Username = ns(u) } }
func schema(s string) ruleOpt         { return func(r *config.QueryRule) { r.Schemaname = ns(s) } }
func negate() ruleOpt                 { return func(r *config.QueryRule) { r.NegateMatchPattern = true } }
func mods(m string) ruleOpt           { return func(r *config.QueryRule) { r.ReModifiers = ns(m) } }
func noMods() ruleOpt                 { return func(r *config.QueryRule) { r.ReModifiers = sql.NullString{} } }
func inactive() ruleOpt               { return func(r *config.QueryRule) { r.Active = false } }

// query digests text with default options and fills a Query.
func query(text string) *Query {
	var d sqlscan.Digest
	sqlscan.NewDigester(sqlscan.DefaultOptions()).Digest(&d, []byte(text), 0)
	return &Query{
		User: "app", Schema: "shop", ClientAddr: "10.0.0.7", ProxyAddr: "127.0.0.1", ProxyPort: 6033,
		DigestHash: d.Hash, DigestText: append([]byte(nil), d.Text...),
		FirstComment: append([]byte(nil), d.FirstComment...), Text: []byte(text),
		NextQueryFlagIN: -1, MirrorFlagOUT: -1, MirrorHostgroup: -1,
	}
}

func mustCompile(t *testing.T, rs []config.QueryRule, fast []config.FastRoute, o ...CompileOptions) *RuleSet {
	t.Helper()
	set, err := Compile(rs, fast, o...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func match(set *RuleSet, q *Query) Decision {
	var d Decision
	set.Match(q, &d)
	return d
}

func TestStarRocksGuideRule(t *testing.T) {
	// insert into mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, mirror_hostgroup, apply)
	//        values(1, 1, '.', 1, 2, 1);
	set := mustCompile(t, []config.QueryRule{qr(1, matchDigest("."), dest(1),
		func(r *config.QueryRule) { r.MirrorHostgroup = ni(2) }, apply())}, nil)
	for _, q := range []string{"SELECT 1", "insert into t values (1)", "show tables"} {
		d := match(set, query(q))
		if d.DestinationHostgroup != 1 || d.MirrorHostgroup != 2 || !d.Applied || d.LastRuleID != 1 {
			t.Errorf("%q: %+v", q, d)
		}
	}
	if h := set.Hits(); h[1] != 3 {
		t.Errorf("hits %v", h)
	}
}

func TestFlagChainsMoveForward(t *testing.T) {
	rs := []config.QueryRule{
		qr(1, flagIN(5), dest(99), apply()), // before the rule that sets flag 5
		qr(2, matchDigest("^SELECT"), flagOUT(5)),
		qr(3, flagIN(5), user("app"), dest(10), apply()),
		qr(4, flagIN(5), dest(20), apply()),
	}
	set := mustCompile(t, rs, nil)
	d := match(set, query("SELECT 1"))
	if d.DestinationHostgroup != 10 || d.FlagIN != 5 || d.LastRuleID != 3 {
		t.Errorf("app: %+v", d)
	}
	q := query("SELECT 1")
	q.User = "other"
	if d := match(set, q); d.DestinationHostgroup != 20 {
		t.Errorf("other: %+v", d)
	}
	if d := match(set, query("UPDATE t SET a=1")); d.DestinationHostgroup != Unset || d.FlagIN != 0 {
		t.Errorf("update: %+v", d)
	}

	// With iterations the flagOUT restarts from the first rule.
	set = mustCompile(t, rs, nil, CompileOptions{Iterations: 1})
	if d := match(set, query("SELECT 1")); d.DestinationHostgroup != 99 || d.LastRuleID != 1 {
		t.Errorf("reiterate: %+v", d)
	}
}

func TestNextQueryFlagIN(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("^SET"), func(r *config.QueryRule) { r.NextQueryFlagIN = ni(7) }),
		qr(2, flagIN(7), dest(3), apply()),
	}, nil)
	d := match(set, query("SET @x=1"))
	if d.NextQueryFlagIN != 7 || d.DestinationHostgroup != Unset {
		t.Fatalf("%+v", d)
	}
	q := query("SELECT @x")
	q.NextQueryFlagIN = d.NextQueryFlagIN
	if d := match(set, q); d.DestinationHostgroup != 3 {
		t.Errorf("%+v", d)
	}
}

func TestLastWriterWins(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("."), dest(1), func(r *config.QueryRule) { r.CacheTTL = ni(100); r.Timeout = ni(5) }),
		qr(2, matchDigest("^SELECT"), dest(2), func(r *config.QueryRule) { r.Timeout = ni(9); r.Multiplex = ni(0) }),
		qr(3, matchDigest("^NEVER"), dest(3)),
	}, nil)
	d := match(set, query("SELECT 1"))
	if d.DestinationHostgroup != 2 || d.CacheTTL != 100 || d.Timeout != 9 || d.Multiplex != 0 || d.Applied {
		t.Errorf("%+v", d)
	}
	if d.Retries != Unset || d.Log != Unset || d.StickyConn != Unset || d.HasErrorMsg {
		t.Errorf("unset fields changed: %+v", d)
	}
}

func TestNegateAndCase(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("^SELECT"), negate(), dest(1), apply()),
		qr(2, matchDigest("^select"), noMods(), dest(2), apply()), // case-sensitive
		qr(3, matchDigest("^select"), mods("caseless, GLOBAL"), dest(3), apply()),
	}, nil)
	cases := []struct {
		q    string
		want int
	}{
		{"UPDATE t SET a=1", 1},
		{"select 1", 2},
		{"SELECT 1", 3},
	}
	for _, c := range cases {
		if d := match(set, query(c.q)); d.DestinationHostgroup != c.want {
			t.Errorf("%q: hg %d want %d", c.q, d.DestinationHostgroup, c.want)
		}
	}
}

func TestMatchPatternUsesRawText(t *testing.T) {
	// match_digest sees "?" where match_pattern sees the literal.
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("id=42"), dest(1), apply()),
		qr(2, matchPattern("id=42"), dest(2), apply()),
	}, nil)
	if d := match(set, query("SELECT * FROM t WHERE id=42")); d.DestinationHostgroup != 2 {
		t.Errorf("%+v", d)
	}
	// Without a digest (mysql-query_digests=false) match_digest is skipped,
	// so a match_digest-only rule matches everything.
	q := query("SELECT 1")
	q.DigestText = nil
	q.DigestHash = 0
	set = mustCompile(t, []config.QueryRule{qr(1, matchDigest("^UPDATE"), dest(4), apply())}, nil)
	if d := match(set, q); d.DestinationHostgroup != 4 {
		t.Errorf("no digest: %+v", d)
	}
}

func TestReplacePattern(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchPattern(`FROM tbl_(\d+)`), replacePattern(`FROM shard_\1`)),
		qr(2, matchPattern(`shard_7`), dest(7), apply()),
	}, nil)
	d := match(set, query("SELECT * FROM tbl_7 JOIN tbl_8"))
	if !d.Rewritten || string(d.NewQuery) != "SELECT * FROM shard_7 JOIN tbl_8" || d.DestinationHostgroup != 7 {
		t.Errorf("first-only replace: %+v %q", d, d.NewQuery)
	}

	set = mustCompile(t, []config.QueryRule{
		qr(1, matchPattern(`tbl_(\d+)`), replacePattern(`shard_\1 /* $cost \\ */`), mods("CASELESS,GLOBAL")),
	}, nil)
	d = match(set, query("SELECT * FROM TBL_7 JOIN tbl_8"))
	if string(d.NewQuery) != `SELECT * FROM shard_7 /* $cost \ */ JOIN shard_8 /* $cost \ */` {
		t.Errorf("global replace: %q", d.NewQuery)
	}

	q := query("SELECT * FROM tbl_1")
	q.StmtExecute = true
	if d := match(set, q); d.Rewritten {
		t.Errorf("replace applied to STMT_EXECUTE")
	}
	if d := match(set, query("SELECT 1")); d.Rewritten || len(d.NewQuery) != 0 {
		t.Errorf("non-matching query rewritten: %q", d.NewQuery)
	}
}

func TestErrorAndOKMsg(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("^DROP"), func(r *config.QueryRule) { r.ErrorMsg = ns("DROP is not allowed") }, apply()),
		qr(2, matchDigest("^SET sql_log_bin"), func(r *config.QueryRule) { r.OKMsg = ns("") }, apply()),
	}, nil)
	if d := match(set, query("DROP TABLE t")); !d.HasErrorMsg || d.ErrorMsg != "DROP is not allowed" || d.HasOKMsg {
		t.Errorf("error_msg: %+v", d)
	}
	if d := match(set, query("SET sql_log_bin=0")); !d.HasOKMsg || d.OKMsg != "" || d.HasErrorMsg {
		t.Errorf("OK_msg: %+v", d)
	}
}

func TestAnnotations(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{qr(1, matchDigest("."), dest(1), func(r *config.QueryRule) { r.Timeout = ni(10) })}, nil)
	q := query("SELECT /* hostgroup=5;query_timeout=3300 ; mirror = 9;cache_ttl=100;query_delay=7;query_retries=2;max_lag_ms=1500;min_gtid=3E11FA47-71CA-11E1-9E33-C80AA9429562:23;create_new_connection=1 */ 1")
	d := match(set, q)
	if d.DestinationHostgroup != 5 || d.Timeout != 3300 || d.MirrorHostgroup != 9 || d.CacheTTL != 100 ||
		d.Delay != 7 || d.Retries != 2 || d.MaxLagMs != 1500 || !d.CreateNewConnection ||
		d.MinGTID != "3E11FA47-71CA-11E1-9E33-C80AA9429562:23" {
		t.Errorf("%+v", d)
	}

	// Values must start with a digit; bad gtid and out-of-range lag ignored.
	d = match(set, query("SELECT /* hostgroup=x5;max_lag_ms=700000;min_gtid=:1 */ 1"))
	if d.DestinationHostgroup != 1 || d.MaxLagMs != Unset || d.MinGTID != "" {
		t.Errorf("invalid annotations applied: %+v", d)
	}

	q = query("SELECT /* min_epoch_ms=1000000 */ 1")
	q.NowMs = 1002500
	if d := match(set, q); d.MaxLagMs != 2500 {
		t.Errorf("min_epoch_ms: %+v", d)
	}

	// first_comment_parsing=1: annotations first, rules override them.
	set1 := mustCompile(t, []config.QueryRule{qr(1, matchDigest("."), dest(1))}, nil, CompileOptions{FirstCommentParsing: 1})
	if d := match(set1, query("SELECT /* hostgroup=5 */ 1")); d.DestinationHostgroup != 1 {
		t.Errorf("fcp=1: %+v", d)
	}

	// Mirrors ignore annotations.
	q = query("SELECT /* hostgroup=5 */ 1")
	q.Mirror, q.MirrorHostgroup = true, 2
	if d := match(set, q); d.DestinationHostgroup != 2 {
		t.Errorf("mirror: %+v", d)
	}
}

func TestMirrorEvaluation(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("."), dest(1), func(r *config.QueryRule) { r.MirrorFlagOUT = ni(3); r.MirrorHostgroup = ni(2) }),
		qr(2, flagIN(3), matchDigest("^SELECT"), dest(30), apply()),
	}, []config.FastRoute{{Username: "app", Schemaname: "shop", FlagIN: 0, DestinationHostgroup: 50}})
	primary := match(set, query("SELECT 1"))
	if primary.MirrorHostgroup != 2 || primary.MirrorFlagOUT != 3 || primary.DestinationHostgroup != 50 || !primary.FastRouted {
		t.Fatalf("primary: %+v", primary)
	}
	q := query("SELECT 1")
	q.Mirror, q.MirrorHostgroup, q.MirrorFlagOUT = true, primary.MirrorHostgroup, primary.MirrorFlagOUT
	if d := match(set, q); d.DestinationHostgroup != 30 || d.FastRouted {
		t.Errorf("mirror with flagOUT: %+v", d)
	}
	q.MirrorFlagOUT = -1
	if d := match(set, q); d.DestinationHostgroup != 2 || d.LastRuleID != Unset {
		t.Errorf("mirror without flagOUT: %+v", d)
	}
}

func TestFastRouting(t *testing.T) {
	fast := []config.FastRoute{
		{Username: "app", Schemaname: "shop", FlagIN: 0, DestinationHostgroup: 10},
		{Username: "", Schemaname: "shop", FlagIN: 1, DestinationHostgroup: 11},
		{Username: "app", Schemaname: "shop", FlagIN: 2, DestinationHostgroup: 12},
	}
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("^UPDATE"), dest(1), apply()),
		qr(2, matchDigest("^INSERT"), flagOUT(1), dest(2)),
		qr(3, matchDigest("^DELETE"), flagOUT(2)),
	}, fast)
	if d := match(set, query("SELECT 1")); d.DestinationHostgroup != 10 || !d.FastRouted {
		t.Errorf("select: %+v", d)
	}
	if d := match(set, query("UPDATE t SET a=1")); d.DestinationHostgroup != 1 || d.FastRouted {
		t.Errorf("apply skips fast routing: %+v", d)
	}
	if d := match(set, query("INSERT INTO t VALUES (1)")); d.DestinationHostgroup != 11 {
		t.Errorf("empty-user fallback: %+v", d)
	}
	if d := match(set, query("DELETE FROM t")); d.DestinationHostgroup != 12 {
		t.Errorf("final flagIN: %+v", d)
	}
	q := query("SELECT 1")
	q.Schema = "other"
	if d := match(set, q); d.DestinationHostgroup != Unset {
		t.Errorf("other schema: %+v", d)
	}
}

func TestRuleFilters(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(9, dest(9), inactive(), apply()),
		qr(5, func(r *config.QueryRule) { r.ClientAddr = ns("10.0.%") }, schema("shop"), dest(5), apply()),
		qr(4, func(r *config.QueryRule) { r.ProxyPort = ni(6034) }, dest(4), apply()),
		qr(3, func(r *config.QueryRule) { r.ProxyAddr = ns("10.9.9.9") }, dest(3), apply()),
		qr(6, func(r *config.QueryRule) { r.ClientAddr = ns("%") }, dest(6), apply()),
	}, nil)
	if set.Len() != 4 {
		t.Fatalf("inactive rule compiled")
	}
	if d := match(set, query("SELECT 1")); d.DestinationHostgroup != 5 {
		t.Errorf("client_addr prefix + schema: %+v", d)
	}
	q := query("SELECT 1")
	q.ClientAddr = "192.168.1.1"
	if d := match(set, q); d.DestinationHostgroup != 6 {
		t.Errorf("client_addr catch-all: %+v", d)
	}
	q.ProxyPort = 6034
	if d := match(set, q); d.DestinationHostgroup != 4 {
		t.Errorf("proxy_port (rules sorted by id): %+v", d)
	}
	q.ProxyPort = 6033
	q.ProxyAddr = "10.9.9.9"
	if d := match(set, q); d.DestinationHostgroup != 3 {
		t.Errorf("proxy_addr: %+v", d)
	}
}

func TestDigestColumn(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, func(r *config.QueryRule) { r.Digest = ns("0x226CD90D52A2BA0B") }, dest(1), apply()),
		qr(2, func(r *config.QueryRule) { r.Digest = ns("0") }, dest(2), apply()),
	}, nil)
	if d := match(set, query("select @@version_comment limit 1")); d.DestinationHostgroup != 1 {
		t.Errorf("%+v", d)
	}
	// digest '0' means "no digest filter", like ProxySQL's strtoull → 0.
	if d := match(set, query("SELECT 2")); d.DestinationHostgroup != 2 {
		t.Errorf("%+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		r    config.QueryRule
		want string
	}{
		{qr(7, matchPattern("(unclosed")), "rule_id 7: bad match_pattern"},
		{qr(8, matchDigest(`(?<=SELECT \K) 1`)), "rule_id 8: bad match_digest"},
		{qr(9, matchPattern(`(a)\1(`)), "rule_id 9: bad match_pattern"},
		{qr(10, replacePattern("x")), "rule_id 10: bad replace_pattern"},
		{qr(11, matchPattern("(a)"), replacePattern(`\2`)), "rule_id 11: bad replace_pattern"},
		{qr(12, matchPattern("a"), replacePattern(`\q`)), "rule_id 12: bad replace_pattern"},
		{qr(13, func(r *config.QueryRule) { r.Digest = ns("0xZZ") }), "rule_id 13: bad digest"},
		{qr(14, func(r *config.QueryRule) { r.Attributes = "{not json" }), "rule_id 14: bad attributes"},
	}
	for _, c := range cases {
		_, err := Compile([]config.QueryRule{qr(1, dest(1)), c.r}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadRule) {
			t.Errorf("rule %d: err %v, want %q", c.r.RuleID, err, c.want)
		}
	}
	// A construct neither RE2 nor the backtracking engine has explains
	// itself.
	_, err := Compile([]config.QueryRule{qr(3, matchDigest(`SELECT \K1`))}, nil)
	if !errors.Is(err, ErrUnsupportedRegex) {
		t.Errorf("\\K: %v", err)
	}
}

// TestBacktrackingPatterns: lookaround and backreferences, which ProxySQL's
// PCRE runs and RE2 cannot express, run on the backtracking engine —
// matching, negation, CASELESS, a rewrite — and a pattern that backtracks
// catastrophically counts as not matching instead of stalling.
func TestBacktrackingPatterns(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest(`^SELECT (?!.*FOR UPDATE)`), dest(20), apply()),
		qr(2, matchPattern(`(?<=FROM )(\w+) JOIN \1\b`), dest(30), apply()),
		qr(3, matchPattern(`^update (?=.*where)`), mods("CASELESS"), dest(40), apply()),
		qr(4, matchPattern(`(\w+)@(?=example)`), replacePattern(`\1 AT `), mods("GLOBAL")),
		qr(5, matchPattern(`^(?=(a+)+$)`), dest(50), apply()),
	}, nil)
	for q, want := range map[string]int{
		"SELECT * FROM t WHERE id = 1":            20,
		"SELECT * FROM t WHERE id = 1 FOR UPDATE": -1,
		"DELETE FROM t JOIN t":                    30,
		"DELETE FROM t JOIN u":                    -1,
		"UPDATE t SET a = 1 WHERE id = 2":         40,
		"UPDATE t SET a = 1":                      -1,
	} {
		if d := match(set, query(q)); d.DestinationHostgroup != want {
			t.Errorf("%s: hostgroup %d, want %d", q, d.DestinationHostgroup, want)
		}
	}
	d := match(set, query("INSERT INTO m VALUES ('ann@example.org', 'bob@example.com', 'eve@other.net')"))
	if string(d.NewQuery) != "INSERT INTO m VALUES ('ann AT example.org', 'bob AT example.com', 'eve@other.net')" {
		t.Errorf("backtracking rewrite: %q", d.NewQuery)
	}
	// (a+)+ against 40 a's and a '!' backtracks exponentially: cut off.
	if d := match(set, query(strings.Repeat("a", 40)+"!")); d.DestinationHostgroup == 50 {
		t.Errorf("a catastrophic pattern matched")
	}
}

func TestPCRETranslation(t *testing.T) {
	cases := []struct{ in, want string }{
		{`^SELECT.*FOR UPDATE$`, `^SELECT.*FOR UPDATE$`},
		{`a++b*+c?+`, `a+b*c?`},
		{`a+?b`, `a+?b`},
		{`(?>abc)`, `(?:abc)`},
		{`x\Z`, `x$`},
		{`\h+\H\R`, `[\t ]+[^\t ](?:\r\n|\n|\r)`},
		{`[\h,]`, `[\t ,]`},
		{`[]a]+`, `[]a]+`},
		{`[[:alpha:]]{2,3}+`, `[[:alpha:]]{2,3}`},
		{`\Qa+b\E+`, `\Qa+b\E+`},
		{`(?#comment)x`, `x`},
		{`(?i)select`, `(?i)select`},
		{`(?<name>x)`, `(?<name>x)`},
	}
	for _, c := range cases {
		got, _, err := translatePCRE(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// $ also matches before a final newline, as in PCRE.
	re, err := compileRegex(`UPDATE$`, true)
	if err != nil || !re.match([]byte("for update\n")) || re.match([]byte("for update\nx")) {
		t.Errorf("dollar before final newline: %v", err)
	}
	// PCRE that RE2 refuses runs on the backtracking engine; what neither
	// reads is refused with the error for the pattern as written.
	for p, subject := range map[string]string{
		`(?x)^SELECT  \s @@port`: "select @@port",
		`^(a)?(?(1)b|c)`:         "ab",
		`^x\e`:                   "x\x1b",
	} {
		re, err := compileRegex(p, true)
		if err != nil || !re.match([]byte(subject)) {
			t.Errorf("%q on %q: %v", p, subject, err)
		}
	}
	if _, err := compileRegex(`^SELECT (`, true); err == nil || strings.Contains(err.Error(), "(?i)") {
		t.Errorf("a bad pattern: %v", err)
	}
}

func TestWeightedFlagOUTs(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("."), func(r *config.QueryRule) {
			r.Attributes = `{"flagOUTs":[{"id":1,"weight":1},{"id":2,"weight":3},{"id":"bad","weight":5}]}`
		}),
		qr(2, flagIN(1), dest(10), apply()),
		qr(3, flagIN(2), dest(20), apply()),
	}, nil)
	counts := map[int]int{}
	q := query("SELECT 1")
	for i := 0; i < 4000; i++ {
		counts[match(set, q).DestinationHostgroup]++
	}
	if len(counts) != 2 || counts[10] < 800 || counts[10] > 1200 || counts[20] < 2800 {
		t.Errorf("weighted distribution off: %v", counts)
	}
	if h := set.Hits(); h[1] != 4000 || h[2]+h[3] != 4000 {
		t.Errorf("hits %v", h)
	}
	// A plain flagOUT on the same rule wins over the weights, as in ProxySQL.
	set = mustCompile(t, []config.QueryRule{
		qr(1, matchDigest("."), flagOUT(2), func(r *config.QueryRule) { r.Attributes = `{"flagOUTs":[{"id":1,"weight":1}]}` }),
		qr(2, flagIN(1), dest(10), apply()),
		qr(3, flagIN(2), dest(20), apply()),
	}, nil)
	if d := match(set, q); d.DestinationHostgroup != 20 {
		t.Errorf("flagOUT vs weights: %+v", d)
	}
}

// TestWithOptions: the query-processor variables change how an already
// compiled rule set evaluates (no recompilation), and the hit counters are
// shared between the two views.
func TestWithOptions(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{qr(1, matchDigest("^SELECT"), dest(10))}, nil)
	q := query("SELECT /* hostgroup=2 */ 1")
	if d := match(set, q); d.DestinationHostgroup != 2 {
		t.Errorf("default (2): annotation should win, got hostgroup %d", d.DestinationHostgroup)
	}
	before := set.WithOptions(CompileOptions{FirstCommentParsing: 1})
	if d := match(before, q); d.DestinationHostgroup != 10 {
		t.Errorf("first_comment_parsing=1: rule should win, got hostgroup %d", d.DestinationHostgroup)
	}
	if d := match(set.WithOptions(CompileOptions{FirstCommentParsing: 0}), q); d.DestinationHostgroup != 10 {
		t.Errorf("first_comment_parsing=0: comment ignored, got hostgroup %d", d.DestinationHostgroup)
	}
	if o := set.WithOptions(CompileOptions{FirstCommentParsing: 9, Iterations: -1}).Options(); o != DefaultCompileOptions() {
		t.Errorf("out-of-range options not fixed: %+v", o)
	}
	if h := set.Hits()[1]; h != 3 {
		t.Errorf("hits shared between views: %d, want 3", h)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	set := benchRuleSet(t)
	q := query("SELECT /* hostgroup=3 */ c FROM sbtest1 WHERE id=4242")
	var d Decision
	set.Match(q, &d)
	allocs := testing.AllocsPerRun(200, func() { set.Match(q, &d) })
	if allocs != 0 {
		t.Errorf("Match allocates %.1f times per call", allocs)
	}
}

func benchRuleSet(tb testing.TB) *RuleSet {
	set, err := Compile([]config.QueryRule{
		qr(10, matchDigest(`^SELECT .* FOR UPDATE$`), dest(1), apply()),
		qr(20, matchDigest(`^SELECT`), user("reporting"), dest(3), apply()),
		qr(30, matchDigest(`^SELECT COUNT\(\*\)`), dest(2), func(r *config.QueryRule) { r.CacheTTL = ni(5000) }, apply()),
		qr(40, matchDigest(`^(INSERT|UPDATE|DELETE|REPLACE)`), dest(1), apply()),
		qr(50, matchPattern(`sbtest[0-9]+`), flagOUT(1)),
		qr(60, flagIN(1), matchDigest(`^SELECT`), dest(2), apply()),
		qr(70, matchDigest(`.`), dest(1), apply()),
	}, []config.FastRoute{{Username: "app", Schemaname: "shop", FlagIN: 0, DestinationHostgroup: 9}})
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func BenchmarkMatch(b *testing.B) {
	set := benchRuleSet(b)
	qs := []*Query{
		query("SELECT c FROM sbtest1 WHERE id=4242"),
		query("UPDATE sbtest3 SET k=k+1 WHERE id=7781"),
		query("SELECT COUNT(*) FROM orders WHERE status='open'"),
		query("SELECT /* hostgroup=3 */ a FROM t"),
	}
	var d Decision
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set.Match(qs[i%len(qs)], &d)
	}
}

func TestConcurrentMatchCountsHits(t *testing.T) {
	set := benchRuleSet(t)
	q := query("UPDATE t SET a=1")
	const workers, perWorker = 4, 1000
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			var d Decision
			for i := 0; i < perWorker; i++ {
				set.Match(q, &d)
				if d.DestinationHostgroup != 1 {
					t.Errorf("hg %d", d.DestinationHostgroup)
					return
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	if h := set.Hits(); h[40] != workers*perWorker || h[10] != 0 {
		t.Errorf("hits %v", h)
	}
}
