package cnf

import (
	"fmt"
	"os"
)

// ParseError is a syntax error with its position. It wraps ErrSyntax.
type ParseError struct {
	File string // "" for Parse input
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("cnf: %s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("cnf: line %d: %s", e.Line, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Parse parses libconfig text. The root is a Group named "". Text holding an
// @include directive is rejected: includes need a file to resolve against
// (use ParseFile).
func Parse(data []byte) (*Setting, error) {
	return parse(newLexer(data, "", false))
}

// ParseFile reads and parses a libconfig file, following @include
// directives. A relative include path is resolved against the directory of
// the file that holds the directive.
func ParseFile(path string) (*Setting, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cnf: %w", err)
	}
	return parse(newLexer(data, path, true))
}

type parser struct {
	lx    *lexer
	tok   token
	depth int
}

func parse(lx *lexer) (*Setting, error) {
	p := &parser{lx: lx}
	if err := p.advance(); err != nil {
		return nil, err
	}
	root := &Setting{Kind: Group}
	if err := p.settings(root, tEOF, 0); err != nil {
		return nil, err
	}
	return root, nil
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &ParseError{File: t.file, Line: t.line, Msg: fmt.Sprintf(format, args...)}
}

// settings parses setting-list-optional into g up to the closing token
// (tGroupEnd or tEOF), which it leaves unconsumed. openLine is the line of
// the '{' for error messages.
func (p *parser) settings(g *Setting, closing tokKind, openLine int) error {
	seen := make(map[string]int)
	for {
		switch p.tok.kind {
		case closing:
			return nil
		case tName:
		case tEOF:
			return p.errorf(p.tok, "unexpected end of input: the group opened on line %d is not closed with '}'", openLine)
		default:
			if closing == tGroupEnd {
				return p.errorf(p.tok, "expected a setting name or '}', found %s", p.tok.describe())
			}
			return p.errorf(p.tok, "expected a setting name, found %s", p.tok.describe())
		}
		name := p.tok
		if first, dup := seen[name.text]; dup {
			return p.errorf(name, "duplicate setting name %q (first set on line %d)", name.text, first)
		}
		seen[name.text] = name.line
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tEquals {
			return p.errorf(p.tok, "expected '=' or ':' after setting name %q, found %s", name.text, p.tok.describe())
		}
		if err := p.advance(); err != nil {
			return err
		}
		s, err := p.value(fmt.Sprintf("after %q =", name.text))
		if err != nil {
			return err
		}
		s.Name, s.Line = name.text, name.line
		g.Children = append(g.Children, s)
		if p.tok.kind == tSemicolon || p.tok.kind == tComma {
			if err := p.advance(); err != nil {
				return err
			}
		}
	}
}

func isValueStart(k tokKind) bool {
	switch k {
	case tString, tInt, tFloat, tBool, tGroupStart, tListStart, tArrayStart:
		return true
	}
	return false
}

// value parses one value; where describes the position for error messages.
func (p *parser) value(where string) (*Setting, error) {
	t := p.tok
	switch t.kind {
	case tInt, tFloat, tBool, tString:
		return p.scalar()
	case tGroupStart, tListStart, tArrayStart:
		p.depth++
		if p.depth > MaxDepth {
			return nil, p.errorf(t, "groups, lists and arrays nest deeper than %d levels", MaxDepth)
		}
		defer func() { p.depth-- }()
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch t.kind {
		case tGroupStart:
			g := &Setting{Kind: Group, Line: t.line}
			if err := p.settings(g, tGroupEnd, t.line); err != nil {
				return nil, err
			}
			return g, p.advance()
		case tListStart:
			return p.elements(&Setting{Kind: List, Line: t.line}, t, tListEnd)
		default:
			return p.elements(&Setting{Kind: Array, Line: t.line}, t, tArrayEnd)
		}
	}
	return nil, p.errorf(t, "expected a value %s, found %s", where, t.describe())
}

// scalar parses a number, boolean or string; adjacent strings concatenate.
func (p *parser) scalar() (*Setting, error) {
	t := p.tok
	s := &Setting{Value: t.text, Line: t.line}
	switch t.kind {
	case tInt:
		s.Kind = Int
	case tFloat:
		s.Kind = Float
	case tBool:
		s.Kind = Bool
	case tString:
		s.Kind = String
		if err := p.advance(); err != nil {
			return nil, err
		}
		for p.tok.kind == tString {
			s.Value += p.tok.text
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	return s, p.advance()
}

// elements parses the body of a list or array after its opening token:
// values separated by commas, where a trailing comma and repeated commas are
// allowed (libconfig's value_list: value | value_list ',' value |
// value_list ','), and closes it.
func (p *parser) elements(agg *Setting, open token, closing tokKind) (*Setting, error) {
	what, closeCh := "list", ")"
	if closing == tArrayEnd {
		what, closeCh = "array", "]"
	}
	needComma := false
	for {
		t := p.tok
		switch {
		case t.kind == closing:
			return agg, p.advance()
		case t.kind == tComma && len(agg.Children) > 0:
			needComma = false
			if err := p.advance(); err != nil {
				return nil, err
			}
			continue
		case t.kind == tEOF:
			return nil, p.errorf(t, "unexpected end of input: the %s opened on line %d is not closed with '%s'", what, open.line, closeCh)
		case len(agg.Children) == 0 && !isValueStart(t.kind):
			return nil, p.errorf(t, "expected a value or '%s' in the %s opened on line %d, found %s", closeCh, what, open.line, t.describe())
		case needComma || !isValueStart(t.kind):
			return nil, p.errorf(t, "expected ',' or '%s' in the %s opened on line %d, found %s", closeCh, what, open.line, t.describe())
		}
		var e *Setting
		var err error
		if closing == tArrayEnd {
			e, err = p.arrayElement(agg)
		} else {
			e, err = p.value("in the list opened on line " + fmt.Sprint(open.line))
		}
		if err != nil {
			return nil, err
		}
		agg.Children = append(agg.Children, e)
		needComma = true
	}
}

// arrayElement parses one array element: a scalar of the same libconfig type
// as the array's first element (int and int64 are different types there).
func (p *parser) arrayElement(arr *Setting) (*Setting, error) {
	t := p.tok
	switch t.kind {
	case tInt, tFloat, tBool, tString:
	default:
		return nil, p.errorf(t, "an array holds only scalar values (use a list for %s)", t.describe())
	}
	e, err := p.scalar()
	if err != nil {
		return nil, err
	}
	if len(arr.Children) > 0 {
		if want, got := elemType(arr.Children[0]), elemType(e); want != got {
			return nil, p.errorf(t, "mismatched element type in array: expected %s, found %s", want, got)
		}
	}
	return e, nil
}

// elemType is the libconfig type name of a scalar: int, int64, float, bool
// or string.
func elemType(s *Setting) string {
	if s.Kind == Int {
		if _, is64, _ := intValue(s.Value); is64 {
			return "int64"
		}
	}
	return s.Kind.String()
}
