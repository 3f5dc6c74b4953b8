package admin

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"
)

// showCommand answers the SHOW family of ProxySQL's admin (§2.6), mostly by
// rewriting it to SQL on the admin tables. ok=false sends the statement on
// to SQLite, which rejects it, as in ProxySQL.
func (s *Server) showCommand(ss *session, n, u string) (reply, bool) {
	rest := n[len("SHOW "):]
	ur := u[len("SHOW "):]
	// SHOW FULL TABLES (GUI clients list tables so): SHOW TABLES with a
	// Table_type column, every admin table being a base table.
	fullTables := false
	if strings.HasPrefix(ur, "FULL TABLES") {
		fullTables = true
		rest, ur = rest[len("FULL "):], ur[len("FULL "):]
	}
	showTablesSQL := func(db, like string) string { return showTablesSQL(db, like, fullTables) }

	switch ur {
	case "TABLES":
		return s.sql(ss, showTablesSQL(s.defaultDB(ss), "")), true
	case "DATABASES", "SCHEMAS":
		return s.sql(ss, "PRAGMA DATABASE_LIST"), true
	case "CHARSET", "CHARACTER SET":
		return s.collations("SELECT Charset, Collation AS 'Default collation' FROM main.mysql_collations WHERE `Default`='Yes'"), true
	case "COLLATION":
		return s.collations("SELECT * FROM main.mysql_collations"), true
	case "MYSQL USERS":
		return s.sql(ss, "SELECT * FROM mysql_users ORDER BY username, active DESC, username ASC"), true
	case "MYSQL SERVERS":
		return s.sql(ss, "SELECT * FROM mysql_servers ORDER BY hostgroup_id, hostname, port"), true
	case "VARIABLES", "GLOBAL VARIABLES", "ALL VARIABLES", "SESSION VARIABLES":
		return s.sql(ss, "SELECT variable_name AS Variable_name, variable_value AS Value FROM global_variables ORDER BY variable_name"), true
	case "MYSQL VARIABLES", "ADMIN VARIABLES", "LDAP VARIABLES":
		prefix := strings.ToLower(strings.Fields(ur)[0]) + "-%"
		return s.sql(ss, "SELECT variable_name AS Variable_name, variable_value AS Value FROM global_variables WHERE variable_name LIKE "+
			sqlQuote(prefix)+" ORDER BY variable_name"), true
	case "MYSQL STATUS":
		return s.sql(ss, "SELECT Variable_Name AS Variable_name, Variable_Value AS Value FROM stats_mysql_global ORDER BY variable_name"), true
	case "PROCESSLIST":
		return s.sql(ss, "SELECT SessionID, user, db, hostgroup, command, time_ms, SUBSTR(info,0,100) info FROM stats_mysql_processlist"), true
	case "FULL PROCESSLIST":
		return s.sql(ss, "SELECT * FROM stats_mysql_processlist"), true
	case "WARNINGS":
		return ss.showWarnings(), true
	case "ERRORS":
		// The admin's errors are in the ERR packet; none is left behind.
		return &resultSet{cols: []string{"Level", "Code", "Message"}}, true
	case "COUNT(*) WARNINGS":
		return oneRow([]string{"@@session.warning_count"}, strconv.Itoa(len(ss.warnings))), true
	case "COUNT(*) ERRORS":
		return oneRow([]string{"@@session.error_count"}, "0"), true
	case "PROMETHEUS METRICS":
		pm, ok := s.cfg.Applier.(PrometheusTexter)
		if !ok {
			return notSupported("SHOW PROMETHEUS METRICS"), true
		}
		text, err := pm.PrometheusText()
		if err != nil {
			return adminErr("ProxySQL Admin Error: " + err.Error()), true
		}
		return oneRow([]string{"Data"}, string(text)), true
	}

	switch {
	case strings.HasPrefix(ur, "GLOBAL VARIABLES LIKE 'VERSION'"):
		return oneRow([]string{"Variable_name", "Value"}, "version", s.proxyVersion()), true
	case strings.HasPrefix(ur, "TABLES LIKE "):
		return s.sql(ss, showTablesSQL(s.defaultDB(ss), likePattern(rest[len("TABLES LIKE "):]))), true
	case strings.HasPrefix(ur, "TABLES FROM "), strings.HasPrefix(ur, "TABLES IN "):
		arg := rest[strings.IndexByte(rest[len("TABLES "):], ' ')+len("TABLES ")+1:]
		db, like := arg, ""
		if i := strings.Index(asciiUpper(arg), " LIKE "); i >= 0 {
			db, like = arg[:i], likePattern(arg[i+len(" LIKE "):])
		}
		db = unquoteIdent(strings.TrimSpace(db))
		if !isIdent(db) {
			return nil, false
		}
		return s.sql(ss, showTablesSQL(db, like)), true
	case strings.HasPrefix(ur, "CHARSET LIKE "), strings.HasPrefix(ur, "CHARACTER SET LIKE "):
		pat := likePattern(rest[strings.Index(ur, "LIKE ")+len("LIKE "):])
		return s.collations("SELECT Charset, Collation AS 'Default collation' FROM main.mysql_collations WHERE `Default`='Yes' AND Charset LIKE " + sqlQuote(pat)), true
	case strings.HasPrefix(ur, "COLLATION LIKE "):
		pat := likePattern(rest[len("COLLATION LIKE "):])
		return s.collations("SELECT * FROM main.mysql_collations WHERE Collation LIKE " + sqlQuote(pat)), true
	case strings.HasPrefix(ur, "VARIABLES WHERE "), strings.HasPrefix(ur, "GLOBAL VARIABLES WHERE "),
		strings.HasPrefix(ur, "SESSION VARIABLES WHERE "):
		where := rest[strings.Index(ur, "WHERE ")+len("WHERE "):]
		return s.showVariablesWhere(ss, where), true
	case strings.HasPrefix(ur, "VARIABLES LIKE "), strings.HasPrefix(ur, "GLOBAL VARIABLES LIKE "),
		strings.HasPrefix(ur, "SESSION VARIABLES LIKE "):
		pat := likePattern(rest[strings.Index(ur, "LIKE ")+len("LIKE "):])
		return s.showVariablesLike(ss, pat), true
	case strings.HasPrefix(ur, "CREATE TABLE "):
		return s.showCreateTable(ss, rest[len("CREATE TABLE "):])
	case strings.HasPrefix(ur, "FIELDS "), strings.HasPrefix(ur, "COLUMNS "),
		strings.HasPrefix(ur, "FULL FIELDS "), strings.HasPrefix(ur, "FULL COLUMNS "):
		return s.showFields(ss, rest)
	case strings.HasPrefix(ur, "TABLE STATUS"):
		return s.showTableStatus(ss, rest[len("TABLE STATUS"):])
	}
	return nil, false
}

