package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/threads"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// session is one logged-in admin or stats connection.
type session struct {
	s     *Server
	c     *wire.Conn
	user  string
	host  string // client host, for USER()
	stats bool   // logged in with admin-stats_credentials: read-only
	// cluster: logged in as admin-cluster_username, which may run the
	// statements of ProxySQL Cluster only (cluster.go).
	cluster bool
	remote  string // the client's address, "ip:port" over TCP
	multi   bool   // multi-statements on (CLIENT_MULTI_STATEMENTS or COM_SET_OPTION)
	quit    bool   // the client sent COM_QUIT
	id      uint32 // the connection id of its handshake (the audit log's thread_id)
	log     zerolog.Logger

	after []func() // run once the current reply is on the wire

	// warnings are the last statement's warnings (SHOW WARNINGS).
	warnings []string

	// qctx is the running query's context (watchClient), nil between
	// queries.
	qctx context.Context
}

// clientWatchEvery is how often a running admin query looks whether its
// client is still there (watchClient).
const clientWatchEvery = 500 * time.Millisecond

// watchClient gives the query about to run a context that ends when its
// client closes the connection (a peek at the socket every
// clientWatchEvery): SQLite then interrupts it. A runaway statement (a
// recursive CTE with no end) held the admin's statement lock for ever,
// every LOAD, SAVE and stats read of every session waiting behind it, long
// after the client that sent it had gone. The returned func ends the watch.
func (ss *session) watchClient() func() {
	ctx, cancel := context.WithCancel(ss.s.ctx)
	ss.qctx = ctx
	done := make(chan struct{})
	nc := ss.c.NetConn()
	go func() {
		t := time.NewTicker(clientWatchEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if wire.Peek(nc) == wire.PeekClosed {
					ss.log.Warn().Msg("the client of a running admin query closed its connection: the query is interrupted")
					cancel()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		cancel()
		ss.qctx = nil
	}
}

// ctx is the context of the session's running query.
func (ss *session) ctx() context.Context {
	if ss.qctx != nil {
		return ss.qctx
	}
	return ss.s.ctx
}

// adminCapabilities is what the admin port offers in its handshake. It is
// what go-mysql's server offered the admin before the port moved to
// internal/wire (go-mysql v1.16.0 NewServerWithAuth: LONG_PASSWORD,
// LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION,
// PLUGIN_AUTH, CONNECT_ATTRS, PLUGIN_AUTH_LENENC_CLIENT_DATA, MULTI_RESULTS,
// PS_MULTI_RESULTS, plus SSL when Config.TLS is set, which
// wire.ServerHandshake adds), less CLIENT_SESSION_TRACK: an OK's info text
// is then a bare length-encoded string after the warnings, as ProxySQL's
// admin sends it to every client. CLIENT_COMPRESS too: ProxySQL's admin
// takes compressed clients (its admin_various_commands test connects with
// CLIENT_SSL|CLIENT_COMPRESS). No CLIENT_DEPRECATE_EOF (go-mysql never
// offered it): result sets end with an EOF packet. CLIENT_MULTI_STATEMENTS is not offered either (it was not),
// yet a client that asks for it gets multi-statements, as before.
const adminCapabilities = wire.ClientLongPassword | wire.ClientLongFlag | wire.ClientConnectWithDB |
	wire.ClientProtocol41 | wire.ClientTransactions | wire.ClientSecureConnection | wire.ClientPluginAuth |
	wire.ClientConnectAttrs | wire.ClientPluginAuthLenencClientData | wire.ClientMultiResults |
	wire.ClientPSMultiResults | wire.ClientCompress

// loginMaxPayload bounds what a client that has not logged in yet can make
// the admin read: a handshake response is far below 64 KiB.
const loginMaxPayload = 64 << 10

// loginStatus is the server status of the handshake and of the OK that
// ends a successful login: the admin's strings take no backslash escapes
// (statusAutocommit), which a driver may read here before any query.
const loginStatus = wire.StatusNoBackslashEscapes

func (s *Server) serveConn(nc net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Str("client", nc.RemoteAddr().String()).Interface("panic", r).
				Bytes("stack", debug.Stack()).Msg("admin session crashed")
		}
	}()
	c := wire.NewConn(nc)
	defer c.Close()
	ss := s.login(c)
	if ss == nil {
		return
	}
	s.markLoggedIn(nc)
	ss.log.Debug().Bool("stats", ss.stats).Msg("admin session opened")
	created := time.Now()
	s.audit(nc, ss.id, eventlog.AuditAdminConnectOK, ss.user, "", time.Time{})
	ss.run()
	if ss.quit {
		s.audit(nc, ss.id, eventlog.AuditAdminQuit, ss.user, "", time.Time{})
	}
	s.audit(nc, ss.id, eventlog.AuditAdminClose, ss.user, "", created)
	ss.log.Debug().Msg("admin session closed")
}

