package admin

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// errReadOnly is SQLite's own wording, used when admin is read-only.
var errReadOnly = errors.New("attempt to write a readonly database")

// versionComment is @@version_comment on the admin port.
const versionComment = "(ProxySQL Admin Module)"

// execute runs one statement and returns the reply. It follows the order of
// ProxySQL's admin_session_handler: a chain of intercepts on the normalized
// text, then SQLite for everything else. Admin statements are serialized.
func (s *Server) execute(ss *session, q string) reply {
	n := normalize(q)
	ss.resetWarnings(n)
	if n == "" {
		return &okReply{}
	}
	u := asciiUpper(n)
	if ss.cluster {
		if r, ok := s.clusterOnly(ss, n, u); ok {
			return r
		}
		if r, ok := s.clusterVersion(ss, u); ok {
			return r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.truncateCommand(ss, n); ok {
		return r
	}
	s.refresh(n)

	if strings.HasPrefix(u, "LOGENTRY ") {
		ss.log.Info().Str("entry", n[len("LOGENTRY "):]).Msg("LOGENTRY")
		return &okReply{}
	}
	if strings.HasPrefix(u, "SHOW GLOBAL VARIABLES LIKE 'READ_ONLY'") {
		return oneRow([]string{"Variable_name", "Value"}, "read_only", onOff(s.readOnly.Load()))
	}
	if u == "SELECT @@GLOBAL.READ_ONLY" {
		return oneRow([]string{"@@global.read_only"}, boolDigit(s.readOnly.Load()))
	}

	if !ss.stats {
		if r, ok := s.adminOnly(ss, n, u); ok {
			return r
		}
	}
	if isClientNoise(u) {
		return &okReply{}
	}
	if r, ok := s.compatSelect(ss, n, u); ok {
		return r
	}
	if strings.HasPrefix(u, "SET ") {
		return s.setCommand(ss, n)
	}
	if strings.HasPrefix(u, "CHECKSUM ") {
		if r, ok := s.checksumCommand(ss, u); ok {
			return r
		}
	}
	if strings.HasPrefix(u, "SHOW ") {
		if r, ok := s.showCommand(ss, n, u); ok {
			return r
		}
	}
	return s.passthrough(ss, q, u)
}

// adminOnly are the commands a stats user never reaches: for a stats
// session they fall through to SQLite, which rejects them, as in ProxySQL.
func (s *Server) adminOnly(ss *session, n, u string) (reply, bool) {
	switch {
	case strings.HasPrefix(u, "PROXYSQL CLUSTER_NODE_UUID "):
		return s.registerClusterNode(ss, n[len("PROXYSQL CLUSTER_NODE_UUID "):]), true
	case strings.HasPrefix(u, "PROXYSQL "):
		return s.proxysqlCommand(ss, u)
	case strings.HasPrefix(u, "PROXY_SELECT "):
		return s.clusterQuery(n)
	case strings.HasPrefix(u, "SAVE CONFIG TO FILE "):
		return s.saveConfigFile(ss, n[len("SAVE CONFIG TO FILE "):]), true
	case u == "SAVE CONFIG TO FILE", u == "SELECT CONFIG INTO OUTFILE":
		return s.saveConfigFile(ss, ""), true
	case strings.HasPrefix(u, "LOAD ") || strings.HasPrefix(u, "SAVE "):
		return s.loadSaveCommand(ss, n, u)
	case strings.HasPrefix(u, "KILL CONNECTION "):
		return s.killCommand(n[len("KILL CONNECTION "):]), true
	case u == "SELECT GLOBAL_CHECKSUM()":
		sum, err := s.cfg.Store.GlobalChecksum()
		if err != nil {
			return sqliteErr(err), true
		}
		return oneRow([]string{"CHECKSUM"}, strconv.FormatUint(sum, 10)), true
	case u == "SELECT CONFIG FILE":
		text, err := s.cfg.Store.ConfigFileText()
		if err != nil {
			return sqliteErr(err), true
		}
		return oneRow([]string{"Data"}, text), true
	case strings.HasPrefix(u, "SELECT CONFIG INTO OUTFILE "):
		return s.saveConfigFile(ss, n[len("SELECT CONFIG INTO OUTFILE "):]), true
	}
	return nil, false
}

// clientNoise are statements that clients and mysqldump send and that mean
// nothing on the admin port; ProxySQL answers them with OK.
var clientNoise = []string{
	"SET NAMES", "SET AUTOCOMMIT", "SET CHARACTER_SET_RESULTS", "SET CHARACTER SET",
	"SET SQL_AUTO_IS_NULL", "SET SQL_SAFE_UPDATES", "SET SQL_QUOTE_SHOW_CREATE",
	"SET SESSION ", "SET @@SESSION.", "SET LOCAL ", "SET WAIT_TIMEOUT", "SET NET_WRITE_TIMEOUT",
	"SET SQL_MODE", "SET TIME_ZONE", "SET TRANSACTION", "SET FOREIGN_KEY_CHECKS",
	"SET UNIQUE_CHECKS", "SET SQL_NOTES", "SET @", // user variables: connectors' session setup
	"LOCK TABLES", "UNLOCK TABLES", "USE ",
}

// clientNoiseExact are whole statements answered with OK.
var clientNoiseExact = map[string]bool{"USE": true}

// clientTransaction are the first words of the transaction statements
// answered with OK whatever follows, as ProxySQL matches them by prefix:
// START TRANSACTION READ ONLY / WITH CONSISTENT SNAPSHOT (mysqli's
// begin_transaction, mariadb-dump --single-transaction), BEGIN WORK,
// COMMIT AND CHAIN, ROLLBACK TO SAVEPOINT…. They must not reach SQLite: its
// one connection is shared.
var clientTransaction = []string{"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK"}

func isClientNoise(u string) bool {
	if clientNoiseExact[u] {
		return true
	}
	for _, w := range clientTransaction {
		if strings.HasPrefix(u, w) && (len(u) == len(w) || u[len(w)] == ' ' || u[len(w)] == '/') {
			return true
		}
	}
	// mysqldump's version comments: /*!40101 SET …*/, /*!40000 ALTER TABLE …*/.
	if strings.HasPrefix(u, "/*!") {
		rest := strings.TrimLeft(u[3:], "0123456789")
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, "SET ") || strings.HasPrefix(rest, "ALTER TABLE") {
			return true
		}
	}
	for _, p := range clientNoise {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// passthrough runs a statement verbatim on SQLite.
func (s *Server) passthrough(ss *session, q, u string) reply {
	if ss.stats {
		first := u
		if i := strings.IndexAny(first, " ("); i >= 0 {
			first = first[:i]
		}
		switch first {
		case "PRAGMA", "ATTACH", "DETACH":
			return adminErr("Command not allowed")
		}
	}
	return s.sql(ss, q)
}

// sql runs SQL on the store: read-only for stats users and when admin is
// read-only. Stats users cannot reach configuration tables (in ProxySQL they
// run on a database that does not have them).
func (s *Server) sql(ss *session, q string) reply {
	if ss.stats {
		q = statsGlobalVariables(q)
		if t := statsForbidden(q); t != "" {
			return sqliteErr(errors.New("no such table: " + t))
		}
	}
	// admin-read_only (PROXYSQL READONLY) keeps the config readable: only
	// statements that cannot write get through. Stats sessions are
	// restricted further by the store itself.
	if !ss.stats && s.readOnly.Load() && !isReadOnlySQL(q) {
		return sqliteErr(errReadOnly)
	}
	res, err := s.cfg.Store.Query(ss.ctx(), q, ss.stats)
	if errors.Is(err, storage.ErrNotAllowed) {
		return adminErr(err.Error())
	}
	if err != nil {
		return sqliteErr(err)
	}
	if res.HasRows {
		rs := &resultSet{cols: res.Columns, rows: res.Rows}
		if tn, ok := s.cfg.Applier.(TableNoter); ok {
			if w := tn.TableWarnings(identifiers(strings.ToLower(q))); len(w) > 0 {
				rs.warnings = ss.setWarnings(w)
			}
		}
		return rs
	}
	if res.AffectedRows > 0 {
		s.monitorLogWritten(q)
	}
	// last_insert_id stays 0, as on ProxySQL 2.7's admin (SQLite's
	// last_insert_rowid() is meaningless to a client, and stale after a
	// DELETE).
	return &okReply{affected: uint64(max(res.AffectedRows, 0))}
}

// monitorLogWritten hands a statement that changed rows of a monitor log
// table (mysql_server_*_log) to the proxy (MonitorLogEditor), which keeps
// the logs in memory, copies them out on each read, and knows which an
// operator may edit (ProxySQL's are real tables).
func (s *Server) monitorLogWritten(q string) {
	ed, ok := s.cfg.Applier.(MonitorLogEditor)
	if !ok {
		return
	}
	for _, id := range identifiers(strings.ToLower(q)) {
		parts := strings.Split(id, ".")
		t := parts[len(parts)-1]
		if !strings.HasPrefix(t, "mysql_server_") || !strings.HasSuffix(t, "_log") || len(parts) > 1 && parts[0] != "monitor" {
			continue
		}
		if err := ed.MonitorLogEdited(t); err != nil {
			s.log.Warn().Err(err).Str("table", "monitor."+t).Msg("cannot apply the edit to the monitor's log")
		}
	}
}

// statsHidden are the tables a stats session may not name: every
// configuration table of every module, its runtime_ twin, and
// global_variables (which holds the admin credentials).
var statsHidden = func() map[string]bool {
	m := map[string]bool{"global_variables": true, "runtime_global_variables": true}
	for _, mod := range config.Modules {
		for _, t := range mod.Tables() {
			m[t] = true
			m["runtime_"+t] = true
		}
	}
	return m
}()

// statsForbidden returns the first configuration table (or main./disk.
// qualified name) a statement names, or "".
func statsForbidden(q string) string {
	for _, id := range identifiers(q) {
		if strings.EqualFold(id, "stats.global_variables") {
			continue
		}
		parts := strings.Split(strings.ToLower(id), ".")
		if len(parts) > 1 && (parts[0] == "main" || parts[0] == "disk") {
			return id
		}
		for _, p := range parts {
			if statsHidden[p] {
				return p
			}
		}
	}
	return ""
}

// statsGlobalVariables points the global_variables a stats session names
// (bare, main. or stats.) at stats.global_variables: as in ProxySQL, whose
// stats sessions run on a database where global_variables holds only
// mysql-max_allowed_packet (#708: drivers read it on connecting), SHOW
// VARIABLES and SELECT … FROM global_variables read that table. The
// statement is otherwise unchanged; string literals and comments are
// left alone.
func statsGlobalVariables(q string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' {
					i++
				}
			}
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if end := indexFrom(q, "*/", i+2); end < 0 {
				i = len(q)
			} else {
				i = end + 1
			}
		case isIdentByte(c) || c == '`':
			j, name := dottedName(q, i)
			switch name {
			case "global_variables", "main.global_variables", "stats.global_variables":
				b.WriteString(q[last:i])
				b.WriteString("stats.global_variables")
				last = j
			}
			i = j - 1
		}
	}
	if last == 0 {
		return q
	}
	b.WriteString(q[last:])
	return b.String()
}

