// Package cnf reads and writes proxysql.cnf: the libconfig 1.7 syntax that
// ProxySQL parses its configuration file with.
//
// Parse and ParseFile accept exactly the grammar of libconfig 1.7's scanner
// and parser (settings "name = value" or "name : value" with optional ';' or
// ',' terminators, groups { }, lists ( ), arrays [ ] of scalars of one type,
// C-escaped strings with adjacent-string concatenation, decimal, octal, hex
// and 64-bit integers, floats, booleans in any case, '#', '//' and block
// comments, and @include). The result is a tree of *Setting whose scalar
// values keep the text they were written with, so that Format can write a
// file that Parse reads back to an equal tree.
//
// Deliberate differences from libconfig, all in the direction of clearer
// errors or of what a ProxySQL user expects:
//   - @include paths are resolved relative to the including file's
//     directory (libconfig resolves them relative to the process's working
//     directory unless an include dir is set, which ProxySQL never does).
//     Parse, which has no file, rejects @include.
//   - integer literals that libconfig would silently truncate or saturate
//     (a hex constant wider than 32 bits without the L suffix, an overflowing
//     decimal with the L suffix) are errors.
//   - an unterminated /* comment ends the file it is in instead of the whole
//     input; a '#' or '//' comment on the last line needs no newline.
//   - nesting deeper than MaxDepth is an error (libconfig's limit is its
//     parser stack of about the same depth).
package cnf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is the type of a setting.
type Kind int

// The setting kinds of libconfig. Int covers libconfig's int, int64, hex and
// hex64 types: the literal in Setting.Value tells them apart.
const (
	Group Kind = iota
	List
	Array
	String
	Int
	Float
	Bool
)

var kindNames = [...]string{"group", "list", "array", "string", "int", "float", "bool"}

// String returns the kind's name as used in error messages ("group", "int", …).
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Setting is one node of a parsed configuration.
type Setting struct {
	Name     string     // "" for list/array elements and the root
	Kind     Kind       // what the setting holds
	Value    string     // scalar text: strings unquoted and unescaped, numbers as written, bools "true"/"false"
	Children []*Setting // Group: named settings in order; List/Array: elements
	Line     int        // line of the setting's first token in the file it was read from (0 for the root)
}

// Errors returned by the typed accessors of Setting.
var (
	// ErrType: the setting does not have the kind the accessor needs.
	ErrType = errors.New("cnf: wrong setting type")
	// ErrRange: an integer literal does not fit the type libconfig gives it.
	ErrRange = errors.New("cnf: integer out of range")
	// ErrSyntax is wrapped by every *ParseError.
	ErrSyntax = errors.New("cnf: syntax error")
)

// MaxDepth is how deeply groups, lists and arrays may nest.
const MaxDepth = 1000

