package rules

import (
	"bytes"
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// A literal is a byte string every match of a pattern contains, so a
// subject without it cannot match and the engine need not run. At each
// position the subject byte must equal lo or up: they differ only where
// the pattern folds the case of an ASCII letter whose case orbit is those
// two bytes alone.
type literal struct {
	lo, up []byte
	fold   bool // some position has lo != up
	prefix bool // the subject must start with it, not merely contain it
	anchor int  // position searched for first (the likely rarest byte)
}

// maxLiterals bounds the literals checked per match: the longest first,
// which decides most subjects; the rest only cost a scan on a subject that
// has the first.
const maxLiterals = 3

// requiredLiterals returns literals every match of the RE2 pattern expr
// (the exact string given to regexp.Compile) contains, longest first. It
// returns none when it cannot derive one it is sure of.
//
// A pattern anchored at the start of the text (^ without (?m), \A) is the
// exception: the engine fails such a pattern at once on a subject that
// starts differently, where a search would scan the whole subject (a bulk
// INSERT of megabytes, for each rule). It gets at most one literal, its
// leading one, checked at the start of the subject only.
func requiredLiterals(expr string) []literal {
	re, err := syntax.Parse(expr, syntax.Perl) // what regexp.Compile parses with
	if err != nil {
		return nil
	}
	if re.Op == syntax.OpConcat && len(re.Sub) > 1 && re.Sub[0].Op == syntax.OpBeginText {
		var lead []foldRune
		for _, sub := range re.Sub[1:] {
			rs, ok := exactRunes(sub)
			if !ok {
				break
			}
			lead = append(lead, rs...)
		}
		if len(lead) == 0 || !exactByte(lead[0]) {
			return nil
		}
		l := toLiterals(lead)[0]
		l.prefix = true
		return []literal{l}
	}
	if re.Op == syntax.OpBeginText {
		return nil
	}
	var runs [][]foldRune
	collectRequired(re, &runs)
	var lits []literal
	for _, run := range runs {
		for _, l := range toLiterals(run) {
			if !slices.ContainsFunc(lits, func(o literal) bool {
				return bytes.Equal(o.lo, l.lo) && bytes.Equal(o.up, l.up)
			}) {
				lits = append(lits, l)
			}
		}
	}
	slices.SortStableFunc(lits, func(a, b literal) int { return len(b.lo) - len(a.lo) })
	if len(lits) > maxLiterals {
		lits = lits[:maxLiterals]
	}
	return lits
}

// foldRune is a rune of a literal and whether the pattern folds its case.
type foldRune struct {
	r    rune
	fold bool
}

// exactRunes returns the runes re matches exactly (one string, possibly
// case-folded), or ok false when re can match more than one string.
func exactRunes(re *syntax.Regexp) (rs []foldRune, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		for _, r := range re.Rune {
			rs = append(rs, foldRune{r, fold})
		}
		return rs, true
	case syntax.OpEmptyMatch:
		return nil, true
	case syntax.OpCapture:
		return exactRunes(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			s, ok := exactRunes(sub)
			if !ok {
				return nil, false
			}
			rs = append(rs, s...)
		}
		return rs, true
	}
	return nil, false
}

// collectRequired appends to runs rune strings every match of re contains.
// Only constructs that must match at least once contribute: alternations,
// optional and possibly-zero repetitions, classes and assertions do not.
func collectRequired(re *syntax.Regexp, runs *[][]foldRune) {
	switch re.Op {
	case syntax.OpLiteral:
		rs, _ := exactRunes(re)
		*runs = append(*runs, rs)
	case syntax.OpCapture:
		collectRequired(re.Sub[0], runs)
	case syntax.OpPlus:
		collectRequired(re.Sub[0], runs)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			collectRequired(re.Sub[0], runs)
		}
	case syntax.OpConcat:
		// Adjacent exact parts match adjacent text: one literal. Anything
		// else (an assertion included) ends the current run.
		var cur []foldRune
		for _, sub := range re.Sub {
			if rs, ok := exactRunes(sub); ok {
				cur = append(cur, rs...)
				continue
			}
			if len(cur) > 0 {
				*runs = append(*runs, cur)
				cur = nil
			}
			collectRequired(sub, runs)
		}
		if len(cur) > 0 {
			*runs = append(*runs, cur)
		}
	}
}

