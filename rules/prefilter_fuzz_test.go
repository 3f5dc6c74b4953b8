package rules

import (
	"bytes"
	"testing"
)

// FuzzPrefilter: for any pattern and subject, match (literal prefilter,
// then engine) answers as the engine alone does. Besides the subject, it
// tries the pattern text itself and case and Unicode-fold variants of
// both, so that matches are common rather than rare.
func FuzzPrefilter(f *testing.F) {
	for _, s := range []struct {
		p, s     string
		caseless bool
	}{
		{`INSERT INTO t7`, "insert into T7 values (1)", true},
		{`(?i)update\s+tab7\s+set`, "UPDATE tab7 SET a=1", false},
		{`^DELETE FROM x7`, "delete from x7", true},
		{`(?i)backup`, "BAC\u212AUP", false},
		{`select`, "\u017Felect", true},
		{`ab(?i)cd`, "abCD", false},
		{"ab\ufffdcd", "ab\xffcd", false},
		{`UPDATE$`, "for update\n", true},
		{`(ab)+c|d`, "ababc", false},
		{`x{0,3}yz*`, "xxy", true},
		{`[kK]elvin\QA.B\E`, "\u212AelvinA.B", true},
		{`(?is)a.b(?-i)C`, "A\nbC", false},
		{`^SELECT (?!.*FOR UPDATE)`, "select 1", true},
		{`(?i)ÉTÉ`, "été", false},
	} {
		f.Add(s.p, []byte(s.s), s.caseless)
	}
	f.Fuzz(func(t *testing.T, pattern string, subject []byte, caseless bool) {
		if len(pattern) > 200 || len(subject) > 1000 {
			return
		}
		re, err := compileRegex(pattern, caseless)
		if err != nil || re.bt != nil {
			return // the backtracking engine has no prefilter
		}
		for _, s := range [][]byte{subject, []byte(pattern)} {
			for _, v := range [][]byte{
				s,
				bytes.ToUpper(s),
				bytes.ToLower(s),
				bytes.ToLower(bytes.ToUpper(s)), // ſ becomes s, K sign k
				bytes.ReplaceAll(bytes.ReplaceAll(s, []byte("k"), []byte("\u212A")), []byte("s"), []byte("\u017F")),
				bytes.ReplaceAll(bytes.ReplaceAll(s, []byte("K"), []byte("\u212A")), []byte("S"), []byte("\u017F")),
				append(bytes.Clone(s), '\n'),
			} {
				if got, want := re.match(v), re.matchEngine(v); got != want {
					t.Fatalf("pattern %q (caseless %v) on %q: prefiltered %v, engine %v (literals %q)",
						pattern, caseless, v, got, want, litStrings(re))
				}
			}
		}
	})
}