// collations runs one of the fixed SELECTs of SHOW CHARSET/COLLATION. The
// collation list is public, so stats users read it too, although it lives
// in main, which the store hides from them.
func (s *Server) collations(q string) reply {
	res, err := s.cfg.Store.Query(s.ctx, q, false)
	if err != nil {
		return sqliteErr(err)
	}
	return &resultSet{cols: res.Columns, rows: res.Rows}
}

// defaultDB is the schema a session's unqualified SHOW TABLES lists: stats
// users see the stats schema as their main, as in ProxySQL.
func (s *Server) defaultDB(ss *session) string {
	if ss.stats {
		return "stats"
	}
	return "main"
}

func showTablesSQL(db, like string, full bool) string {
	cols := "name AS tables"
	if full {
		cols += ", 'BASE TABLE' AS Table_type"
	}
	q := "SELECT " + cols + " FROM " + db + ".sqlite_master WHERE type='table' AND name NOT IN ('sqlite_sequence')"
	if like != "" {
		q += " AND name LIKE " + sqlQuote(like)
	}
	return q + " ORDER BY name"
}

// likePattern turns the argument of LIKE into a bare pattern: ProxySQL strips
// quotes, backticks and backslashes.
func likePattern(arg string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\'', '"', '`', '\\':
			return -1
		}
		return r
	}, strings.TrimSpace(arg))
}

