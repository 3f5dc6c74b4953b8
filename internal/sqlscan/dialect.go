package sqlscan

import (
	"bytes"
	"strings"
)

// Dialect is what a server's reading of a statement depends on beyond its
// bytes: the session's sql_mode (NO_BACKSLASH_ESCAPES: a backslash escapes
// nothing; ANSI_QUOTES: "…" quotes a name, in which a backslash escapes
// nothing) and the client character set. In gbk, big5, sjis and cp932 the
// second byte of a character may be '\\' (0x5C) or '`' (0x60): the server
// reads such a character whole, so a byte-wise scan would take its second
// byte for an escape or a quote and end a string or a name where the
// server does not — a state change or a blocked statement could then hide
// in what the proxy takes for string contents. The zero Dialect is
// MariaDB's and MySQL's default: backslash escapes, no multibyte
// character with an ASCII byte in it (utf8, latin1…).
type Dialect uint8

// Dialect bits.
const (
	NoBackslashEscapes Dialect = 1 << iota // sql_mode NO_BACKSLASH_ESCAPES
	ANSIQuotes                             // sql_mode ANSI_QUOTES (or a mode that has it)

	// The client character set's multibyte class, two bits.
	mbGBK  Dialect = 1 << 2
	mbBig5 Dialect = 2 << 2
	mbSJIS Dialect = 3 << 2 // sjis and cp932
	mbMask Dialect = 3 << 2

	modeMask = NoBackslashEscapes | ANSIQuotes
)

// CharsetDialect is the Dialect bits of a client character set (a name
// such as "gbk"; case does not matter): its multibyte class, or 0 for a
// character set whose characters never hold an ASCII byte.
func CharsetDialect(charset string) Dialect {
	switch strings.ToLower(charset) {
	case "gbk":
		return mbGBK
	case "big5":
		return mbBig5
	case "sjis", "cp932":
		return mbSJIS
	}
	return 0
}

// Multibyte reports whether d's character set has characters with an ASCII
// second byte.
func (d Dialect) Multibyte() bool { return d&mbMask != 0 }

// escapes reports whether a backslash escapes the next byte inside a
// literal quoted with q.
func (d Dialect) escapes(q byte) bool {
	return q != '`' && d&NoBackslashEscapes == 0 && (q != '"' || d&ANSIQuotes == 0)
}

// charLen is the length of the character at q[i] as the server reads it:
// 2 for a multibyte character of d's character set (a lead byte and a valid
// second byte: MariaDB's ismbchar), 1 for anything else.
func (d Dialect) charLen(q []byte, i int) int {
	if d&mbMask == 0 || q[i] < 0x81 || i+1 >= len(q) {
		return 1
	}
	c, t := q[i], q[i+1]
	switch d & mbMask {
	case mbGBK:
		if c <= 0xfe && (t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfe) {
			return 2
		}
	case mbBig5:
		if c >= 0xa1 && c <= 0xf9 && (t >= 0x40 && t <= 0x7e || t >= 0xa1 && t <= 0xfe) {
			return 2
		}
	case mbSJIS:
		if (c <= 0x9f || c >= 0xe0 && c <= 0xfc) && (t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfc) {
			return 2
		}
	}
	return 1
}

// dashComment reports whether c, the byte after "--", makes the "--" a
// comment: MariaDB and MySQL take any space or control character there
// (a "--\f" or "--\x01" too, not only a space or a tab), and such a
// comment runs to the next newline.
func dashComment(c byte) bool { return c <= ' ' || c == 0x7f }

// readings are the backslash rules a statement's text may be read with
// when the session's sql_mode is not known for sure (a mode a procedure
// set, a global default changed since the proxy learned it): default,
// ANSI_QUOTES, NO_BACKSLASH_ESCAPES. They differ only where a backslash
// is, so a text without one has one reading.
func readings(q []byte, d Dialect) (r [3]Dialect, n int) {
	if bytes.IndexByte(q, '\\') < 0 {
		r[0] = d
		return r, 1
	}
	base := d &^ modeMask
	return [3]Dialect{base, base | ANSIQuotes, base | NoBackslashEscapes}, 3
}
