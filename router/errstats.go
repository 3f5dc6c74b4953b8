package router

import (
	"errors"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// stats_mysql_errors (reference §10.2): the errors backends returned and
// the backend failures the proxy met, counted by hostgroup, server, user,
// client address, schema and error code. Errors are rare, so one mutex
// serves; only the error branch of the execute loop comes here. The table
// is bounded: untrusted clients choose schemas and provoke errors at will.

// maxErrorRows bounds stats_mysql_errors; later keys are not added (their
// errors still count in the server's error counters).
const maxErrorRows = 10000

// maxErrorText bounds the last_error column.
const maxErrorText = 256

type errKey struct {
	hg           int
	host         string
	port         int
	user, client string
	schema       string
	errno        uint16
}

// ErrorRow is one row of stats_mysql_errors.
type ErrorRow struct {
	Hostgroup                int
	Host                     string
	Port                     int
	User, ClientAddr, Schema string
	Errno                    uint16
	Count                    uint64
	FirstSeen, LastSeen      int64 // unix seconds
	LastError                string
}

type errorStats struct {
	mu sync.Mutex
	m  map[errKey]*ErrorRow
	// totals are the same errors by hostgroup, server and code, never
	// reset (stats_mysql_errors_reset empties m): Prometheus counters.
	totals map[ErrorTotalKey]uint64
}

// ErrorTotalKey names a series of mysql_error_total.
type ErrorTotalKey struct {
	Hostgroup int
	Host      string
	Port      int
	Errno     uint16
	// Proxy: the proxy made the error (a query timeout's 1907, the 1317 of
	// a query it killed), ProxySQL's proxysql_mysql_error_total.
	Proxy bool
}

func (e *errorStats) note(k errKey, msg string, proxy bool) {
	now := time.Now().Unix()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = make(map[errKey]*ErrorRow)
	}
	if e.totals == nil {
		e.totals = make(map[ErrorTotalKey]uint64)
	}
	tk := ErrorTotalKey{Hostgroup: k.hg, Host: k.host, Port: k.port, Errno: k.errno, Proxy: proxy || k.errno == 1907}
	if _, ok := e.totals[tk]; ok || len(e.totals) < maxErrorRows {
		e.totals[tk]++
	}
	row := e.m[k]
	if row == nil {
		if len(e.m) >= maxErrorRows {
			return
		}
		row = &ErrorRow{Hostgroup: k.hg, Host: k.host, Port: k.port, User: k.user, ClientAddr: k.client,
			Schema: k.schema, Errno: k.errno, FirstSeen: now}
		e.m[k] = row
	}
	row.Count++
	row.LastSeen, row.LastError = now, msg
}

// noteError records an error of a query of the session on server srv of
// hostgroup hg.
func (s *session) noteError(hg int, srv *backend.Server, code uint16, msg string) {
	k := srv.Key()
	proxy := code == 1317 && s.killedByProxy()
	s.r.errors.note(errKey{hg: hg, host: k.Host, port: k.Port, user: s.username, client: s.clientIP,
		schema: s.state.Schema, errno: code}, msg, proxy)
}

// noteConnectError records a failed connect to srv: the server's ERR
// (1040 too many connections, 1129 host blocked…) or, when it never
// answered, 2003 as the MariaDB client library names it.
func (s *session) noteConnectError(hg int, srv *backend.Server, err error) {
	if se, ok := backend.IsSQLError(err); ok {
		s.noteError(hg, srv, se.Code, se.Message)
		return
	}
	if errors.Is(err, backend.ErrTLS) {
		// The client library's 2026, as ProxySQL counts it.
		s.noteError(hg, srv, 2026, tlsReason(srv, err))
		return
	}
	s.noteError(hg, srv, 2003, "Can't connect to MySQL server on '"+srv.Addr()+"': "+err.Error())
}

// errorMessage is e's message as the proxy keeps it (its log,
// stats_mysql_errors): withheld when the statement of req carries a
// password, since a server's syntax error quotes the statement (its
// "near …" part), and logs never carry a password.
func errorMessage(e *wire.SQLError, req *request, d sqlscan.Dialect) string {
	if len(req.payload) > 1 && req.payload[0] == wire.ComQuery {
		q := req.payload[1:]
		if m := sqlscan.MaskPasswords(q, d); len(m) != len(q) || &m[0] != &q[0] {
			return "(the server's message is not kept: the statement carries a password)"
		}
	}
	return e.Message
}

// logQueryError logs a server's error for a query, as ProxySQL logs each
// ("Error during query on (hostgroup,host,port,thread_id)"), at most 10 a
// second (the next line says how many were held back); with
// mysql-verbose_query_error the line adds the user, client, schema and
// digest text.
func (s *session) logQueryError(h *held, code uint16, msg string, verbose bool) {
	ev := s.r.queryErrLog.Event(time.Now(), s.log.Warn, "more_not_logged")
	if ev == nil {
		return
	}
	ev = ev.Int("hostgroup", h.hg).Str("backend", h.addr).Uint32("thread_id", h.bc.ThreadID()).
		Uint16("errno", code).Str("error", msg)
	if verbose {
		ev = ev.Str("user", s.username).Str("client", s.clientIP).Str("schema", s.state.Schema).
			Str("digest_text", clip(string(s.digest.Text), maxLoggedQuery))
	}
	ev.Msg("Error during query")
}

// ErrorTotals returns how many errors each server returned (or the proxy
// met on it), by hostgroup and code, since the start: mysql_error_total.
func (r *Router) ErrorTotals() map[ErrorTotalKey]uint64 {
	r.errors.mu.Lock()
	defer r.errors.mu.Unlock()
	return maps.Clone(r.errors.totals)
}

// Errors returns stats_mysql_errors, sorted; with reset the counters start
// again (stats_mysql_errors_reset).
func (r *Router) Errors(reset bool) []ErrorRow {
	r.errors.mu.Lock()
	out := make([]ErrorRow, 0, len(r.errors.m))
	for _, row := range r.errors.m {
		out = append(out, *row)
	}
	if reset {
		r.errors.m = nil
	}
	r.errors.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		switch {
		case a.Hostgroup != b.Hostgroup:
			return a.Hostgroup < b.Hostgroup
		case a.Host != b.Host:
			return a.Host < b.Host
		case a.Port != b.Port:
			return a.Port < b.Port
		case a.User != b.User:
			return a.User < b.User
		case a.Schema != b.Schema:
			return a.Schema < b.Schema
		case a.ClientAddr != b.ClientAddr:
			return a.ClientAddr < b.ClientAddr
		}
		return a.Errno < b.Errno
	})
	return out
}
