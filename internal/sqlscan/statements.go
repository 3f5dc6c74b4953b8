package sqlscan

import "bytes"

// NextStatement splits q at its first ';' that is not inside quotes or a
// comment: stmt is the text before it, rest the text after it (nil when q
// holds one statement). Quotes ('…', "…", `…`) end at their closing quote,
// a backslash escaping the next byte in the first two; comments are
// "-- " to the end of the line, "#" to the end of the line and "/* … */".
// It does not allocate.
func NextStatement(q []byte) (stmt, rest []byte) {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' && c != '`' {
					i++
				}
			}
		case '-':
			if i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t') {
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
				end := bytes.Index(q[i+2:], []byte("*/"))
				if end < 0 {
					return q, nil
				}
				i += 2 + end + 1
			}
		case ';':
			return q[:i], q[i+1:]
		}
	}
	return q, nil
}

// MultiStatementChangesState reports whether q, sent as one COM_QUERY, holds
// more than one statement and one of them (the first included) may change
// session state on its connection that the proxy neither tracks nor sees
// in the response: a SET, a USE, a PREPARE, LOCK TABLES, a temporary
// table, a HANDLER, XA… — anything but reads, writes, DDL, CALL and
// transaction control (whose effect the server's status flags report).
// The proxy tracks what one statement does; a change made further into a
// multi-statement query would otherwise stay on a pooled connection and
// reach the next session that takes it. Comments and empty statements do
// not count as statements. It does not allocate.
func MultiStatementChangesState(q []byte) bool {
	if bytes.IndexByte(q, ';') < 0 {
		return false
	}
	n, changes := 0, false
	for rest := q; rest != nil; {
		var stmt []byte
		stmt, rest = NextStatement(rest)
		kw, ok := firstKeyword(stmt)
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
		if n > 1 && changes {
			return true
		}
	}
	return false
}

// firstKeyword returns the first word of stmt after blanks, comments and
// opening parentheses; an executable comment (/*! … */, /*M! … */) counts
// as the text it holds.
func firstKeyword(stmt []byte) ([]byte, bool) {
	i := 0
	for i < len(stmt) {
		switch c := stmt[i]; {
		case IsSpace(c) || c == '(':
			i++
		case c == '#' || c == '-' && i+2 < len(stmt) && stmt[i+1] == '-' && (stmt[i+2] == ' ' || stmt[i+2] == '\t'):
			for i < len(stmt) && stmt[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			j := i + 2
			if j < len(stmt) && stmt[j] == 'M' {
				j++
			}
			if j < len(stmt) && stmt[j] == '!' {
				// Executable: skip the version digits, read what follows.
				j++
				for j < len(stmt) && stmt[j] >= '0' && stmt[j] <= '9' {
					j++
				}
				i = j
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
