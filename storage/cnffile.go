package storage

// This file maps proxysql.cnf to the MEMORY tables and back: importConfig is
// ProxySQL's lib/ProxySQL_Config.cpp Read_*_from_configfile (bootstrap,
// --initial, --reload, LOAD … FROM CONFIG) and exportConfig is its
// Write_*_to_configfile (SELECT CONFIG FILE).
//
// Where Sluice differs from ProxySQL's reader, on purpose:
//   - An entry that lacks a required key, has a required value of the wrong
//     type, or violates a table CHECK is skipped, as ProxySQL skips it, so a file
//     ProxySQL starts with starts Sluice too (Galera tutorials give
//     backup_writer_hostgroup = reader_hostgroup, which the table refuses);
//     but where ProxySQL logs the first kind and silently drops the others,
//     every skipped entry is named with its section, index, line and reason
//     (an ERROR in the log at start, a warning of LOAD … FROM CONFIG): a
//     server or user that vanishes without a word is the hardest
//     configuration bug to find. An optional value of the wrong type
//     (max_connections=1e3, a float) keeps its entry with the column's
//     default, as ProxySQL's lookupValue leaves it, and is named the same
//     way (ErrConfigValue).
//   - Variable names are lowercased (ProxySQL's set_variable lowercases
//     them): threads and Threads are the same variable.
//   - An absent key of a nullable column becomes NULL, the column's table
//     default (ProxySQL writes an empty string for mysql_users.password and
//     default_schema and the *_hostgroups comments). The meaning is the same,
//     and it lets importConfig(exportConfig(x)) reproduce x, including rows
//     inserted on the admin port without those columns.
//   - Keys ProxySQL's reader ignores but its writer emits are read back
//     (mysql_users.backend/frontend, *_hostgroups active), and so are
//     mysql_query_rules_fast_routing and Sluice's mysql_servers_balance,
//     which ProxySQL does not put in the file at all.
//   - check_type accepts every value the table allows; ProxySQL's reader
//     turns the combined ones ('read_only|innodb_read_only') into read_only.
//   - Integer columns accept booleans (true = 1) and integer strings ("3306");
//     ProxySQL silently uses the default for both.
//   - A key no column reads (match_patern, wieght), a top-level setting
//     nothing reads and an entry that replaces an earlier one are named with
//     their line (ConfigFileNotices): in the log at start, in SHOW WARNINGS
//     after LOAD … FROM CONFIG. ProxySQL skips all three without a word.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
)

// ErrConfigEntry wraps every notice importConfig gives about a section or
// entry of the config file it skipped (a missing key, a wrong type, a CHECK
// the row violates); the message names the section, the entry's index and
// its line.
var ErrConfigEntry = errors.New("skipped")

// ErrConfigValue wraps every notice about an optional value of the wrong
// type: the entry is kept, with the column's default for it.
var ErrConfigValue = errors.New("default used for")

type colKind int

const (
	colInt colKind = iota
	colStr
)

// cnfColumn maps one column of a table to the keys of a config file entry.
type cnfColumn struct {
	col      string   // column name
	keys     []string // keys looked up in order (aliases); nil means {col}
	kind     colKind
	required bool
	def      any             // value when no key is present: nil (NULL), int64 or string
	norm     func(v any) any // adjusts a present value, as ProxySQL's reader does
}

// cnfSection maps one list of the config file to one table.
type cnfSection struct {
	name    string // the list's name in the file
	table   string
	orderBy string // export order: the table's key
	cols    []cnfColumn
}

func (c cnfColumn) lookupKeys() []string {
	if c.keys == nil {
		return []string{c.col}
	}
	return c.keys
}