// dottedName reads the dotted name that starts at q[i] — parts bare or in
// backquotes, as in `main`.global_variables — and returns where it ends
// and the name unquoted and lower-cased.
func dottedName(q string, i int) (end int, name string) {
	var b strings.Builder
	j := i
	for j < len(q) {
		if q[j] == '`' {
			k := j + 1
			for k < len(q) && q[k] != '`' {
				k++
			}
			b.WriteString(strings.ToLower(q[j+1 : min(k, len(q))]))
			j = min(k+1, len(q))
		} else {
			k := j
			for k < len(q) && isIdentByte(q[k]) {
				k++
			}
			if k == j {
				break
			}
			b.WriteString(strings.ToLower(q[j:k]))
			j = k
		}
		if j < len(q) && q[j] == '.' {
			b.WriteByte('.')
			j++
			continue
		}
		break
	}
	return max(j, i+1), b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// identifiers returns the identifier-like words of a statement outside
// string literals and comments, with dotted names kept whole and backticks
// removed.
func identifiers(q string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			flush()
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' {
					i++
				}
			}
		case c == '`' || c == '[':
			end := byte('`')
			if c == '[' {
				end = ']'
			}
			for i++; i < len(q) && q[i] != end; i++ {
				cur.WriteByte(q[i])
			}
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			flush()
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			flush()
			if end := indexFrom(q, "*/", i+2); end < 0 {
				i = len(q)
			} else {
				i = end + 1
			}
		case c == '_' || c == '.' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			cur.WriteByte(c)
		default:
			flush()
		}
	}
	flush()
	return out
}

