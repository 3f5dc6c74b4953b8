package sqlscan

import (
	"bytes"
	"sort"
	"strings"
)

// SetOutcome tells the session what to do with a client statement.
type SetOutcome uint8

// Outcomes of ParseSet.
const (
	// SetNotSet: the statement is not a SET.
	SetNotSet SetOutcome = iota
	// SetTracked: every assignment is a tracked or ignored variable; the
	// session records the values and answers OK without a backend
	// (reference §5.3).
	SetTracked
	// SetLock: the statement cannot be replayed from tracked state (user
	// variables, unknown or GLOBAL variables, expressions, syntax the parser
	// does not know). ProxySQL runs it on a backend and locks the session to
	// that hostgroup (unable_to_parse_set_statement).
	SetLock
)

func (o SetOutcome) String() string {
	switch o {
	case SetTracked:
		return "tracked"
	case SetLock:
		return "lock"
	}
	return "not-set"
}

// AssignKind is the kind of one assignment of a SET statement.
type AssignKind uint8

// Assignment kinds.
const (
	AssignVariable    AssignKind = iota // a tracked session variable
	AssignNames                         // SET NAMES charset [COLLATE collation]
	AssignCharset                       // SET CHARACTER SET / CHARSET charset
	AssignAutocommit                    // autocommit; Value is "0" or "1"
	AssignIsolation                     // transaction isolation; Value like "READ-COMMITTED"
	AssignAccessMode                    // transaction access mode; Value "READ ONLY" or "READ WRITE"
	AssignIgnored                       // recognised and deliberately not tracked (wait_timeout, …)
	AssignUnsupported                   // forces SetLock
	// AssignUserVariable: @name = expression. It forces SetLock with the
	// reason "user variable", but the other assignments of the statement
	// are parsed (and tracked ones listed): the session can then record
	// them and capture the user variables' values from the backend.
	AssignUserVariable
	// AssignComputed: a tracked variable set to an expression of literals,
	// functions and system variables (sql_mode = CONCAT(@@sql_mode, …)).
	// The statement gets SetLock with Computed set: the session may run it
	// on a backend, read the variables back and track the values.
	AssignComputed
)

// Assignment is one parsed "name = value" of a SET statement.
type Assignment struct {
	Kind AssignKind
	// Name is the canonical lower-case variable name ("sql_mode",
	// "names", "charset", "autocommit", "transaction_isolation",
	// "transaction_read_only"), or what was written for unsupported ones.
	Name string
	// Value is the value without quotes (escapes resolved).
	Value string
	// Collate is the COLLATE of SET NAMES, if any.
	Collate string
	// Literal is the value exactly as the client wrote it (quotes kept), so
	// that replaying "SET name = Literal" reproduces the client's intent.
	Literal string
	// NextTransaction is set for SET TRANSACTION without SESSION, which only
	// affects the next transaction.
	NextTransaction bool
}

// SQL returns the statement that reproduces the assignment on a backend
// connection.
func (a Assignment) SQL() string {
	switch a.Kind {
	case AssignNames:
		if a.Collate != "" {
			return "SET NAMES " + a.Value + " COLLATE " + a.Collate
		}
		return "SET NAMES " + a.Value
	case AssignCharset:
		return "SET CHARACTER SET " + a.Value
	case AssignAutocommit:
		return "SET autocommit=" + a.Value
	case AssignIsolation:
		level := strings.ReplaceAll(a.Value, "-", " ")
		if a.NextTransaction {
			return "SET TRANSACTION ISOLATION LEVEL " + level
		}
		return "SET SESSION TRANSACTION ISOLATION LEVEL " + level
	case AssignAccessMode:
		if a.NextTransaction {
			return "SET TRANSACTION " + a.Value
		}
		return "SET SESSION TRANSACTION " + a.Value
	}
	return "SET " + a.Name + "=" + a.Literal
}