// Column helpers keep the section tables below readable. The typed tables
// take their columns from their descriptors (tables.go) instead.
func reqInt(col string, keys ...string) cnfColumn {
	return cnfColumn{col: col, keys: keysOrNil(keys), kind: colInt, required: true}
}
func reqStr(col string, keys ...string) cnfColumn {
	return cnfColumn{col: col, keys: keysOrNil(keys), kind: colStr, required: true}
}
func optInt(col string, def int64) cnfColumn { return cnfColumn{col: col, kind: colInt, def: def} }
func optStr(col string, def string) cnfColumn {
	return cnfColumn{col: col, kind: colStr, def: def}
}
func nullStr(col string) cnfColumn { return cnfColumn{col: col, kind: colStr} }

func keysOrNil(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	return keys
}

// negativeIsNull mirrors the query rules reader, where -1 (its "not set")
// and any other negative value become NULL.
func negativeIsNull(v any) any {
	if n, ok := v.(int64); ok && n < 0 {
		return nil
	}
	return v
}

// nonZeroIsOne mirrors the reader's (x == 0 ? 0 : 1) for flag columns.
func nonZeroIsOne(v any) any {
	if n, ok := v.(int64); ok && n != 0 {
		return int64(1)
	}
	return v
}

// negativeIsZero: flagIN < 0 becomes NULL in ProxySQL's INSERT, which
// INSERT OR REPLACE turns into the column default 0.
func negativeIsZero(v any) any {
	if n, ok := v.(int64); ok && n < 0 {
		return int64(0)
	}
	return v
}

// serverStatus: anything but the four statuses (in any case) is ONLINE.
func serverStatus(v any) any {
	s, _ := v.(string)
	switch strings.ToUpper(s) {
	case "ONLINE", "SHUNNED", "OFFLINE_SOFT", "OFFLINE_HARD":
		return s
	}
	return "ONLINE"
}

// checkType: anything the table's CHECK refuses is read_only.
func checkType(v any) any {
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "read_only", "innodb_read_only", "super_read_only", "read_only|innodb_read_only", "read_only&innodb_read_only":
		return s
	}
	return "read_only"
}

func withNorm(c cnfColumn, f func(any) any) cnfColumn { c.norm = f; return c }

// hostgroupPairCols are the columns shared by mysql_group_replication_hostgroups
// and mysql_galera_hostgroups.
func hostgroupPairCols() []cnfColumn {
	return []cnfColumn{
		reqInt("writer_hostgroup"), reqInt("backup_writer_hostgroup"), reqInt("reader_hostgroup"),
		reqInt("offline_hostgroup"), optInt("active", 1), optInt("max_writers", 1),
		optInt("writer_is_also_reader", 0), optInt("max_transactions_behind", 0), nullStr("comment"),
	}
}

// typedSection is the config file list of a typed table: named as the table,
// its columns and their keys from the table's descriptor.
func typedSection(t typedTable, orderBy string) cnfSection {
	return cnfSection{name: t.tableName(), table: t.tableName(), orderBy: orderBy, cols: t.cnfCols()}
}

