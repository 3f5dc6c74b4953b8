package rules

import (
	"fmt"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// manyRules is n rules none of which matches a sysbench point select: each
// has only a match_pattern (CASELESS, the ProxySQL default), so every
// query runs every pattern.
func manyRules(tb testing.TB, n int, pattern func(i int) string) *RuleSet {
	rs := make([]config.QueryRule, 0, n)
	for i := range n {
		rs = append(rs, qr(i+1, matchPattern(pattern(i)), dest(int64(i%7))))
	}
	set, err := Compile(rs, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func BenchmarkManyRulesNoMatch(b *testing.B) {
	cases := []struct {
		name    string
		pattern func(i int) string
	}{
		{"literal500", func(i int) string { return fmt.Sprintf("INSERT INTO t%d", i) }},
		{"update500", func(i int) string { return fmt.Sprintf(`(?i)update\s+tab%d\s+set`, i) }},
		{"anchored500", func(i int) string { return fmt.Sprintf(`^DELETE FROM x%d`, i) }},
		{"lookahead50", func(i int) string { return fmt.Sprintf(`^UPDATE (?!.*tab%d)`, i) }},
	}
	q := query("SELECT c FROM sbtest1 WHERE id=4242")
	for _, c := range cases {
		n := 500
		if c.name == "lookahead50" {
			n = 50
		}
		set := manyRules(b, n, c.pattern)
		b.Run(c.name, func(b *testing.B) {
			var d Decision
			b.ReportAllocs()
			for b.Loop() {
				set.Match(q, &d)
				if d.DestinationHostgroup != Unset {
					b.Fatalf("matched hg %d", d.DestinationHostgroup)
				}
			}
		})
	}
}
