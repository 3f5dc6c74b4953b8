package router

import (
	"encoding/binary"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// dispatch runs one client command. It returns false when the session must
// end (COM_QUIT, or the client connection failed).
func (s *session) dispatch(rt *live.Runtime, p []byte) bool {
	switch p[0] {
	case wire.ComQuery:
		return s.comQuery(rt, p)
	case wire.ComQuit:
		s.quit = true
		s.audit(eventlog.AuditClientQuit, "")
		return false
	case wire.ComPing:
		return s.writeOK(0, 0, "") == nil
	case wire.ComInitDB:
		if len(p) == 1 {
			// As MariaDB: no name is no database (the session's schema stays).
			s.writeErr(&wire.SQLError{Code: 1046, State: "3D000", Message: "No database selected"})
			return true
		}
		if e := s.changeSchema(rt, string(p[1:])); e != nil {
			s.writeErr(e)
			return true
		}
		s.audit(eventlog.AuditClientInitDB, "")
		return s.writeOK(0, 0, "") == nil
	case wire.ComSetOption:
		// 0 = MYSQL_OPTION_MULTI_STATEMENTS_ON, 1 = OFF. The server answers
		// with an EOF packet (an OK with the 0xFE header under
		// CLIENT_DEPRECATE_EOF). The backend connection is switched lazily
		// by sync, like the rest of the session state.
		if len(p) < 3 {
			s.writeErr(errMalformed("COM_SET_OPTION"))
			return true
		}
		opt := binary.LittleEndian.Uint16(p[1:])
		if opt != wire.OptionMultiStatementsOn && opt != wire.OptionMultiStatementsOff {
			s.writeErr(errUnknownCommand()) // MariaDB's answer to an option it does not know
			return true
		}
		s.state.MultiStatements = opt == wire.OptionMultiStatementsOn
		if err := s.c.WriteResultEnd(s.depr, 0, s.status()); err != nil {
			return false
		}
		return s.c.Flush() == nil
	case wire.ComFieldList:
		return s.comFieldList(rt, p)
	case wire.ComStatistics:
		return s.comStatistics(rt, p)
	case wire.ComResetConnection:
		s.r.stats.Add(s.id, stats.ComFrontendResetConnection, 1)
		s.resetSession(rt)
		return s.writeOK(0, 0, "") == nil
	case wire.ComChangeUser:
		return s.comChangeUser(rt, p)
	case wire.ComProcessKill:
		if len(p) >= 5 {
			if e := s.killCommand(rt, uint64(binary.LittleEndian.Uint32(p[1:])), false); e != nil {
				s.writeErr(e)
				return true
			}
			return s.writeOK(0, 0, "") == nil
		}
	case wire.ComStmtPrepare:
		return s.comStmtPrepare(rt, p)
	case wire.ComStmtExecute:
		return s.comStmtExecute(rt, p)
	case wire.ComStmtSendLongData:
		s.comStmtSendLongData(p, rt.Router.MaxAllowedPacket)
		return true // no response, by protocol
	case wire.ComStmtClose:
		s.comStmtClose(p)
		return true // no response, by protocol
	case wire.ComStmtReset:
		return s.comStmtReset(rt, p)
	case wire.ComStmtFetch:
		return s.comStmtFetch(rt, p)
	case wire.ComRegisterSlave, wire.ComBinlogDump, wire.ComBinlogDumpGTID:
		// A replica, or mariadb-binlog --read-from-remote-server: the
		// events are relayed as they come until the server ends the
		// stream or either side goes away. A session of a user without
		// fast_forward turns fast_forward for the rest of its life, as in
		// ProxySQL (GPFC_Replication_SwitchToFastForward): its backend
		// connection is its own from now on.
		if !s.user.FastForward {
			s.log.Info().Str("user", s.username).Uint8("command", p[0]).
				Msg("replication command: the session switches to fast_forward")
			u := *s.user
			u.FastForward = true
			s.user = &u
		}
		if p[0] == wire.ComRegisterSlave {
			return s.fastForward(rt, p, backend.ShapeOne)
		}
		return s.fastForward(rt, p, backend.ShapeStream)
	case wire.ComRefresh, wire.ComDebug:
		// mariadb-admin refresh / flush-threads, debug: a fast_forward
		// session's are relayed, as ProxySQL relays its packets (one OK
		// or ERR back); others are the proxy's to refuse, as ProxySQL does.
		if s.user.FastForward {
			return s.fastForward(rt, p, backend.ShapeOne)
		}
	}
	s.r.stats.Add(s.id, stats.MySQLUnexpectedFrontendPackets, 1)
	s.writeErr(errUnknownCommand())
	return true
}

// comFieldList forwards COM_FIELD_LIST (column definitions, then a
// terminator) and comStatistics COM_STATISTICS (one packet: a status
// string, or an ERR): commands with no rules, routed like a query the
// rules leave alone.
func (s *session) comFieldList(rt *live.Runtime, p []byte) bool {
	return s.forwardSimple(rt, p, backend.ShapeRows)
}

func (s *session) comStatistics(rt *live.Runtime, p []byte) bool {
	return s.forwardSimple(rt, p, backend.ShapeOne)
}

func (s *session) forwardSimple(rt *live.Runtime, p []byte, shape backend.Shape) bool {
	hg, e := s.hostgroup(-1, followRules)
	if e != nil {
		s.writeErr(e)
		return true
	}
	s.req = request{hg: hg, payload: p, shape: shape, retries: rt.Router.QueryRetries, repeatable: true}
	_, h, ok := s.run(rt, &s.req)
	if h != nil {
		s.release(rt, h)
	}
	return ok
}

// resetSession serves COM_RESET_CONNECTION: the session state goes back to
// what it was at login (transactions roll back, user variables, prepared
// statements and tracked variables go away), keeping the user and its
// default hostgroup (reference §5.3).
func (s *session) resetSession(rt *live.Runtime) {
	s.conns.closeAll(s)
	if n := len(s.stmts.m); n > 0 {
		s.r.stats.Add(s.id, stats.StmtClientActiveTotal, -int64(n))
	}
	s.stmts.closeAll()
	old := s.state
	s.csServer = ""
	s.state = backend.State{Schema: old.Schema, Collation: old.Collation, Autocommit: true,
		MultiStatements: old.MultiStatements, Caps: old.Caps}
	s.modeFlags, s.ownMode = backend.DefaultMode(), false
	if s.state.Collation == 0 {
		s.state.Collation = rt.Router.DefaultCollation
	}
	userDefaults(&s.state, s.user)
	s.lockOn(-1)
	s.trxHG, s.nextFlagIN, s.lastWrite, s.warningsHG = -1, -1, -1, -1
	s.lastID = 0 // as the server's LAST_INSERT_ID() after a reset
	s.unconfirmed = false
	s.completionRelease = false
	s.carry = nil
}
