package admin

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"
)

// Drivers and GUI tools ask a server about itself when they connect
// (SELECT @@version_comment, @@max_allowed_packet, DATABASE(), USER(),
// SHOW VARIABLES WHERE Variable_name IN (…)). SQLite knows none of it, so
// the admin answers these itself, as ProxySQL's admin does.

// sysVar returns the value of a MySQL system variable as the admin port
// reports it, or ok=false when the admin has no opinion about it.
func (s *Server) sysVar(ss *session, name string) (string, bool) {
	switch strings.ToLower(name) {
	case "version":
		return s.proxyVersion(), true
	case "version_comment":
		return versionComment, true
	case "max_allowed_packet":
		if v := s.runtimeVar("mysql-max_allowed_packet"); v != "" {
			return v, true
		}
		return "67108864", true
	case "sql_mode", "init_connect":
		return "", true
	case "read_only":
		return boolDigit(s.readOnly.Load()), true
	case "auto_increment_increment", "autocommit":
		return "1", true
	case "character_set_client", "character_set_connection", "character_set_results",
		"character_set_server", "character_set_database", "character_set_system":
		return "utf8", true
	case "collation_server", "collation_connection", "collation_database":
		return "utf8_general_ci", true
	case "interactive_timeout", "wait_timeout":
		return "28800", true
	case "net_write_timeout":
		return "60", true
	case "net_buffer_length":
		return "16384", true
	case "license":
		return "GPL", true
	case "lower_case_table_names", "query_cache_size", "performance_schema",
		"tx_read_only", "transaction_read_only":
		return "0", true
	case "query_cache_type":
		return "OFF", true
	case "system_time_zone":
		zone, _ := time.Now().Zone()
		return zone, true
	case "time_zone":
		return "SYSTEM", true
	case "tx_isolation", "transaction_isolation":
		return "REPEATABLE-READ", true
	case "have_ssl":
		if s.cfg.TLS != nil && s.cfg.TLS() != nil {
			return "YES", true
		}
		return "DISABLED", true
	case "hostname":
		h, _ := os.Hostname()
		return h, true
	}
	return "", false
}

// selectItem is one expression of a SELECT list and the column name it
// gets.
type selectItem struct {
	expr  string
	alias string
}

// compatSelect answers SELECT statements made only of session functions
// and @@variables.
func (s *Server) compatSelect(ss *session, n, u string) (reply, bool) {
	if !strings.HasPrefix(u, "SELECT ") {
		return nil, false
	}
	items, ok := parseSelectList(n[len("SELECT "):])
	if !ok {
		return nil, false
	}
	// ProxySQL rewrites a lone SELECT @@<name> it does not know into a
	// lookup of global_variables and stats_mysql_global, so SELECT
	// @@mysql-threads and SELECT @@Questions work (a stats user reads
	// the stats schema's global_variables: mysql-max_allowed_packet).
	if len(items) == 1 {
		if v, ok := strings.CutPrefix(items[0].expr, "@@"); ok {
			name := stripScope(v)
			if _, known := s.sysVar(ss, name); !known && isVarName(name) {
				col := items[0].alias
				if col == "" {
					col = "@@" + name
				}
				return s.sql(ss, s.varLookup(name, sqlQuote(col))), true
			}
		}
	}
	cols := make([]string, len(items))
	vals := make([]sql.NullString, len(items))
	for i, it := range items {
		v, ok := s.evalItem(ss, it.expr)
		if !ok {
			return nil, false
		}
		vals[i] = v
		cols[i] = it.alias
		if cols[i] == "" {
			cols[i] = it.expr
		}
	}
	return &resultSet{cols: cols, rows: [][]sql.NullString{vals}}, true
}

// varLookup is the SQL that reads variable name, as column col: from
// global_variables (for a stats user, the stats schema's: only
// mysql-max_allowed_packet), then from stats_mysql_global, refreshed now.
func (s *Server) varLookup(name, col string) string {
	q := "SELECT variable_value AS " + col + " FROM global_variables WHERE variable_name=" + sqlQuote(name) + " COLLATE NOCASE UNION ALL " +
		"SELECT variable_value FROM stats_mysql_global WHERE variable_name=" + sqlQuote(name) + " COLLATE NOCASE"
	s.refresh(q)
	return q
}

