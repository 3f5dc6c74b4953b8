package admin

import (
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// setPrefixes are the variable families ProxySQL's SET accepts. Sluice
// knows only mysql- and admin- variables; the others answer as unknown.
var setPrefixes = []string{"mysql-", "admin-", "ldap-", "sqliteserver-", "clickhouse-"}

// setCommand is ProxySQL's admin_handler_command_set: SET <var>=<value>
// becomes an UPDATE of MEMORY's global_variables. The value is spliced in
// verbatim, so strings must be quoted by the user, and a bare word is an
// SQLite error, exactly as in ProxySQL.
func (s *Server) setCommand(ss *session, n string) reply {
	entry := n[len("SET "):]
	rawName, value, _ := strings.Cut(entry, "=")
	name := strings.TrimSpace(rawName)
	// As ProxySQL, a SET that names a password anywhere is not logged
	// whole (a second assignment, another case, a comment may carry one);
	// what is logged is bounded.
	if l := strings.ToLower(n); !strings.Contains(l, "password") && !strings.Contains(l, "credentials") {
		ss.log.Info().Str("command", clipCommand(n)).Msg("Received command")
	} else {
		ss.log.Info().Str("variable", clipName(name)).Msg("Received SET")
	}
	if name == "mysql-init_connect" {
		return adminErr("ERROR: Global variable '" + name + "' is not configurable using SET command. You must run UPDATE global_variables")
	}
	d, ok := knownVariable(name)
	if !ok {
		return &okReply{info: "ERROR: Unknown global variable: '" + name + "'."}
	}
	return s.sql(ss, "UPDATE global_variables SET variable_value="+value+" WHERE variable_name="+sqlQuote(d.Name))
}

// knownVariable reports whether name is a global variable SET may change.
func knownVariable(name string) (config.VarDef, bool) {
	for _, p := range setPrefixes {
		if len(name) > len(p) && strings.HasPrefix(name, p) {
			return config.LookupVar(name)
		}
	}
	return config.VarDef{}, false
}
