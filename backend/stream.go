package backend

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// awaitWindow: see send.
const awaitWindow = time.Second

// The backend connection owns its I/O: Run sends a command and walks the
// server's response packet by packet, passing each one to a Sink — a
// client connection (the data plane), nobody (the mirror), or a Result the
// proxy reads itself (its own SET, SELECT @@read_only, KILL QUERY). This
// file is the one response walker: nothing else reads a server's response
// to a command (the login exchange is in conn.go), the COM_STMT_PREPARE
// response included (prepareResponse).

// Shape is the layout of a command's response.
type Shape uint8

const (
	// ShapeResult: an OK, an ERR, or result sets, following
	// SERVER_MORE_RESULTS_EXISTS (COM_QUERY, COM_STMT_EXECUTE).
	ShapeResult Shape = iota
	// ShapeRows: packets up to a terminator or an ERR (COM_FIELD_LIST's
	// column definitions, COM_STMT_FETCH's rows).
	ShapeRows
	// ShapeOne: a single packet (COM_STATISTICS).
	ShapeOne
	// ShapeStream: packets up to a terminator or an ERR, each passed on as
	// soon as no other is waiting (COM_BINLOG_DUMP: a replication stream,
	// events as they come, possibly never ending).
	ShapeStream
)

// Response is what the proxy learns from a response while it streams it:
// only the first packet of each result and the final OK/EOF/ERR are parsed;
// rows pass through undecoded.
type Response struct {
	Affected   uint64
	InsertID   uint64
	Status     uint16
	Warnings   uint16
	Rows       uint64         // rows sent, over every result set
	OK         bool           // the last result was an OK packet
	ResultSets int            // result sets sent
	Err        *wire.SQLError // the server answered with an ERR; the connection stays usable
	sawStatus  bool           // an OK or a terminator set Status
	// Refused is a refusal the sink held back (Sink.Hold): the server
	// answered the command with nothing but an ERR saying it serves no
	// queries now, and nothing reached the client: the command may go to
	// another server.
	Refused *wire.SQLError
}

// NoStatus reports whether the response carried no server status (an ERR,
// a one-packet answer): Status is then the connection's status from before
// the command, and a statement that failed may have opened a transaction
// all the same (autocommit=0, a procedure's START TRANSACTION).
func (r *Response) NoStatus() bool { return !r.sawStatus }

// Started reports whether any of the response reached the sink: after
// that, running the command again would show the client a second answer.
func (r *Response) Started() bool { return r.OK || r.ResultSets > 0 || r.Err != nil }

// ErrClientGone marks a failure to write to the sink's client: the
// response was cut short, so the backend connection is broken too.
var ErrClientGone = errors.New("backend: client connection failed")

// Sink is where a response goes.
type Sink struct {
	// Client receives the response; nil reads and drops it.
	Client *wire.Conn
	// DeprecateEOF is the client's dialect: result-set terminators are
	// translated when it differs from the server's.
	DeprecateEOF bool
	// Status is the client session's status, for the EOF the proxy writes
	// itself after column definitions when only the server dropped it.
	Status uint16
	// Call: the command is a CALL, all of whose result sets are followed
	// by more (the procedure's final OK).
	Call bool
	// ClearAutocommit: a read ran with autocommit=1 for a client with
	// autocommit=0 (mysql-enforce_autocommit_on_reads=false); the
	// terminators the client gets carry its setting, not the server's.
	ClearAutocommit bool
	// Collect, when not nil, receives the column names and text rows of the
	// first result set (the proxy's own queries; Client is then nil).
	Collect *Result
	// Tee, when set, gets a copy of every packet sent to Client (the query
	// cache storing a response).
	Tee *wire.Tee
	// LocalFiles lets a server's request for a client file (LOAD DATA
	// LOCAL INFILE) through to Client, and the file back to the server.
	// Without it the server gets an empty file and the client the ERR
	// NoLocalFiles (ProxySQL's 1047 when that is nil).
	LocalFiles   bool
	NoLocalFiles *wire.SQLError
	// Known, for a COM_STMT_EXECUTE, holds the column definitions the
	// client has for the statement (its PREPARE response's, or the last
	// ones an execute sent). It matters only to a client that negotiated
	// MARIADB_CLIENT_CACHE_METADATA (Client.MetaFollows: every column count
	// it gets carries the "metadata follows" byte). When the first result
	// set's definitions are the same they are not sent (metadata follows =
	// 0), as a MariaDB server does; otherwise they are, and Known becomes
	// them. After a response with more than one result set, or one copied
	// to Tee (a stored response must be whole), Known is nil: unknown, the
	// next execute sends them.
	Known *[][]byte
	// Interrupt, when set (from any goroutine), replaces a server ERR 1317
	// "Query execution was interrupted": the proxy killed the query and
	// the client learns why (query_timeout).
	Interrupt atomic.Pointer[wire.SQLError]
	// Hold says which refusals are kept from the client (Response.Refused)
	// so the command can be retried elsewhere.
	Hold Hold
}

