package admin

import (
	"strings"
)

// truncatable are the stats tables TRUNCATE clears, as in ProxySQL's
// admin_session_handler: the in-memory digest map behind either name.
var truncatable = map[string]bool{
	"stats_mysql_query_digest":       true,
	"stats_mysql_query_digest_reset": true,
}

// parseTruncate recognises TRUNCATE [TABLE] [stats.]<name> on a normalized
// statement and returns the lower-case table name.
func parseTruncate(n string) (string, bool) {
	if !hasPrefixFold(n, "TRUNCATE ") {
		return "", false
	}
	rest := n[len("TRUNCATE "):]
	if hasPrefixFold(rest, "TABLE ") {
		rest = rest[len("TABLE "):]
	}
	if strings.ContainsAny(rest, " ;") {
		return "", false
	}
	name := strings.ToLower(rest)
	if schema, table, ok := strings.Cut(name, "."); ok {
		if unquoteIdent(schema) != "stats" {
			return "", false
		}
		name = table
	}
	name = unquoteIdent(name)
	return name, truncatable[name]
}

// truncateCommand serves TRUNCATE of the digest tables for admin sessions:
// the proxy empties its digest map (Truncater) and both SQLite copies are
// emptied, then OK. It runs before the live tables are refreshed, as in
// ProxySQL, so the digests are not copied out just to be thrown away.
func (s *Server) truncateCommand(ss *session, n string) (reply, bool) {
	if ss.stats {
		return nil, false // read-only: SQLite refuses the statement
	}
	table, ok := parseTruncate(n)
	if !ok {
		return nil, false
	}
	if t, ok := s.cfg.Applier.(Truncater); ok {
		if _, err := t.TruncateStats(table); err != nil {
			return adminErr("ProxySQL Admin Error: " + err.Error()), true
		}
	}
	for t := range truncatable {
		if _, err := s.cfg.Store.Query(s.ctx, "DELETE FROM stats."+t, false); err != nil {
			return sqliteErr(err), true
		}
	}
	return &okReply{}, true
}