// login runs the connection phase: handshake (TLS upgrade when configured),
// authentication, and the final OK or ERR. It returns the logged-in session,
// or nil when the client is gone or was refused.
func (s *Server) login(c *wire.Conn) *session {
	nc := c.NetConn()
	local, remote := nc.LocalAddr(), nc.RemoteAddr()
	_ = c.SetDeadline(time.Now().Add(s.handshakeTimeout()))
	c.SetMaxPayload(loginMaxPayload)
	hs := &wire.InitialHandshake{
		ServerVersion: s.serverVersion(),
		ConnID:        s.connIDs.Add(1),
		Salt:          wire.NewSalt(),
		Capabilities:  adminCapabilities,
		Charset:       charsetUTF8,
		Status:        loginStatus,
		AuthPlugin:    wire.AuthNativePassword,
	}
	var tc *tls.Config
	if s.cfg.TLS != nil {
		tc = s.cfg.TLS()
	}
	resp, err := wire.ServerHandshake(c, hs, tc)
	if err != nil {
		var e *errReply
		switch {
		case errors.Is(err, wire.ErrTLSNotSupported):
			e = &errReply{code: erHandshake, state: "08S01", msg: "ProxySQL Error: TLS is not offered: mysql-have_ssl is false"}
		case errors.Is(err, wire.ErrRead), errors.Is(err, wire.ErrWrite):
		default: // malformed, no protocol 4.1, too large
			e = &errReply{code: erHandshake, state: "08S01", msg: "Bad handshake"}
		}
		if e != nil {
			// A peer sends malformed handshakes at will: logged at the
			// failed-login rate, with a count of those held back.
			s.loginLog.Event(time.Now(), s.log.Info, "more_failures_not_logged").Str("client", addrString(remote)).Err(err).
				Msg("admin login failed")
			_ = e.write(c, false)
			_ = c.Flush()
		} else if !errors.Is(err, io.EOF) {
			s.log.Debug().Err(err).Str("client", addrString(remote)).Msg("admin handshake failed")
		}
		return nil
	}
	kind, e := s.authenticate(resp.User, resp.AuthResponse, hs.Salt, local, remote)
	if e != nil {
		s.audit(nc, hs.ConnID, eventlog.AuditAdminConnectERR, clipName(resp.User), e.msg, time.Time{})
		_ = e.write(c, false)
		_ = c.Flush()
		return nil
	}
	// The database named at login is accepted and ignored, as on ProxySQL's
	// admin.
	if err := c.WriteOK(0, 0, loginStatus, 0, ""); err != nil {
		return nil
	}
	if err := c.Flush(); err != nil {
		return nil
	}
	if resp.Capabilities&wire.ClientCompress != 0 {
		_ = c.StartCompression(wire.DefaultCompressionLevel)
	}
	_ = c.SetDeadline(time.Time{})
	c.SetMaxPayload(wire.DefaultMaxPayload)
	ss := &session{
		s:       s,
		c:       c,
		user:    resp.User,
		host:    hostOf(remote),
		stats:   kind == kindStats,
		cluster: kind == kindCluster,
		remote:  addrString(remote),
		multi:   resp.Capabilities&wire.ClientMultiStatements != 0,
		id:      hs.ConnID,
	}
	ss.log = s.log.With().Uint32("conn", hs.ConnID).Str("user", ss.user).Str("client", ss.host).Logger()
	return ss
}

