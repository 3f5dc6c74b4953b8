package sqlscan

import "bytes"

// NextStatement splits q at its first ';' that is not inside quotes or a
// comment as a server reads q in dialect d: stmt is the text before it,
// rest the text after it (nil when q holds one statement). Quotes ('…',
// "…", `…`) end at their closing quote, a backslash escaping the next byte
// where d says it does, a multibyte character of d's character set read
// whole; comments are "-- " to the end of the line, "#" to the end of the
// line and "/* … */". An executable comment (/*!…*/, /*M!…*/) holds SQL:
// its quotes count and it ends at the first "*/" outside them. It does not
// allocate.
func NextStatement(q []byte, d Dialect) (stmt, rest []byte) {
	return nextStatement(q, d, true)
}

// nextStatement is NextStatement with the executable comments that not
// every server runs (see execComment) read as SQL (ambLive) or as
// comments.
func nextStatement(q []byte, d Dialect, ambLive bool) (stmt, rest []byte) {
	inExec := false // inside an executable comment read as SQL
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			i = QuoteEnd(q, i, d)
		case '-':
			if i+2 < len(q) && q[i+1] == '-' && dashComment(q[i+2]) {
				for i < len(q) && q[i] != '\n' {
					i++
				}
			}
		case '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case '/':
			if i+1 < len(q) && q[i+1] == '*' {
				if n, amb := execComment(q[i:]); n > 0 && !inExec && (!amb || ambLive) {
					inExec = true
					i += n - 1
					continue
				}
				end := bytes.Index(q[i+2:], []byte("*/"))
				if end < 0 {
					return q, nil
				}
				i += 2 + end + 1
			}
		case '*':
			if inExec && i+1 < len(q) && q[i+1] == '/' {
				inExec = false
				i++
			}
		case ';':
			return q[:i], q[i+1:]
		default:
			if c >= 0x80 {
				i += d.charLen(q, i) - 1
			}
		}
	}
	return q, nil
}

// execComment reads the executable comment that may start q ("/*!",
// "/*!NNNNN", "/*M!", "/*M!NNNNNN"): n is the length of its marker and
// version (0 when q does not start one), amb whether some servers run it
// and others skip it. A version from 50700 or the MariaDB-only /*M! is
// such a comment: the proxy cannot know which server reads it (MariaDB
// skips the MySQL-only numbers 50700 to 99999 and runs six-digit ones up
// to its own version; MySQL runs five-digit ones up to its own). One
// without a version, or with one below 50700 that every server this proxy
// serves has reached (the /*!40101 … */ of mysqldump), runs everywhere.
func execComment(q []byte) (n int, amb bool) {
	n, maria, _, v := execMarker(q)
	return n, n > 0 && (maria || v >= 50700)
}

// execMarker reads the marker of an executable comment at the start of q:
// n its length with the version (0 when q does not start one), maria for
// MariaDB's /*M!, the number of digits of the version and its value
// (capped past six digits).
func execMarker(q []byte) (n int, maria bool, digits int, v int64) {
	if len(q) < 3 || q[0] != '/' || q[1] != '*' {
		return 0, false, 0, 0
	}
	i := 2
	if q[i] == 'M' {
		maria = true
		i++
	}
	if i >= len(q) || q[i] != '!' {
		return 0, false, 0, 0
	}
	i++
	start := i
	for ; i < len(q) && q[i] >= '0' && q[i] <= '9'; i++ {
		if v < 1e6 {
			v = v*10 + int64(q[i]-'0')
		}
	}
	return i, maria, i - start, v
}

// hasAmbiguousExec reports whether q may hold an executable comment that
// some servers run and others skip (execComment). Quotes are not looked
// at: a marker inside a string only costs a closer look.
func hasAmbiguousExec(q []byte) bool {
	for i := 0; ; {
		j := bytes.Index(q[i:], []byte("/*"))
		if j < 0 {
			return false
		}
		i += j
		if n, amb := execComment(q[i:]); n > 0 && amb {
			return true
		}
		i += 2
	}
}

// HiddenStateChange reports whether q, sent as one COM_QUERY by a session
// reading statements in dialect d (multi: with CLIENT_MULTI_STATEMENTS),
// may change session state on its connection where the proxy does not see
// it:
//   - q holds more than one statement and one of them (the first included)
//     may change state that the proxy neither tracks nor sees in the
//     response: a SET, a USE, a PREPARE, LOCK TABLES, a temporary table, a
//     HANDLER, XA… — anything but reads, writes, DDL, CALL and transaction
//     control (whose effect the server's status flags report). The proxy
//     tracks what one statement does; a change made further into a
//     multi-statement query would otherwise stay on a pooled connection and
//     reach the next session that takes it;
//   - q has an executable comment some servers run and others skip, and
//     read either way one of its statements may change state (/*M!100000
//     USE db */, /*!999999 SELECT 1 */ SET …).
//
// A text with a backslash is read with each of the backslash rules
// sql_mode can set (the session's may not be what the proxy last saw): a
// change found in any reading counts. Comments and empty statements do
// not count as statements. It does not allocate.
func HiddenStateChange(q []byte, d Dialect, multi bool) bool {
	multi = multi && bytes.IndexByte(q, ';') >= 0
	amb := hasAmbiguousExec(q)
	if !multi && !amb {
		return false
	}
	rs, n := readings(q, d)
	for _, r := range rs[:n] {
		if changesState(q, r, true, multi, amb) || amb && changesState(q, r, false, multi, amb) {
			return true
		}
	}
	return false
}

