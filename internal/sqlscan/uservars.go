package sqlscan

import "bytes"

// User variables (@name) a statement reads or assigns, and text-protocol
// PREPARE statements: the session state that lives on one backend
// connection and that the proxy captures so it can carry it to another.

// UserVarNames appends to dst the user variables the query mentions
// (@name, @`name`, @'name', @"name"), lower-cased (MySQL compares user
// variable names case-insensitively), each once. System variables (@@x)
// and text inside string literals, quoted identifiers and comments are
// skipped, as a server reads q in dialect d.
func UserVarNames(q []byte, d Dialect, dst []string) []string {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			i = QuoteEnd(q, i, d)
		case '#':
			i = skipLine(q, i)
		case '-':
			if i+2 < len(q) && q[i+1] == '-' && dashComment(q[i+2]) {
				i = skipLine(q, i)
			}
		case '/':
			if i+1 < len(q) && q[i+1] == '*' {
				if end := bytes.Index(q[i+2:], []byte("*/")); end >= 0 {
					i += end + 3
				} else {
					i = len(q)
				}
			}
		case '@':
			if i+1 < len(q) && q[i+1] == '@' {
				// @@system_variable: skip it whole, including a scope
				// prefix (@@session.x) and a quoted name.
				i += 2
				for i < len(q) && (isNormalChar(q[i]) || q[i] == '.') {
					i++
				}
				i--
				continue
			}
			name, end := userVarName(q, i+1, d)
			if name != "" {
				dst = appendUnique(dst, name)
			}
			i = end - 1
		default:
			if c >= 0x80 {
				i += d.charLen(q, i) - 1
			}
		}
	}
	return dst
}

// userVarName reads the name of a user variable starting at i (just after
// the '@'); it returns the lower-cased name ("" when there is none) and the
// index after it.
func userVarName(q []byte, i int, d Dialect) (string, int) {
	if i >= len(q) {
		return "", i
	}
	if c := q[i]; c == '\'' || c == '"' || c == '`' {
		end := QuoteEnd(q, i, d)
		if end >= len(q) {
			return "", len(q)
		}
		body := q[i+1 : end]
		// A doubled quote inside stands for one.
		body = bytes.ReplaceAll(body, []byte{c, c}, []byte{c})
		return string(bytes.ToLower(body)), end + 1
	}
	j := i
	for j < len(q) && (isNormalChar(q[j]) || q[j] == '.') {
		j++
	}
	return string(bytes.ToLower(q[i:j])), j
}

// QuoteEnd returns the index of the quote that closes the one at q[i]
// (len(q) when it is unterminated), as a server reads q in dialect d: a
// backslash escapes the next byte inside ' strings, and inside " strings
// unless ANSI_QUOTES makes them names, unless NO_BACKSLASH_ESCAPES is on;
// a doubled quote is one quote; a multibyte character is read whole.
func QuoteEnd(q []byte, i int, d Dialect) int {
	c := q[i]
	esc := d.escapes(c)
	for j := i + 1; j < len(q); j++ {
		switch b := q[j]; {
		case b == '\\' && esc:
			j++
		case b == c:
			if j+1 < len(q) && q[j+1] == c {
				j++
				continue
			}
			return j
		case b >= 0x80:
			j += d.charLen(q, j) - 1
		}
	}
	return len(q)
}

func skipLine(q []byte, i int) int {
	for i < len(q) && q[i] != '\n' {
		i++
	}
	return i
}

func appendUnique(dst []string, s string) []string {
	for _, x := range dst {
		if x == s {
			return dst
		}
	}
	return append(dst, s)
}

// MayAssignUserVars reports whether a statement of kind k with text q may
// change a user variable: a SET, or a statement with ":=" or INTO (SELECT
// … INTO @x). Statements that only read user variables need no capture.
func MayAssignUserVars(k StmtKind, q []byte) bool {
	return k == KindSet || bytes.Contains(q, []byte(":=")) || ContainsFold(q, "INTO")
}
