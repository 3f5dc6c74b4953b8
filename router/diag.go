package router

import (
	"bytes"
	"database/sql"
	"math"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// Diagnostics. SHOW WARNINGS, SHOW ERRORS, their COUNT(*) forms,
// @@warning_count / @@error_count and ROW_COUNT() describe the session's
// previous statement. A server reads them from the connection's diagnostics area;
// here the previous statement may have run on a connection that another
// session has used since — whose warnings and errors are that session's,
// and may quote its data — or on none at all (an error the proxy
// answered). So the proxy keeps what it knows of the previous statement
// (the error it ended with, its warning count) and answers these statements
// itself. Only SHOW WARNINGS after a statement with warnings needs their
// texts: it goes to the connection that has them (mysql-handle_warnings
// keeps it with the session), as before.

type diagKind uint8

const (
	diagNone diagKind = iota
	diagShowWarnings
	diagShowErrors
	diagCountWarnings // SHOW COUNT(*) WARNINGS
	diagCountErrors   // SHOW COUNT(*) ERRORS
	diagWarningCount  // SELECT @@warning_count
	diagErrorCount    // SELECT @@error_count
	diagRowCount      // SELECT ROW_COUNT()
	diagFoundRows     // SELECT FOUND_ROWS()
	diagGet           // GET [CURRENT] DIAGNOSTICS (getdiag.go)
)

// diagOf classifies q, a COM_QUERY's text. It reads no further than a
// prefix for any other statement (the per-query path).
func diagOf(q []byte) (kind diagKind, limit int, col []byte) {
	q = bytes.TrimRight(bytes.TrimLeft(q, " \t\r\n"), " \t\r\n;")
	switch {
	case hasPrefixFold(q, "SHOW "):
		rest := bytes.TrimLeft(q[5:], " \t\r\n")
		switch {
		case hasPrefixFold(rest, "WARNINGS"):
			kind, rest = diagShowWarnings, rest[8:]
		case hasPrefixFold(rest, "ERRORS"):
			kind, rest = diagShowErrors, rest[6:]
		case hasPrefixFold(rest, "COUNT(*)"):
			rest = bytes.TrimLeft(rest[8:], " \t\r\n")
			switch {
			case bytes.EqualFold(rest, []byte("WARNINGS")):
				return diagCountWarnings, -1, []byte("@@session.warning_count")
			case bytes.EqualFold(rest, []byte("ERRORS")):
				return diagCountErrors, -1, []byte("@@session.error_count")
			}
			return diagNone, 0, nil
		default:
			return diagNone, 0, nil
		}
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			return kind, -1, nil
		}
		// LIMIT n or LIMIT offset, n: the one row there can be is shown
		// unless the limit leaves it out.
		if !hasPrefixFold(rest, "LIMIT ") {
			return diagNone, 0, nil
		}
		nums := bytes.Split(bytes.ReplaceAll(rest[6:], []byte(" "), nil), []byte(","))
		var v []int
		for _, n := range nums {
			i, err := strconv.Atoi(string(n))
			if err != nil || i < 0 {
				return diagNone, 0, nil
			}
			v = append(v, i)
		}
		switch len(v) {
		case 1:
			return kind, v[0], nil
		case 2:
			if v[0] > 0 {
				return kind, 0, nil
			}
			return kind, v[1], nil
		}
		return diagNone, 0, nil
	case hasPrefixFold(q, "GET"):
		if _, ok := getDiagnostics(q); ok {
			return diagGet, -1, nil
		}
	case hasPrefixFold(q, "SELECT ROW_COUNT"):
		if rest := bytes.TrimLeft(q[16:], " \t\r\n"); bytes.Equal(rest, []byte("()")) {
			return diagRowCount, -1, q[7:]
		}
	case hasPrefixFold(q, "SELECT FOUND_ROWS"):
		if rest := bytes.TrimLeft(q[17:], " \t\r\n"); bytes.Equal(rest, []byte("()")) {
			return diagFoundRows, -1, q[7:]
		}
	case hasPrefixFold(q, "SELECT @@"):
		name := bytes.TrimLeft(q[7:], " \t\r\n")
		v := name[2:]
		for _, scope := range []string{"session.", "local."} {
			if hasPrefixFold(v, scope) {
				v = v[len(scope):]
			}
		}
		switch {
		case bytes.EqualFold(v, []byte("warning_count")):
			return diagWarningCount, -1, name
		case bytes.EqualFold(v, []byte("error_count")):
			return diagErrorCount, -1, name
		}
	}
	return diagNone, 0, nil
}

