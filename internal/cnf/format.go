package cnf

import (
	"bytes"
	"strings"
)

// Format writes a tree as libconfig text that Parse reads back to an equal
// tree (see Setting.Equal). root is normally a Group named "" (what Parse
// returns); its children become the top-level settings. Any other root is
// written as a single setting.
//
// The layout follows the files ProxySQL writes (SELECT CONFIG FILE): one
// setting per line, "name=value" without terminators, tab indentation, groups
// and lists opened on their own line, list elements separated by commas.
// Names and number literals are written as they are, so a tree built by hand
// must use valid names (ValidName) and literals (the New* constructors make
// them); strings are escaped as needed.
func Format(root *Setting) []byte {
	var b bytes.Buffer
	if root == nil {
		return nil
	}
	if root.Kind == Group && root.Name == "" {
		for i, c := range root.Children {
			if c == nil {
				continue
			}
			// A blank line before each top-level group or list, as in
			// ProxySQL's sample file, keeps the sections apart.
			if i > 0 && (c.Kind == Group || c.Kind == List) {
				b.WriteByte('\n')
			}
			writeSetting(&b, c, 0)
		}
		return b.Bytes()
	}
	writeSetting(&b, root, 0)
	return b.Bytes()
}

func indent(b *bytes.Buffer, n int) {
	for range n {
		b.WriteByte('\t')
	}
}

// writeSetting writes "name=value" at depth n.
func writeSetting(b *bytes.Buffer, s *Setting, n int) {
	indent(b, n)
	b.WriteString(s.Name)
	switch s.Kind {
	case Group:
		b.WriteString("=\n")
		writeBody(b, s, n, "")
	case List:
		b.WriteString(":\n")
		writeBody(b, s, n, "")
	default:
		b.WriteByte('=')
		writeInline(b, s)
		b.WriteByte('\n')
	}
}

// writeElem writes a list element at depth n, followed by sep.
func writeElem(b *bytes.Buffer, e *Setting, n int, sep string) {
	switch e.Kind {
	case Group, List:
		writeBody(b, e, n, sep)
	default:
		indent(b, n)
		writeInline(b, e)
		b.WriteString(sep)
		b.WriteByte('\n')
	}
}

// writeBody writes the braces or parentheses of a group or list, and what is
// inside them, at depth n; sep follows the closing bracket.
func writeBody(b *bytes.Buffer, s *Setting, n int, sep string) {
	open, closing := "{", "}"
	if s.Kind == List {
		open, closing = "(", ")"
	}
	indent(b, n)
	b.WriteString(open)
	b.WriteByte('\n')
	var elems []*Setting
	for _, c := range s.Children {
		if c != nil {
			elems = append(elems, c)
		}
	}
	for i, c := range elems {
		if s.Kind == Group {
			writeSetting(b, c, n+1)
			continue
		}
		elemSep := ","
		if i == len(elems)-1 {
			elemSep = ""
		}
		writeElem(b, c, n+1, elemSep)
	}
	indent(b, n)
	b.WriteString(closing)
	b.WriteString(sep)
	b.WriteByte('\n')
}

// writeInline writes a scalar or an array on the current line.
func writeInline(b *bytes.Buffer, s *Setting) {
	switch s.Kind {
	case String:
		writeQuoted(b, s.Value)
	case Bool:
		if strings.EqualFold(s.Value, "true") {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case Int, Float:
		b.WriteString(s.Value)
	case Array:
		b.WriteByte('[')
		first := true
		for _, e := range s.Children {
			if !e.IsScalar() {
				continue // arrays hold scalars only; Parse never builds anything else
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			writeInline(b, e)
		}
		b.WriteByte(']')
	}
}

const hexDigits = "0123456789ABCDEF"

// writeQuoted writes v as a libconfig string literal. Control bytes use the
// named escapes where libconfig has them and \xNN otherwise; every other byte
// (including UTF-8) is written as it is, since the scanner works on bytes.
func writeQuoted(b *bytes.Buffer, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\x`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xF])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}