// SetStatement is the result of ParseSet.
type SetStatement struct {
	Outcome     SetOutcome
	Assignments []Assignment
	// Reason explains a SetLock outcome, for the warning ProxySQL logs.
	Reason string
	// Computed: a SetLock only because tracked variables are set to
	// expressions (AssignComputed); every other assignment is tracked or
	// ignored, and no user variable is read or set.
	Computed bool
}

// trackedVariables are the session variables the proxy replays on whichever
// backend connection serves the session: ProxySQL's mysql_tracked_variables
// (include/proxysql_structs.h) and plain session settings that drivers send
// at connect, which lock the hostgroup in ProxySQL (DBD::MariaDB's
// character_set_server and collation_server, ProxySQL #2522). Not here:
// settings that act once (insert_id, rand_seed1) or change what a COMMIT
// does (completion_type). Kept sorted: a character set is replayed before
// its collation.
var trackedVariables = []string{
	"aurora_read_replica_read_committed",
	"auto_increment_increment",
	"auto_increment_offset",
	"big_tables",
	"character_set_client",
	"character_set_connection",
	"character_set_database",
	"character_set_results",
	"character_set_server", // beyond ProxySQL
	"collation_connection",
	"collation_database", // beyond ProxySQL
	"collation_server",   // beyond ProxySQL
	"default_storage_engine",
	"default_tmp_storage_engine",
	"default_week_format",             // beyond ProxySQL
	"div_precision_increment",         // beyond ProxySQL
	"explicit_defaults_for_timestamp", // beyond ProxySQL
	"foreign_key_checks",
	"group_concat_max_len",
	"group_replication_consistency",
	"gtid_next",
	"in_predicate_conversion_threshold", // beyond ProxySQL
	"innodb_lock_wait_timeout",
	"innodb_strict_mode",
	"innodb_table_locks",
	"join_buffer_size",
	"lc_messages",
	"lc_time_names",
	"lock_wait_timeout",
	"log_slow_filter",
	"long_query_time",
	"low_priority_updates", // beyond ProxySQL
	"max_error_count",      // beyond ProxySQL
	"max_execution_time",
	"max_heap_table_size",
	"max_join_size",
	"max_sort_length",
	"max_sp_recursion_depth", // beyond ProxySQL
	"max_statement_time",
	"old_alter_table", // beyond ProxySQL
	"optimizer_prune_level",
	"optimizer_search_depth",
	"optimizer_switch",
	"optimizer_use_condition_selectivity",
	"profiling",
	"profiling_history_size", // beyond ProxySQL
	"query_cache_type",
	"session_track_gtids",
	"sort_buffer_size",
	"sql_auto_is_null",
	"sql_big_selects",
	"sql_buffer_result", // beyond ProxySQL
	"sql_generate_invisible_primary_key",
	"sql_log_bin",
	"sql_log_off", // beyond ProxySQL
	"sql_mode",
	"sql_notes", // beyond ProxySQL
	"sql_quote_show_create",
	"sql_require_primary_key",
	"sql_safe_updates",
	"sql_select_limit",
	"sql_warnings", // beyond ProxySQL
	"time_zone",
	"timestamp",
	"tmp_disk_table_size", // beyond ProxySQL
	"tmp_table_size",
	"transaction_alloc_block_size", // beyond ProxySQL
	"transaction_prealloc_size",    // beyond ProxySQL
	"unique_checks",
	"wsrep_osu_method",
	"wsrep_sync_wait",
}

// ignoredVariables are accepted and answered OK but not replayed
// (MySQL_Variables::ignore_vars; reg_test_3184 for wait_timeout).
var ignoredVariables = []string{
	"interactive_timeout",
	"net_buffer_length",
	"net_read_timeout",
	"net_write_timeout",
	"read_buffer_size",
	"read_rnd_buffer_size",
	"session_track_schema",
	"session_track_state_change",
	"session_track_system_variables",
	"wait_timeout",
}

// TrackedVariables returns the names of the session variables the proxy
// tracks and replays, sorted. autocommit, the transaction characteristics
// and SET NAMES / CHARACTER SET are tracked too but have their own
// assignment kinds.
func TrackedVariables() []string {
	return append([]string(nil), trackedVariables...)
}