// showVariablesWhere handles SHOW VARIABLES WHERE …. The connectors' form,
// a list of variable names, is answered name by name (system variables
// from sysVar, the rest from global_variables); any other condition is
// rewritten onto global_variables, as ProxySQL does.
func (s *Server) showVariablesWhere(ss *session, where string) reply {
	names, ok := variablesInList(where)
	if !ok {
		return s.sql(ss, "SELECT variable_name AS Variable_name, variable_value AS Value FROM global_variables WHERE "+where)
	}
	rs := &resultSet{cols: []string{"Variable_name", "Value"}}
	for _, name := range names {
		if v, ok := s.sysVar(ss, name); ok {
			rs.rows = append(rs.rows, row(name, v))
			continue
		}
		r := s.sql(ss, "SELECT variable_name, variable_value FROM global_variables WHERE variable_name="+sqlQuote(name))
		if sub, ok := r.(*resultSet); ok {
			rs.rows = append(rs.rows, sub.rows...)
		}
	}
	return rs
}

// showVariablesLike is ProxySQL's rewrite onto global_variables; when that
// finds nothing, the MySQL system variables drivers look for are answered
// instead (SHOW VARIABLES LIKE 'max_allowed_packet').
func (s *Server) showVariablesLike(ss *session, pat string) reply {
	r := s.sql(ss, "SELECT variable_name AS Variable_name, variable_value AS Value FROM global_variables WHERE variable_name LIKE "+sqlQuote(pat))
	rs, ok := r.(*resultSet)
	if !ok || len(rs.rows) > 0 {
		return r
	}
	for _, name := range compatVarNames {
		if likeMatch(pat, name) {
			v, _ := s.sysVar(ss, name)
			rs.rows = append(rs.rows, row(name, v))
		}
	}
	return rs
}

// splitQualified splits "[db.]table" and strips identifier quotes.
func splitQualified(arg, defDB string) (db, table string, ok bool) {
	arg = strings.TrimSpace(arg)
	db, table = defDB, arg
	if i := strings.IndexByte(arg, '.'); i >= 0 {
		db, table = unquoteIdent(arg[:i]), arg[i+1:]
	}
	table = unquoteIdent(strings.TrimSpace(table))
	return db, table, isIdent(db) && isIdent(table)
}

// showCreateTable is ProxySQL's rewrite onto sqlite_master, with a newline
// after the opening parenthesis and after each column.
func (s *Server) showCreateTable(ss *session, arg string) (reply, bool) {
	db, t, ok := splitQualified(arg, s.defaultDB(ss))
	if !ok {
		return nil, false
	}
	return s.sql(ss, "SELECT name AS 'table', REPLACE(REPLACE(sql,' , ', X'2C0A'),'CREATE TABLE "+t+" (','CREATE TABLE "+t+" ('||X'0A') AS 'Create Table' FROM "+
		db+".sqlite_master WHERE type='table' AND name="+sqlQuote(t)), true
}

