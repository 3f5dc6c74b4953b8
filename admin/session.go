package admin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/rs/zerolog"
)

// session is one logged-in admin or stats connection.
type session struct {
	s     *Server
	c     *server.Conn
	w     *packetWriter
	user  string
	host  string // client host, for USER()
	stats bool   // logged in with admin-stats_credentials: read-only
	multi bool   // multi-statements on (CLIENT_MULTI_STATEMENTS or COM_SET_OPTION)
	log   zerolog.Logger

	after []func() // run once the current reply is on the wire
}

func (s *Server) serveConn(nc net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Str("client", nc.RemoteAddr().String()).Interface("panic", r).
				Bytes("stack", debug.Stack()).Msg("admin session crashed")
		}
	}()
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	ah := &authHandler{s: s}
	gm := server.NewServerWithAuth(s.serverVersion(), charsetUTF8, mysql.AUTH_NATIVE_PASSWORD, nil, s.cfg.TLS, &authProvider{})
	c, err := gm.NewCustomizedConn(nc, ah, noDBHandler{})
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.log.Debug().Err(err).Str("client", nc.RemoteAddr().String()).Msg("admin handshake failed")
		}
		return
	}
	_ = nc.SetDeadline(time.Time{})
	capab := c.Capability() & gm.Capability()
	ss := &session{
		s:     s,
		c:     c,
		w:     &packetWriter{c: c, cap: capab},
		user:  c.GetUser(),
		host:  hostOf(c.RemoteAddr()),
		stats: ah.kind == kindStats,
		multi: c.Capability()&mysql.CLIENT_MULTI_STATEMENTS != 0,
	}
	ss.log = s.log.With().Uint32("conn", c.ConnectionID()).Str("user", ss.user).Str("client", ss.host).Logger()
	ss.log.Debug().Bool("stats", ss.stats).Msg("admin session opened")
	ss.run()
	ss.log.Debug().Msg("admin session closed")
}

// run is the command loop: one packet in, one reply out, until COM_QUIT or
// the connection goes away.
func (ss *session) run() {
	for {
		ss.c.ResetSequence()
		data, err := ss.c.ReadPacket()
		if err != nil || len(data) == 0 {
			return
		}
		cmd, body := data[0], data[1:]
		if cmd == mysql.COM_QUIT {
			return
		}
		ss.command(cmd, body)
		ss.w.flush()
		for _, f := range ss.after {
			f()
		}
		ss.after = ss.after[:0]
		if ss.w.err != nil {
			return
		}
	}
}

func (ss *session) command(cmd byte, body []byte) {
	switch cmd {
	case mysql.COM_QUERY:
		ss.query(string(body))
	case mysql.COM_PING, mysql.COM_INIT_DB:
		(&okReply{}).write(ss.w, false)
	case mysql.COM_FIELD_LIST:
		eofReply{}.write(ss.w, false)
	case mysql.COM_STATISTICS:
		ss.s.statistics().write(ss.w, false)
	case mysql.COM_SET_OPTION:
		if len(body) < 2 {
			unknownCommand().write(ss.w, false)
			return
		}
		switch binary.LittleEndian.Uint16(body) {
		case 0: // MYSQL_OPTION_MULTI_STATEMENTS_ON
			ss.multi = true
		case 1: // MYSQL_OPTION_MULTI_STATEMENTS_OFF
			ss.multi = false
		default:
			unknownCommand().write(ss.w, false)
			return
		}
		eofReply{}.write(ss.w, false)
	default:
		// COM_CHANGE_USER, COM_RESET_CONNECTION, prepared statements and
		// the rest: ProxySQL's admin does not implement them either.
		unknownCommand().write(ss.w, false)
	}
}

// query runs a COM_QUERY: one statement, or each statement in turn when
// multi-statements are on, stopping at the first error.
func (ss *session) query(q string) {
	stmts := []string{q}
	if ss.multi {
		stmts = splitStatements(q)
	}
	for i, st := range stmts {
		ss.s.questions.Add(1)
		r := ss.s.execute(ss, st)
		_, failed := r.(*errReply)
		r.write(ss.w, i < len(stmts)-1 && !failed)
		if failed {
			return
		}
	}
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
// inside quotes or comments. Empty statements are dropped; a query with no
// statement at all stays one (empty) statement.
func splitStatements(q string) []string {
	var out []string
	start := 0
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
				end := indexFrom(q, "*/", i+2)
				if end < 0 {
					i = len(q)
				} else {
					i = end + 1
				}
			}
		case ';':
			if st := q[start:i]; normalize(st) != "" {
				out = append(out, st)
			}
			start = i + 1
		}
	}
	if start < len(q) && normalize(q[start:]) != "" {
		out = append(out, q[start:])
	}
	if len(out) == 0 {
		out = []string{q}
	}
	return out
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