// clientStatus is a server status as the sink's client is to see it
// (ClearAutocommit).
func (s *Sink) clientStatus(st uint16) uint16 {
	if s.ClearAutocommit {
		st &^= wire.StatusAutocommit
	}
	return st
}

// Hold is which server refusals a Sink keeps from the client. A server
// refuses a command as a server, not for the statement: ProxySQL retries
// such a command on another connection (handler_minus1_HandleErrorCodes)
// and counts the refusal against the server as a failed connect.
type Hold uint8

const (
	// HoldNone: every ERR goes to the client.
	HoldNone Hold = iota
	// HoldNotRun: refusals of commands the server did not start — a
	// Galera node that is not ready (wsrep_ready=OFF, non-primary, or
	// wsrep_reject_queries): 1047 "WSREP has not yet prepared node for
	// application use".
	HoldNotRun
	// HoldAny adds 1053 "Server shutdown in progress": the server may have
	// begun the statement, so only a command safe to repeat is held.
	HoldAny
)

// Holds reports whether hold keeps e, the whole response, from the client.
func (hold Hold) Holds(e *wire.SQLError) bool {
	switch {
	case hold == HoldNone:
		return false
	case e.Code == 1047 && strings.HasPrefix(e.Message, "WSREP"):
		return true
	case e.Code == 1053:
		return hold == HoldAny
	}
	return false
}

// errInterrupted is the server's code for a query stopped by KILL QUERY.
const errInterrupted = 1317

// writeErr passes the server's ERR p (parsed as e) to the client, or the
// proxy's reason for the interruption in its place.
func writeErr(sink *Sink, p []byte, e *wire.SQLError) (*wire.SQLError, error) {
	if e.Code == errInterrupted {
		if why := sink.Interrupt.Load(); why != nil {
			if sink.Client == nil {
				return why, nil
			}
			return why, clientErr(sink.Client.WriteError(why))
		}
	}
	return e, write(sink, p)
}

// Result is the first result set of one of the proxy's own queries, as
// text, and the counters of the final OK/EOF.
type Result struct {
	Columns  []string
	Types    []byte // MYSQL_TYPE_* of each column
	Charsets []uint16

	Rows         [][]sql.NullString
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
}

// Send buffers a command that has no response (COM_STMT_SEND_LONG_DATA,
// COM_STMT_CLOSE); the next Run flushes it with its own command.
func (c *BackendConn) Send(p []byte) error {
	if err := c.usable(); err != nil {
		return err
	}
	c.w.ResetSeq()
	return c.fail(c.w.WritePacket(p))
}

