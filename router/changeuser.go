package router

import (
	"time"

	"github.com/sluice-proxy/sluice/internal/eventlog"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// comChangeUser re-authenticates the client as another user (with the
// connection's scramble, or a fresh one after an auth switch, which then
// stays the connection's) and resets the session as for
// COM_RESET_CONNECTION.
func (s *session) comChangeUser(rt *live.Runtime, p []byte) bool {
	cu, err := wire.ParseChangeUser(p, s.caps)
	if err != nil {
		s.writeErr(errMalformed("COM_CHANGE_USER"))
		return true
	}
	reply, salt, plugin := cu.AuthResponse, s.salt, cu.AuthPlugin
	u := rt.Frontend[cu.User]
	// A user stored as a caching_sha2_password hash ($A$…) is checked
	// with that plugin (a native scramble cannot be checked against it);
	// any other with the client's caching_sha2_password or with
	// mysql_native_password, to which other plugins are switched.
	want := wire.AuthNativePassword
	if u != nil && wire.IsCachingSha2Hash(u.Password) {
		want = wire.AuthCachingSha2
	}
	if plugin == "" {
		plugin = wire.AuthNativePassword
	}
	if plugin != want && !(plugin == wire.AuthCachingSha2 && want == wire.AuthNativePassword) {
		// The switch carries a new scramble, which becomes the
		// connection's: a client answers the next COM_CHANGE_USER with
		// the last one it was sent (PHP's mysqlnd does), as a server
		// regenerates it.
		salt = wire.NewSalt()
		s.salt = salt
		// The auth switch reply is a login step: it has
		// mysql-connect_timeout_client, as the handshake.
		_ = s.nc.SetReadDeadline(time.Now().Add(rt.Router.ConnectTimeoutClient))
		r, err := s.c.AuthSwitch(want, salt)
		_ = s.nc.SetReadDeadline(time.Time{})
		if err != nil {
			return false
		}
		reply, plugin = r, want
	}
	verified := false
	if u != nil {
		if plugin == wire.AuthCachingSha2 {
			_, encrypted := s.c.TLSState()
			verified = s.verifySha2(u, salt, reply, encrypted)
		} else {
			verified = s.verify(u, salt, reply)
		}
	}
	if !verified {
		s.writeErr(errAccessDenied(cu.User, s.clientIP, len(reply) > 0))
		return false
	}
	// mysql_users.use_ssl=1 holds for a change of user as for a login.
	if _, encrypted := s.c.TLSState(); u.UseSSL && !encrypted {
		s.audit(eventlog.AuditClientConnectERR, "SSL is required")
		s.writeErr(errSSLRequired(cu.User, s.clientIP, len(reply) > 0))
		return false
	}
	if e := loginCharsetRefused(uint8(cu.Charset)); e != nil {
		s.writeErr(e)
		return false
	}
	if e := schemaLockedRefused(u, cu.DB); e != nil {
		s.writeErr(e)
		return false
	}
	s.resetSession(rt)
	if u.Username != s.username {
		s.r.userCounter(s.username).Add(-1)
		s.r.userCounter(u.Username).Add(1)
	}
	s.user, s.username = u, u.Username
	s.keepLoginCredentials(rt)
	// The client's capabilities outlive a change of user, as on a server:
	// multi-statements (as COM_SET_OPTION last left them), found-rows,
	// ignore-space, PS multi-results.
	ms, caps := s.state.MultiStatements, s.state.Caps
	s.csServer = ""
	s.state = initialState(rt, u, &wire.HandshakeResponse{DB: cu.DB, Charset: uint8(cu.Charset)})
	s.state.MultiStatements, s.state.Caps = ms, caps
	return s.writeOK(0, 0, "") == nil
}
