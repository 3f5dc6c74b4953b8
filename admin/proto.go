package admin

import (
	"bytes"
	"database/sql"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// The admin port speaks the text protocol only. After go-mysql's handshake
// the session runs its own command loop and frames its own replies, because
// go-mysql's Handler cannot send an OK packet carrying an info message (the
// answer ProxySQL gives to SET of an unknown variable), cannot mark a reply
// with SERVER_MORE_RESULTS_EXISTS for multi-statements, and sends each row
// as its own write. Replies are framed into one buffer and written at once.

// charsetUTF8 is utf8_general_ci, the character set of every admin column.
const charsetUTF8 = 33

// statusAutocommit is the server status of every admin reply: SQLite on the
// admin port has no client-visible transactions.
const statusAutocommit = mysql.SERVER_STATUS_AUTOCOMMIT

// reply is one answer to a client command.
type reply interface {
	// write frames the reply; more sets SERVER_MORE_RESULTS_EXISTS on its
	// final packet (multi-statements).
	write(w *packetWriter, more bool)
}

// okReply is an OK packet.
type okReply struct {
	affected uint64
	insertID uint64
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
	cols []string
	rows [][]sql.NullString
}

// eofReply is a lone EOF packet (the answer to COM_SET_OPTION and
// COM_FIELD_LIST).
type eofReply struct{}

// rawReply is one packet with a fixed payload (COM_STATISTICS).
type rawReply []byte

// adminErr is the error every admin command failure becomes: ProxySQL's
// send_MySQL_ERR always uses 1045 and SQLSTATE 28000.
func adminErr(msg string) *errReply { return &errReply{code: 1045, state: "28000", msg: msg} }

// sqliteErr wraps an error from SQLite the way ProxySQL does.
func sqliteErr(err error) *errReply { return adminErr("ProxySQL Admin Error: " + err.Error()) }

func unknownCommand() *errReply {
	return &errReply{code: mysql.ER_UNKNOWN_COM_ERROR, state: "08S01", msg: "Unknown command"}
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

// packetWriter frames MySQL packets into a buffer and flushes them to the
// connection in large writes.
type packetWriter struct {
	c   *server.Conn
	cap uint32 // capabilities both sides agreed on
	buf bytes.Buffer
	err error
}

const flushAt = 64 << 10

// packet frames one payload, splitting it at 16 MiB as the protocol needs.
func (w *packetWriter) packet(payload []byte) {
	for {
		n := len(payload)
		if n > mysql.MaxPayloadLen {
			n = mysql.MaxPayloadLen
		}
		w.buf.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), w.c.Sequence})
		w.c.Sequence++
		w.buf.Write(payload[:n])
		payload = payload[n:]
		if n < mysql.MaxPayloadLen {
			break
		}
	}
	if w.buf.Len() >= flushAt {
		w.flush()
	}
}

func (w *packetWriter) flush() {
	if w.err == nil && w.buf.Len() > 0 {
		_, w.err = w.c.Conn.Conn.Write(w.buf.Bytes())
	}
	w.buf.Reset()
}

func (r *okReply) write(w *packetWriter, more bool) {
	status := statusAutocommit
	if more {
		status |= mysql.SERVER_MORE_RESULTS_EXISTS
	}
	p := []byte{mysql.OK_HEADER}
	p = mysql.AppendLengthEncodedInteger(p, r.affected)
	p = mysql.AppendLengthEncodedInteger(p, r.insertID)
	p = append(p, byte(status), byte(status>>8), 0, 0)
	if w.cap&mysql.CLIENT_SESSION_TRACK != 0 {
		p = mysql.AppendLengthEncodedInteger(p, uint64(len(r.info)))
		p = append(p, r.info...)
	} else {
		p = append(p, r.info...)
	}
	w.packet(p)
}

func (r *errReply) write(w *packetWriter, _ bool) {
	p := []byte{mysql.ERR_HEADER, byte(r.code), byte(r.code >> 8), '#'}
	state := r.state
	if len(state) != 5 {
		state = "HY000"
	}
	p = append(p, state...)
	p = append(p, r.msg...)
	w.packet(p)
}

func (eofReply) write(w *packetWriter, more bool) { w.eof(more) }

func (r rawReply) write(w *packetWriter, _ bool) { w.packet(r) }

func (w *packetWriter) eof(more bool) {
	status := statusAutocommit
	if more {
		status |= mysql.SERVER_MORE_RESULTS_EXISTS
	}
	w.packet([]byte{mysql.EOF_HEADER, 0, 0, byte(status), byte(status >> 8)})
}

func (r *resultSet) write(w *packetWriter, more bool) {
	w.packet(mysql.AppendLengthEncodedInteger(nil, uint64(len(r.cols))))
	for _, name := range r.cols {
		w.packet(columnDef(name))
	}
	w.eof(false)
	var p []byte
	for _, rw := range r.rows {
		p = p[:0]
		for i := range r.cols {
			if i >= len(rw) || !rw[i].Valid {
				p = append(p, 0xfb) // NULL
				continue
			}
			p = mysql.AppendLengthEncodedInteger(p, uint64(len(rw[i].String)))
			p = append(p, rw[i].String...)
		}
		w.packet(p)
	}
	w.eof(more)
}

// columnDef is a Protocol::ColumnDefinition41 for a VAR_STRING column, the
// type ProxySQL's SQLite3_to_MySQL gives every admin column.
func columnDef(name string) []byte {
	p := make([]byte, 0, 32+len(name)*2)
	p = appendLenEncString(p, "def")
	p = appendLenEncString(p, "") // schema
	p = appendLenEncString(p, "") // table
	p = appendLenEncString(p, "") // org_table
	p = appendLenEncString(p, name)
	p = appendLenEncString(p, name)
	p = append(p, 0x0c)
	p = append(p, charsetUTF8, 0)
	p = append(p, 0xff, 0xff, 0, 0) // column length: 65535
	p = append(p, mysql.MYSQL_TYPE_VAR_STRING)
	p = append(p, 0, 0) // flags
	p = append(p, 0)    // decimals
	p = append(p, 0, 0) // filler
	return p
}

func appendLenEncString(p []byte, s string) []byte {
	p = mysql.AppendLengthEncodedInteger(p, uint64(len(s)))
	return append(p, s...)
}