// IsTrackedVariable reports whether name (lower case) is a tracked session
// variable.
func IsTrackedVariable(name string) bool { return inSorted(trackedVariables, name) }

// IsIgnoredVariable reports whether SET name=… is answered OK and dropped.
func IsIgnoredVariable(name string) bool { return inSorted(ignoredVariables, name) }

func inSorted(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}

// ParseSet parses a client SET statement (reference §5.3). It is a small
// hand-written parser rather than a SQL grammar because the session needs
// the literal text of every value to replay it, and the cases that matter
// are a handful of fixed forms; anything else must lock, which is the
// outcome of failing to parse. query is read as a server reads it in
// dialect d.
func ParseSet(query []byte, d Dialect) SetStatement {
	if hasAmbiguousExec(query) {
		// /*M!100000 SET … */, /*!80000 … */: some servers run the text,
		// others skip it; what the statement sets depends on which.
		return SetStatement{Outcome: SetLock, Reason: "an executable comment not every server runs"}
	}
	p := setParser{s: query, d: d}
	p.skip()
	if !p.keyword("SET") {
		return SetStatement{Outcome: SetNotSet}
	}
	if !p.atDelimiter() {
		return SetStatement{Outcome: SetNotSet}
	}
	p.skip()
	save := p.pos
	if p.keyword("STATEMENT") && p.atDelimiter() {
		// MariaDB's SET STATEMENT var=value[, …] FOR statement: the
		// variables hold for that one statement, the session keeps none.
		return SetStatement{Outcome: SetNotSet}
	}
	p.pos = save
	st := SetStatement{Outcome: SetTracked}
	lock := func(reason string) SetStatement {
		st.Outcome = SetLock
		if st.Reason == "" {
			st.Reason = reason
		}
		return st
	}
	for {
		p.skip()
		if p.eof() {
			if len(st.Assignments) == 0 {
				return lock("empty SET")
			}
			return lock("trailing comma")
		}
		a, reason := p.assignment()
		if reason != "" {
			if len(a) > 0 {
				a[len(a)-1].Kind = AssignUnsupported
				st.Assignments = append(st.Assignments, a...)
			}
			return lock(reason)
		}
		st.Assignments = append(st.Assignments, a...)
		p.skip()
		if p.eof() {
			break
		}
		if p.peek() != ',' {
			return lock("unexpected text after value")
		}
		p.pos++
	}
	for _, a := range st.Assignments {
		if a.Kind == AssignUserVariable {
			return lock("user variable")
		}
	}
	for _, a := range st.Assignments {
		if a.Kind == AssignComputed {
			st = lock("value of " + a.Name + " is an expression")
			st.Computed = true
			return st
		}
	}
	return st
}

// UserVariablesOnly reports whether a SetLock outcome is due to user
// variables alone: every other assignment of the statement was parsed and
// is tracked (or ignored), so running it on a backend, recording those
// assignments and capturing the user variables' values loses nothing.
func (st *SetStatement) UserVariablesOnly() bool {
	if st.Outcome != SetLock || st.Reason != "user variable" {
		return false
	}
	for _, a := range st.Assignments {
		if a.Kind == AssignUnsupported || a.Kind == AssignComputed {
			return false
		}
	}
	return true
}

type setParser struct {
	s    []byte
	pos  int
	exec bool // inside a /*! … */ executable comment
	d    Dialect
}

func (p *setParser) eof() bool { return p.pos >= len(p.s) }