// run is the command loop: one packet in, one reply out, until COM_QUIT or
// the connection goes away. Each reply is flushed once, then the after
// hooks run.
func (ss *session) run() {
	for {
		ss.c.ResetSeq()
		data, err := ss.c.ReadPacket()
		if errors.Is(err, wire.ErrPacketTooLarge) {
			if !ss.flush(&errReply{code: erNetTooLarge, state: "08S01",
				msg: "Got a packet bigger than 'max_allowed_packet' bytes"}) {
				return
			}
			continue
		}
		if errors.Is(err, wire.ErrBadSequence) {
			// As MariaDB and the data port: said, then the connection
			// closes (what follows the packet cannot be trusted).
			ss.flush(&errReply{code: 1156, state: "08S01", msg: "Got packets out of order"})
			return
		}
		if err != nil {
			return
		}
		if len(data) == 0 {
			// No command byte: answered as an unknown command, as on the
			// data port, and the session goes on.
			if !ss.flush(unknownCommand()) {
				return
			}
			continue
		}
		cmd, body := data[0], data[1:]
		if cmd == wire.ComQuit {
			ss.quit = true
			return
		}
		// body aliases the read buffer: commands copy what they keep.
		werr := ss.command(cmd, body)
		ferr := ss.c.Flush()
		for _, f := range ss.after {
			f()
		}
		clear(ss.after)
		ss.after = ss.after[:0]
		if werr != nil || ferr != nil {
			return
		}
	}
}

// flush writes one reply and flushes it; it reports success.
func (ss *session) flush(r reply) bool {
	if err := r.write(ss.c, false); err != nil {
		return false
	}
	return ss.c.Flush() == nil
}

// bigQuery is the size over which an admin query waits for the others
// (Server.big).
const bigQuery = 1 << 20

// command answers one command; the error is a failed write.
func (ss *session) command(cmd byte, body []byte) error {
	switch cmd {
	case wire.ComQuery:
		// SQLite reads a query as a C string, as ProxySQL hands it over:
		// it ends at a NUL byte. Split past one, "SELECT 1\0; DELETE …"
		// ran the DELETE.
		if i := bytes.IndexByte(body, 0); i >= 0 {
			body = body[:i]
		}
		if len(body) > bigQuery {
			ss.s.big <- struct{}{}
			defer func() { <-ss.s.big }()
		}
		return ss.query(string(body))
	case wire.ComPing, wire.ComInitDB:
		return (&okReply{}).write(ss.c, false)
	case wire.ComFieldList:
		return eofReply{}.write(ss.c, false)
	case wire.ComStatistics:
		return ss.s.statistics().write(ss.c, false)
	case wire.ComStmtPrepare, wire.ComStmtExecute, wire.ComStmtFetch, wire.ComStmtReset:
		// ProxySQL's answer: an ordinary error, where 1047/08S01 makes
		// PDO and Connector/J give the connection up as broken.
		return adminErr("Command not supported").write(ss.c, false)
	case wire.ComStmtClose, wire.ComStmtSendLongData:
		// No reply by the protocol, even for a statement that does not
		// exist (the admin port prepares none): an ERR here would be read
		// as the answer to the client's next command.
		return nil
	case wire.ComSetOption:
		if len(body) < 2 {
			return unknownCommand().write(ss.c, false)
		}
		switch binary.LittleEndian.Uint16(body) {
		case wire.OptionMultiStatementsOn:
			ss.multi = true
		case wire.OptionMultiStatementsOff:
			ss.multi = false
		default:
			return unknownCommand().write(ss.c, false)
		}
		return eofReply{}.write(ss.c, false)
	default:
		// COM_CHANGE_USER, COM_RESET_CONNECTION, prepared statements and
		// the rest: ProxySQL's admin does not implement them either.
		return unknownCommand().write(ss.c, false)
	}
}