// showFields is SHOW [FULL] FIELDS|COLUMNS FROM|IN [db.]t [FROM|IN db], built
// from PRAGMA table_info for GUI tools.
func (s *Server) showFields(ss *session, rest string) (reply, bool) {
	// … LIKE 'pat' keeps the columns whose name matches; … WHERE is
	// refused (it was ignored: every column came back, so a check that a
	// column exists always said yes).
	ur, like := asciiUpper(rest), ""
	if i := strings.Index(ur, " LIKE "); i >= 0 {
		like, rest = likePattern(rest[i+len(" LIKE "):]), rest[:i]
	} else if strings.Contains(ur, " WHERE ") {
		return adminErr("ProxySQL Admin Error: SHOW COLUMNS … WHERE is not supported: use LIKE, or SELECT … FROM pragma_table_info('<table>')"), true
	}
	f := strings.Fields(rest)
	full := len(f) > 0 && strings.EqualFold(f[0], "FULL")
	if full {
		f = f[1:]
	}
	if (len(f) != 3 && len(f) != 5) || !strings.EqualFold(f[1], "FROM") && !strings.EqualFold(f[1], "IN") {
		return nil, false
	}
	db, t, ok := splitQualified(f[2], s.defaultDB(ss))
	if !ok {
		return nil, false
	}
	if len(f) >= 5 && (strings.EqualFold(f[3], "FROM") || strings.EqualFold(f[3], "IN")) {
		db = unquoteIdent(f[4])
		if !isIdent(db) {
			return nil, false
		}
	}
	if ss.stats && statsForbidden(t) != "" {
		return sqliteErr(errors.New("no such table: " + t)), true
	}
	r := s.sql(ss, "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info("+sqlQuote(t)+", "+sqlQuote(db)+")")
	info, ok := r.(*resultSet)
	if !ok {
		return r, true
	}
	if len(info.rows) == 0 {
		return sqliteErr(errors.New("Table does not exist")), true //lint:ignore ST1005 ProxySQL's text
	}
	if like != "" {
		kept := info.rows[:0]
		for _, ri := range info.rows {
			if likeMatch(like, ri[0].String) {
				kept = append(kept, ri)
			}
		}
		info.rows = kept
	}
	out := &resultSet{cols: []string{"Field", "Type", "Null", "Key", "Default", "Extra"}}
	if full {
		// MySQL's nine columns, in its order: tools scan all nine.
		out.cols = []string{"Field", "Type", "Collation", "Null", "Key", "Default", "Extra", "Privileges", "Comment"}
	}
	for _, ri := range info.rows {
		typ := strings.ToLower(ri[1].String)
		if typ == "" {
			typ = "varchar(255)"
		}
		null := "YES"
		if ri[2].String == "1" {
			null = "NO"
		}
		key := ""
		if ri[4].Valid && ri[4].String != "0" {
			key = "PRI"
		}
		// SQLite keeps text as UTF-8 and compares it byte by byte (its
		// BINARY collation); other columns have none, NULL as in MySQL.
		collation := nullable("", false)
		if strings.Contains(typ, "char") || strings.Contains(typ, "text") {
			collation = nullable("utf8mb4_bin", true)
		}
		row := []sql.NullString{
			nullable(ri[0].String, true), nullable(typ, true), collation, nullable(null, true),
			nullable(key, true), ri[3], nullable("", true),
			nullable("select,insert,update,references", true), nullable("", true),
		}
		if !full {
			row = append(row[:2], row[3:7]...) // no Collation, Privileges, Comment
		}
		out.rows = append(out.rows, row)
	}
	return out, true
}

// showTableStatus is SHOW TABLE STATUS [FROM db] [LIKE 'pat'], synthesized
// with ProxySQL's columns and fixed values.
func (s *Server) showTableStatus(ss *session, arg string) (reply, bool) {
	db, like := s.defaultDB(ss), ""
	if i := strings.Index(asciiUpper(arg), " LIKE "); i >= 0 {
		like = likePattern(arg[i+len(" LIKE "):])
		arg = arg[:i]
	}
	if f := strings.Fields(arg); len(f) > 0 {
		if len(f) != 2 || (!strings.EqualFold(f[0], "FROM") && !strings.EqualFold(f[0], "IN")) {
			return nil, false
		}
		db = unquoteIdent(f[1])
		if !isIdent(db) {
			return nil, false
		}
	}
	r := s.sql(ss, showTablesSQL(db, like, false))
	names, ok := r.(*resultSet)
	if !ok {
		return r, true
	}
	out := &resultSet{cols: []string{"Name", "Engine", "Version", "Row_format", "Rows", "Avg_row_length",
		"Data_length", "Max_data_length", "Index_length", "Data_free", "Auto_increment", "Create_time",
		"Update_time", "Check_time", "Collation", "Checksum", "Create_options", "Comment"}}
	for _, nr := range names.rows {
		if ss.stats && statsHidden[nr[0].String] {
			continue
		}
		out.rows = append(out.rows, []sql.NullString{
			nr[0], nullable("SQLite", true), nullable("10", true), nullable("Dynamic", true),
			nullable("10", true), nullable("0", true), nullable("0", true), nullable("0", true),
			nullable("0", true), nullable("0", true), {}, nullable("0000-00-00 00:00:00", true),
			nullable("0000-00-00 00:00:00", true), nullable("0000-00-00 00:00:00", true),
			nullable("utf8_bin", true), {}, nullable("", true), nullable("", true),
		})
	}
	return out, true
}