// Get returns the child of a Group with the given name (case-sensitive, as in
// libconfig), or nil. It is safe on a nil receiver, so lookups chain:
// root.Get("mysql_variables").Get("threads").
func (s *Setting) Get(name string) *Setting {
	if s == nil || s.Kind != Group {
		return nil
	}
	for _, c := range s.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// IsScalar reports whether the setting is a string, number or boolean.
func (s *Setting) IsScalar() bool {
	return s != nil && (s.Kind == String || s.Kind == Int || s.Kind == Float || s.Kind == Bool)
}

// Str returns the text of a scalar: a string's unescaped value, a number as
// written, "true" or "false". It returns "" for nil and for aggregates.
func (s *Setting) Str() string {
	if !s.IsScalar() {
		return ""
	}
	return s.Value
}

// Int returns the value of an Int setting the way libconfig computes it:
// decimal with a leading 0 is octal, hex without the L suffix is a 32-bit
// two's-complement value (0xFFFFFFFF is -1), hex64 is a 64-bit one.
func (s *Setting) Int() (int64, error) {
	if s == nil || s.Kind != Int {
		return 0, fmt.Errorf("%w: %s is not an int", ErrType, s.describe())
	}
	v, _, err := intValue(s.Value)
	return v, err
}

// Float returns the value of a Float or Int setting.
func (s *Setting) Float() (float64, error) {
	if s == nil {
		return 0, fmt.Errorf("%w: nil setting is not a number", ErrType)
	}
	switch s.Kind {
	case Float:
		return floatValue(s.Value), nil
	case Int:
		v, err := s.Int()
		return float64(v), err
	}
	return 0, fmt.Errorf("%w: %s is not a number", ErrType, s.describe())
}

// Bool returns the value of a Bool setting.
func (s *Setting) Bool() (bool, error) {
	if s == nil || s.Kind != Bool {
		return false, fmt.Errorf("%w: %s is not a bool", ErrType, s.describe())
	}
	return strings.EqualFold(s.Value, "true"), nil
}

func (s *Setting) describe() string {
	if s == nil {
		return "nil setting"
	}
	if s.Name != "" {
		return fmt.Sprintf("%s %q (line %d)", s.Kind, s.Name, s.Line)
	}
	return fmt.Sprintf("%s (line %d)", s.Kind, s.Line)
}

// Equal reports whether two trees have the same names, kinds, values and
// children. Line numbers are ignored, so a tree equals its Format/Parse
// round trip.
func (s *Setting) Equal(o *Setting) bool {
	if s == nil || o == nil {
		return s == o
	}
	if s.Name != o.Name || s.Kind != o.Kind || s.Value != o.Value || len(s.Children) != len(o.Children) {
		return false
	}
	for i := range s.Children {
		if !s.Children[i].Equal(o.Children[i]) {
			return false
		}
	}
	return true
}

// NewGroup returns a Group setting. Use name "" for the root or for a group
// inside a list.
func NewGroup(name string, children ...*Setting) *Setting {
	return &Setting{Name: name, Kind: Group, Children: children}
}

// NewList returns a List setting holding elems (whose names should be "").
func NewList(name string, elems ...*Setting) *Setting {
	return &Setting{Name: name, Kind: List, Children: elems}
}

// NewArray returns an Array setting; elems must be scalars of one kind.
func NewArray(name string, elems ...*Setting) *Setting {
	return &Setting{Name: name, Kind: Array, Children: elems}
}

// NewString returns a String setting.
func NewString(name, v string) *Setting {
	return &Setting{Name: name, Kind: String, Value: v}
}

// NewInt returns an Int setting. Values outside 32 bits get the L suffix, as
// libconfig writes them.
func NewInt(name string, v int64) *Setting {
	text := strconv.FormatInt(v, 10)
	if v < math.MinInt32 || v > math.MaxInt32 {
		text += "L"
	}
	return &Setting{Name: name, Kind: Int, Value: text}
}

// NewFloat returns a Float setting. NaN and infinities have no libconfig
// literal and are written as 0.0.
func NewFloat(name string, v float64) *Setting {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	text := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(text, ".eE") {
		text += ".0"
	}
	return &Setting{Name: name, Kind: Float, Value: text}
}

// NewBool returns a Bool setting.
func NewBool(name string, v bool) *Setting {
	return &Setting{Name: name, Kind: Bool, Value: strconv.FormatBool(v)}
}

// ValidName reports whether name can be written as a libconfig setting name:
// [A-Za-z*][-A-Za-z0-9_*]*, and not "true" or "false" in any case (those
// scan as booleans).
func ValidName(name string) bool {
	if name == "" || !isNameStart(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return false
		}
	}
	return !strings.EqualFold(name, "true") && !strings.EqualFold(name, "false")
}

func isNameStart(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '*'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// intValue computes the value of an integer literal as libconfig's scanner
// does, and whether libconfig types it int64 (which matters for array
// element types). The literal must be one the scanner produced.
func intValue(text string) (v int64, is64 bool, err error) {
	t := text
	suffix := 0
	for suffix < 2 && strings.HasSuffix(t, "L") {
		t = t[:len(t)-1]
		suffix++
	}
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		u, perr := strconv.ParseUint(t[2:], 16, 64)
		if perr != nil {
			return 0, false, fmt.Errorf("%w: hex constant %s is wider than 64 bits", ErrRange, text)
		}
		if suffix > 0 {
			return int64(u), true, nil // strtoull reinterpreted as long long
		}
		if u > math.MaxUint32 {
			return 0, false, fmt.Errorf("%w: hex constant %s is wider than 32 bits; write it with the L suffix", ErrRange, text)
		}
		return int64(int32(uint32(u))), false, nil // libconfig stores hex in an int
	}
	if suffix > 0 {
		// libconfig uses atoll here: always decimal, even with a leading 0.
		v, perr := strconv.ParseInt(t, 10, 64)
		if perr != nil {
			return 0, true, fmt.Errorf("%w: %s does not fit in 64 bits", ErrRange, text)
		}
		return v, true, nil
	}
	// strtoll with base 0: a leading 0 means octal.
	neg := false
	digits := t
	if digits != "" && (digits[0] == '-' || digits[0] == '+') {
		neg = digits[0] == '-'
		digits = digits[1:]
	}
	base := 10
	if len(digits) > 1 && digits[0] == '0' {
		base = 8
		digits = digits[1:]
	}
	u, perr := strconv.ParseUint(digits, base, 64)
	if perr != nil {
		if errors.Is(perr, strconv.ErrRange) {
			return 0, false, fmt.Errorf("%w: %s does not fit in 64 bits", ErrRange, text)
		}
		return 0, false, fmt.Errorf("%w: %s is not a valid octal constant", ErrRange, text)
	}
	switch {
	case !neg && u > math.MaxInt64, neg && u > 1<<63:
		return 0, false, fmt.Errorf("%w: %s does not fit in 64 bits", ErrRange, text)
	case neg:
		v = int64(-u) // u <= 1<<63, so the two's-complement negation is exact
	default:
		v = int64(u)
	}
	return v, v < math.MinInt32 || v > math.MaxInt32, nil
}

// floatValue computes a float literal's value like C's atof: the scanner
// accepts forms such as "." and "-.e5" that mean 0.
func floatValue(text string) float64 {
	f, err := strconv.ParseFloat(text, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) {
		return f // ErrRange gives ±Inf or 0, as atof does
	}
	return 0
}