// query runs a COM_QUERY: one statement, or each statement in turn when
// multi-statements are on, stopping at the first error. Every reply but the
// last carries SERVER_MORE_RESULTS_EXISTS. While it runs the process has
// one more thread (threads.Controller.Admin), so that a LOAD or a large
// stats SELECT does not hold the data plane's only one.
func (ss *session) query(q string) error {
	defer threads.Default.Admin()()
	defer ss.watchClient()()
	stmts := []string{q}
	if ss.multi {
		stmts = splitStatements(q)
	} else if len(splitStatements(q)) > 1 {
		// SQLite would run every statement of the text (ProxySQL's admin
		// runs the first and drops the rest unread): a client that did not
		// ask for multi-statements is told, as a server tells it (1064),
		// rather than have a second statement run or vanish unseen.
		ss.s.questions.Add(1)
		return adminErr("ProxySQL Admin Error: the query holds more than one statement and this connection did not enable multi-statements (CLIENT_MULTI_STATEMENTS): send them one at a time").write(ss.c, false)
	}
	for i, st := range stmts {
		ss.s.questions.Add(1)
		r := ss.s.execute(ss, st)
		_, failed := r.(*errReply)
		if err := r.write(ss.c, i < len(stmts)-1 && !failed); err != nil {
			return err
		}
		if failed {
			return nil
		}
	}
	return nil
}

// statistics is the COM_STATISTICS answer, in mysqld's format.
func (s *Server) statistics() rawReply {
	s.lmu.Lock()
	threads := len(s.conns)
	s.lmu.Unlock()
	return rawReply(fmt.Sprintf("Uptime: %d  Threads: %d  Questions: %d  Slow queries: 0",
		int64(time.Since(s.start).Seconds()), threads, s.questions.Load()))
}

// splitStatements splits a multi-statement query on the ';' that are not
// inside quotes or comments (sqlscan.NextStatement, the data port's
// splitter), nor inside the BEGIN … END body of a CREATE TRIGGER, which
// SQLite reads as one statement (its sqlite3_complete rule: the body ends
// at an END followed by ';'). Empty statements are dropped; a query with no
// statement at all stays one (empty) statement.
func splitStatements(q string) []string {
	var out []string
	// A read-only view of q: the statements are substrings of it, not
	// copies (a 60 MiB INSERT was copied four times on its way here).
	b := unsafe.Slice(unsafe.StringData(q), len(q))
	start := 0 // where the statement being gathered starts in b
	for rest := b; rest != nil; {
		_, rest = sqlscan.NextStatement(rest, sqlscan.NoBackslashEscapes) // as SQLite reads strings
		end := len(b)
		if rest != nil {
			end = len(b) - len(rest) - 1 // the ';'
		}
		st := q[start:end]
		if rest != nil && inTriggerBody(st) {
			continue // that ';' ends a statement of the body
		}
		if !blankStatement(st) {
			out = append(out, st)
		}
		start = end + 1
	}
	if len(out) == 0 {
		out = []string{q}
	}
	return out
}

// blankStatement reports whether st holds nothing but spaces, comments
// and ';' (SQLite runs nothing for it).
func blankStatement(st string) bool {
	b := unsafe.Slice(unsafe.StringData(st), len(st))
	for i := 0; ; i++ {
		if i = sqlscan.SkipSpace(b, i); i < 0 {
			return false // an executable or unterminated comment
		}
		if i == len(b) {
			return true
		}
		if b[i] != ';' {
			return false
		}
	}
}

// inTriggerBody reports whether st, a statement so far, is a CREATE
// TRIGGER whose BEGIN … END body is still open: it has BEGIN and does not
// end with the word END.
func inTriggerBody(st string) bool {
	// The words are read only for a statement that starts with CREATE.
	if t := strings.TrimLeft(st, " \t\n\r\v\f"); !hasPrefixFold(t, "CREATE") {
		return false
	}
	w := strings.Fields(strings.ToUpper(normalize(st)))
	if len(w) == 0 || w[0] != "CREATE" {
		return false
	}
	if w = w[1:]; len(w) > 0 && (w[0] == "TEMP" || w[0] == "TEMPORARY") {
		w = w[1:]
	}
	return len(w) > 0 && w[0] == "TRIGGER" && slices.Contains(w, "BEGIN") && w[len(w)-1] != "END"
}

func indexFrom(s, sub string, from int) int {
	if from > len(s) {
		return -1
	}
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// audit writes an admin connection event to the audit log.
func (s *Server) audit(nc net.Conn, id uint32, event, user, extra string, created time.Time) {
	if s.cfg.Audit == nil {
		return
	}
	s.cfg.Audit.Log(&eventlog.Event{Audit: event, ThreadID: uint64(id), Username: user, Client: addrString(nc.RemoteAddr()),
		ProxyAddr: addrString(nc.LocalAddr()), Start: time.Now(), Created: created, ExtraInfo: extra})
}