// diagStmt is what beginCommand found a command to be: a diagnostics
// statement (kind, limit, col as diagOf returns them; col aliases the
// command's packet), or one that leaves the diagnostics alone (keep: those
// and PROXYSQL INTERNAL SESSION).
type diagStmt struct {
	kind  diagKind
	limit int
	col   []byte
	keep  bool
	// tableless: a SELECT, SET or DO that reads no table. MariaDB keeps
	// the previous statement's diagnostics through one that raises no
	// condition (SHOW WARNINGS after SELECT 1 still shows the error
	// before it); ROW_COUNT() is its own. So does the proxy for an error,
	// which it holds in the session. Warnings stay on their connection,
	// which goes back to the pool at any statement but a diagnostics one,
	// as ProxySQL's multiplexing releases it (held through SELECT 1, a
	// pool's validation query would pin it for good): they are gone. Set
	// only when there is an error to keep.
	tableless bool
}

// classifyDiag sets s.diag for a command: COM_QUERY's text is classified
// once, here; a statement that does not leave them clears the previous
// statement's diagnostics.
func (s *session) classifyDiag(p []byte) {
	s.diag = diagStmt{}
	switch p[0] {
	case wire.ComQuery:
		q := p[1:]
		s.diag.kind, s.diag.limit, s.diag.col = diagOf(q)
		s.diag.keep = s.diag.kind != diagNone || hasPrefixFold(bytes.TrimLeft(q, " \t\r\n"), "PROXYSQL INTERNAL")
		// Only an error is kept through such a statement: without one
		// the text is not read (the per-query path).
		s.diag.tableless = !s.diag.keep && s.diagErr != nil && tableless(q)
	case wire.ComStmtExecute, wire.ComStmtPrepare, wire.ComInitDB:
	default:
		return // not a statement: COM_PING, COM_STMT_CLOSE… change nothing
	}
	if !s.diag.keep {
		s.foundRowsKnown, s.diagWarnings = false, 0
		if !s.diag.tableless {
			s.diagErr = nil
		}
	}
}

// tableless reports whether q is one SELECT, SET or DO that names no
// table: no FROM anywhere in it (a FROM in a string counts, which only
// makes the answer no).
func tableless(q []byte) bool {
	q = bytes.TrimRight(bytes.TrimLeft(q, " \t\r\n"), " \t\r\n;")
	if !hasPrefixFold(q, "SELECT ") && !hasPrefixFold(q, "SET ") && !hasPrefixFold(q, "DO ") {
		return false
	}
	return bytes.IndexByte(q, ';') < 0 && !sqlscan.ContainsFold(q, "FROM")
}

// noteOutcome records how the statement that just ran ended: its error
// (nil: none), warning count and ROW_COUNT() (rows an OK reported, -1
// after a result set or an error). A diagnostics statement leaves them.
func (s *session) noteOutcome(e *wire.SQLError, warnings uint16, rows int64) {
	switch {
	case s.diag.keep:
	case s.diag.tableless && e == nil && warnings == 0:
		s.rowCount = rows // the error before it stands
	default:
		s.diagErr, s.diagWarnings, s.rowCount = e, warnings, rows
	}
}

