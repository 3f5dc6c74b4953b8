package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// userKind is what an authenticated admin-port user may do.
type userKind int

const (
	kindUnknown userKind = iota
	kindAdmin            // admin-admin_credentials: read-write
	kindStats            // admin-stats_credentials: read-only
)

// lookupCredential finds user in a "user:pass;user2:pass2" list. The
// password is everything after the first ':' (it may hold ':' itself).
func lookupCredential(list, user string) (string, bool) {
	for _, entry := range strings.Split(list, ";") {
		name, pass, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if ok && name == user {
			return pass, true
		}
	}
	return "", false
}

// authHandler authenticates one connection against the RUNTIME admin and
// stats credentials, read fresh at each login so that LOAD ADMIN VARIABLES
// TO RUNTIME takes effect for the next connection.
type authHandler struct {
	s    *Server
	kind userKind // set by GetCredential
}

func (h *authHandler) GetCredential(username string) (server.Credential, bool, error) {
	h.kind = kindUnknown
	var pass string
	if p, ok := lookupCredential(h.s.runtimeVar("admin-admin_credentials"), username); ok {
		h.kind, pass = kindAdmin, p
	} else if p, ok := lookupCredential(h.s.runtimeVar("admin-stats_credentials"), username); ok {
		h.kind, pass = kindStats, p
	} else {
		// An unknown user gets a password nobody can know, so the reply is
		// the same 1045 "Access denied" a wrong password gets (go-mysql
		// would otherwise answer 1449 for a missing user).
		var b [24]byte
		_, _ = rand.Read(b[:])
		pass = hex.EncodeToString(b[:])
	}
	return server.Credential{Passwords: []string{pass}, AuthPluginName: mysql.AUTH_NATIVE_PASSWORD}, true, nil
}

// OnAuthSuccess enforces ProxySQL's rule that the users literally named
// "admin" and "stats" only log in from the local host.
func (h *authHandler) OnAuthSuccess(c *server.Conn) error {
	if h.kind == kindUnknown {
		return accessDenied(c, true)
	}
	user := c.GetUser()
	if (user == "admin" || user == "stats") && !isLocal(c.LocalAddr(), c.RemoteAddr()) {
		return &mysql.MyError{Code: mysql.ER_CON_COUNT_ERROR, State: "HY000",
			Message: fmt.Sprintf("User '%s' can only connect locally", user)}
	}
	return nil
}

func (h *authHandler) OnAuthFailure(c *server.Conn, err error) {
	h.s.log.Info().Str("user", c.GetUser()).Str("client", c.RemoteAddr().String()).Err(err).
		Msg("admin login failed")
}

// authProvider wraps go-mysql's password check to give ProxySQL's wording of
// the access-denied error.
type authProvider struct {
	server.DefaultAuthenticationProvider
}

func (p *authProvider) Authenticate(c *server.Conn, plugin string, data []byte) error {
	err := p.DefaultAuthenticationProvider.Authenticate(c, plugin, data)
	if errors.Is(err, server.ErrAccessDenied) {
		return accessDenied(c, !errors.Is(err, server.ErrAccessDeniedNoPassword))
	}
	return err
}

func accessDenied(c *server.Conn, withPassword bool) error {
	yes := "YES"
	if !withPassword {
		yes = "NO"
	}
	return &mysql.MyError{Code: mysql.ER_ACCESS_DENIED_ERROR, State: "28000",
		Message: fmt.Sprintf("ProxySQL Error: Access denied for user '%s'@'%s' (using password: %s)",
			c.GetUser(), hostOf(c.RemoteAddr()), yes)}
}

// isLocal reports whether a client is on the local host: it came in on a
// Unix socket or from a loopback address.
func isLocal(local, remote net.Addr) bool {
	if _, ok := local.(*net.UnixAddr); ok {
		return true
	}
	if a, ok := remote.(*net.TCPAddr); ok {
		return a.IP.IsLoopback()
	}
	return false
}

// hostOf is the client host as ProxySQL prints it: the IP without the port,
// or "localhost" for a Unix socket.
func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.UnixAddr:
		return "localhost"
	case *net.TCPAddr:
		return a.IP.String()
	}
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// noDBHandler is the go-mysql Handler used only during the handshake: the
// database a client names at login is accepted and ignored, as on
// ProxySQL's admin. After the handshake the session runs its own loop.
type noDBHandler struct{ server.EmptyHandler }

func (noDBHandler) UseDB(string) error { return nil }