// Run sends the command p and streams its response, shaped as shape, to
// sink. A server ERR is in Response.Err and leaves the connection usable;
// any returned error breaks the connection (an error wrapping
// ErrClientGone says the client, not the server, failed).
func (c *BackendConn) Run(p []byte, shape Shape, sink *Sink) (Response, error) {
	if err := c.usable(); err != nil {
		return Response{}, err
	}
	if err := c.send(p); err != nil {
		if se := c.lastWords(err); se != nil {
			c.broken = true
			return Response{}, &ClosedError{SQL: se, Err: err}
		}
		return Response{}, c.fail(err)
	}
	if sink.Client != nil {
		sink.Client.SetSeq(c.w.Seq())
	}
	res, err := c.walk(shape, sink)
	if err == nil {
		if !res.sawStatus {
			// No status came back: an ERR packet has none (the server's
			// state is as before the command, as libmysqlclient's
			// server_status keeps it; a query killed after its column
			// definitions ends with one too), nor has a one-packet
			// answer. Taken as 0, a statement that failed inside a
			// transaction read as outside one, and the connection went
			// back to the pool with the transaction open — another
			// session ran in it.
			res.Status = c.status
		}
		c.status = res.Status
		if res.Err != nil && closesAfter(res.Err.Code) {
			c.broken = true
		}
	}
	return res, c.fail(err)
}

// closesAfter reports whether a server closes its connection after the ERR
// code: 1153, a packet over its max_allowed_packet (read whole when the
// socket buffers took the command at once, so the send did not fail), and
// 1927, the connection killed. Pooled again, such a connection failed the
// next command sent within awaitWindow, and that counted as a lost
// connection against a healthy server.
func closesAfter(code uint16) bool { return code == 1153 || code == 1927 }

// lastWordsWait bounds the read of a server's last words (lastWords).
const lastWordsWait = 2 * time.Second

// lastWords reads, after a command failed to go out, what the server said
// before it closed the connection: MariaDB and MySQL answer a packet over
// their max_allowed_packet with ERR 1153 and close, and the rest of a large
// command then meets a reset. nil when nothing readable is an ERR.
//
// The server has closed its end by then (the write met a reset or a broken
// pipe), so the read ends as soon as what it sent is read; the deadline
// only bounds a peer that never closes, and is long enough for a loaded
// server's ERR to arrive (a fixed 200 ms was not, and counted the command
// as a lost connection). A send that failed for its deadline (an aborted
// connection, a stalled server) has no last words to wait for.
func (c *BackendConn) lastWords(sendErr error) *wire.SQLError {
	var ne net.Error
	if c.aborted.Load() || errors.As(sendErr, &ne) && ne.Timeout() {
		return nil
	}
	_ = c.w.SetReadDeadline(time.Now().Add(lastWordsWait))
	p, err := c.w.ReadPacket()
	if err != nil || len(p) == 0 || p[0] != wire.HeaderERR {
		return nil
	}
	e, err := wire.ParseERR(p)
	if err != nil {
		return nil
	}
	return e
}

// send writes command p (with anything Send buffered) for a response to
// follow. A connection that sent a command within awaitWindow waits for
// the answer without the read(2) that would find nothing yet
// (wire.Conn.FlushAwait). One idle for longer reads first: a server may
// have said something in the meantime (an ERR before it closed an idle
// connection), and that must be seen, not waited past.
func (c *BackendConn) send(p []byte) error {
	c.w.ResetSeq()
	if err := c.w.WritePacket(p); err != nil {
		return err
	}
	now := time.Now()
	recent := now.Sub(c.lastSent) < awaitWindow
	c.lastSent = now
	if recent {
		return c.w.FlushAwait()
	}
	return c.w.Flush()
}

// closedWhileIdle reports whether the server closed or reset c since it
// was last used (a server killed or restarted, its wait_timeout), or sent
// something nobody asked for (MySQL 8's ERR 4031 before it closes an idle
// connection). Only a connection idle for awaitWindow or longer is looked
// at (one non-blocking peek at the socket), so a busy pool's per-query path
// makes no system call for it. A command written to such a connection fails
// only on the read, and a write cannot be repeated then (it may have run):
// caught here, nothing was sent and any command can go to another
// connection.
func (c *BackendConn) closedWhileIdle(now time.Time) bool {
	if now.Sub(c.lastSent) < awaitWindow {
		return false
	}
	if c.w.Buffered() > 0 {
		return true
	}
	r := wire.Peek(c.w.NetConn())
	return r == wire.PeekClosed || r == wire.PeekData
}

