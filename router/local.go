package router

import (
	"bytes"
	"database/sql"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/live"
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
var localStatement = &globalStmt{query: "SELECT CONNECTION_ID()", numCols: 1, local: localConnectionID,
	cols: [][]byte{wire.AppendColumnDef(nil, &connectionIDColumn)}}

// localQuery classifies a query text the proxy answers itself.
func localQuery(q []byte) localAnswer {
	switch {
	case bytes.Equal(q, []byte("select @@version_comment limit 1")):
		return localVersionComment
	case bytes.EqualFold(bytes.TrimRight(q, "; \t\r\n"), []byte("SELECT CONNECTION_ID()")):
		return localConnectionID
	}
	return localNone
}

// localStmt returns the statement the proxy answers itself for a PREPARE
// of q, or nil.
func localStmt(q []byte) *globalStmt {
	if localQuery(q) == localConnectionID {
		return localStatement
	}
	return nil
}

// writeLocal answers a local query, as a text result set or (binary) as
// the result of a COM_STMT_EXECUTE.
func (s *session) writeLocal(rt *live.Runtime, k localAnswer, binary bool) error {
	var col wire.Column
	var val string
	switch k {
	case localConnectionID:
		col, val = connectionIDColumn, strconv.FormatUint(s.id, 10)
	case localVersionComment:
		col, val = wire.TextColumn("@@version_comment"), rt.Router.VersionComment
	}
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

// writeOK sends an OK packet with the session's status.
func (s *session) writeOK(affected, insertID uint64, info string) error {
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