// cnfSections lists, per module, the config file lists it reads, in
// ProxySQL's order. Defaults are those of ProxySQL's reader.
var cnfSections = map[config.Module][]cnfSection{
	config.ModMySQLUsers: {typedSection(usersTable, "username, backend")},
	config.ModMySQLServers: {
		typedSection(serversTable, "hostgroup_id, hostname, port"),
		typedSection(replicationHostgroupsTable, "writer_hostgroup"),
		{name: "mysql_group_replication_hostgroups", table: "mysql_group_replication_hostgroups",
			orderBy: "writer_hostgroup", cols: hostgroupPairCols()},
		{name: "mysql_galera_hostgroups", table: "mysql_galera_hostgroups",
			orderBy: "writer_hostgroup", cols: hostgroupPairCols()},
		{name: "mysql_aws_aurora_hostgroups", table: "mysql_aws_aurora_hostgroups", orderBy: "writer_hostgroup", cols: []cnfColumn{
			reqInt("writer_hostgroup"), reqInt("reader_hostgroup"), optInt("active", 1), optInt("aurora_port", 3306),
			reqStr("domain_name"), optInt("max_lag_ms", 600000), optInt("check_interval_ms", 1000),
			optInt("check_timeout_ms", 1000), optInt("writer_is_also_reader", 0), optInt("new_reader_weight", 1),
			optInt("add_lag_ms", 30), optInt("min_lag_ms", 30), optInt("lag_num_checks", 1), nullStr("comment"),
		}},
		typedSection(hostgroupAttributesTable, "hostgroup_id"),
		{name: "mysql_servers_ssl_params", table: "mysql_servers_ssl_params", orderBy: "hostname, port, username", cols: []cnfColumn{
			reqStr("hostname", "hostname", "address"), optInt("port", 3306), optStr("username", ""),
			optStr("ssl_ca", ""), optStr("ssl_cert", ""), optStr("ssl_key", ""), optStr("ssl_capath", ""),
			optStr("ssl_crl", ""), optStr("ssl_crlpath", ""), optStr("ssl_cipher", ""),
			optStr("tls_version", ""), optStr("comment", ""),
		}},
		typedSection(serversBalanceTable, "hostname, port"),
	},
	config.ModMySQLQueryRules: {
		typedSection(queryRulesTable, "rule_id"),
		typedSection(fastRoutingTable, "username, schemaname, flagIN"),
	},
	config.ModScheduler:       {typedSection(schedulerTable, "id")},
	config.ModProxySQLServers: {typedSection(proxySQLServersTable, "hostname, port")},
	config.ModRestAPI: {{
		// ProxySQL 2.0 called timeout_ms interval_ms; its reader still
		// looks for that name first.
		name: "restapi", table: "restapi_routes", orderBy: "id",
		cols: []cnfColumn{
			reqInt("id"), optInt("active", 1), reqInt("timeout_ms", "interval_ms", "timeout_ms"),
			reqStr("method"), reqStr("uri"), reqStr("script"), optStr("comment", ""),
		},
	}},
}

// exportOrder is the order of the lists in SELECT CONFIG FILE, ProxySQL's
// (users, rules, servers, scheduler, cluster) with restapi before the cluster
// peers.
var exportOrder = []config.Module{
	config.ModMySQLUsers, config.ModMySQLQueryRules, config.ModMySQLServers,
	config.ModScheduler, config.ModRestAPI, config.ModProxySQLServers,
}

// importConfig writes the parts of the config file that belong to module m
// into MEMORY with INSERT OR REPLACE (a merge, as in ProxySQL) and returns
// the number of rows written, and the entries it skipped, each an error
// wrapping ErrConfigEntry. Everything happens inside a savepoint: on error
// (the database failed) MEMORY is left as it was, even when the caller runs
// no transaction.
func importConfig(ctx context.Context, db execQuerier, root *cnf.Setting, m config.Module) (n int64, skipped []error, err error) {
	if root == nil {
		return 0, nil, nil
	}
	if _, err := db.ExecContext(ctx, "SAVEPOINT sluice_cnf_import"); err != nil {
		return 0, nil, fmt.Errorf("storage: import config: %w", err)
	}
	defer func() {
		// Cleanup must run even when ctx is what failed.
		ctx := context.WithoutCancel(ctx)
		if err != nil {
			_, _ = db.ExecContext(ctx, "ROLLBACK TO sluice_cnf_import")
			n, skipped = 0, nil
		}
		if _, rerr := db.ExecContext(ctx, "RELEASE sluice_cnf_import"); rerr != nil && err == nil {
			err = fmt.Errorf("storage: import config: %w", rerr)
		}
	}()
	notice := func(kind error) func(string, ...any) {
		return func(format string, args ...any) {
			skipped = append(skipped, fmt.Errorf("%w "+format, append([]any{kind}, args...)...))
		}
	}
	skip, defaulted := notice(ErrConfigEntry), notice(ErrConfigValue)
	if prefix := m.VarPrefix(); prefix != "" {
		n, err = importVariables(ctx, db, root, strings.TrimSuffix(prefix, "-"), skip)
		return n, skipped, err
	}
	for _, sec := range cnfSections[m] {
		k, err := importSection(ctx, db, root, sec, skip, defaulted)
		n += k
		if err != nil {
			return n, nil, err
		}
	}
	return n, skipped, nil
}