// walk reads one response. With no client the packets are read and
// skipped (their sequence ids still checked), and the same parsing fills
// the Response.
func (c *BackendConn) walk(shape Shape, sink *Sink) (Response, error) {
	var res Response
	switch shape {
	case ShapeOne:
		err := c.pass(sink)
		if err == nil {
			err = flush(sink)
		}
		return res, err
	case ShapeRows, ShapeStream:
		err := c.rows(sink, &res, shape == ShapeStream)
		if err == nil {
			err = flush(sink)
		}
		return res, err
	}
	for {
		length, first, err := c.w.PeekHeader()
		if err != nil {
			return res, err
		}
		if first == wire.HeaderEOF && length < 9 {
			// A lone EOF: the answer to COM_SET_OPTION.
			if err := c.terminator(sink, &res); err != nil {
				return res, err
			}
			return res, flush(sink)
		}
		switch first {
		case wire.HeaderOK:
			p, err := c.w.ReadPacket()
			if err != nil {
				return res, err
			}
			ok, err := wire.ParseOK(p)
			if err != nil {
				return res, err
			}
			res.OK, res.Status, res.Warnings, res.sawStatus = true, ok.Status, ok.Warnings, true
			res.Affected += ok.AffectedRows
			res.InsertID = ok.LastInsertID
			if err := write(sink, p); err != nil {
				return res, err
			}
		case wire.HeaderERR:
			p, err := c.w.ReadPacket()
			if err != nil {
				return res, err
			}
			if res.Err, err = wire.ParseERR(p); err != nil {
				return res, err
			}
			if res.ResultSets == 0 && !res.OK && sink.Hold.Holds(res.Err) {
				// The whole response is a refusal: nothing was sent.
				res.Refused, res.Err = res.Err, nil
				return res, nil
			}
			res.OK = false
			if res.Err, err = writeErr(sink, p, res.Err); err != nil {
				return res, err
			}
			return res, flush(sink)
		case wire.HeaderLocalIn:
			refused, err := c.localInfile(sink)
			if err != nil {
				return res, err
			}
			if refused != nil {
				return c.refuseLocalInfile(sink, refused)
			}
			continue
		default:
			if err := c.resultSet(sink, &res); err != nil {
				return res, err
			}
		}
		if res.Status&wire.StatusMoreResultsExists == 0 {
			return res, flush(sink)
		}
	}
}

// ErrLocalInfileOff is ProxySQL's answer to LOAD DATA LOCAL INFILE with
// mysql-enable_load_data_local_infile off.
var ErrLocalInfileOff = &wire.SQLError{Code: 1047, State: "08S01", Message: "Unsupported 'LOAD DATA LOCAL INFILE' command"}

// ErrNoClientLocalFiles, as a Sink's NoLocalFiles, stands for the server's
// own answer to LOAD DATA LOCAL INFILE from a client that did not enable
// local files (no CLIENT_LOCAL_FILES): MariaDB's 4166, MySQL's 3948.
var ErrNoClientLocalFiles = &wire.SQLError{Code: 3948, State: "42000",
	Message: "Loading local data is disabled; this must be enabled on both the client and server sides"}

func (c *BackendConn) noClientLocalFiles() *wire.SQLError {
	if c.srv != nil && c.srv.MariaDBVersionNumber() > 0 {
		return &wire.SQLError{Code: 4166, State: "HY000",
			Message: "The used command is not allowed because the MariaDB server or client has disabled the local infile capability"}
	}
	return ErrNoClientLocalFiles
}

