package router

import (
	"bytes"
	"database/sql"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// Answers the proxy gives itself, without a backend (reference §3.1).

// localAnswer names a query the proxy answers itself.
type localAnswer uint8

const (
	localNone localAnswer = iota
	// localConnectionID: SELECT CONNECTION_ID() is the Sluice session id —
	// what KILL takes and stats_mysql_processlist shows — in the text and
	// the binary protocol alike (ProxySQL answers the text one).
	localConnectionID
	// localVersionComment: the mysql client's "select @@version_comment
	// limit 1" (text protocol, byte for byte).
	localVersionComment
)

// connectionIDColumn is CONNECTION_ID()'s column as MySQL describes it:
// BIGINT UNSIGNED NOT NULL.
var connectionIDColumn = wire.Column{Name: "CONNECTION_ID()", Type: wire.TypeLongLong,
	Flags: wire.FlagNotNull | wire.FlagUnsigned | wire.FlagBinary, Charset: 63, Length: 21}

// localStatement is the prepared statement of SELECT CONNECTION_ID(): no
// backend ever sees it.
var localStatement = &globalStmt{key: stmtKey{query: "SELECT CONNECTION_ID()"}, sql: "SELECT CONNECTION_ID()",
	text: []byte("SELECT CONNECTION_ID()"), numCols: 1, local: localConnectionID,
	cols: [][]byte{wire.AppendColumnDef(nil, &connectionIDColumn)}}

// localQuery classifies a query text the proxy answers itself, and
// returns the name of its column.
func localQuery(q []byte) (localAnswer, string) {
	if bytes.Equal(q, []byte("select @@version_comment limit 1")) {
		return localVersionComment, "@@version_comment"
	}
	if col, ok := connectionIDQuery(q); ok {
		return localConnectionID, col
	}
	return localNone, ""
}

// connectionIDQuery reports whether q is SELECT CONNECTION_ID() in any
// spelling — any case, spaces and comments between the words, a trailing
// ';', an alias (AS id, or just id) — and returns the column name the
// server would give it. Each spelling a server answered used to give the
// backend connection's thread id: one session saw two ids, and a KILL of
// the backend one could reach another session's query on that thread.
func connectionIDQuery(q []byte) (string, bool) {
	if len(q) > 256 || !hasConnectionID(q) { // every SELECT passes here: short queries only
		return "", false
	}
	w := sqlWords(q)
	if len(w) < 2 || !bytes.EqualFold(w[0], []byte("SELECT")) {
		return "", false
	}
	// The call: CONNECTION_ID() as one word or several (connection_id ( )).
	var call []byte
	i := 1
	for ; i < len(w) && !bytes.HasSuffix(call, []byte(")")); i++ {
		call = append(call, w[i]...)
	}
	if !bytes.EqualFold(call, []byte("CONNECTION_ID()")) {
		return "", false
	}
	var alias []byte
	switch rest := w[i:]; {
	case len(rest) == 0:
		return string(call), true
	case len(rest) == 2 && bytes.EqualFold(rest[0], []byte("AS")):
		alias = rest[1]
	case len(rest) == 1 && !bytes.EqualFold(rest[0], []byte("AS")):
		alias = rest[0]
	default:
		return "", false // FROM …, a second column: the server's to answer
	}
	col := unquoteAlias(alias)
	if col == "" || strings.ContainsAny(col, "()@,`'\"+-*/=<>") {
		return "", false
	}
	return col, true
}

// hasConnectionID reports whether q mentions CONNECTION_ID, in any case,
// looking only around its underscores (IndexByte: most queries have few).
func hasConnectionID(q []byte) bool {
	const name = "CONNECTION_ID"
	for i := 0; i < len(q); {
		j := bytes.IndexByte(q[i:], '_')
		if j < 0 {
			return false
		}
		j += i
		if j >= 10 && j+3 <= len(q) && bytes.EqualFold(q[j-10:j+3], []byte(name)) {
			return true
		}
		i = j + 1
	}
	return false
}

// unquoteAlias strips the quotes of a quoted alias (`id`, 'id', "id").
func unquoteAlias(a []byte) string {
	if n := len(a); n >= 2 && (a[0] == '`' || a[0] == '\'' || a[0] == '"') && a[n-1] == a[0] {
		return string(a[1 : n-1])
	}
	return string(a)
}

// localStmt returns the statement the proxy answers itself for a PREPARE
// of q, or nil.
func localStmt(q []byte) *globalStmt {
	k, col := localQuery(q)
	switch {
	case k != localConnectionID:
		return nil
	case strings.EqualFold(col, "CONNECTION_ID()"):
		return localStatement
	}
	// An alias names the column: a statement of its own, not cached.
	c := connectionIDColumn
	c.Name = col
	return &globalStmt{key: stmtKey{query: string(q)}, sql: string(q), text: bytes.Clone(q), numCols: 1,
		local: localConnectionID, cols: [][]byte{wire.AppendColumnDef(nil, &c)}}
}

// writeLocal answers a local query, with column name col ("" for the
// query's usual one), as a text result set or (binary) as the result of a
// COM_STMT_EXECUTE.
func (s *session) writeLocal(rt *live.Runtime, k localAnswer, col string, binary bool) error {
	switch k {
	case localConnectionID:
		c := connectionIDColumn
		if col != "" {
			c.Name = col
		}
		return s.writeValue(c, strconv.FormatUint(s.id, 10), binary)
	case localVersionComment:
		return s.writeValue(wire.TextColumn("@@version_comment"), rt.Router.VersionComment, binary)
	}
	return nil
}

// writeValue answers with one row of one column.
func (s *session) writeValue(col wire.Column, val string, binary bool) error {
	cols := [1]wire.Column{col}
	rows := [1][]sql.NullString{{{String: val, Valid: true}}}
	var err error
	if binary {
		err = s.c.WriteBinaryResultSet(cols[:], rows[:], s.depr, s.status())
	} else {
		err = s.c.WriteResultSet(cols[:], rows[:], s.depr, s.status())
	}
	if err != nil {
		return err
	}
	return s.c.Flush()
}

// LAST_INSERT_ID() and @@IDENTITY (ProxySQL #1421). The id belongs to the
// backend connection that made it, and with read/write splitting the next
// query may be routed elsewhere. So a statement that mentions either runs
// where the session's last write that changed rows ran, while the session
// still holds that connection (mysql-auto_increment_delay_multiplex keeps
// it after an insert); without it, the plain forms are answered with the
// last id the proxy saw, and anything else runs as the rules route it,
// never from the query cache.

// mentionsInsertID reports whether a digest text uses LAST_INSERT_ID or
// @@IDENTITY.
func mentionsInsertID(digest []byte) bool {
	return sqlscan.ContainsFold(digest, "LAST_INSERT_ID") || sqlscan.ContainsFold(digest, "@@IDENTITY")
}

// insertIDArg returns n of the first LAST_INSERT_ID(n) in q with a literal
// integer argument: the id the server's connection holds after it, which
// the plain LAST_INSERT_ID() answered by the proxy must then give.
func insertIDArg(q []byte) (uint64, bool) {
	const fn = "LAST_INSERT_ID("
	for i := 0; i+len(fn) <= len(q); i++ {
		if !bytes.EqualFold(q[i:i+len(fn)], []byte(fn)) {
			continue
		}
		arg := bytes.TrimSpace(q[i+len(fn):])
		j := 0
		for j < len(arg) && arg[j] >= '0' && arg[j] <= '9' {
			j++
		}
		if j == 0 || j > 19 {
			return 0, false
		}
		if rest := bytes.TrimSpace(arg[j:]); len(rest) == 0 || rest[0] != ')' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(arg[:j]), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// hasInsertIDArg reports whether q calls LAST_INSERT_ID with an argument
// (which sets the connection's id).
func hasInsertIDArg(q []byte) bool {
	const fn = "LAST_INSERT_ID("
	for i := 0; i+len(fn) <= len(q); i++ {
		if bytes.EqualFold(q[i:i+len(fn)], []byte(fn)) {
			if arg := bytes.TrimLeft(q[i+len(fn):], " \t\r\n"); len(arg) > 0 && arg[0] != ')' {
				return true
			}
		}
	}
	return false
}

// readInsertID reads the id a statement set on h with LAST_INSERT_ID(expr)
// in a result set (an OK packet would carry it): the plain
// LAST_INSERT_ID() the proxy answers gives it then, as the server would.
func (s *session) readInsertID(rt *live.Runtime, h *held) {
	if v, ok := s.readBack(rt, h, "SELECT LAST_INSERT_ID()"); ok {
		if id, err := strconv.ParseUint(v.String, 10, 64); err == nil {
			s.lastID = id
		}
	}
}

// plainInsertID reports whether q is SELECT LAST_INSERT_ID() or SELECT
// @@IDENTITY, either with LIMIT 1, and returns the expression as the client
// wrote it (the column's name).
func plainInsertID(q []byte) ([]byte, bool) { return plainSelect(q, "LAST_INSERT_ID()", "@@IDENTITY") }

// plainSelect reports whether q is "SELECT <expr> [LIMIT 1]" for one of
// exprs (case-insensitive), and returns the expression as the client wrote
// it (the column's name).
func plainSelect(q []byte, exprs ...string) ([]byte, bool) {
	if len(q) > 128 {
		return nil, false // the plain forms are short: a long text is not split
	}
	f := bytes.Fields(bytes.TrimRight(q, "; \t\r\n"))
	if (len(f) != 2 && len(f) != 4) || !bytes.EqualFold(f[0], []byte("SELECT")) {
		return nil, false
	}
	if len(f) == 4 && (!bytes.EqualFold(f[2], []byte("LIMIT")) || !bytes.Equal(f[3], []byte("1"))) {
		return nil, false
	}
	for _, e := range exprs {
		if bytes.EqualFold(f[1], []byte(e)) {
			return f[1], true
		}
	}
	return nil, false
}

// autocommitColumn is @@autocommit's column as MariaDB describes it.
var autocommitColumn = wire.Column{Type: wire.TypeLongLong, Flags: wire.FlagBinary, Charset: 63, Length: 1}

// writeAutocommitOff answers SELECT @@autocommit for a session with
// autocommit=0 whose reads run with autocommit=1 on their servers
// (mysql-enforce_autocommit_on_reads=false): the server would say 1.
func (s *session) writeAutocommitOff(name []byte) error {
	col := autocommitColumn
	col.Name = string(name)
	return s.writeValue(col, "0", false)
}

// writeInsertID answers a plain LAST_INSERT_ID() with the session's last
// insert id, typed as MySQL types it (BIGINT UNSIGNED NOT NULL).
func (s *session) writeInsertID(name []byte, binary bool) error {
	col := connectionIDColumn
	col.Name = string(name)
	return s.writeValue(col, strconv.FormatUint(s.lastID, 10), binary)
}

// writeHeld returns the connection the session's last write ran on, if the
// session still holds it.
func (s *session) writeHeld() *held {
	if s.lastWrite < 0 {
		return nil
	}
	if h := s.conns.find(s.lastWrite); h != nil && h.wrote {
		return h
	}
	return nil
}

// noteWrite records an OK's insert id and, when it changed rows, where the
// write ran.
func (s *session) noteWrite(h *held, res *backend.Response) {
	if res.InsertID > 0 {
		s.lastID = res.InsertID
	}
	if res.Affected == 0 {
		return
	}
	if prev := s.writeHeld(); prev != nil {
		prev.wrote = false
	}
	s.lastWrite, h.wrote = h.hg, true
}

// writeOK sends an OK packet with the session's status.
func (s *session) writeOK(affected, insertID uint64, info string) error {
	s.noteOutcome(nil, 0, int64(affected))
	if err := s.c.WriteOK(affected, insertID, s.status(), 0, info); err != nil {
		return err
	}
	return s.c.Flush()
}

// relayErr passes a server's ERR (one the proxy read itself, such as a
// refused PREPARE) on to the client.
func (s *session) relayErr(e *wire.SQLError) error {
	if s.headless {
		s.lastErr = e
		return nil
	}
	if err := s.c.WriteError(e); err != nil {
		return errClientGone(err)
	}
	if err := s.c.Flush(); err != nil {
		return errClientGone(err)
	}
	return nil
}
