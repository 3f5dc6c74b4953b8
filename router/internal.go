package router

import (
	"bytes"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// PROXYSQL INTERNAL SESSION on the data port answers, as ProxySQL's does,
// one row with one column, session_info: a JSON document of the session —
// its client side, its state and the backend connections it keeps. Tools
// use it to tell a ProxySQL-compatible proxy from a server (a server
// answers 1064), and ProxySQL's own tests read fields of it. The keys are
// ProxySQL's (MySQL_Session::generate_proxysql_internal_session_json) for
// what Sluice has; ProxySQL's pointers, state-machine codes and libmysql
// internals have no counterpart and are left out. transaction_time_ms
// is in microseconds, as ProxySQL fills it.

// internalPrefix starts every PROXYSQL INTERNAL command.
const internalPrefix = "PROXYSQL INTERNAL "

// isInternalCommand reports whether q is a PROXYSQL INTERNAL command
// (the first byte is checked before anything else, for the hot path).
func isInternalCommand(q []byte) bool {
	return len(q) > len(internalPrefix) && (q[0]|0x20) == 'p' && sqlscan.EqualUpper(q[:len(internalPrefix)], internalPrefix)
}

type internalSession struct {
	Address            string             `json:"address"`
	AgeMs              int64              `json:"age_ms"`
	Autocommit         bool               `json:"autocommit"`
	ThreadSessionID    uint64             `json:"thread_session_id"`
	CurrentHostgroup   int64              `json:"current_hostgroup"`
	DefaultHostgroup   int                `json:"default_hostgroup"`
	LockedOnHostgroup  int                `json:"locked_on_hostgroup"`
	ActiveTransactions int                `json:"active_transactions"`
	TransactionTimeMs  int64              `json:"transaction_time_ms"`
	LastInsertID       uint64             `json:"last_insert_id"`
	Client             internalClient     `json:"client"`
	DefaultSchema      string             `json:"default_schema"`
	TransactionPersist bool               `json:"transaction_persistent"`
	Conn               internalConn       `json:"conn"`
	Backends           []*internalBackend `json:"backends"`
}

type internalClient struct {
	UserInfo struct {
		Username   string `json:"username"`
		SchemaName string `json:"schemaname"`
	} `json:"userinfo"`
	Stream struct {
		BytesRecv uint64 `json:"bytes_recv"`
		BytesSent uint64 `json:"bytes_sent"`
	} `json:"stream"`
	ClientAddr internalAddr `json:"client_addr"`
	ProxyAddr  internalAddr `json:"proxy_addr"`
	Encrypted  bool         `json:"encrypted"`
	SSLCipher  string       `json:"ssl_cipher,omitempty"`
}

type internalAddr struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
}

type internalConn struct {
	Autocommit string             `json:"autocommit"`
	Charset    uint8              `json:"charset"`
	ClientFlag internalClientFlag `json:"client_flag"`
	Status     struct {
		Compression bool `json:"compression"`
		Transaction bool `json:"transaction"`
	} `json:"status"`
}

type internalClientFlag struct {
	Value                 uint32 `json:"value"`
	ClientFoundRows       int    `json:"client_found_rows"`
	ClientMultiStatements int    `json:"client_multi_statements"`
	ClientMultiResults    int    `json:"client_multi_results"`
	ClientDeprecateEOF    int    `json:"client_deprecate_eof"`
}

type internalBackend struct {
	HostgroupID int `json:"hostgroup_id"`
	Conn        struct {
		Autocommit        string             `json:"autocommit"`
		MultiplexDisabled bool               `json:"MultiplexDisabled"`
		ClientFlag        internalClientFlag `json:"client_flag"`
		Status            struct {
			Compression bool `json:"compression"`
			Transaction bool `json:"transaction"`
		} `json:"status"`
		MySQL struct {
			Host          string `json:"host"`
			Port          int    `json:"port"`
			ServerVersion string `json:"server_version"`
			ThreadID      uint32 `json:"thread_id"`
			User          string `json:"user"`
			DB            string `json:"db"`
			UseSSL        bool   `json:"use_ssl"`
		} `json:"mysql"`
	} `json:"conn"`
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clientFlag(caps uint32) internalClientFlag {
	return internalClientFlag{
		Value:                 caps,
		ClientFoundRows:       b2i(caps&wire.ClientFoundRows != 0),
		ClientMultiStatements: b2i(caps&wire.ClientMultiStatements != 0),
		ClientMultiResults:    b2i(caps&wire.ClientMultiResults != 0),
		ClientDeprecateEOF:    b2i(caps&wire.ClientDeprecateEOF != 0),
	}
}

func splitAddr(a string) internalAddr {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return internalAddr{Address: a}
	}
	n, _ := strconv.Atoi(p)
	return internalAddr{Address: h, Port: n}
}