// localInfile answers a server's request for a client file (LOAD DATA
// LOCAL INFILE; the packet is 0xFB and the file name). When the session
// allows it the request goes to the client, and the client's packets
// stream to the server up to its empty packet, which ends the file: nothing
// is buffered beyond the two connections' buffers, whatever the file's
// size. Otherwise the server gets an empty file (the protocol's way to
// decline) and the returned error is the client's answer. The proxy never
// reads a file of its own.
func (c *BackendConn) localInfile(sink *Sink) (*wire.SQLError, error) {
	if sink.Client == nil || !sink.LocalFiles {
		if _, _, err := c.w.SkipPacket(); err != nil {
			return nil, err
		}
		if err := c.w.WritePacket(nil); err != nil {
			return nil, err
		}
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
		// The client saw none of this: its sequence stays where the
		// refusal goes.
		if sink.NoLocalFiles == ErrNoClientLocalFiles {
			return c.noClientLocalFiles(), nil
		}
		if sink.NoLocalFiles != nil {
			return sink.NoLocalFiles, nil
		}
		return ErrLocalInfileOff, nil
	}
	if err := c.pass(sink); err != nil {
		return nil, err
	}
	if err := flush(sink); err != nil {
		return nil, err
	}
	for {
		_, n, err := sink.Client.ForwardPacket(c.w)
		if err != nil {
			if errors.Is(err, wire.ErrRead) {
				// The client went away mid-file: the server waits for
				// the rest, so this connection is lost with it.
				return nil, fmt.Errorf("%w: %w", ErrClientGone, err)
			}
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	sink.Client.SetSeq(c.w.Seq())
	return nil, nil
}

// refuseLocalInfile ends a LOAD DATA LOCAL INFILE whose file was declined:
// the server's answer to the empty file is read and dropped (with the rest
// of a multi-statement response), and the client gets refused instead.
func (c *BackendConn) refuseLocalInfile(sink *Sink, refused *wire.SQLError) (Response, error) {
	res, err := c.walk(ShapeResult, &Sink{DeprecateEOF: sink.DeprecateEOF})
	if err != nil {
		return res, err
	}
	res.OK, res.Err = false, refused
	if sink.Client == nil {
		return res, nil
	}
	if err := clientErr(sink.Client.WriteError(refused)); err != nil {
		return res, err
	}
	return res, flush(sink)
}

// resultSet streams one result set: column count, column definitions, the
// EOF after them (only without CLIENT_DEPRECATE_EOF), rows, terminator.
func (c *BackendConn) resultSet(sink *Sink, res *Response) error {
	p, err := c.w.ReadPacket()
	if err != nil {
		return err
	}
	ncols, _, _, ok := wire.ReadLenEncInt(p)
	if !ok || ncols == 0 {
		return fmt.Errorf("%w: malformed column count packet", ErrProtocol)
	}
	collect := sink.Collect != nil && res.ResultSets == 0
	if collect && ncols > 1<<16 {
		return fmt.Errorf("%w: %d columns", ErrProtocol, ncols)
	}
	pending := ncols // definitions still to pass on
	if sink.Client != nil && sink.Client.MetaFollows {
		if pending, err = c.countMeta(sink, res, p, ncols); err != nil {
			return err
		}
	} else if err := write(sink, p); err != nil {
		return err
	}
	for i := uint64(0); i < pending; i++ {
		if collect {
			def, err := c.w.ReadPacket()
			if err != nil {
				return err
			}
			name, typ, cs := columnInfo(def)
			sink.Collect.Columns = append(sink.Collect.Columns, name)
			sink.Collect.Types = append(sink.Collect.Types, typ)
			sink.Collect.Charsets = append(sink.Collect.Charsets, cs)
			continue
		}
		if err := c.pass(sink); err != nil {
			return err
		}
	}
	srvDepr, cliDepr := c.DeprecateEOF(), sink.DeprecateEOF
	if sink.Client == nil {
		cliDepr = srvDepr // nothing to translate
	}
	// The packet after the definitions: the EOF ending them (without
	// CLIENT_DEPRECATE_EOF), else the first row or the terminator. A
	// COM_STMT_EXECUTE that opened a cursor ends its definitions with a
	// terminator carrying SERVER_STATUS_CURSOR_EXISTS in either dialect;
	// its rows come later, by COM_STMT_FETCH.
	var end []byte
	if length, first, err := c.w.PeekHeader(); err != nil {
		return err
	} else if !srvDepr || wire.IsTerminator(first, length) {
		if end, err = c.w.ReadPacket(); err != nil {
			return err
		}
	}
	status := sink.Status // of the EOF after the definitions, if it is made up
	if end != nil {
		_, st, err := wire.ParseTerminator(end)
		if err != nil {
			return err
		}
		status = sink.clientStatus(st)
		if st&wire.StatusCursorExists != 0 {
			res.OK = false
			res.ResultSets++
			return c.writeTerminator(sink, res, end)
		}
	}
	switch {
	case !srvDepr && !cliDepr:
		if err := write(sink, end); err != nil {
			return err
		}
	case srvDepr && !cliDepr:
		// The server sent no EOF here; the one made up carries the status
		// of the result set's terminator, found ahead in the read buffer:
		// clients read SERVER_MORE_RESULTS_EXISTS (a CALL, a multi-
		// statement query) and SERVER_PS_OUT_PARAMS from this EOF, before
		// the rows (libmariadb, PHP's mysqlnd). A result set larger than
		// the buffer gets the session's status, and MORE_RESULTS_EXISTS
		// when its statement is a CALL.
		if end == nil {
			st, found, err := c.w.PeekResultEnd()
			if err != nil {
				return err
			}
			switch {
			case found:
				status = sink.clientStatus(st)
			case sink.Call:
				status |= wire.StatusMoreResultsExists
			}
		}
		c.scratch = wire.AppendEOF(c.scratch[:0], 0, status)
		if err := write(sink, c.scratch); err != nil {
			return err
		}
	}
	res.OK = false
	res.ResultSets++
	if srvDepr && end != nil { // no rows
		if collect {
			sink = &Sink{}
		}
		return c.writeTerminator(sink, res, end)
	}
	if collect {
		return c.collectRows(sink.Collect, int(ncols), res)
	}
	return c.rows(sink, res, false)
}

// countMeta writes the column count p of a result set to a
// MARIADB_CLIENT_CACHE_METADATA client with its "metadata follows" byte. It
// returns how many column definitions the caller still passes on: ncols,
// or 0 when it compared them with the client's (Sink.Known) and sent them
// itself or left them out.
func (c *BackendConn) countMeta(sink *Sink, res *Response, p []byte, ncols uint64) (uint64, error) {
	known := sink.Known
	if known != nil && (res.ResultSets > 0 || sink.Tee != nil || ncols > 1<<16) {
		// Not an execute's only result set, or one being stored: the
		// definitions follow, and what the client holds afterwards is not
		// known.
		*known, known = nil, nil
	}
	if known == nil {
		c.scratch = append(append(c.scratch[:0], p...), 1)
		return ncols, write(sink, c.scratch)
	}
	// Hold the definitions back until they are compared with the client's.
	// They are the server's to size, as when they are passed on.
	c.defs, c.defEnds = c.defs[:0], c.defEnds[:0]
	same := uint64(len(*known)) == ncols
	for i := uint64(0); i < ncols; i++ {
		d, err := c.w.ReadPacket()
		if err != nil {
			return 0, err
		}
		same = same && bytes.Equal(d, (*known)[i])
		c.defs = append(c.defs, d...)
		c.defEnds = append(c.defEnds, len(c.defs))
	}
	c.scratch = append(append(c.scratch[:0], p...), 0)
	if same {
		return 0, write(sink, c.scratch)
	}
	c.scratch[len(c.scratch)-1] = 1
	if err := write(sink, c.scratch); err != nil {
		return 0, err
	}
	// The client now holds these: keep a copy of their own (the statement's
	// metadata changed, or this is its first execute with other ones).
	held := bytes.Clone(c.defs)
	cols := make([][]byte, len(c.defEnds))
	start := 0
	for i, end := range c.defEnds {
		cols[i] = held[start:end:end]
		if err := write(sink, cols[i]); err != nil {
			return 0, err
		}
		start = end
	}
	*known = cols
	return 0, nil
}

// rows streams packets until the terminator (or an ERR), counting them;
// eager flushes the client whenever no further packet is waiting.
func (c *BackendConn) rows(sink *Sink, res *Response, eager bool) error {
	for {
		if eager && c.w.Buffered() == 0 {
			// Nothing more has arrived: what was forwarded goes out now,
			// not when the buffer fills.
			if err := flush(sink); err != nil {
				return err
			}
		}
		length, first, err := c.w.PeekHeader()
		if err != nil {
			return err
		}
		if first == wire.HeaderERR && length < wire.MaxPayloadLen {
			p, err := c.w.ReadPacket()
			if err != nil {
				return err
			}
			if res.Err, err = wire.ParseERR(p); err != nil {
				return err
			}
			res.Status &^= wire.StatusMoreResultsExists
			res.Err, err = writeErr(sink, p, res.Err)
			return err
		}
		if wire.IsTerminator(first, length) {
			return c.terminator(sink, res)
		}
		if err := c.pass(sink); err != nil {
			return err
		}
		res.Rows++
	}
}

// collectRows reads the rows of a result set the proxy itself asked for.
func (c *BackendConn) collectRows(into *Result, ncols int, res *Response) error {
	for {
		length, first, err := c.w.PeekHeader()
		if err != nil {
			return err
		}
		if first == wire.HeaderERR || wire.IsTerminator(first, length) {
			return c.rows(&Sink{}, res, false)
		}
		row, err := c.w.ReadPacket()
		if err != nil {
			return err
		}
		vals, err := parseTextRow(row, ncols)
		if err != nil {
			return err
		}
		into.Rows = append(into.Rows, vals)
		res.Rows++
	}
}

// terminator reads a result-set terminator and writes it in the form the
// client expects.
func (c *BackendConn) terminator(sink *Sink, res *Response) error {
	p, err := c.w.ReadPacket()
	if err != nil {
		return err
	}
	return c.writeTerminator(sink, res, p)
}

// writeTerminator records the terminator p in res and writes it in the
// form the client expects.
func (c *BackendConn) writeTerminator(sink *Sink, res *Response, p []byte) error {
	w, st, err := wire.ParseTerminator(p)
	if err != nil {
		return err
	}
	res.Warnings, res.Status, res.sawStatus = w, st, true
	if sink.Client == nil {
		return nil
	}
	srvDepr, cliDepr := c.DeprecateEOF(), sink.DeprecateEOF
	switch {
	case cliDepr == srvDepr:
		c.scratch = append(c.scratch[:0], p...)
	case cliDepr:
		c.scratch, err = wire.EOFToOK(c.scratch[:0], p)
	default:
		c.scratch, err = wire.OKToEOF(c.scratch[:0], p)
	}
	if err != nil {
		return err
	}
	if sink.ClearAutocommit {
		wire.SetTerminatorStatus(c.scratch, wire.StatusAutocommit, 0)
	}
	return write(sink, c.scratch)
}

// prepareResponse reads a COM_STMT_PREPARE response: an OK with the
// statement id and counts, then the parameter and column definitions,
// each list followed by an EOF unless CLIENT_DEPRECATE_EOF.
func (c *BackendConn) prepareResponse(meta *StmtMeta) (uint32, error) {
	r, err := c.w.ReadPacket()
	if err != nil {
		return 0, err
	}
	if wire.IsERR(r) {
		e, err := wire.ParseERR(r)
		if err != nil {
			return 0, err
		}
		return 0, e
	}
	if len(r) < 12 || r[0] != wire.HeaderOK {
		return 0, fmt.Errorf("%w: malformed COM_STMT_PREPARE response", ErrProtocol)
	}
	id := binary.LittleEndian.Uint32(r[1:])
	ncols := binary.LittleEndian.Uint16(r[5:])
	nparams := binary.LittleEndian.Uint16(r[7:])
	var params, cols *[][]byte
	if meta != nil {
		*meta = StmtMeta{NumParams: nparams, NumCols: ncols}
		params, cols = &meta.Params, &meta.Cols
	}
	if err := c.readDefs(nparams, params); err != nil {
		return 0, err
	}
	if err := c.readDefs(ncols, cols); err != nil {
		return 0, err
	}
	return id, nil
}

// readDefs reads n definition packets (and their EOF), copying them into
// *into when it is not nil.
func (c *BackendConn) readDefs(n uint16, into *[][]byte) error {
	if n == 0 {
		return nil
	}
	if into != nil {
		// n is the server's claim: capacity is earned by packets read.
		*into = make([][]byte, 0, min(n, 64))
	}
	for range n {
		if into == nil {
			if _, _, err := c.w.SkipPacket(); err != nil {
				return err
			}
			continue
		}
		d, err := c.w.ReadPacket()
		if err != nil {
			return err
		}
		*into = append(*into, append([]byte(nil), d...))
	}
	if !c.DeprecateEOF() {
		if _, _, err := c.w.SkipPacket(); err != nil {
			return err
		}
	}
	return nil
}

// pass moves one packet to the client without decoding it, or skips it.
func (c *BackendConn) pass(sink *Sink) error {
	if sink.Client == nil {
		_, _, err := c.w.SkipPacket()
		return err
	}
	var err error
	if sink.Tee != nil {
		_, _, err = c.w.ForwardPacketTee(sink.Client, sink.Tee)
	} else {
		_, _, err = c.w.ForwardPacket(sink.Client)
	}
	return clientErr(err)
}

// write sends p to the client, if there is one.
func write(sink *Sink, p []byte) error {
	if sink.Client == nil {
		return nil
	}
	if sink.Tee != nil {
		sink.Tee.Add(p)
	}
	return clientErr(sink.Client.WritePacket(p))
}

func flush(sink *Sink) error {
	if sink.Client == nil {
		return nil
	}
	return clientErr(sink.Client.Flush())
}

// clientErr tags a failed write to the client, so the caller knows whom to
// blame: the backend connection is broken either way (its response was
// cut), but only a server failure counts against the server.
func clientErr(err error) error {
	if err != nil && errors.Is(err, wire.ErrWrite) {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return err
}

// columnInfo returns the name (the fifth string), the type and the
// character set of a ColumnDefinition41.
func columnInfo(def []byte) (name string, typ byte, charset uint16) {
	rest := def
	for i := 0; i < 6; i++ {
		s, _, r, ok := wire.ReadLenEncString(rest)
		if !ok {
			return name, 0, 0
		}
		if i == 4 {
			name = string(s)
		}
		rest = r
	}
	// fixed-length fields: 0x0c, charset(2), length(4), type(1), flags(2), decimals(1)
	if len(rest) >= 8 {
		charset, typ = uint16(rest[1])|uint16(rest[2])<<8, rest[7]
	}
	return name, typ, charset
}

func parseTextRow(p []byte, n int) ([]sql.NullString, error) {
	vals := make([]sql.NullString, n)
	for i := range vals {
		s, isNull, rest, ok := wire.ReadLenEncString(p)
		if !ok {
			return nil, fmt.Errorf("%w: bad text row", ErrProtocol)
		}
		if !isNull {
			vals[i] = sql.NullString{String: string(s), Valid: true}
		}
		p = rest
	}
	return vals, nil
}