func (p *setParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// skip passes whitespace, comments and a trailing ';'. The body of an
// executable comment /*!NNNNN … */ is parsed, as the server runs it.
func (p *setParser) skip() {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case IsSpace(c) || c == '\f' || c == '\v':
			p.pos++
		case c == '/' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '*':
			if p.pos+2 < len(p.s) && p.s[p.pos+2] == '!' {
				p.pos += 3
				for p.pos < len(p.s) && isDigitChar(p.s[p.pos]) {
					p.pos++
				}
				p.exec = true
				continue
			}
			end := indexFrom(p.s, p.pos+2, "*/")
			if end < 0 {
				p.pos = len(p.s)
			} else {
				p.pos = end + 2
			}
		case c == '*' && p.exec && p.pos+1 < len(p.s) && p.s[p.pos+1] == '/':
			p.exec = false
			p.pos += 2
		case c == '#' || (c == '-' && p.pos+2 < len(p.s) && p.s[p.pos+1] == '-' && dashComment(p.s[p.pos+2])):
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == ';' && p.onlyTrailer(p.pos+1):
			p.pos = len(p.s)
		default:
			return
		}
	}
}

// onlyTrailer reports whether nothing but whitespace and ';' follows i.
func (p *setParser) onlyTrailer(i int) bool {
	for ; i < len(p.s); i++ {
		if c := p.s[i]; !IsSpace(c) && c != ';' {
			return false
		}
	}
	return true
}

func indexFrom(s []byte, from int, sub string) int {
	if from > len(s) {
		return -1
	}
	if i := bytes.Index(s[from:], []byte(sub)); i >= 0 {
		return from + i
	}
	return -1
}

// atDelimiter reports whether the next byte ends a keyword.
func (p *setParser) atDelimiter() bool {
	return p.eof() || !isNormalChar(p.peek())
}

// word reads an identifier ([A-Za-z0-9_$]) or a back-quoted name.
func (p *setParser) word() string {
	if p.peek() == '`' {
		end := indexFrom(p.s, p.pos+1, "`")
		if end < 0 {
			return ""
		}
		w := string(p.s[p.pos+1 : end])
		p.pos = end + 1
		return w
	}
	start := p.pos
	for p.pos < len(p.s) && isNormalChar(p.s[p.pos]) {
		p.pos++
	}
	return string(p.s[start:p.pos])
}

// keyword consumes kw (upper case) if it is the next word.
func (p *setParser) keyword(kw string) bool {
	end := p.pos + len(kw)
	if end > len(p.s) || !EqualUpper(p.s[p.pos:end], kw) {
		return false
	}
	if end < len(p.s) && isNormalChar(p.s[end]) {
		return false
	}
	p.pos = end
	return true
}

