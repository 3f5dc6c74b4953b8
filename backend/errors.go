package backend

import (
	"errors"
	"syscall"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// Sentinel errors. Errors a server sent (ERR packets) come back as
// *wire.SQLError, wrapped with ErrAuth or ErrConnect where that helps.
var (
	// ErrPoolFull: max_connections was reached and no connection came free
	// before the context ended.
	ErrPoolFull = errors.New("backend: max_connections reached")
	// ErrServerUnavailable: the server is not ONLINE (shunned, offline or
	// removed from the configuration).
	ErrServerUnavailable = errors.New("backend: server not available")
	// ErrPoolClosed: the registry was closed.
	ErrPoolClosed = errors.New("backend: pool closed")
	// ErrConnect: dialing or the handshake failed (the server may be down).
	ErrConnect = errors.New("backend: connect failed")
	// ErrAuth: the server refused the login.
	ErrAuth = errors.New("backend: login refused")
	// ErrNeedClearPassword: the server asked for caching_sha2_password (or
	// another plugin) full authentication, which needs the clear-text
	// password, and only SHA1(password) is known.
	ErrNeedClearPassword = errors.New("backend: server needs the clear-text password")
	// ErrUnsupportedAuth: the server asked for an auth plugin Sluice does
	// not speak.
	ErrUnsupportedAuth = errors.New("backend: unsupported auth plugin")
	// ErrProtocol: the server sent something unexpected.
	ErrProtocol = errors.New("backend: protocol error")
	// ErrTLS: mysql_servers.use_ssl=1 and TLS to the server failed (it
	// offers none, its certificate does not verify, the handshake broke):
	// the MariaDB client library's 2026, which the client is told.
	ErrTLS = errors.New("TLS/SSL error")
	// ErrBadState: a State field cannot be sent safely (for example a
	// character set name that is not an identifier).
	ErrBadState = errors.New("backend: invalid session state")
	// ErrConnBroken: the connection failed earlier and is unusable.
	ErrConnBroken = errors.New("backend: connection broken")
)

// IsSQLError reports whether err carries an ERR packet from the server, and
// returns it. A SQL error leaves the connection usable; any other error
// from a BackendConn method means the connection is broken.
func IsSQLError(err error) (*wire.SQLError, bool) {
	var e *wire.SQLError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// countsAsConnectError tells whether a failed connect counts towards
// shunning the server. Like ProxySQL (MySrvC::connect_error), errors that
// say the server is alive but refused this login or schema do not, and
// neither does a proxy out of file descriptors (LocalShortage: it shunned
// every healthy server).
func countsAsConnectError(err error) bool {
	e, ok := IsSQLError(err)
	if !ok {
		return !LocalShortage(err)
	}
	c := e.Code
	switch {
	case c == 1044 || c == 1045 || c == 1007 || c == 1008,
		c >= 1048 && c <= 1052, c >= 1054 && c <= 1075, c >= 1099 && c <= 1104,
		c >= 1106 && c <= 1113, c >= 1116 && c <= 1118, c == 1120, c == 1136,
		c >= 1138 && c <= 1149, c == 1203, c == 1226, c == 3118:
		return false
	}
	return true
}

// LocalShortage reports whether a failed connect failed in the proxy
// itself — out of file descriptors (EMFILE, ENFILE), socket buffers,
// memory or local ports — rather than at the server: such a failure says
// nothing of the server's health, and waiting for a connect to succeed
// usually does not help.
func LocalShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// ClosedError is a command the server refused with an ERR before it closed
// the connection, without reading the command whole (1153: a packet larger
// than its max_allowed_packet). The server is fine and the command did not
// run; the connection is gone.
type ClosedError struct {
	SQL *wire.SQLError
	Err error // the write's own error
}

func (e *ClosedError) Error() string {
	return "backend: the server refused the command and closed the connection: " + e.SQL.Error()
}

func (e *ClosedError) Unwrap() error { return e.Err }

// ClosedWith returns the server's ERR when err is a ClosedError.
func ClosedWith(err error) (*wire.SQLError, bool) {
	var ce *ClosedError
	if errors.As(err, &ce) {
		return ce.SQL, true
	}
	return nil, false
}