// isConstraint reports whether err is SQLite refusing a row (a CHECK, NOT
// NULL or type constraint) rather than the database failing.
func isConstraint(err error) bool {
	return err != nil && strings.Contains(err.Error(), "constraint failed")
}

// importVariables reads <prefix>_variables = { key = value … } into
// global_variables rows "<prefix>-<key>". Booleans are written "true" and
// "false", integers in decimal, strings and floats as they are. Unknown
// names are written too: LOAD … TO RUNTIME reports them.
func importVariables(ctx context.Context, db execQuerier, root *cnf.Setting, prefix string, skip func(string, ...any)) (int64, error) {
	section := prefix + "_variables"
	g := root.Get(section)
	if g == nil {
		return 0, nil
	}
	if g.Kind != cnf.Group {
		skip("%s (line %d): expected a group { name = value … }, found %s", section, g.Line, aKind(g.Kind))
		return 0, nil
	}
	var n int64
	for _, v := range g.Children {
		var value string
		switch v.Kind {
		case cnf.Int:
			i, err := v.Int()
			if err != nil {
				skip("%s.%s (line %d): %v", section, v.Name, v.Line, err)
				continue
			}
			value = strconv.FormatInt(i, 10)
		case cnf.String, cnf.Float, cnf.Bool:
			value = v.Value
		default:
			skip("%s.%s (line %d): expected a string, number or boolean, found %s", section, v.Name, v.Line, aKind(v.Kind))
			continue
		}
		// A name is matched to its variable whatever its case: the
		// canonical spelling is stored (mysql-query_cache_size_MB, which
		// SAVE CONFIG TO FILE writes as query_cache_size_MB), so the row is
		// the one LOAD reads, never a second one beside it; an unknown name
		// is kept lower-cased.
		name := prefix + "-" + v.Name
		if d, ok := config.LookupVar(name); ok {
			name = d.Name
		} else {
			name = strings.ToLower(name)
		}
		if _, err := db.ExecContext(ctx, "INSERT OR REPLACE INTO main.global_variables (variable_name, variable_value) VALUES (?, ?)",
			name, value); err != nil {
			return n, fmt.Errorf("storage: import %s.%s (line %d): %w", section, v.Name, v.Line, err)
		}
		n++
	}
	return n, nil
}

// importSection writes one list of entries into its table.
func importSection(ctx context.Context, db execQuerier, root *cnf.Setting, sec cnfSection, skip, defaulted func(string, ...any)) (int64, error) {
	list := root.Get(sec.name)
	if list == nil {
		return 0, nil
	}
	// libconfig lets ProxySQL index a group like a list, so a group of
	// groups works there too.
	if list.Kind != cnf.List && list.Kind != cnf.Group {
		skip("%s (line %d): expected a list ( { … }, … ), found %s", sec.name, list.Line, aKind(list.Kind))
		return 0, nil
	}
	cols := make([]string, len(sec.cols))
	marks := make([]string, len(sec.cols))
	for i, c := range sec.cols {
		cols[i], marks[i] = c.col, "?"
	}
	q := "INSERT OR REPLACE INTO main." + sec.table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	var n int64
	for i, e := range list.Children {
		where := fmt.Sprintf("%s[%d] (line %d)", sec.name, i, e.Line)
		if e.Kind != cnf.Group {
			skip("%s: expected a group { … }, found %s", where, aKind(e.Kind))
			continue
		}
		vals, bad, err := entryValues(e, sec)
		if err != nil {
			skip("%s: %v", where, err)
			continue
		}
		for _, b := range bad {
			defaulted("%s: %v (the entry is kept)", where, b)
		}
		if _, err := db.ExecContext(ctx, q, vals...); isConstraint(err) {
			skip("%s: %v", where, err)
			continue
		} else if err != nil {
			return n, fmt.Errorf("storage: import %s: %w", where, err)
		}
		n++
	}
	return n, nil
}