// assignment parses one comma-separated item. SET TRANSACTION returns one
// assignment per characteristic.
func (p *setParser) assignment() ([]Assignment, string) {
	save := p.pos
	// Forms introduced by a keyword.
	switch {
	case p.keyword("NAMES"):
		return p.names()
	case p.keyword("CHARSET"):
		return p.charset()
	case p.keyword("CHARACTER"):
		p.skip()
		if !p.keyword("SET") {
			return nil, "bad CHARACTER SET"
		}
		return p.charset()
	}

	scope := ""
	for _, s := range []string{"SESSION", "LOCAL", "GLOBAL", "PERSIST_ONLY", "PERSIST"} {
		if p.keyword(s) {
			scope = s
			break
		}
	}
	if scope != "" {
		p.skip()
	}
	if p.keyword("TRANSACTION") {
		return p.transaction(scope)
	}

	var name string
	switch {
	case p.peek() == '@' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '@':
		if scope != "" {
			return nil, "scope keyword before @@"
		}
		p.pos += 2
		name = p.word()
		if p.peek() == '.' {
			s := strings.ToUpper(name)
			p.pos++
			name = p.word()
			switch s {
			case "SESSION", "LOCAL":
			case "GLOBAL", "PERSIST", "PERSIST_ONLY":
				scope = s
			default:
				return []Assignment{{Name: "@@" + s + "." + name}}, "unknown variable scope " + s
			}
		}
	case p.peek() == '@':
		p.pos++
		uv := p.word()
		if uv == "" && (p.peek() == '\'' || p.peek() == '"' || p.peek() == '`') {
			if _, n, ok := scanQuoted(p.s[p.pos:], p.d); ok {
				uv = string(p.s[p.pos : p.pos+n])
				p.pos += n
			}
		}
		a := []Assignment{{Name: "@" + uv, Kind: AssignUserVariable}}
		if uv == "" {
			return a, "cannot parse SET"
		}
		if !p.assignOp() {
			return a, "cannot parse SET"
		}
		// The value is any expression: pass over it to the next top-level
		// comma, so the rest of the statement is parsed too.
		if !p.skipExpression() {
			return a, "cannot parse SET"
		}
		return a, ""
	default:
		name = p.word()
	}
	if name == "" {
		p.pos = save
		return nil, "cannot parse SET"
	}
	lname := strings.ToLower(name)

	if !p.assignOp() {
		return []Assignment{{Name: lname}}, "expected = after " + name
	}
	p.skip()
	lit, ok := p.rawValue()
	if !ok {
		return []Assignment{{Name: lname}}, "unterminated value"
	}
	a := Assignment{Name: lname, Literal: lit}
	if scope == "GLOBAL" || scope == "PERSIST" || scope == "PERSIST_ONLY" {
		return []Assignment{a}, "SET " + scope + " changes the server, not the session"
	}
	val, simple := simpleValue(lit, p.d)
	if !simple {
		if IsTrackedVariable(lname) && !readsUserVariable(lit) {
			a.Kind = AssignComputed
			return []Assignment{a}, ""
		}
		if IsIgnoredVariable(lname) && !readsUserVariable(lit) {
			// Not replayed whatever its value (WordPress's wait_timeout =
			// GREATEST(…)): an expression changes nothing the proxy keeps.
			a.Kind = AssignIgnored
			return []Assignment{a}, ""
		}
		return []Assignment{a}, "value of " + lname + " is an expression"
	}
	a.Value = val

	switch {
	case lname == "autocommit":
		switch strings.ToUpper(val) {
		case "1", "ON", "TRUE":
			a.Value = "1"
		case "0", "OFF", "FALSE":
			a.Value = "0"
		default:
			return []Assignment{a}, "bad autocommit value " + lit
		}
		a.Kind = AssignAutocommit
	case lname == "transaction_isolation" || lname == "tx_isolation":
		level := strings.ToUpper(val)
		switch level {
		case "READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE":
		default:
			return []Assignment{a}, "bad isolation level " + lit
		}
		a.Kind, a.Name, a.Value = AssignIsolation, "transaction_isolation", level
	case lname == "transaction_read_only" || lname == "tx_read_only":
		switch strings.ToUpper(val) {
		case "1", "ON", "TRUE":
			a.Value = "READ ONLY"
		case "0", "OFF", "FALSE":
			a.Value = "READ WRITE"
		default:
			return []Assignment{a}, "bad read-only value " + lit
		}
		a.Kind, a.Name = AssignAccessMode, "transaction_read_only"
	case IsTrackedVariable(lname):
		a.Kind = AssignVariable
	case IsIgnoredVariable(lname):
		a.Kind = AssignIgnored
	default:
		return []Assignment{a}, "variable " + lname + " is not tracked"
	}
	return []Assignment{a}, ""
}

func (p *setParser) names() ([]Assignment, string) {
	p.skip()
	cs, ok := p.nameValue()
	if !ok {
		return []Assignment{{Name: "names"}}, "bad SET NAMES"
	}
	a := Assignment{Kind: AssignNames, Name: "names", Value: cs, Literal: cs}
	p.skip()
	if p.keyword("COLLATE") {
		p.skip()
		coll, ok := p.nameValue()
		if !ok {
			return []Assignment{a}, "bad COLLATE"
		}
		a.Collate = coll
	}
	return []Assignment{a}, ""
}

func (p *setParser) charset() ([]Assignment, string) {
	p.skip()
	cs, ok := p.nameValue()
	if !ok {
		return []Assignment{{Name: "charset"}}, "bad SET CHARACTER SET"
	}
	return []Assignment{{Kind: AssignCharset, Name: "charset", Value: cs, Literal: cs}}, ""
}