// asciiOrbit reports whether the case-fold orbit of r (the runes Go's (?i)
// lets it match) is r alone, or r and one other rune with both ASCII. It
// is false for k and s: (?i)k also matches U+212A KELVIN SIGN and (?i)s
// U+017F LONG S, which a byte search for k or s would miss.
func asciiOrbit(r rune) (other rune, ok bool) {
	f := unicode.SimpleFold(r)
	if f == r {
		return r, true
	}
	if r >= utf8.RuneSelf || f >= utf8.RuneSelf || unicode.SimpleFold(f) != r {
		return 0, false
	}
	return f, true
}

// toLiterals turns a run of runes into byte literals, cutting it where a
// rune has no exact byte form: a folded rune whose orbit is not ASCII, and
// U+FFFD, which the engine also matches at an invalid UTF-8 byte. Every
// piece of a required run is required too.
func toLiterals(run []foldRune) []literal {
	var out []literal
	var lo, up []byte
	flush := func() {
		if len(lo) > 0 {
			out = append(out, newLiteral(lo, up))
		}
		lo, up = nil, nil
	}
	for _, fr := range run {
		r := fr.r
		if !exactByte(fr) {
			flush()
			continue
		}
		if fr.fold {
			if o, _ := asciiOrbit(r); o != r {
				lo = append(lo, byte(min(r, o)))
				up = append(up, byte(max(r, o)))
				continue
			}
		}
		lo = utf8.AppendRune(lo, r)
		up = utf8.AppendRune(up, r)
	}
	flush()
	return out
}

// exactByte reports whether the text fr matches has a byte form
// toLiterals can search for.
func exactByte(fr foldRune) bool {
	if fr.r == utf8.RuneError || !utf8.ValidRune(fr.r) {
		return false
	}
	if fr.fold {
		_, ok := asciiOrbit(fr.r)
		return ok
	}
	return true
}

func newLiteral(lo, up []byte) literal {
	l := literal{lo: lo, up: up, fold: !bytes.Equal(lo, up)}
	best := -1
	for i := range lo {
		if s := byteCost(lo[i], up[i]); best < 0 || s < best {
			best, l.anchor = s, i
		}
	}
	return l
}

// byteCost ranks anchor candidates: rare bytes are cheap, a letter of
// either case costs two searches.
func byteCost(lo, up byte) int {
	const common = "etaoinsrlcdumhpfgbywvkxjqz" // roughly by frequency in SQL
	c := 0
	switch {
	case lo == ' ':
		c = 60
	case lo >= 'a' && lo <= 'z':
		c = 2 * (26 - bytes.IndexByte([]byte(common), lo))
	case lo >= 'A' && lo <= 'Z':
		c = 2 * (26 - bytes.IndexByte([]byte(common), lo+'a'-'A'))
	case lo >= '0' && lo <= '9':
		c = 20
	}
	if lo != up {
		c += 30
	}
	return c
}

// in reports whether s contains the literal. It does not allocate.
func (l *literal) in(s []byte) bool {
	if l.prefix {
		return len(s) >= len(l.lo) && l.equal(s[:len(l.lo)])
	}
	if !l.fold {
		return bytes.Contains(s, l.lo)
	}
	n, a := len(l.lo), l.anchor
	if len(s) < n {
		return false
	}
	// Candidate anchor positions lie in s[a : len(s)-n+a+1].
	lo, up := l.lo[a], l.up[a]
	for i, end := a, len(s)-n+a+1; i < end; {
		w := s[i:end]
		k := bytes.IndexByte(w, lo)
		if lo != up {
			lim := w
			if k >= 0 {
				lim = w[:k]
			}
			if j := bytes.IndexByte(lim, up); j >= 0 {
				k = j
			}
		}
		if k < 0 {
			return false
		}
		p := i + k - a
		if l.equal(s[p : p+n]) {
			return true
		}
		i += k + 1
	}
	return false
}

func (l *literal) equal(t []byte) bool {
	for i, c := range t {
		if c != l.lo[i] && c != l.up[i] {
			return false
		}
	}
	return true
}