// entryValues computes the column values of one entry, in sec.cols order.
// An optional value of the wrong type gets the column's default, and is
// named in bad.
func entryValues(e *cnf.Setting, sec cnfSection) (vals []any, bad []error, err error) {
	vals = make([]any, len(sec.cols))
	for i, c := range sec.cols {
		var s *cnf.Setting
		for _, k := range c.lookupKeys() {
			if s = e.Get(k); s != nil {
				break
			}
		}
		if s == nil {
			if c.required {
				return nil, nil, fmt.Errorf("missing required %s", strings.Join(c.lookupKeys(), " or "))
			}
			vals[i] = c.def
			continue
		}
		var v any
		var err error
		switch {
		case c.kind == colInt:
			v, err = settingInt(s)
		case sec.table == "mysql_servers_balance" && c.col == "labels":
			v, err = labelsJSON(s)
		default:
			v, err = settingStr(s)
		}
		if err != nil {
			err = fmt.Errorf("%s (line %d): %w", s.Name, s.Line, err)
			if c.required {
				return nil, nil, err
			}
			vals[i], bad = c.def, append(bad, err)
			continue
		}
		if c.norm != nil {
			v = c.norm(v)
		}
		vals[i] = v
	}
	return vals, bad, nil
}

// settingInt reads an integer column: an integer, a boolean (1/0) or a
// string holding a decimal integer.
func settingInt(s *cnf.Setting) (any, error) {
	switch s.Kind {
	case cnf.Int:
		return s.Int()
	case cnf.Bool:
		if b, _ := s.Bool(); b {
			return int64(1), nil
		}
		return int64(0), nil
	case cnf.String:
		if v, err := strconv.ParseInt(strings.TrimSpace(s.Value), 10, 64); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("expected an integer, found the string %q", s.Value)
	}
	return nil, fmt.Errorf("expected an integer, found %s", aKind(s.Kind))
}