// internalSessionJSON describes the session as PROXYSQL INTERNAL SESSION
// shows it.
func (s *session) internalSessionJSON(rt *live.Runtime) ([]byte, error) {
	now := time.Now()
	j := &internalSession{
		Address:            fmt.Sprintf("%p", s),
		AgeMs:              now.Sub(s.created).Milliseconds(),
		Autocommit:         s.state.Autocommit,
		ThreadSessionID:    s.id,
		CurrentHostgroup:   s.pub.hg.Load(),
		DefaultHostgroup:   s.user.DefaultHostgroup,
		LockedOnHostgroup:  s.lockedHG,
		LastInsertID:       s.lastID,
		DefaultSchema:      s.user.DefaultSchema,
		TransactionPersist: s.user.TransactionPersistent,
		Backends:           []*internalBackend{},
	}
	if ts := s.pub.trxSince.Load(); ts != 0 {
		j.TransactionTimeMs = (now.UnixNano() - ts) / int64(time.Microsecond)
	}
	c := &j.Client
	c.UserInfo.Username, c.UserInfo.SchemaName = s.username, s.state.Schema
	c.Stream.BytesRecv, c.Stream.BytesSent = s.c.BytesRead(), s.c.BytesWritten()
	c.ClientAddr = splitAddr(s.clientAddr)
	if s.clientIP != c.ClientAddr.Address {
		c.ClientAddr = internalAddr{Address: s.clientIP} // relayed by the PROXY protocol
	}
	c.ProxyAddr = internalAddr{Address: s.proxyAddr, Port: s.proxyPort}
	if st, ok := s.c.TLSState(); ok {
		c.Encrypted = true
		c.SSLCipher = tls.CipherSuiteName(st.CipherSuite)
	}
	j.Conn.Autocommit = onOff(s.state.Autocommit)
	j.Conn.Charset = s.state.Collation
	j.Conn.ClientFlag = clientFlag(s.caps)
	j.Conn.Status.Compression = s.c.Compressed()
	j.Conn.Status.Transaction = s.conns.inTransaction()
	for _, h := range s.conns.list {
		if h.inTrx {
			j.ActiveTransactions++
		}
		// As ProxySQL's, the array is indexed by hostgroup id (nulls
		// between), up to a bound that keeps a large id from inflating it.
		if h.hg < 0 || h.hg > 1<<16 {
			continue
		}
		for len(j.Backends) <= h.hg {
			j.Backends = append(j.Backends, nil)
		}
		b := &internalBackend{HostgroupID: h.hg}
		st := h.bc.State()
		b.Conn.Autocommit = onOff(st.Autocommit)
		b.Conn.MultiplexDisabled = h.pinned(rt, s)
		b.Conn.ClientFlag = clientFlag(h.bc.Capabilities())
		b.Conn.Status.Compression = h.bc.Capabilities()&wire.ClientCompress != 0
		b.Conn.Status.Transaction = h.inTrx
		m := &b.Conn.MySQL
		k := h.server.Key()
		m.Host, m.Port = k.Host, k.Port
		m.ServerVersion, m.ThreadID, m.User, m.DB = h.bc.ServerVersion(), h.bc.ThreadID(), h.bc.User(), st.Schema
		_, m.UseSSL = h.bc.TLSState()
		j.Backends[h.hg] = b
	}
	return json.MarshalIndent(j, "", "    ")
}

// writeInternal answers a PROXYSQL INTERNAL command: SESSION gets the
// document (a trailing ';' or blanks are forgiven, which ProxySQL does
// not), anything else ProxySQL's 1064.
func (s *session) writeInternal(rt *live.Runtime, q []byte) error {
	if !sqlscan.EqualUpper(bytes.TrimRight(q, "; \t\r\n"), internalPrefix+"SESSION") {
		s.writeErr(&wire.SQLError{Code: 1064, State: "42000", Message: "Unknown PROXYSQL INTERNAL command"})
		return nil
	}
	doc, err := s.internalSessionJSON(rt)
	if err != nil {
		s.writeErr(&wire.SQLError{Code: 1105, State: "HY000", Message: "PROXYSQL INTERNAL SESSION: " + err.Error()})
		return nil
	}
	cols := [1]wire.Column{wire.TextColumn("session_info")}
	rows := [1][]sql.NullString{{{String: string(doc), Valid: true}}}
	if err := s.c.WriteResultSet(cols[:], rows[:], s.depr, s.status()); err != nil {
		return err
	}
	return s.c.Flush()
}
