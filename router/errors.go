package router

import (
	"fmt"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// The errors the proxy itself sends to clients, with ProxySQL's codes and
// texts (reference §3.1, §4.2, §4.4), so applications and runbooks written
// for ProxySQL recognise them.

func errAccessDenied(user, host string, usingPassword bool) *wire.SQLError {
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

func errMaxConnectTimeout(hg int, ms int64) *wire.SQLError {
	return &wire.SQLError{Code: 9001, State: "HY000",
		Message: fmt.Sprintf("Max connect timeout reached while reaching hostgroup %d after %dms", hg, ms)}
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

func errUnknownCommand(cmd byte) *wire.SQLError {
	return &wire.SQLError{Code: 1047, State: "08S01", Message: fmt.Sprintf("Unknown command %d", cmd)}
}

func errLostBackend(hg int, addr string, inTrx bool) *wire.SQLError {
	msg := fmt.Sprintf("Lost connection to backend %s of hostgroup %d during query", addr, hg)
	if inTrx {
		msg += "; the open transaction was rolled back by the backend"
	}
	return &wire.SQLError{Code: 2013, State: "HY000", Message: msg}
}

func errPacketTooLarge() *wire.SQLError {
	return &wire.SQLError{Code: 1153, State: "08S01", Message: "Got a packet bigger than 'max_allowed_packet' bytes"}
}
