package router

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/sluice-proxy/sluice/backend"

	"github.com/sluice-proxy/sluice/internal/ratelog"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// Every error the proxy itself sends to clients is made here, with
// ProxySQL's (or MySQL's) codes and texts (reference §3.1, §4.2, §4.4), so
// applications and runbooks written for ProxySQL recognise them.

// maxLoggedQuery and maxEchoedName bound what a client's text can make
// the proxy log or send back: a peer's bytes earn no more.
const (
	maxLoggedQuery = 1024
	maxEchoedName  = 128
)

func clip(s string, n int) string { return ratelog.Clip(s, n) }

func errAccessDenied(user, host string, usingPassword bool) *wire.SQLError {
	user = clip(user, maxEchoedName)
	yes := "NO"
	if usingPassword {
		yes = "YES"
	}
	return &wire.SQLError{Code: 1045, State: "28000",
		Message: fmt.Sprintf("ProxySQL Error: Access denied for user '%s'@'%s' (using password: %s)", user, host, yes)}
}

func errTooManyConnections() *wire.SQLError {
	return &wire.SQLError{Code: 1040, State: "08004", Message: "Too many connections"}
}

func errUserConnections(user string, max int) *wire.SQLError {
	return &wire.SQLError{Code: 1226, State: "42000",
		Message: fmt.Sprintf("User '%s' has exceeded the 'max_user_connections' resource (current value: %d)", user, max)}
}

func errRuleMessage(msg string) *wire.SQLError {
	return &wire.SQLError{Code: 1148, State: "42000", Message: msg}
}

// errQueryTimeout: the query ran past its rule's timeout (or
// mysql-default_query_timeout) and the proxy killed it, as ProxySQL.
var errQueryTimeout = &wire.SQLError{Code: 1907, State: "HY000",
	Message: "Query execution was interrupted, query_timeout exceeded"}

func errMaxConnectTimeout(hg int, ms int64) *wire.SQLError {
	return &wire.SQLError{Code: 9001, State: "HY000",
		Message: fmt.Sprintf("Max connect timeout reached while reaching hostgroup %d after %dms", hg, ms)}
}

// errMaxConnectFailure is ProxySQL's answer when a command's connects
// failed mysql-connect_retries_on_failure+1 times.
func errMaxConnectFailure(hg int) *wire.SQLError {
	return &wire.SQLError{Code: 9002, State: "HY000",
		Message: fmt.Sprintf("Max connect failure while reaching hostgroup %d", hg)}
}

func errLockedHostgroup(locked, want int) *wire.SQLError {
	return &wire.SQLError{Code: 9006, State: "Y0000",
		Message: fmt.Sprintf("ProxySQL Error: connection is locked to hostgroup %d but trying to reach hostgroup %d", locked, want)}
}

func errSchemaLocked(schema string) *wire.SQLError {
	return &wire.SQLError{Code: 9005, State: "HY000",
		Message: fmt.Sprintf("ProxySQL Error: Schema is locked to '%s': USE and COM_INIT_DB cannot change it", schema)}
}

func errEmptyQuery() *wire.SQLError {
	return &wire.SQLError{Code: 1065, State: "42000", Message: "Query was empty"}
}

// errUnknownCommand is MariaDB's answer to a command byte it does not
// serve, word for word.
func errUnknownCommand() *wire.SQLError {
	return &wire.SQLError{Code: 1047, State: "08S01", Message: "Unknown command"}
}

// errLostBackend: the backend connection failed during a statement; the
// session's state was carried to the next connection, but the statement
// could not be repeated (it may have been applied, or the retries are
// spent). A server-range code (MariaDB's ER_CONNECTION_KILLED): clients
// report it as the error it is, where a client-range code such as 2013 in
// an ERR packet is taken for a malformed packet by current MariaDB clients.
func errLostBackend(hg int, addr string) *wire.SQLError {
	return &wire.SQLError{Code: 1927, State: "70100",
		Message: fmt.Sprintf("Lost connection to backend %s of hostgroup %d during query; the statement may not have run, the session goes on with another connection", addr, hg)}
}

// errLostState: the backend connection failed and took with it session
// state the proxy cannot carry (lost names it). The session goes on with
// another connection without it.
func errLostState(hg int, addr, lost string) *wire.SQLError {
	return &wire.SQLError{Code: 1927, State: "70100",
		Message: fmt.Sprintf("Lost connection to backend %s of hostgroup %d; lost with it: %s", addr, hg, lost)}
}

// errLostTransaction: as errLostState, for a transaction the proxy lost
// between commands (its server left): whatever the session's next command
// is, it fails with this, so that a COMMIT is never answered OK.
func errLostTransaction(hg int, addr, lost string) *wire.SQLError {
	return &wire.SQLError{Code: 1927, State: "70100",
		Message: fmt.Sprintf("Lost connection to backend %s of hostgroup %d; lost with it: %s. The transaction did not commit", addr, hg, lost)}
}

// errTransactionAborted answers the statements of a session whose
// transaction was lost (lostTransaction) until it ends the transaction.
func errTransactionAborted(hg int, addr string) *wire.SQLError {
	return &wire.SQLError{Code: 1927, State: "70100",
		Message: fmt.Sprintf("The transaction was lost with backend %s of hostgroup %d and did not commit; "+
			"statements are refused until ROLLBACK", addr, hg)}
}