// aKind names a setting kind with its article, for error messages.
func aKind(k cnf.Kind) string {
	if k == cnf.Int || k == cnf.Array {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// settingStr reads a text column: any scalar, as written.
func settingStr(s *cnf.Setting) (any, error) {
	if !s.IsScalar() {
		return nil, fmt.Errorf("expected a string, found %s", aKind(s.Kind))
	}
	return s.Value, nil
}

// labelsJSON reads mysql_servers_balance.labels: a JSON string as stored in
// the table, or a group of scalars { zone = "a"; role = "ro" }, which
// becomes the JSON object {"zone":"a","role":"ro"}.
func labelsJSON(s *cnf.Setting) (any, error) {
	if s.Kind != cnf.Group {
		return settingStr(s)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range s.Children {
		if !l.IsScalar() {
			return nil, fmt.Errorf("label %s: expected a string, found %s", l.Name, aKind(l.Kind))
		}
		k, _ := json.Marshal(l.Name)
		v, _ := json.Marshal(l.Value)
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// exportConfig renders MEMORY in the layout of ProxySQL's SELECT CONFIG FILE:
// admin_variables and mysql_variables as groups of strings, then one list
// per table, each row a group of its non-NULL columns. importConfig of the
// result reproduces the tables, with one exception: a NULL re_modifiers is
// written as "" (both mean no modifier; an absent key would mean CASELESS).
func exportConfig(ctx context.Context, db execQuerier) (string, error) {
	root := cnf.NewGroup("")
	var skipped []string
	for _, prefix := range []string{"admin", "mysql"} {
		g, skip, err := exportVariables(ctx, db, prefix)
		if err != nil {
			return "", err
		}
		root.Children = append(root.Children, g)
		skipped = append(skipped, skip...)
	}
	for _, m := range exportOrder {
		for _, sec := range cnfSections[m] {
			list, err := exportSection(ctx, db, sec)
			if err != nil {
				return "", err
			}
			root.Children = append(root.Children, list)
		}
	}
	var b strings.Builder
	b.WriteString(configHeader)
	for _, name := range skipped {
		fmt.Fprintf(&b, "# Not written: variable %q has a name libconfig cannot express.\n", name)
	}
	b.WriteByte('\n')
	b.Write(cnf.Format(root))
	return b.String(), nil
}

const configHeader = `########################################################################################
# Sluice configuration in proxysql.cnf (libconfig) syntax, written by SELECT CONFIG FILE.
#
# Sluice reads this file on its first start (when <datadir>/sluice.db does not exist),
# with --initial (rebuild sluice.db from it) or --reload (merge it into sluice.db), and
# on LOAD ... FROM CONFIG. Otherwise the saved DISK layer wins and the file is ignored,
# exactly as ProxySQL does with proxysql.cnf.
########################################################################################
`

// exportVariables renders <prefix>_variables from the global_variables rows
// named <prefix>-…, values as strings (as ProxySQL writes them). It returns
// the names it had to leave out because they are not libconfig names.
func exportVariables(ctx context.Context, db execQuerier, prefix string) (*cnf.Setting, []string, error) {
	g := cnf.NewGroup(prefix + "_variables")
	rows, err := db.QueryContext(ctx, "SELECT variable_name, variable_value FROM main.global_variables "+
		"WHERE substr(variable_name, 1, ?) = ? ORDER BY variable_name", len(prefix)+1, prefix+"-")
	if err != nil {
		return nil, nil, fmt.Errorf("storage: export %s variables: %w", prefix, err)
	}
	defer rows.Close()
	var skipped []string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, nil, fmt.Errorf("storage: export %s variables: %w", prefix, err)
		}
		key := name[len(prefix)+1:]
		if !cnf.ValidName(key) {
			skipped = append(skipped, name)
			continue
		}
		g.Children = append(g.Children, cnf.NewString(key, value))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("storage: export %s variables: %w", prefix, err)
	}
	return g, skipped, nil
}

// exportSection renders one table as a list of groups. NULL columns are
// left out; so are empty strings of columns whose absent value is the empty string (they
// carry nothing), while integers are always written, as ProxySQL does.
func exportSection(ctx context.Context, db execQuerier, sec cnfSection) (*cnf.Setting, error) {
	cols := make([]string, len(sec.cols))
	for i, c := range sec.cols {
		cols[i] = c.col
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM main."+sec.table+" ORDER BY "+sec.orderBy)
	if err != nil {
		return nil, fmt.Errorf("storage: export %s: %w", sec.table, err)
	}
	defer rows.Close()
	list := cnf.NewList(sec.name)
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("storage: export %s: %w", sec.table, err)
		}
		entry := cnf.NewGroup("")
		for i, c := range sec.cols {
			if s := exportValue(c, vals[i]); s != nil {
				entry.Children = append(entry.Children, s)
			}
		}
		list.Children = append(list.Children, entry)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: export %s: %w", sec.table, err)
	}
	return list, nil
}

// exportValue renders one column value, or nil to leave the key out.
func exportValue(c cnfColumn, v sql.NullString) *cnf.Setting {
	key := c.col // the writer uses column names, as ProxySQL's Write_*_to_configfile does
	if !v.Valid {
		if c.col == "re_modifiers" {
			return cnf.NewString(key, "")
		}
		return nil
	}
	if c.kind == colInt {
		if i, err := strconv.ParseInt(v.String, 10, 64); err == nil {
			return cnf.NewInt(key, i)
		}
		// Not an integer (SQLite stores what it is given): keep the text.
		return cnf.NewString(key, v.String)
	}
	if v.String == "" && c.def == "" && !c.required {
		return nil
	}
	return cnf.NewString(key, v.String)
}
