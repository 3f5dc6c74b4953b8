package cnf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type tokKind int

const (
	tEOF tokKind = iota
	tName
	tString
	tInt
	tFloat
	tBool
	tEquals // '=' or ':'
	tComma
	tSemicolon
	tGroupStart
	tGroupEnd
	tArrayStart
	tArrayEnd
	tListStart
	tListEnd
)

type token struct {
	kind tokKind
	text string // name, unescaped string, number as written, "true"/"false", or the punctuation
	line int
	file string
}

// describe renders a token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tName:
		return fmt.Sprintf("name %q", t.text)
	case tString:
		return fmt.Sprintf("string %q", t.text)
	case tInt:
		return "integer " + t.text
	case tFloat:
		return "float " + t.text
	case tBool:
		return "boolean " + t.text
	}
	return "'" + t.text + "'"
}

// maxIncludeDepth is libconfig's MAX_INCLUDE_DEPTH.
const maxIncludeDepth = 10

// source is one file (or the Parse input) being scanned.
type source struct {
	data []byte
	pos  int
	line int
	file string // "" for Parse input
}

// lexer turns libconfig text into tokens. It follows the flex rules of
// libconfig 1.7's scanner.l, including longest match with ties going to the
// earlier rule, and inlines @include files the way the scanner does: the
// included file's tokens come where the directive stood.
type lexer struct {
	stack []*source
	files bool // @include allowed (ParseFile)
}

func newLexer(data []byte, file string, files bool) *lexer {
	return &lexer{stack: []*source{{data: data, line: 1, file: file}}, files: files}
}

