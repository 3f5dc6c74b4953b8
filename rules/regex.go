package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unsafe"

	"github.com/dlclark/regexp2/v2"
)

// ErrUnsupportedRegex marks PCRE constructs RE2 cannot express
// (lookaround, backreferences, \G, \K). A pattern with one compiles with
// a backtracking engine instead (compiledRegex.bt); the error remains for
// what that engine refuses too.
var ErrUnsupportedRegex = errors.New("unsupported PCRE construct")

// backtrackTimeout bounds one match of a backtracking pattern: a pattern
// that backtracks catastrophically on some query counts as not matching it
// after this long, rather than stalling the session (PCRE has its match
// limit for the same reason).
const backtrackTimeout = 50 * time.Millisecond

// compiledRegex is a match_digest or match_pattern ready for matching.
type compiledRegex struct {
	re *regexp.Regexp
	// bt is set instead of re for a pattern RE2 cannot express (lookaround
	// such as ^SELECT (?!.*FOR UPDATE), backreferences): ProxySQL's PCRE
	// runs it, so Sluice runs it with a backtracking engine of Perl syntax
	// and semantics — slower and allocating per match, only for such rules.
	bt *regexp2.Regexp
	// dollar is set when the pattern anchors with $ or \Z: PCRE lets those
	// match before a final newline, RE2 does not, so Match retries without
	// a trailing '\n'.
	dollar bool
	// lits are strings every match contains (requiredLiterals): a subject
	// without one of them is no match, whatever the engine would take to
	// find that out. Empty when none could be derived with certainty, and
	// always for bt patterns.
	lits []literal
}

func (c *compiledRegex) match(s []byte) bool {
	for i := range c.lits {
		if !c.lits[i].in(s) {
			return false
		}
	}
	return c.matchEngine(s)
}

// matchEngine is match without the literal prefilter.
func (c *compiledRegex) matchEngine(s []byte) bool {
	if c.bt != nil {
		// regexp2 reads the string during the call only (it decodes it into
		// runes of its own), and s does not change meanwhile: no copy.
		ok, err := c.bt.MatchString(unsafe.String(unsafe.SliceData(s), len(s)))
		return ok && err == nil // past backtrackTimeout: no match
	}
	if c.re.Match(s) {
		return true
	}
	if c.dollar && len(s) > 0 && s[len(s)-1] == '\n' {
		return c.re.Match(s[:len(s)-1])
	}
	return false
}

// numSubexp is the number of capturing groups.
func (c *compiledRegex) numSubexp() int {
	if c.bt != nil {
		return len(c.bt.GetGroupNumbers()) - 1
	}
	return c.re.NumSubexp()
}

// replace is replace_pattern applied to s (tmpl from translateRewrite):
// every match with global, else the first; s unchanged when nothing
// matches.
func (c *compiledRegex) replace(s, tmpl []byte, global bool) []byte {
	if c.bt != nil {
		count := 1
		if global {
			count = -1
		}
		out, err := c.bt.Replace(string(s), string(tmpl), -1, count)
		if err != nil {
			return append([]byte(nil), s...)
		}
		return []byte(out)
	}
	if global {
		return c.re.ReplaceAll(s, tmpl)
	}
	loc := c.re.FindSubmatchIndex(s)
	if loc == nil {
		return append([]byte(nil), s...)
	}
	res := make([]byte, 0, len(s)+len(tmpl))
	res = append(res, s[:loc[0]]...)
	res = c.re.Expand(res, tmpl, s, loc)
	return append(res, s[loc[1]:]...)
}

func compileRegex(pattern string, caseless bool) (*compiledRegex, error) {
	tr, dollar, err := translatePCRE(pattern)
	if err == nil {
		_, err = regexp.Compile(tr) // the error, if any, names the pattern as written
	}
	if err != nil {
		// Lookaround, backreferences, and the rest of PCRE that RE2 does
		// not take ((?x), conditionals, \e…): the backtracking engine
		// reads them, as ProxySQL's PCRE does.
		opts := regexp2.None
		if caseless {
			opts |= regexp2.IgnoreCase
		}
		bt, err2 := regexp2.Compile(pattern, opts)
		if err2 != nil {
			if errors.Is(err, ErrUnsupportedRegex) {
				return nil, fmt.Errorf("%w, and the backtracking engine refuses it: %v", err, err2)
			}
			return nil, err
		}
		bt.MatchTimeout = backtrackTimeout
		return &compiledRegex{bt: bt}, nil
	}
	if caseless {
		tr = "(?i)" + tr
	}
	re, err := regexp.Compile(tr)
	if err != nil {
		return nil, err
	}
	return &compiledRegex{re: re, dollar: dollar, lits: requiredLiterals(tr)}, nil
}