// answerDiag answers a diagnostics statement from what the session knows
// of its previous statement. It reports false when the statement must go
// to a server: SHOW WARNINGS after a statement whose warnings' texts only
// the server has.
func (s *session) answerDiag() (handled, ok bool) {
	kind, limit := s.diag.kind, s.diag.limit
	e := s.diagErr
	switch kind {
	case diagGet:
		return false, true // runs where the area is, or as a SET (getdiag.go)
	case diagCountWarnings, diagWarningCount:
		if s.diagWarnings == math.MaxUint16 && s.diagHeld() != nil {
			// The OK packet's count stops at 65535; the server that has
			// the warnings (still the session's connection) counts on.
			return false, true
		}
	}
	switch kind {
	case diagShowWarnings, diagShowErrors:
		if kind == diagShowWarnings && s.diagWarnings > 0 {
			return false, true
		}
		cols := []wire.Column{
			{Name: "Level", Type: wire.TypeVarString, Flags: wire.FlagNotNull, Charset: 33, Length: 21},
			{Name: "Code", Type: wire.TypeLongLong, Flags: wire.FlagNotNull | wire.FlagUnsigned, Charset: 63, Length: 4},
			{Name: "Message", Type: wire.TypeVarString, Flags: wire.FlagNotNull, Charset: 33, Length: 1536},
		}
		var rows [][]sql.NullString
		if e != nil && limit != 0 {
			rows = append(rows, []sql.NullString{{String: "Error", Valid: true},
				{String: strconv.Itoa(int(e.Code)), Valid: true}, {String: e.Message, Valid: true}})
		}
		if err := s.c.WriteResultSet(cols, rows, s.depr, s.status()); err != nil {
			return true, false
		}
		return true, s.c.Flush() == nil
	}
	switch kind {
	case diagFoundRows:
		// Known when the proxy read it back with the user variables the
		// previous statement set (that read would have reset it on the
		// server); otherwise the server's, on the connection that keeps
		// SQL_CALC_FOUND_ROWS.
		if !s.foundRowsKnown {
			return false, true
		}
		s.foundRowsKnown = false
		return true, s.writeCount(strconv.FormatUint(s.foundRows, 10), true)
	case diagRowCount:
		// As the server's: the rows the previous statement's OK reported,
		// -1 after a result set or an error; then -1, this being a SELECT.
		n := s.rowCount
		s.rowCount = -1
		return true, s.writeCount(strconv.FormatInt(n, 10), false)
	}
	var n uint64
	switch kind {
	case diagCountWarnings, diagWarningCount:
		n = uint64(s.diagWarnings)
		if e != nil {
			n = 1
		}
	case diagCountErrors, diagErrorCount:
		if e != nil {
			n = 1
		}
	}
	return true, s.writeCount(strconv.FormatUint(n, 10), true)
}

// diagHeld returns the connection the session's previous statement left
// its warnings on (mysql-handle_warnings keeps it with the session until
// the next statement that is not a diagnostics one), if the session still
// holds it.
func (s *session) diagHeld() *held {
	if s.warningsHG < 0 {
		return nil
	}
	if h := s.conns.find(s.warningsHG); h != nil && h.warnings && !h.dead {
		return h
	}
	return nil
}

// readsDiagnostics reports whether a statement of kind kind and digest
// text digest reads the diagnostics area the previous statement left: it
// runs where that is. Any other kind is told by its kind alone (every query
// asks).
func readsDiagnostics(kind sqlscan.StmtKind, digest []byte) bool {
	switch kind {
	case sqlscan.KindShow:
		for _, p := range [...]string{"SHOW WARNINGS", "SHOW ERRORS", "SHOW COUNT(*) WARNINGS", "SHOW COUNT(*) ERRORS"} {
			if hasPrefixFold(digest, p) {
				return true
			}
		}
	case sqlscan.KindSelect:
		if hasPrefixFold(digest, "SELECT @@") {
			k, _, _ := diagOf(digest)
			return k == diagWarningCount || k == diagErrorCount
		}
	case sqlscan.KindUnknown: // GET DIAGNOSTICS
		k, _, _ := diagOf(digest)
		return k == diagGet
	}
	return false
}

// writeCount answers a one-value diagnostics statement: a BIGINT column
// named as the client wrote the expression.
func (s *session) writeCount(v string, unsigned bool) bool {
	col := wire.Column{Name: string(s.diag.col), Type: wire.TypeLongLong, Flags: wire.FlagNotNull, Charset: 63, Length: 21}
	if unsigned {
		col.Flags |= wire.FlagUnsigned
	}
	return s.writeValue(col, v, false) == nil
}