// nameValue reads a charset or collation name: a bare or quoted identifier.
func (p *setParser) nameValue() (string, bool) {
	if c := p.peek(); c == '\'' || c == '"' {
		v, n, ok := scanQuoted(p.s[p.pos:], p.d)
		if !ok || !isIdent(v) {
			return "", false
		}
		p.pos += n
		return v, true
	}
	w := p.word()
	return w, w != "" && isIdent(w)
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNormalChar(s[i]) {
			return false
		}
	}
	return true
}

// transaction parses SET [scope] TRANSACTION characteristic[, …].
func (p *setParser) transaction(scope string) ([]Assignment, string) {
	switch scope {
	case "GLOBAL", "PERSIST", "PERSIST_ONLY":
		return []Assignment{{Name: "transaction"}}, "SET " + scope + " TRANSACTION changes the server"
	}
	next := scope == ""
	var out []Assignment
	for {
		p.skip()
		switch {
		case p.keyword("ISOLATION"):
			p.skip()
			if !p.keyword("LEVEL") {
				return append(out, Assignment{Name: "transaction"}), "bad ISOLATION LEVEL"
			}
			p.skip()
			var level string
			switch {
			case p.keyword("SERIALIZABLE"):
				level = "SERIALIZABLE"
			case p.keyword("REPEATABLE"):
				p.skip()
				if !p.keyword("READ") {
					return append(out, Assignment{Name: "transaction"}), "bad isolation level"
				}
				level = "REPEATABLE-READ"
			case p.keyword("READ"):
				p.skip()
				switch {
				case p.keyword("COMMITTED"):
					level = "READ-COMMITTED"
				case p.keyword("UNCOMMITTED"):
					level = "READ-UNCOMMITTED"
				default:
					return append(out, Assignment{Name: "transaction"}), "bad isolation level"
				}
			default:
				return append(out, Assignment{Name: "transaction"}), "bad isolation level"
			}
			out = append(out, Assignment{Kind: AssignIsolation, Name: "transaction_isolation",
				Value: level, Literal: "'" + level + "'", NextTransaction: next})
		case p.keyword("READ"):
			p.skip()
			var mode string
			switch {
			case p.keyword("ONLY"):
				mode = "READ ONLY"
			case p.keyword("WRITE"):
				mode = "READ WRITE"
			default:
				return append(out, Assignment{Name: "transaction"}), "bad transaction access mode"
			}
			lit := "0"
			if mode == "READ ONLY" {
				lit = "1"
			}
			out = append(out, Assignment{Kind: AssignAccessMode, Name: "transaction_read_only",
				Value: mode, Literal: lit, NextTransaction: next})
		default:
			return append(out, Assignment{Name: "transaction"}), "bad SET TRANSACTION"
		}
		p.skip()
		if p.peek() != ',' {
			return out, ""
		}
		p.pos++
	}
}

// rawValue returns the text of a value up to the next top-level comma or
// the end of the statement, skipping over quotes and parentheses.
// assignOp consumes "=" or ":=" (after white space), reporting whether
// one was there.
func (p *setParser) assignOp() bool {
	p.skip()
	switch {
	case p.peek() == '=':
		p.pos++
	case p.peek() == ':' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '=':
		p.pos += 2
	default:
		return false
	}
	return true
}

// skipExpression passes over a value expression up to the next top-level
// comma (or the end), across quotes, parentheses and comments. It reports
// whether there was a well-formed, non-empty expression.
func (p *setParser) skipExpression() bool {
	p.skip()
	start, depth := p.pos, 0
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c >= 0x80:
			p.pos += p.d.charLen(p.s, p.pos)
			continue
		case c == '\'' || c == '"' || c == '`':
			_, n, ok := scanQuoted(p.s[p.pos:], p.d)
			if !ok {
				return false
			}
			p.pos += n
			continue
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth < 0 {
				return false
			}
		case depth == 0 && (c == ',' || c == ';'):
			return p.pos > start
		case c == '/' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '*', c == '#',
			c == '-' && p.pos+2 < len(p.s) && p.s[p.pos+1] == '-' && dashComment(p.s[p.pos+2]):
			p.skip()
			continue
		case c == '*' && p.exec && p.pos+1 < len(p.s) && p.s[p.pos+1] == '/':
			return depth == 0 && p.pos > start
		}
		p.pos++
	}
	return depth == 0 && p.pos > start
}