// evalItem evaluates one SELECT expression the admin knows.
func (s *Server) evalItem(ss *session, expr string) (sql.NullString, bool) {
	e := asciiUpper(strings.ReplaceAll(expr, " ", ""))
	switch e {
	case "DATABASE()", "SCHEMA()":
		if ss.stats {
			return nullable("stats", true), true
		}
		return nullable("admin", true), true
	case "USER()", "CURRENT_USER()", "CURRENT_USER", "SESSION_USER()", "SYSTEM_USER()":
		return nullable(ss.user+"@"+ss.host, true), true
	case "CONNECTION_ID()":
		return nullable("0", true), true
	case "VERSION()":
		return nullable(s.proxyVersion(), true), true
	case "CONCAT(@@VERSION,'',@@VERSION_COMMENT)":
		return nullable(s.proxyVersion()+" "+versionComment, true), true
	case "TIMEDIFF(NOW(),UTC_TIMESTAMP())":
		return nullable(tzOffset(time.Now()), true), true
	}
	if strings.HasPrefix(e, "@@") {
		name := stripScope(expr[2:])
		if v, ok := s.sysVar(ss, name); ok {
			return nullable(v, true), true
		}
		if !isVarName(name) {
			return sql.NullString{}, false
		}
		// One of several @@variables: look it up in global_variables, then
		// stats_mysql_global (as the lone SELECT @@name); NULL when there is
		// no such variable.
		r := s.sql(ss, s.varLookup(name, "variable_value"))
		if rs, ok := r.(*resultSet); ok && len(rs.rows) > 0 && len(rs.rows[0]) > 0 {
			return rs.rows[0][0], true
		}
		return sql.NullString{}, true
	}
	return sql.NullString{}, false
}

// stripScope removes GLOBAL./SESSION./LOCAL. from a variable name.
func stripScope(name string) string {
	u := asciiUpper(name)
	for _, p := range []string{"GLOBAL.", "SESSION.", "LOCAL."} {
		if strings.HasPrefix(u, p) {
			return name[len(p):]
		}
	}
	return name
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// tzOffset is TIMEDIFF(NOW(), UTC_TIMESTAMP()): the local offset as
// [-]HH:MM:SS.
func tzOffset(t time.Time) string {
	_, off := t.Zone()
	sign := ""
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, off/3600, off/60%60, off%60)
}

// parseSelectList splits "a AS x, b y LIMIT 1" into items. It accepts only
// what compat queries look like: no FROM, WHERE or subqueries, and an
// optional trailing LIMIT.
func parseSelectList(list string) ([]selectItem, bool) {
	parts, ok := splitTopLevel(list)
	if !ok || len(parts) == 0 {
		return nil, false
	}
	// A trailing "LIMIT n" sticks to the last item.
	last := strings.TrimSpace(parts[len(parts)-1])
	if i := lastWordIndex(asciiUpper(last), "LIMIT"); i >= 0 {
		if !isDigits(strings.TrimSpace(last[i+len("LIMIT"):])) {
			return nil, false
		}
		parts[len(parts)-1] = last[:i]
	}
	items := make([]selectItem, 0, len(parts))
	for _, p := range parts {
		it, ok := parseSelectItem(strings.TrimSpace(p))
		if !ok {
			return nil, false
		}
		items = append(items, it)
	}
	return items, true
}

func parseSelectItem(p string) (selectItem, bool) {
	if p == "" {
		return selectItem{}, false
	}
	u := asciiUpper(p)
	// Explicit "expr AS alias".
	if i := lastWordIndex(u, "AS"); i > 0 {
		alias := strings.TrimSpace(p[i+2:])
		if a, ok := unquoteAlias(alias); ok {
			return selectItem{expr: strings.TrimSpace(p[:i]), alias: a}, true
		}
		return selectItem{}, false
	}
	// Implicit alias: "expr alias", where expr ends with ')' or is @@name.
	if i := strings.LastIndexByte(p, ' '); i > 0 {
		expr, alias := strings.TrimSpace(p[:i]), p[i+1:]
		if strings.HasSuffix(expr, ")") || strings.HasPrefix(expr, "@@") && !strings.Contains(expr, " ") {
			if a, ok := unquoteAlias(alias); ok {
				return selectItem{expr: expr, alias: a}, true
			}
		}
	}
	return selectItem{expr: p}, true
}