// refresh lets the Applier regenerate the live tables a statement names.
func (s *Server) refresh(n string) {
	names := liveTables(n)
	if len(names) == 0 {
		return
	}
	if h := s.refreshHook.Load(); h != nil {
		(*h)(names)
	}
	r, ok := s.cfg.Applier.(Refresher)
	if !ok {
		return
	}
	if err := r.RefreshTables(names); err != nil {
		s.log.Warn().Err(err).Strs("tables", names).Msg("cannot refresh live tables")
	}
}

// liveTables lists the stats_*, runtime_* and monitor.* tables a statement
// names (the monitor's logs with or without their schema). SHOW [FULL] PROCESSLIST reads stats_mysql_processlist and SHOW
// MYSQL STATUS reads stats_mysql_global.
func liveTables(n string) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	lower := strings.ToLower(n)
	if strings.Contains(lower, "processlist") {
		add("stats_mysql_processlist")
	}
	if strings.HasPrefix(lower, "show mysql status") {
		add("stats_mysql_global")
	}
	for _, id := range identifiers(lower) {
		parts := strings.Split(id, ".")
		last := parts[len(parts)-1]
		switch {
		case strings.HasPrefix(last, "stats_") || strings.HasPrefix(last, "runtime_"):
			add(last)
		case len(parts) == 2 && parts[0] == "monitor" && last != "":
			add("monitor." + last)
		case len(parts) == 1 && strings.HasPrefix(last, "mysql_server_") && strings.HasSuffix(last, "_log"):
			// Unqualified, SQLite finds the monitor's log tables in the
			// attached monitor schema (no other schema has them): they
			// are the same tables, and as stale unless refreshed.
			add("monitor." + last)
		}
	}
	return out
}