func errPacketTooLarge() *wire.SQLError {
	return &wire.SQLError{Code: 1153, State: "08S01", Message: "Got a packet bigger than 'max_allowed_packet' bytes"}
}

func errBadHandshake() *wire.SQLError {
	return &wire.SQLError{Code: 1043, State: "08S01", Message: "Bad handshake"}
}

func errNoTLS() *wire.SQLError {
	return &wire.SQLError{Code: 1043, State: "08S01", Message: "ProxySQL Error: TLS is not offered: mysql-have_ssl is false"}
}

// errSSLRequired refuses a mysql_users.use_ssl=1 user who logged in
// without TLS.
func errSSLRequired(user, host string, usingPassword bool) *wire.SQLError {
	e := errAccessDenied(user, host, usingPassword)
	e.Message += ". SSL is required"
	return e
}

// errMalformed answers a command whose packet cannot be parsed.
func errMalformed(cmd string) *wire.SQLError {
	return &wire.SQLError{Code: 1047, State: "08S01", Message: "Malformed " + cmd}
}

func errNoBackendUser(user string) *wire.SQLError {
	return &wire.SQLError{Code: 1045, State: "28000",
		Message: fmt.Sprintf("ProxySQL Error: user '%s' has no backend=1 row in mysql_users", user)}
}

func errNoStage1(user string) *wire.SQLError {
	return &wire.SQLError{Code: 1045, State: "28000",
		Message: fmt.Sprintf("ProxySQL Error: the password of '%s' is stored hashed and no client has logged in with it yet", user)}
}

func errUnknownThread(id uint64) *wire.SQLError {
	return &wire.SQLError{Code: 1094, State: "HY000", Message: fmt.Sprintf("Unknown thread id: %d", id)}
}

// errLocalShortage answers a query that found no backend connection
// because the proxy itself is out of file descriptors or ports: 1040, as a
// server out of connections answers.
func errLocalShortage(err error) *wire.SQLError {
	why := "out of file descriptors or local ports"
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		why = "out of file descriptors: raise its limit (ulimit -n, LimitNOFILE)"
	}
	return &wire.SQLError{Code: 1040, State: "08004", Message: "Too many connections: Sluice cannot open a backend connection, " + why}
}

// errInterrupted is the server's answer to a query stopped by KILL QUERY.
func errInterrupted() *wire.SQLError {
	return &wire.SQLError{Code: 1317, State: "70100", Message: "Query execution was interrupted"}
}

func errKillDenied(id uint64) *wire.SQLError {
	return &wire.SQLError{Code: 1095, State: "HY000", Message: fmt.Sprintf("You are not owner of thread %d", id)}
}

// errUnknownStmt: id -1 when the packet is too short to carry one.
func errUnknownStmt(id int64, cmd byte) *wire.SQLError {
	fn := "mysqld_stmt_execute"
	switch cmd {
	case wire.ComStmtFetch:
		fn = "mysqld_stmt_fetch"
	case wire.ComStmtReset:
		fn = "mysqld_stmt_reset"
	}
	if id < 0 {
		return &wire.SQLError{Code: 1243, State: "HY000", Message: "Unknown prepared statement handler given to " + fn}
	}
	return &wire.SQLError{Code: 1243, State: "HY000",
		Message: fmt.Sprintf("Unknown prepared statement handler (%d) given to %s", id, fn)}
}

func errStmtArgs(detail string) *wire.SQLError {
	return &wire.SQLError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute" + detail}
}

// errMalformedPacket is MariaDB's answer to a command packet cut short.
func errMalformedPacket() *wire.SQLError {
	return &wire.SQLError{Code: 1835, State: "HY000", Message: "Malformed communication packet"}
}

// errNoCursor is MariaDB's answer to a COM_STMT_FETCH of client statement
// id when no cursor is open on it.
func errNoCursor(id uint32) *wire.SQLError {
	return &wire.SQLError{Code: 1421, State: "HY000", Message: fmt.Sprintf("The statement (%d) has no open cursor", id)}
}

// tlsReason is a failed TLS connect to srv (mysql_servers.use_ssl=1) as
// the client is told it, after ProxySQL's 9001/9002 text: a TLS
// misconfiguration must not read as a dead server. (ProxySQL passes on the
// client library's 2026 there; an ERR with a client library's code makes
// libmariadb clients report a malformed packet, so the code stays.)
func tlsReason(srv *backend.Server, err error) string {
	msg := err.Error()
	if i := strings.Index(msg, backend.ErrTLS.Error()); i >= 0 {
		msg = msg[i:]
	}
	return msg + " (server " + srv.Addr() + ")"
}

// errClientGone tags a failed write to the client (see backend.ErrClientGone).
func errClientGone(err error) error { return fmt.Errorf("%w: %w", backend.ErrClientGone, err) }

// errSQLInjection answers a query mysql-automatic_detect_sqli flagged; the
// connection is closed after it.
func errSQLInjection(fingerprint string) *wire.SQLError {
	return &wire.SQLError{Code: 1148, State: "42000",
		Message: "SQL injection detected (libinjection fingerprint " + fingerprint + "): the query is refused and the connection closed"}
}