// changesState is HiddenStateChange for one reading: the ambiguous
// executable comments read as SQL (ambLive) or as comments.
func changesState(q []byte, d Dialect, ambLive, multi, amb bool) bool {
	n, changes := 0, false
	for rest := q; rest != nil; {
		var stmt []byte
		stmt, rest = nextStatement(rest, d, ambLive)
		kw, ok := firstKeyword(stmt, ambLive)
		if !ok {
			continue // empty, or only comments
		}
		n++
		if n == 1 && (EqualUpper(kw, "CREATE") || EqualUpper(kw, "ALTER")) && storedProgram(stmt) {
			// CREATE PROCEDURE … BEGIN …; …; END: one statement, whose
			// body's SETs run when the program is called, not now.
			return false
		}
		if !stateless(kw, stmt) {
			changes = true
		}
		if changes && (amb || n > 1) {
			return true
		}
		if !multi {
			return false // without multi-statements the server runs only one
		}
	}
	return false
}

// firstKeyword returns the first word of stmt after blanks, comments and
// opening parentheses; an executable comment (/*! … */, /*M! … */) counts
// as the text it holds, one that not every server runs only when ambLive.
func firstKeyword(stmt []byte, ambLive bool) ([]byte, bool) {
	i := 0
	for i < len(stmt) {
		switch c := stmt[i]; {
		case IsSpace(c) || c == '(':
			i++
		case c == '*' && i+1 < len(stmt) && stmt[i+1] == '/':
			i += 2 // the end of an executable comment read as SQL
		case c == '#' || c == '-' && i+2 < len(stmt) && stmt[i+1] == '-' && dashComment(stmt[i+2]):
			for i < len(stmt) && stmt[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			if n, amb := execComment(stmt[i:]); n > 0 && (!amb || ambLive) {
				i += n // read what follows the marker
				continue
			}
			end := bytes.Index(stmt[i+2:], []byte("*/"))
			if end < 0 {
				return nil, false
			}
			i += 2 + end + 2
		default:
			j := i
			for j < len(stmt) && (stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] == '_') {
				j++
			}
			if j == i {
				return stmt[i : i+1], true // not a word: an unknown statement
			}
			return stmt[i:j], true
		}
	}
	return nil, false
}

// statelessKeywords start statements whose effect on the session is none,
// or one the proxy learns from the response (transaction control).
var statelessKeywords = [...]string{
	"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "TABLE", "DO", "CALL",
	"SHOW", "DESCRIBE", "DESC", "EXPLAIN", "ANALYZE", "CHECK", "CHECKSUM", "OPTIMIZE", "REPAIR",
	"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "LOAD",
	"BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
}

func stateless(kw, stmt []byte) bool {
	for _, s := range statelessKeywords {
		if EqualUpper(kw, s) {
			// CREATE TEMPORARY TABLE leaves a table on the connection.
			return s != "CREATE" || !ContainsFold(stmt, "TEMPORARY")
		}
	}
	return false
}

// storedProgram reports whether stmt, a CREATE or ALTER, defines a stored
// program (PROCEDURE, FUNCTION, TRIGGER, EVENT, PACKAGE): its body may hold
// semicolons. It reads the words before the first parenthesis, skipping OR
// REPLACE, DEFINER = … and AGGREGATE.
func storedProgram(stmt []byte) bool {
	words := 0
	for i := 0; i < len(stmt) && words < 12; {
		c := stmt[i]
		switch {
		case c == '(':
			return false
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			j := i
			for j < len(stmt) && (stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] == '_') {
				j++
			}
			w := stmt[i:j]
			for _, k := range [...]string{"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE"} {
				if EqualUpper(w, k) {
					return true
				}
			}
			for _, k := range [...]string{"TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "USER", "ROLE", "SERVER", "SEQUENCE", "TABLESPACE"} {
				if EqualUpper(w, k) {
					return false
				}
			}
			words++
			i = j
		case c == '`' || c == '\'' || c == '"':
			// A quoted DEFINER part: skip to its closing quote.
			j := bytes.IndexByte(stmt[i+1:], c)
			if j < 0 {
				return false
			}
			i += j + 2
		default:
			i++
		}
	}
	return false
}

// UnwrapExecComment returns the text of q when q is one executable comment
// and nothing else (spaces and a trailing ';' aside) — mariadb-dump's
// "/*M!100100 SET @@MAX_STATEMENT_TIME=0.000000 */" — that every server
// runs, knowing that every server is MariaDB at version floor or above
// (floor as MariaDB numbers its comments, 101106 for 10.11.6): /*M! and
// /*! without a version, with a five-digit one below 50700, or with a
// six-digit one up to floor. false otherwise (then some servers may skip
// the text, and the caller keeps treating q as ambiguous).
func UnwrapExecComment(q []byte, floor int64) ([]byte, bool) {
	q = bytes.TrimRight(bytes.TrimSpace(q), "; \t\r\n")
	if floor <= 0 || !bytes.HasSuffix(q, []byte("*/")) {
		return nil, false
	}
	j, maria, digits, v := execMarker(q)
	if j == 0 || j > len(q)-2 {
		return nil, false
	}
	switch {
	case digits == 0:
	case digits == 6 && v <= floor:
	case digits == 5 && !maria && v < 50700:
	default:
		return nil, false // a version some servers have not reached, or MySQL's, which MariaDB skips
	}
	body := q[j : len(q)-2]
	if bytes.Contains(body, []byte("*/")) || bytes.Contains(body, []byte("/*")) {
		return nil, false
	}
	return body, true
}
