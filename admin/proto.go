package admin

import (
	"database/sql"
	"fmt"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// The admin port speaks the text protocol only, over internal/wire like the
// data port: the session runs its own command loop, and every OK, ERR, EOF
// and result set goes through wire.Conn's writers (WriteOK, WriteERR,
// WriteEOF, WriteResultSet), buffered and flushed once per command.

// charsetUTF8 is utf8_general_ci, the character set of every admin column.
const charsetUTF8 = 33

// statusAutocommit is the server status of every admin reply: SQLite on the
// admin port has no client-visible transactions, and a backslash in its
// strings is a backslash. NO_BACKSLASH_ESCAPES tells drivers so, as
// ProxySQL's admin does: they escape a quote by doubling it, which SQLite
// reads, where a backslash-escaped quote was a syntax error and an escaped
// backslash was stored twice (a rule's regex written through pymysql, PDO
// or Connector/J changed).
const statusAutocommit = wire.StatusAutocommit | wire.StatusNoBackslashEscapes

// MySQL error codes the admin port sends.
const (
	erConCount     = 1040 // ER_CON_COUNT_ERROR, ProxySQL's "can only connect locally"
	erHandshake    = 1043 // ER_HANDSHAKE_ERROR
	erAccessDenied = 1045 // ER_ACCESS_DENIED_ERROR, also every admin command failure
	erUnknownCom   = 1047 // ER_UNKNOWN_COM_ERROR
	erNetTooLarge  = 1153 // ER_NET_PACKET_TOO_LARGE
)

// reply is one answer to a client command.
type reply interface {
	// write buffers the reply on c; more sets SERVER_MORE_RESULTS_EXISTS on
	// its final packet (multi-statements).
	write(c *wire.Conn, more bool) error
}

// okReply is an OK packet. Its last_insert_id is always 0, as on ProxySQL's
// admin: there is deliberately no field for it.
type okReply struct {
	affected uint64
	warnings uint16 // the statement's warning count (SHOW WARNINGS lists them)
	info     string // shown by the mysql client after "Query OK"
}

// errReply is an ERR packet.
type errReply struct {
	code  uint16
	state string
	msg   string
}

func (e *errReply) Error() string { return fmt.Sprintf("ERROR %d (%s): %s", e.code, e.state, e.msg) }

// resultSet is a text result set: every column is a string, NULL is kept.
type resultSet struct {
	cols     []string
	rows     [][]sql.NullString
	warnings uint16 // the statement's warning count (SHOW WARNINGS lists them)
}

// eofReply is a lone EOF packet (the answer to COM_SET_OPTION and
// COM_FIELD_LIST).
type eofReply struct{}

// rawReply is one packet with a fixed payload (COM_STATISTICS).
type rawReply []byte

// adminErr is the error every admin command failure becomes: ProxySQL's
// send_MySQL_ERR always uses 1045 and SQLSTATE 28000.
func adminErr(msg string) *errReply { return &errReply{code: erAccessDenied, state: "28000", msg: msg} }

// sqliteErr wraps an error from SQLite the way ProxySQL does.
func sqliteErr(err error) *errReply { return adminErr("ProxySQL Admin Error: " + err.Error()) }

func unknownCommand() *errReply {
	return &errReply{code: erUnknownCom, state: "08S01", msg: "Unknown command"}
}

// row builds a result row from plain strings (none of them NULL).
func row(vals ...string) []sql.NullString {
	r := make([]sql.NullString, len(vals))
	for i, v := range vals {
		r[i] = sql.NullString{String: v, Valid: true}
	}
	return r
}

// oneRow is a result set with one row of non-NULL values.
func oneRow(cols []string, vals ...string) *resultSet {
	return &resultSet{cols: cols, rows: [][]sql.NullString{row(vals...)}}
}

// replyStatus is the status of a reply's final packet.
func replyStatus(more bool) uint16 {
	if more {
		return statusAutocommit | wire.StatusMoreResultsExists
	}
	return statusAutocommit
}

// write: last_insert_id is always 0; the info text (SET of an unknown
// variable, SAVE CONFIG TO FILE) is length-encoded by wire.AppendOK, as
// ProxySQL writes it.
func (r *okReply) write(c *wire.Conn, more bool) error {
	return c.WriteOK(r.affected, 0, replyStatus(more), r.warnings, r.info)
}

func (r *errReply) write(c *wire.Conn, _ bool) error { return c.WriteERR(r.code, r.state, r.msg) }

func (eofReply) write(c *wire.Conn, more bool) error { return c.WriteEOF(0, replyStatus(more)) }

func (r rawReply) write(c *wire.Conn, _ bool) error { return c.WritePacket(r) }

// write sends every column as ProxySQL's SQLite3_to_MySQL does: VAR_STRING,
// utf8_general_ci, length 65535 (wire.TextColumn).
func (r *resultSet) write(c *wire.Conn, more bool) error {
	cols := make([]wire.Column, len(r.cols))
	for i, name := range r.cols {
		cols[i] = wire.TextColumn(name)
	}
	return c.WriteResultSetWarnings(cols, r.rows, false, r.warnings, replyStatus(more))
}