// translatePCRE rewrites the PCRE syntax ProxySQL users write (its default
// engine is PCRE) into the RE2 syntax Go accepts, where a cheap rewrite
// exists: possessive quantifiers and atomic groups lose their
// no-backtracking hint (RE2 never backtracks), \Z becomes $, \h/\H/\R are
// spelled out. Lookaround and backreferences have no RE2 equivalent: they
// are reported as ErrUnsupportedRegex, and compileRegex hands the pattern
// to the backtracking engine.
func translatePCRE(p string) (out string, dollar bool, err error) {
	var b strings.Builder
	b.Grow(len(p) + 8)
	inClass := false
	classStart := -1 // index in p of the first char after '[' or '[^'
	lastQuant := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' {
			if i+1 >= len(p) {
				b.WriteByte(c)
				break
			}
			n := p[i+1]
			i++
			lastQuant = false
			if inClass {
				switch n {
				case 'h':
					b.WriteString(`\t `)
				default:
					b.WriteByte('\\')
					b.WriteByte(n)
				}
				continue
			}
			switch {
			case n == 'Z':
				b.WriteByte('$')
				dollar = true
			case n == 'h':
				b.WriteString(`[\t ]`)
			case n == 'H':
				b.WriteString(`[^\t ]`)
			case n == 'R':
				b.WriteString(`(?:\r\n|\n|\r)`)
			case n >= '1' && n <= '9', n == 'g', n == 'k':
				return "", false, fmt.Errorf("%w: backreference \\%c", ErrUnsupportedRegex, n)
			case n == 'G', n == 'K':
				return "", false, fmt.Errorf("%w: \\%c", ErrUnsupportedRegex, n)
			case n == 'Q':
				// \Q…\E quotes everything; copy it untouched.
				end := strings.Index(p[i+1:], `\E`)
				b.WriteString(`\Q`)
				if end < 0 {
					b.WriteString(p[i+1:])
					i = len(p)
				} else {
					b.WriteString(p[i+1 : i+1+end])
					b.WriteString(`\E`)
					i += end + 2
				}
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			continue
		}
		if inClass {
			switch {
			case c == ']' && i > classStart:
				inClass = false
			case c == '[' && i+1 < len(p) && p[i+1] == ':':
				// POSIX class [:alpha:] inside a bracket expression.
				if end := strings.Index(p[i+2:], ":]"); end >= 0 {
					b.WriteString(p[i : i+2+end+2])
					i += 2 + end + 1
					continue
				}
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			classStart = i + 1
			if classStart < len(p) && p[classStart] == '^' {
				b.WriteByte('^')
				i++
				classStart++
			}
			lastQuant = false
		case '(':
			lastQuant = false
			if i+1 < len(p) && p[i+1] == '?' {
				rest := p[i+2:]
				switch {
				case strings.HasPrefix(rest, ">"):
					b.WriteString("(?:")
					i += 2
				case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"),
					strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
					return "", false, fmt.Errorf("%w: lookaround", ErrUnsupportedRegex)
				case strings.HasPrefix(rest, "#"):
					// (?# comment )
					end := strings.IndexByte(rest, ')')
					if end < 0 {
						return "", false, errors.New("unterminated (?# comment")
					}
					i += 2 + end
				default:
					b.WriteString("(?")
					i++
				}
				continue
			}
			b.WriteByte(c)
		case '*', '+', '?':
			if lastQuant {
				lastQuant = false
				if c == '+' {
					continue // possessive: RE2 never backtracks anyway
				}
				b.WriteByte(c) // lazy modifier
				continue
			}
			b.WriteByte(c)
			lastQuant = true
		case '{':
			end := strings.IndexByte(p[i:], '}')
			if end > 0 && isRepeat(p[i+1:i+end]) {
				b.WriteString(p[i : i+end+1])
				i += end
				lastQuant = true
				continue
			}
			b.WriteByte(c)
			lastQuant = false
		case '$':
			dollar = true
			b.WriteByte(c)
			lastQuant = false
		default:
			b.WriteByte(c)
			lastQuant = false
		}
	}
	return b.String(), dollar, nil
}

func isRepeat(s string) bool {
	if s == "" {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == ',':
		default:
			return false
		}
	}
	return digits > 0
}

// translateRewrite turns a ProxySQL replace_pattern (RE2/PCRE rewrite
// syntax: \0-\9 backrefs, \\ for a backslash, $ literal) into a Go
// regexp.Expand template, and checks the group numbers against the pattern.
func translateRewrite(rw string, groups int) (string, error) {
	var b strings.Builder
	b.Grow(len(rw) + 8)
	for i := 0; i < len(rw); i++ {
		c := rw[i]
		switch c {
		case '$':
			b.WriteString("$$")
		case '\\':
			if i+1 >= len(rw) {
				return "", errors.New(`trailing \ in rewrite`)
			}
			i++
			n := rw[i]
			switch {
			case n >= '0' && n <= '9':
				if int(n-'0') > groups {
					return "", fmt.Errorf(`\%c refers to a group the pattern does not have (it has %d)`, n, groups)
				}
				b.WriteString("${")
				b.WriteByte(n)
				b.WriteByte('}')
			case n == '\\':
				b.WriteByte('\\')
			default:
				return "", fmt.Errorf(`invalid escape \%c in rewrite`, n)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
