package rules

import (
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

func litStrings(c *compiledRegex) []string {
	var out []string
	for _, l := range c.lits {
		p := ""
		if l.prefix {
			p = "^"
		}
		out = append(out, p+string(l.lo)+"|"+string(l.up))
	}
	return out
}

// TestRequiredLiterals: what the prefilter requires of a subject.
func TestRequiredLiterals(t *testing.T) {
	cases := []struct {
		pattern  string
		caseless bool
		want     string // literals' lo|up, comma-separated, longest first; ^ a prefix
	}{
		// CASELESS: the s cuts the literal (see below).
		{`INSERT INTO t7`, true, "ERT INTO T7|ert into t7,IN|in"},
		{`INSERT INTO t7`, false, "INSERT INTO t7|INSERT INTO t7"},
		{`(?i)update\s+tab7\s+set`, false, "UPDATE|update,TAB7|tab7,ET|et"},
		{`^DELETE FROM x7`, false, "^DELETE FROM x7|DELETE FROM x7"},
		// Alternations, optional and repeated parts require nothing of
		// their own; the parser factors a common prefix out.
		{`foo|bar`, false, ""},
		{`UPDATE a|UPDATE b`, false, "UPDATE |UPDATE "},
		{`ab*c`, false, "a|a,c|c"},
		{`(abc)?d`, false, "d|d"},
		{`x{0,3}yz`, false, "yz|yz"},
		{`(xy){2,}z`, false, "xy|xy,z|z"},
		{`(xy)+z`, false, "xy|xy,z|z"},
		{`a.b[cd]e`, false, "a|a,b|b,e|e"},
		// (?i) inside the pattern, and only for part of it.
		{`ab(?i)cd`, false, "abCD|abcd"},
		{`ab(?i:cd)ef`, false, "abCDef|abcdef"},
		// k and s fold to U+212A and U+017F too: they cut the literal.
		{`(?i)backup`, false, "BAC|bac,UP|up"},
		{`(?i)select`, false, "ELECT|elect"},
		{`select`, false, "select|select"},
		// U+FFFD also matches an invalid byte.
		{"ab\ufffdcd", false, "ab|ab,cd|cd"},
		{`\Qa.b\E`, false, "a.b|a.b"},
		{`^SELECT (?!.*FOR UPDATE)`, true, ""}, // backtracking engine: no prefilter
		// Anchored at the start: the leading literal only, as a prefix, or
		// nothing (caseless S has no byte form).
		{`^DELETE FROM x7 WHERE id`, false, "^DELETE FROM x7 WHERE id|DELETE FROM x7 WHERE id"},
		{`^SELECT .* FOR UPDATE`, true, ""},
		{`^(INSERT|UPDATE) INTO t`, false, ""},
		{`(?m)^UPDATE t`, false, "UPDATE t|UPDATE t"},
	}
	for _, c := range cases {
		re, err := compileRegex(c.pattern, c.caseless)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		got := strings.Join(litStrings(re), ",")
		if got != c.want {
			t.Errorf("%q (caseless %v): literals %q, want %q", c.pattern, c.caseless, got, c.want)
		}
	}
}

// TestPrefilterExact: subjects the engine matches in ways a naive byte
// search would miss.
func TestPrefilterExact(t *testing.T) {
	cases := []struct {
		pattern  string
		caseless bool
		subject  string
		want     bool
	}{
		{`(?i)backup`, false, "BAC\u212AUP", true},   // KELVIN SIGN
		{`(?i)select`, false, "\u017FELECT 1", true}, // LONG S
		{`select`, true, "\u017Felect 1", true},
		{`kill`, true, "\u212Aill 7", true},
		{`INSERT INTO t7`, true, "insert into T7 values (1)", true},
		{`INSERT INTO t7`, true, "insert into t8", false},
		{`INSERT INTO t7`, false, "insert into t7", false},
		{`ab(?i)cd`, false, "xxabCdxx", true},
		{`ab(?i)cd`, false, "xxAbcdxx", false},
		{"ab\ufffdcd", false, "ab\xffcd", true}, // invalid UTF-8 matches U+FFFD
		{`(?i)\x{212A}elvin`, false, "kelvin", true},
		{`foo|bar`, true, "BAR", true},
		{`(?i)update\s+tab7\s+set`, false, "UPDATE  Tab7\tSET a=1", true},
		{`(?i)update\s+tab7\s+set`, false, "SELECT c FROM sbtest1 WHERE id=?", false},
		// $ may match before a final newline; the literal is before it.
		{`UPDATE$`, true, "for update\n", true},
		{`a\n$`, false, "a\n\n", true},
		{`^SELECT (?!.*FOR UPDATE)`, true, "select 1", true},
		{`^SELECT (?!.*FOR UPDATE)`, true, "select 1 for update", false},
		{`x*`, false, "", true},
		// Anchored: only a leading literal, checked at the start.
		{`^DELETE FROM x7`, true, "delete from X7 where 1", true},
		{`^DELETE FROM x7`, true, " delete from x7", false},
		{`\ADELETE`, false, "DELETE\n", true},
		{`^DEL`, false, "DE", false},
		{`(?m)^DELETE`, false, "SELECT 1;\nDELETE FROM t", true},
		{`UPDATE$`, false, "UPDATE\n", true},
		{`(?i)ÉTÉ`, false, "été", true},
		{`été`, false, "ÉTÉ", false},
	}
	for _, c := range cases {
		re, err := compileRegex(c.pattern, c.caseless)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		s := []byte(c.subject)
		if got := re.match(s); got != c.want || got != re.matchEngine(s) {
			t.Errorf("%q (caseless %v) on %q: match %v, engine %v, want %v",
				c.pattern, c.caseless, c.subject, got, re.matchEngine(s), c.want)
		}
	}
}

// TestNegatedRuleWithPrefilter: negate_match_pattern inverts the exact
// answer, prefilter or not.
func TestNegatedRuleWithPrefilter(t *testing.T) {
	set := mustCompile(t, []config.QueryRule{qr(1, matchPattern(`INSERT INTO t7`), negate(), dest(5))}, nil)
	if d := match(set, query("SELECT c FROM sbtest1 WHERE id=1")); d.DestinationHostgroup != 5 {
		t.Errorf("negated rule on a subject without the literal: hg %d", d.DestinationHostgroup)
	}
	if d := match(set, query("insert into T7 values (1)")); d.DestinationHostgroup != Unset {
		t.Errorf("negated rule on a matching subject: hg %d", d.DestinationHostgroup)
	}
}

func TestLiteralSearch(t *testing.T) {
	l := newLiteral([]byte("UPDATE T7"), []byte("update t7"))
	for s, want := range map[string]bool{
		"":                     false,
		"update t7":            true,
		"xxUpDaTe T7":          true,
		"update t":             false,
		"uuuupdate t7 set":     true,
		"update t8 update T7x": true,
		"updatE_t7":            false,
	} {
		if got := l.in([]byte(s)); got != want {
			t.Errorf("%q in %q: %v", "update t7", s, got)
		}
	}
	if a := testingAllocs(func() { l.in([]byte("SELECT c FROM sbtest1 WHERE id=1 update t7")) }); a != 0 {
		t.Errorf("search allocates %v", a)
	}
}

func testingAllocs(f func()) float64 {
	if raceEnabled {
		return 0
	}
	return testing.AllocsPerRun(100, f)
}