func (lx *lexer) errorf(s *source, line int, format string, args ...any) error {
	return &ParseError{File: s.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// next returns the next token, or an error for text no rule accepts.
func (lx *lexer) next() (token, error) {
	for {
		s := lx.stack[len(lx.stack)-1]
		if s.pos >= len(s.data) {
			if len(lx.stack) > 1 {
				lx.stack = lx.stack[:len(lx.stack)-1]
				continue
			}
			return token{kind: tEOF, line: s.line, file: s.file}, nil
		}
		// ^[ \t]*@include[ \t]+" only matches at the start of a line.
		if s.pos == 0 || s.data[s.pos-1] == '\n' {
			if n := matchInclude(s.data[s.pos:]); n > 0 {
				if err := lx.include(s, n); err != nil {
					return token{}, err
				}
				continue
			}
		}
		c := s.data[s.pos]
		switch c {
		case '\n':
			s.line++
			s.pos++
			continue
		case ' ', '\t', '\r', '\f':
			s.pos++
			continue
		case '#':
			lx.skipLine(s)
			continue
		case '/':
			if s.pos+1 < len(s.data) && s.data[s.pos+1] == '/' {
				lx.skipLine(s)
				continue
			}
			if s.pos+1 < len(s.data) && s.data[s.pos+1] == '*' {
				lx.skipBlockComment(s)
				continue
			}
		case '"':
			return lx.scanString(s)
		}
		if k, ok := punct[c]; ok {
			s.pos++
			return token{kind: k, text: string(c), line: s.line, file: s.file}, nil
		}
		return lx.scanWord(s)
	}
}

var punct = map[byte]tokKind{
	'=': tEquals, ':': tEquals, ',': tComma, ';': tSemicolon,
	'{': tGroupStart, '}': tGroupEnd, '[': tArrayStart, ']': tArrayEnd,
	'(': tListStart, ')': tListEnd,
}

func (lx *lexer) skipLine(s *source) {
	for s.pos < len(s.data) && s.data[s.pos] != '\n' {
		s.pos++
	}
}

// skipBlockComment skips /* … */. An unterminated comment runs to the end of
// the file, as flex's default end-of-file action in the COMMENT state does.
func (lx *lexer) skipBlockComment(s *source) {
	s.pos += 2
	for s.pos < len(s.data) {
		if s.data[s.pos] == '*' && s.pos+1 < len(s.data) && s.data[s.pos+1] == '/' {
			s.pos += 2
			return
		}
		if s.data[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

// scanString scans a double-quoted string with libconfig's escapes: \n \r \t
// \f \\ \" and \xNN. Any other backslash stands for itself. Strings may span
// lines.
func (lx *lexer) scanString(s *source) (token, error) {
	start := s.line
	s.pos++ // opening quote
	var b strings.Builder
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			s.pos++
			return token{kind: tString, text: b.String(), line: start, file: s.file}, nil
		case '\n':
			s.line++
		case '\\':
			if s.pos+1 < len(s.data) {
				if e, ok := escapes[s.data[s.pos+1]]; ok {
					b.WriteByte(e)
					s.pos += 2
					continue
				}
				if x := s.data[s.pos+1]; (x == 'x' || x == 'X') && s.pos+3 < len(s.data) &&
					isHexDigit(s.data[s.pos+2]) && isHexDigit(s.data[s.pos+3]) {
					b.WriteByte(unhex(s.data[s.pos+2])<<4 | unhex(s.data[s.pos+3]))
					s.pos += 4
					continue
				}
			}
		}
		b.WriteByte(c)
		s.pos++
	}
	return token{}, lx.errorf(s, start, "unterminated string")
}

var escapes = map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', 'f': '\f', '\\': '\\', '"': '"'}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// scanWord scans names, booleans and numbers: the rules whose longest match
// decides the token. Ties go to the rule listed first in scanner.l: true,
// false, name, float, integer, integer64, hex, hex64.
func (lx *lexer) scanWord(s *source) (token, error) {
	rest := s.data[s.pos:]
	best, kind := 0, tEOF
	try := func(n int, k tokKind) {
		if n > best {
			best, kind = n, k
		}
	}
	try(matchBool(rest), tBool)
	try(matchName(rest), tName)
	try(matchFloat(rest), tFloat)
	try(matchInt(rest), tInt)
	if best == 0 {
		c := rest[0]
		if c < 0x20 || c >= 0x7f {
			return token{}, lx.errorf(s, s.line, "unexpected character 0x%02X", c)
		}
		if c == '@' {
			return token{}, lx.errorf(s, s.line, "unexpected character '@' (an @include directive must start its line)")
		}
		return token{}, lx.errorf(s, s.line, "unexpected character '%c'", c)
	}
	text := string(rest[:best])
	tok := token{kind: kind, text: text, line: s.line, file: s.file}
	switch kind {
	case tBool:
		tok.text = strings.ToLower(text)
	case tInt:
		if _, _, err := intValue(text); err != nil {
			return token{}, lx.errorf(s, s.line, "%s", strings.TrimPrefix(err.Error(), "cnf: "))
		}
	}
	s.pos += best
	return tok, nil
}

func matchBool(b []byte) int {
	for _, w := range []string{"true", "false"} {
		if len(b) >= len(w) && strings.EqualFold(string(b[:len(w)]), w) {
			return len(w)
		}
	}
	return 0
}

func matchName(b []byte) int {
	if len(b) == 0 || !isNameStart(b[0]) {
		return 0
	}
	n := 1
	for n < len(b) && isNameChar(b[n]) {
		n++
	}
	return n
}

func countDigits(b []byte, i int) int {
	n := 0
	for i+n < len(b) && isDigit(b[i+n]) {
		n++
	}
	return n
}

// matchExp matches [eE][-+]?[0-9]+ at i and returns the end, or i.
func matchExp(b []byte, i int) int {
	if i >= len(b) || (b[i] != 'e' && b[i] != 'E') {
		return i
	}
	j := i + 1
	if j < len(b) && (b[j] == '-' || b[j] == '+') {
		j++
	}
	if d := countDigits(b, j); d > 0 {
		return j + d
	}
	return i
}

// matchFloat implements
// ([-+]?([0-9]*)?\.[0-9]*([eE][-+]?[0-9]+)?)|([-+]?([0-9]+)(\.[0-9]*)?[eE][-+]?[0-9]+).
func matchFloat(b []byte) int {
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	d := countDigits(b, i)
	j := i + d
	if j < len(b) && b[j] == '.' {
		j++
		j += countDigits(b, j)
		return matchExp(b, j)
	}
	if d > 0 {
		if k := matchExp(b, j); k > j {
			return k
		}
	}
	return 0
}

// matchInt implements the integer, integer64, hex and hex64 rules and
// returns the longest.
func matchInt(b []byte) int {
	best := 0
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') && isHexDigit(b[2]) {
		n := 3
		for n < len(b) && isHexDigit(b[n]) {
			n++
		}
		best = n + countL(b, n)
	}
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	if d := countDigits(b, i); d > 0 {
		n := i + d
		n += countL(b, n)
		if n > best {
			best = n
		}
	}
	return best
}

// countL matches the L(L)? suffix at i.
func countL(b []byte, i int) int {
	n := 0
	for n < 2 && i+n < len(b) && b[i+n] == 'L' {
		n++
	}
	return n
}

// matchInclude matches ^[ \t]*@include[ \t]+" and returns its length.
func matchInclude(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if !strings.HasPrefix(string(b[i:min(len(b), i+8)]), "@include") {
		return 0
	}
	i += 8
	j := i
	for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
		j++
	}
	if j == i || j >= len(b) || b[j] != '"' {
		return 0
	}
	return j + 1
}

// include handles an @include directive whose opening part (up to and
// including the quote) is n bytes long: it reads the path, then pushes the
// named file so that its tokens come next.
func (lx *lexer) include(s *source, n int) error {
	line := s.line
	if !lx.files {
		return lx.errorf(s, line, "@include is not allowed when parsing text without a file; use ParseFile")
	}
	s.pos += n
	var b strings.Builder
	for {
		if s.pos >= len(s.data) {
			return lx.errorf(s, line, "unterminated @include path")
		}
		c := s.data[s.pos]
		s.pos++
		if c == '"' {
			break
		}
		if c == '\n' {
			s.line++
		}
		if c == '\\' {
			// In the scanner's INCLUDE state only \\ and \" are escapes; a
			// lone backslash matches no rule and is dropped.
			if s.pos < len(s.data) && (s.data[s.pos] == '\\' || s.data[s.pos] == '"') {
				b.WriteByte(s.data[s.pos])
				s.pos++
			}
			continue
		}
		b.WriteByte(c)
	}
	path := b.String()
	if path == "" {
		return lx.errorf(s, line, "@include with an empty path")
	}
	if len(lx.stack) > maxIncludeDepth {
		return lx.errorf(s, line, "include file nesting too deep")
	}
	if !filepath.IsAbs(path) && s.file != "" {
		path = filepath.Join(filepath.Dir(s.file), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return lx.errorf(s, line, "cannot open include file %q: %v", path, err)
	}
	lx.stack = append(lx.stack, &source{data: data, line: 1, file: path})
	return nil
}
