package admin

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/ratelog"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// userKind is what an authenticated admin-port user may do.
type userKind int

const (
	kindUnknown userKind = iota
	kindAdmin            // admin-admin_credentials: read-write
	kindStats            // admin-stats_credentials: read-only
	kindCluster          // admin-cluster_username (also in admin_credentials): cluster queries only
)

// LookupCredential finds user in a "user:pass;user2:pass2" list. The
// password is everything after the first ':' (it may hold ':' itself).
func LookupCredential(list, user string) (string, bool) {
	for _, entry := range strings.Split(list, ";") {
		name, pass, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if ok && name == user {
			return pass, true
		}
	}
	return "", false
}

// credential finds user in the RUNTIME admin and stats credentials, read
// fresh at each login so that LOAD ADMIN VARIABLES TO RUNTIME takes effect
// for the next connection. The password is in clear text.
func (s *Server) credential(user string) (userKind, string) {
	if p, ok := LookupCredential(s.runtimeVar("admin-admin_credentials"), user); ok {
		// ProxySQL requires the cluster user to be an admin user too;
		// Sluice confines it to what a peer runs.
		if cu := s.runtimeVar("admin-cluster_username"); cu != "" && cu == user {
			return kindCluster, p
		}
		return kindAdmin, p
	}
	if p, ok := LookupCredential(s.runtimeVar("admin-stats_credentials"), user); ok {
		return kindStats, p
	}
	return kindUnknown, ""
}

// authenticate checks a client's mysql_native_password reply (to salt)
// against the credentials, then enforces ProxySQL's rule that the users
// literally named "admin" and "stats" only log in from the local host. An
// unknown user gets the same 1045 "Access denied" as a wrong password.
func (s *Server) authenticate(user string, reply, salt []byte, local, remote net.Addr) (userKind, *errReply) {
	// Some clients send a lone NUL for an empty password (MySQL's own
	// server, and go-mysql before, treat it as empty).
	if len(reply) == 1 && reply[0] == 0 {
		reply = nil
	}
	kind, pass := s.credential(user)
	if kind == kindUnknown || !wire.VerifyNativeClear(salt, reply, pass) {
		e := accessDenied(user, remote, len(reply) > 0)
		s.loginLog.Event(time.Now(), s.log.Info, "more_failures_not_logged").Str("user", clipName(user)).Str("client", addrString(remote)).Err(e).
			Msg("admin login failed")
		return kindUnknown, e
	}
	if (user == "admin" || user == "stats") && !isLocal(local, remote) {
		return kindUnknown, &errReply{code: erConCount, state: "HY000",
			msg: fmt.Sprintf("User '%s' can only connect locally", user)}
	}
	return kind, nil
}

// clipName bounds a client-chosen user name echoed in errors and logs.
func clipName(s string) string { return ratelog.Clip(s, 128) }

// clipCommand is an admin command as a log line quotes it: its first 1 KiB.
func clipCommand(s string) string { return ratelog.Clip(s, 1024) }

func accessDenied(user string, remote net.Addr, withPassword bool) *errReply {
	user = clipName(user)
	yes := "YES"
	if !withPassword {
		yes = "NO"
	}
	return &errReply{code: erAccessDenied, state: "28000",
		msg: fmt.Sprintf("ProxySQL Error: Access denied for user '%s'@'%s' (using password: %s)",
			user, hostOf(remote), yes)}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
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