// unquoteAlias accepts an identifier or a quoted alias.
func unquoteAlias(a string) (string, bool) {
	if len(a) >= 2 {
		switch q := a[0]; q {
		case '\'', '"', '`':
			if a[len(a)-1] == q && !strings.ContainsRune(a[1:len(a)-1], rune(q)) {
				return a[1 : len(a)-1], true
			}
			return "", false
		}
	}
	if isIdent(a) {
		return a, true
	}
	return "", false
}

// lastWordIndex finds the last standalone occurrence of an upper-case word
// (surrounded by spaces) in u, or -1.
func lastWordIndex(u, word string) int {
	for i := len(u) - len(word); i > 0; i-- {
		if u[i:i+len(word)] == word && u[i-1] == ' ' && (i+len(word) == len(u) || u[i+len(word)] == ' ') {
			return i
		}
	}
	return -1
}

// splitTopLevel splits on commas outside parentheses and quotes.
func splitTopLevel(s string) ([]string, bool) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, false
			}
			i = j
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, false
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, false
	}
	return append(parts, s[start:]), true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// variablesInList parses the WHERE clause MySQL/MariaDB connectors send,
// "Variable_name IN ('a','b')" or "Variable_name = 'a' OR Variable_name =
// 'b'", and returns the names in order.
func variablesInList(where string) ([]string, bool) {
	var names []string
	for i := 0; i < len(where); {
		c := where[i]
		switch {
		case c == ' ' || c == '(' || c == ')' || c == ',' || c == '=':
			i++
		case c == '\'' || c == '"':
			j := strings.IndexByte(where[i+1:], c)
			if j < 0 {
				return nil, false
			}
			names = append(names, where[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(where) && (where[j] == '_' || where[j] == '`' || where[j] >= 'a' && where[j] <= 'z' || where[j] >= 'A' && where[j] <= 'Z') {
				j++
			}
			switch asciiUpper(strings.Trim(where[i:j], "`")) {
			case "VARIABLE_NAME", "IN", "OR":
			default:
				return nil, false
			}
			if j == i {
				return nil, false
			}
			i = j
		}
	}
	return names, len(names) > 0
}

// likeMatch is SQL LIKE, case-insensitive, with % and _ and backslash
// escapes. It backtracks only to the last %, so it runs in O(len·len)
// whatever the pattern.
func likeMatch(pattern, s string) bool {
	p, t := asciiUpper(pattern), asciiUpper(s)
	pi, ti := 0, 0
	starP, starT := -1, 0
	for ti < len(t) {
		if pi < len(p) && p[pi] == '%' {
			starP, starT = pi, ti
			pi++
			continue
		}
		if pi < len(p) {
			c, width := p[pi], 1
			if c == '\\' && pi+1 < len(p) {
				c, width = p[pi+1], 2
			}
			if (c == '_' && width == 1) || c == t[ti] {
				pi, ti = pi+width, ti+1
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starT++
		pi, ti = starP+1, starT
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

// compatVarNames are the MySQL system variables sysVar knows, for SHOW
// VARIABLES LIKE when global_variables has no match.
var compatVarNames = []string{
	"auto_increment_increment", "autocommit", "character_set_client", "character_set_connection",
	"character_set_database", "character_set_results", "character_set_server", "character_set_system",
	"collation_connection", "collation_database", "collation_server", "have_ssl", "hostname",
	"init_connect", "interactive_timeout", "license", "lower_case_table_names", "max_allowed_packet",
	"net_buffer_length", "net_write_timeout", "performance_schema", "query_cache_size",
	"query_cache_type", "read_only", "sql_mode", "system_time_zone", "time_zone",
	"transaction_isolation", "transaction_read_only", "tx_isolation", "tx_read_only", "version",
	"version_comment", "wait_timeout",
}