func (p *setParser) rawValue() (string, bool) {
	start := p.pos
	depth := 0
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c >= 0x80:
			p.pos += p.d.charLen(p.s, p.pos)
			continue
		case c == '\'' || c == '"' || c == '`':
			_, n, ok := scanQuoted(p.s[p.pos:], p.d)
			if !ok {
				return "", false
			}
			p.pos += n
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return "", false
			}
		case c == ',' && depth == 0:
			return strings.TrimSpace(string(p.s[start:p.pos])), true
		case c == ';' && depth == 0 && p.onlyTrailer(p.pos+1):
			v := strings.TrimSpace(string(p.s[start:p.pos]))
			p.pos = len(p.s)
			return v, true
		case c == '*' && p.exec && p.pos+1 < len(p.s) && p.s[p.pos+1] == '/':
			v := strings.TrimSpace(string(p.s[start:p.pos]))
			return v, true
		}
		p.pos++
	}
	if depth != 0 {
		return "", false
	}
	return strings.TrimSpace(string(p.s[start:p.pos])), true
}

// scanQuoted reads a quoted string at the start of b, resolving doubled
// quotes and backslash escapes (where dialect d has them; a multibyte
// character of its character set is read whole). It returns the value,
// the bytes consumed and whether the string was terminated.
func scanQuoted(b []byte, d Dialect) (string, int, bool) {
	if len(b) == 0 {
		return "", 0, false
	}
	q := b[0]
	esc := d.escapes(q)
	var sb strings.Builder
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 0x80 && d.charLen(b, i) == 2:
			sb.WriteByte(c)
			sb.WriteByte(b[i+1])
			i++
		case c == '\\' && esc && i+1 < len(b):
			i++
			sb.WriteByte(unescape(b[i]))
		case c == q:
			if i+1 < len(b) && b[i+1] == q {
				sb.WriteByte(q)
				i++
				continue
			}
			return sb.String(), i + 1, true
		default:
			sb.WriteByte(c)
		}
	}
	return "", len(b), false
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case '0':
		return 0
	case 'Z':
		return 26
	case 'b':
		return '\b'
	}
	return c
}

// simpleValue reports whether lit is a single literal (quoted string,
// number or bare word such as ON, DEFAULT, NULL, utf8mb4) and returns its
// unquoted value. Expressions, function calls, subqueries and variable
// references are not simple: their result depends on the connection they
// run on.
// readsUserVariable reports whether an expression mentions a user
// variable (an @ that is not part of @@), conservatively: inside a quoted
// string too.
func readsUserVariable(expr string) bool {
	for i := 0; i < len(expr); i++ {
		if expr[i] != '@' {
			continue
		}
		if i+1 < len(expr) && expr[i+1] == '@' {
			i++ // @@name
			continue
		}
		return true
	}
	return false
}

func simpleValue(lit string, d Dialect) (string, bool) {
	if lit == "" {
		return "", false
	}
	switch lit[0] {
	case '\'', '"':
		v, n, ok := scanQuoted([]byte(lit), d)
		return v, ok && n == len(lit)
	}
	if isNumber(lit) {
		return lit, true
	}
	if isIdent(lit) {
		return lit, true
	}
	return "", false
}

func isNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		j := i + 2
		for j < len(s) && isHexChar(s[j]) {
			j++
		}
		return j == len(s) && j > i+2
	}
	digits := 0
	for i < len(s) && isDigitChar(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigitChar(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && isDigitChar(s[i]) {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}