// runtimeVar is a RUNTIME variable, or its default before the first LOAD.
func (s *Server) runtimeVar(name string) string {
	if rt := s.cfg.Applier.Runtime(); rt != nil {
		return rt.Var(name)
	}
	d, _ := config.LookupVar(name)
	return d.Default
}

// serverVersion is what the handshake announces: mysql-server_version.
func (s *Server) serverVersion() string {
	if v := s.runtimeVar("mysql-server_version"); v != "" {
		return v
	}
	return "8.0.11"
}

// proxyVersion is @@version on the admin port: the proxy's own version.
func (s *Server) proxyVersion() string {
	if v := s.runtimeVar("admin-version"); v != "" {
		return v
	}
	return "2.7.1-sluice"
}

// asciiUpper upper-cases ASCII letters only, so byte offsets into the
// result are valid in the original.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// sqlQuote quotes a string literal for SQLite.
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// isIdent reports whether s is a plain identifier that is safe to splice
// into SQL unquoted.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// unquoteIdent strips backticks or double quotes around an identifier.
func unquoteIdent(s string) string {
	if len(s) >= 2 && (s[0] == '`' && s[len(s)-1] == '`' || s[0] == '"' && s[len(s)-1] == '"') {
		return s[1 : len(s)-1]
	}
	return s
}

// nullable is a result cell; valid=false is SQL NULL.
func nullable(v string, valid bool) sql.NullString { return sql.NullString{String: v, Valid: valid} }

// readPragmas are the pragmas that only look (SHOW DATABASES, SHOW FIELDS).
var readPragmas = map[string]bool{
	"DATABASE_LIST": true, "TABLE_INFO": true, "TABLE_XINFO": true, "TABLE_LIST": true,
	"INDEX_LIST": true, "INDEX_INFO": true, "INDEX_XINFO": true, "FOREIGN_KEY_LIST": true,
	"COLLATION_LIST": true, "FUNCTION_LIST": true, "MODULE_LIST": true, "PRAGMA_LIST": true,
}

// isReadOnlySQL reports whether every statement of q only reads: SELECT,
// VALUES, EXPLAIN, a WITH that ends in a SELECT, or an introspection pragma.
// It errs on the side of refusing.
func isReadOnlySQL(q string) bool {
	for _, st := range splitStatements(q) {
		words := identifiers(st)
		if len(words) == 0 {
			return false
		}
		switch asciiUpper(words[0]) {
		case "SELECT", "VALUES", "EXPLAIN":
		case "WITH":
			for i, w := range words {
				switch asciiUpper(w) {
				case "INSERT", "UPDATE", "DELETE":
					return false
				case "REPLACE":
					if i+1 < len(words) && asciiUpper(words[i+1]) == "INTO" {
						return false
					}
				}
			}
		case "PRAGMA":
			if len(words) < 2 || strings.Contains(st, "=") {
				return false
			}
			name := asciiUpper(words[1])
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
			if !readPragmas[name] {
				return false
			}
		default:
			return false
		}
	}
	return true
}
