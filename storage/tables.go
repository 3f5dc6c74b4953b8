package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// This file holds the one column list of every typed configuration table:
// the tables BuildSnapshot reads into a typed field of config.Snapshot. The
// same list gives the snapshot reader its SELECT and Scan targets, the
// runtime and SAVE … TO MEMORY writer its INSERT columns and values, and the
// config file reader and writer their keys, so a column cannot be read and
// then forgotten on the way back. The DDL in schema.go stays ProxySQL's text;
// TestTypedTablesMatchDDL checks that every list here matches it.

// column is one column of a typed table whose rows are of type T.
type column[T any] struct {
	name string
	// field returns a pointer to the column's field of a row: a Scan
	// destination, and dereferenced (by value) the INSERT value. Its type is
	// one of *int, *bool, *string, *emptyIfNull, *sql.NullInt64 or
	// *sql.NullString; it also decides whether the config file holds an
	// integer or a string.
	field func(*T) any
	// cnf is how the config file spells, defaults and adjusts the column
	// (see required, orDefault, orNull); col and kind are filled in from
	// name and field.
	cnf cnfColumn
}

// table describes a typed configuration table: its columns in DDL order and
// how its rows map to the snapshot.
type table[T any] struct {
	name string
	// read is what follows "SELECT <cols> FROM main.<name>" in the snapshot
	// reader: the rows RUNTIME takes, in the order it keeps them.
	read string
	// rows returns the snapshot field that holds the table.
	rows func(*config.Snapshot) *[]T
	// norm, if set, adjusts a row after it is read and before it is written.
	norm func(*T)
	// expand, if set, returns the rows written for one snapshot row; without
	// it the row is written as it is.
	expand func(v T, runtime bool) []T
	cols   []column[T]

	colList string // "a, b, c", built once by build
}

// typedTable is what the rest of the package needs of a table[T].
type typedTable interface {
	tableName() string
	columnNames() []string
	cnfCols() []cnfColumn
	// load reads the table from MEMORY into its snapshot field.
	load(ctx context.Context, s *Store, snap *config.Snapshot) error
	// insertRows returns the snapshot's rows of the table as INSERT values
	// for the column list it returns. With runtime set they are the rows of
	// its runtime_ twin.
	insertRows(snap *config.Snapshot, runtime bool) (string, [][]any)
}

// build checks the descriptor and fills in what derives from its columns.
// A mistake here is a programming error: it panics at package start.
func (t *table[T]) build() *table[T] {
	names := make([]string, len(t.cols))
	var zero T
	for i := range t.cols {
		c := &t.cols[i]
		c.cnf.col = c.name
		c.cnf.kind = fieldKind(c.field(&zero))
		switch d := c.cnf.def.(type) {
		case nil:
		case int64:
			if c.cnf.kind != colInt {
				panic(fmt.Sprintf("storage: %s.%s: integer default for a text column", t.name, c.name))
			}
		case string:
			if c.cnf.kind != colStr {
				panic(fmt.Sprintf("storage: %s.%s: text default for an integer column", t.name, c.name))
			}
		default:
			panic(fmt.Sprintf("storage: %s.%s: default %v of type %T", t.name, c.name, d, d))
		}
		names[i] = c.name
	}
	t.colList = strings.Join(names, ", ")
	return t
}

func (t *table[T]) tableName() string { return t.name }

func (t *table[T]) columnNames() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

func (t *table[T]) cnfCols() []cnfColumn {
	out := make([]cnfColumn, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.cnf
	}
	return out
}

// fields returns the Scan destinations of row v, in column order.
func (t *table[T]) fields(v *T) []any {
	out := make([]any, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.field(v)
	}
	return out
}

// values returns the INSERT values of row v, in column order.
func (t *table[T]) values(v *T) []any {
	out := make([]any, len(t.cols))
	for i, c := range t.cols {
		out[i] = fieldValue(c.field(v))
	}
	return out
}

func (t *table[T]) load(ctx context.Context, s *Store, snap *config.Snapshot) error {
	var out []T
	err := s.each(ctx, "SELECT "+t.colList+" FROM main."+t.name+" "+t.read, nil, func(r *sql.Rows) error {
		var v T
		if err := r.Scan(t.fields(&v)...); err != nil {
			return err
		}
		if t.norm != nil {
			t.norm(&v)
		}
		out = append(out, v)
		return nil
	})
	*t.rows(snap) = out
	return err
}

func (t *table[T]) insertRows(snap *config.Snapshot, runtime bool) (string, [][]any) {
	var rows [][]any
	for _, v := range *t.rows(snap) { // v is a copy: norm does not touch the snapshot
		if t.norm != nil {
			t.norm(&v)
		}
		out := []T{v}
		if t.expand != nil {
			out = t.expand(v, runtime)
		}
		for i := range out {
			rows = append(rows, t.values(&out[i]))
		}
	}
	return t.colList, rows
}

// emptyIfNull is a text field that reads NULL as "" and is written back as
// "" (mysql_users.password and default_schema).
type emptyIfNull string

// Scan implements sql.Scanner.
func (e *emptyIfNull) Scan(src any) error {
	var s sql.NullString
	if err := s.Scan(src); err != nil {
		return err
	}
	*e = emptyIfNull(s.String)
	return nil
}

// fieldKind is the config file kind of a field pointer.
func fieldKind(p any) colKind {
	switch p.(type) {
	case *int, *bool, *sql.NullInt64:
		return colInt
	case *string, *emptyIfNull, *sql.NullString:
		return colStr
	}
	panic(fmt.Sprintf("storage: unsupported column field type %T", p))
}

// fieldValue is the INSERT value of a field pointer. Booleans are written
// as 1 and 0, NULL-able fields keep their NULL.
func fieldValue(p any) any {
	switch p := p.(type) {
	case *int:
		return *p
	case *bool:
		return b2i(*p)
	case *string:
		return *p
	case *emptyIfNull:
		return string(*p)
	case *sql.NullInt64:
		return *p
	case *sql.NullString:
		return *p
	}
	panic(fmt.Sprintf("storage: unsupported column field type %T", p))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Config file rules of a column of a typed table (the name and the kind come
// from the column itself).

// required: the entry must have the column, under one of keys (in lookup
// order; none means the column's name).
func required(keys ...string) cnfColumn { return cnfColumn{keys: keysOrNil(keys), required: true} }

// orDefault: an absent key means def (an int or a string).
func orDefault(def any) cnfColumn {
	if n, ok := def.(int); ok {
		def = int64(n)
	}
	return cnfColumn{def: def}
}

// orNull: an absent key means NULL, the column's table default.
func orNull() cnfColumn { return cnfColumn{} }

// typedTables are the typed tables by name.
var typedTables = func() map[string]typedTable {
	m := make(map[string]typedTable)
	for _, t := range []typedTable{serversTable, serversBalanceTable, replicationHostgroupsTable,
		hostgroupAttributesTable, usersTable, queryRulesTable, fastRoutingTable, schedulerTable, proxySQLServersTable} {
		m[t.tableName()] = t
	}
	return m
}()

var serversTable = (&table[config.Server]{
	name: "mysql_servers",
	read: "ORDER BY hostgroup_id, hostname, port",
	rows: func(s *config.Snapshot) *[]config.Server { return &s.Servers },
	norm: func(v *config.Server) { v.Status = strings.ToUpper(v.Status) },
	cols: []column[config.Server]{
		{"hostgroup_id", func(v *config.Server) any { return &v.HostgroupID }, required("hostgroup", "hostgroup_id")},
		{"hostname", func(v *config.Server) any { return &v.Hostname }, required("address", "hostname")},
		{"port", func(v *config.Server) any { return &v.Port }, orDefault(3306)},
		{"gtid_port", func(v *config.Server) any { return &v.GTIDPort }, orDefault(0)},
		{"status", func(v *config.Server) any { return &v.Status }, withNorm(orDefault("ONLINE"), serverStatus)},
		{"weight", func(v *config.Server) any { return &v.Weight }, orDefault(1)},
		{"compression", func(v *config.Server) any { return &v.Compression }, orDefault(0)},
		{"max_connections", func(v *config.Server) any { return &v.MaxConnections }, orDefault(1000)},
		{"max_replication_lag", func(v *config.Server) any { return &v.MaxReplicationLag }, orDefault(0)},
		{"use_ssl", func(v *config.Server) any { return &v.UseSSL }, orDefault(0)},
		{"max_latency_ms", func(v *config.Server) any { return &v.MaxLatencyMs }, orDefault(0)},
		{"comment", func(v *config.Server) any { return &v.Comment }, orDefault("")},
	},
}).build()

var serversBalanceTable = (&table[config.ServerBalance]{
	name: "mysql_servers_balance",
	read: "ORDER BY hostname, port",
	rows: func(s *config.Snapshot) *[]config.ServerBalance { return &s.ServersBalance },
	cols: []column[config.ServerBalance]{
		{"hostname", func(v *config.ServerBalance) any { return &v.Hostname }, required("hostname", "address")},
		{"port", func(v *config.ServerBalance) any { return &v.Port }, orDefault(3306)},
		// The config file may also write labels as a group; see entryValues.
		{"labels", func(v *config.ServerBalance) any { return &v.Labels }, orDefault("")},
		{"metrics_url", func(v *config.ServerBalance) any { return &v.MetricsURL }, orDefault("")},
		{"comment", func(v *config.ServerBalance) any { return &v.Comment }, orDefault("")},
	},
}).build()

var replicationHostgroupsTable = (&table[config.ReplicationHostgroup]{
	name: "mysql_replication_hostgroups",
	read: "ORDER BY writer_hostgroup",
	rows: func(s *config.Snapshot) *[]config.ReplicationHostgroup { return &s.ReplicationHostgroups },
	cols: []column[config.ReplicationHostgroup]{
		{"writer_hostgroup", func(v *config.ReplicationHostgroup) any { return &v.WriterHostgroup }, required()},
		{"reader_hostgroup", func(v *config.ReplicationHostgroup) any { return &v.ReaderHostgroup }, required()},
		{"check_type", func(v *config.ReplicationHostgroup) any { return &v.CheckType }, withNorm(orDefault("read_only"), checkType)},
		{"comment", func(v *config.ReplicationHostgroup) any { return &v.Comment }, orDefault("")},
	},
}).build()

var hostgroupAttributesTable = (&table[config.HostgroupAttributes]{
	name: "mysql_hostgroup_attributes",
	read: "ORDER BY hostgroup_id",
	rows: func(s *config.Snapshot) *[]config.HostgroupAttributes { return &s.HostgroupAttributes },
	cols: []column[config.HostgroupAttributes]{
		{"hostgroup_id", func(v *config.HostgroupAttributes) any { return &v.HostgroupID }, required()},
		{"max_num_online_servers", func(v *config.HostgroupAttributes) any { return &v.MaxNumOnlineServers }, orDefault(1000000)},
		{"autocommit", func(v *config.HostgroupAttributes) any { return &v.Autocommit }, orDefault(-1)},
		{"free_connections_pct", func(v *config.HostgroupAttributes) any { return &v.FreeConnectionsPct }, orDefault(10)},
		{"init_connect", func(v *config.HostgroupAttributes) any { return &v.InitConnect }, orDefault("")},
		{"multiplex", func(v *config.HostgroupAttributes) any { return &v.Multiplex }, orDefault(1)},
		{"connection_warming", func(v *config.HostgroupAttributes) any { return &v.ConnectionWarming }, orDefault(0)},
		{"throttle_connections_per_sec", func(v *config.HostgroupAttributes) any { return &v.ThrottleConnectionsPerSec }, orDefault(1000000)},
		{"ignore_session_variables", func(v *config.HostgroupAttributes) any { return &v.IgnoreSessionVariables }, orDefault("")},
		{"hostgroup_settings", func(v *config.HostgroupAttributes) any { return &v.HostgroupSettings }, orDefault("")},
		{"servers_defaults", func(v *config.HostgroupAttributes) any { return &v.ServersDefaults }, orDefault("")},
		{"comment", func(v *config.HostgroupAttributes) any { return &v.Comment }, orDefault("")},
	},
}).build()

// usersTable: RUNTIME takes the active users with a default_hostgroup >= 0,
// as ProxySQL loads them. Passwords are kept as written, clear text or hash,
// everywhere (ProxySQL 2.6+, sysown/proxysql#4218).
var usersTable = (&table[config.User]{
	name:   "mysql_users",
	read:   "WHERE active=1 AND default_hostgroup>=0 ORDER BY username, backend DESC",
	rows:   func(s *config.Snapshot) *[]config.User { return &s.Users },
	expand: userRows,
	cols: []column[config.User]{
		{"username", func(v *config.User) any { return &v.Username }, required()},
		{"password", func(v *config.User) any { return (*emptyIfNull)(&v.Password) }, orNull()},
		{"active", func(v *config.User) any { return &v.Active }, orDefault(1)},
		{"use_ssl", func(v *config.User) any { return &v.UseSSL }, orDefault(0)},
		{"default_hostgroup", func(v *config.User) any { return &v.DefaultHostgroup }, orDefault(0)},
		{"default_schema", func(v *config.User) any { return (*emptyIfNull)(&v.DefaultSchema) }, orNull()},
		{"schema_locked", func(v *config.User) any { return &v.SchemaLocked }, orDefault(0)},
		{"transaction_persistent", func(v *config.User) any { return &v.TransactionPersistent }, orDefault(1)},
		{"fast_forward", func(v *config.User) any { return &v.FastForward }, orDefault(0)},
		{"backend", func(v *config.User) any { return &v.Backend }, orDefault(1)},
		{"frontend", func(v *config.User) any { return &v.Frontend }, orDefault(1)},
		{"max_connections", func(v *config.User) any { return &v.MaxConnections }, orDefault(10000)},
		{"attributes", func(v *config.User) any { return &v.Attributes }, orDefault("")},
		{"comment", func(v *config.User) any { return &v.Comment }, orDefault("")},
	},
}).build()

// userRows is how a user is written: as it is to MEMORY (SAVE MYSQL USERS
// TO MEMORY), and to runtime_mysql_users once per role, as ProxySQL shows
// it: a frontend row, then a backend row, both active.
func userRows(v config.User, runtime bool) []config.User {
	if !runtime {
		return []config.User{v}
	}
	var out []config.User
	if v.Frontend {
		u := v
		u.Active, u.Backend, u.Frontend = true, false, true
		out = append(out, u)
	}
	if v.Backend {
		u := v
		u.Active, u.Backend, u.Frontend = true, true, false
		out = append(out, u)
	}
	return out
}

// queryRulesTable: RUNTIME takes the active rules in rule_id order. In the
// config file, a negative value of a NULL-able integer (ProxySQL's -1, "not
// set") is NULL.
var queryRulesTable = (&table[config.QueryRule]{
	name: "mysql_query_rules",
	read: "WHERE active=1 ORDER BY rule_id",
	rows: func(s *config.Snapshot) *[]config.QueryRule { return &s.QueryRules },
	cols: []column[config.QueryRule]{
		{"rule_id", func(v *config.QueryRule) any { return &v.RuleID }, required()},
		{"active", func(v *config.QueryRule) any { return &v.Active }, orDefault(1)},
		{"username", func(v *config.QueryRule) any { return &v.Username }, orNull()},
		{"schemaname", func(v *config.QueryRule) any { return &v.Schemaname }, orNull()},
		{"flagIN", func(v *config.QueryRule) any { return &v.FlagIN }, withNorm(orDefault(0), negativeIsZero)},
		{"client_addr", func(v *config.QueryRule) any { return &v.ClientAddr }, orNull()},
		{"proxy_addr", func(v *config.QueryRule) any { return &v.ProxyAddr }, orNull()},
		{"proxy_port", func(v *config.QueryRule) any { return &v.ProxyPort }, nullIfNegative()},
		{"digest", func(v *config.QueryRule) any { return &v.Digest }, orNull()},
		{"match_digest", func(v *config.QueryRule) any { return &v.MatchDigest }, orNull()},
		{"match_pattern", func(v *config.QueryRule) any { return &v.MatchPattern }, orNull()},
		{"negate_match_pattern", func(v *config.QueryRule) any { return &v.NegateMatchPattern }, withNorm(orDefault(0), nonZeroIsOne)},
		{"re_modifiers", func(v *config.QueryRule) any { return &v.ReModifiers }, orDefault("CASELESS")},
		{"flagOUT", func(v *config.QueryRule) any { return &v.FlagOUT }, nullIfNegative()},
		{"replace_pattern", func(v *config.QueryRule) any { return &v.ReplacePattern }, orNull()},
		{"destination_hostgroup", func(v *config.QueryRule) any { return &v.DestinationHostgroup }, nullIfNegative()},
		{"cache_ttl", func(v *config.QueryRule) any { return &v.CacheTTL }, nullIfNegative()},
		{"cache_empty_result", func(v *config.QueryRule) any { return &v.CacheEmptyResult }, nullIfNegative()},
		{"cache_timeout", func(v *config.QueryRule) any { return &v.CacheTimeout }, nullIfNegative()},
		{"reconnect", func(v *config.QueryRule) any { return &v.Reconnect }, nullIfNegative()},
		{"timeout", func(v *config.QueryRule) any { return &v.Timeout }, nullIfNegative()},
		{"retries", func(v *config.QueryRule) any { return &v.Retries }, nullIfNegative()},
		{"delay", func(v *config.QueryRule) any { return &v.Delay }, nullIfNegative()},
		{"next_query_flagIN", func(v *config.QueryRule) any { return &v.NextQueryFlagIN }, nullIfNegative()},
		{"mirror_flagOUT", func(v *config.QueryRule) any { return &v.MirrorFlagOUT }, nullIfNegative()},
		{"mirror_hostgroup", func(v *config.QueryRule) any { return &v.MirrorHostgroup }, nullIfNegative()},
		{"error_msg", func(v *config.QueryRule) any { return &v.ErrorMsg }, orNull()},
		{"OK_msg", func(v *config.QueryRule) any { return &v.OKMsg }, orNull()},
		{"sticky_conn", func(v *config.QueryRule) any { return &v.StickyConn }, nullIfNegative()},
		{"multiplex", func(v *config.QueryRule) any { return &v.Multiplex }, nullIfNegative()},
		{"gtid_from_hostgroup", func(v *config.QueryRule) any { return &v.GTIDFromHostgroup }, nullIfNegative()},
		{"log", func(v *config.QueryRule) any { return &v.Log }, nullIfNegative()},
		{"apply", func(v *config.QueryRule) any { return &v.Apply }, withNorm(orDefault(0), nonZeroIsOne)},
		{"attributes", func(v *config.QueryRule) any { return &v.Attributes }, orDefault("")},
		{"comment", func(v *config.QueryRule) any { return &v.Comment }, orNull()},
	},
}).build()

// nullIfNegative is a NULL-able integer of mysql_query_rules in the config
// file: absent or negative means NULL.
func nullIfNegative() cnfColumn { return withNorm(orNull(), negativeIsNull) }

var fastRoutingTable = (&table[config.FastRoute]{
	name: "mysql_query_rules_fast_routing",
	read: "ORDER BY username, schemaname, flagIN",
	rows: func(s *config.Snapshot) *[]config.FastRoute { return &s.FastRouting },
	cols: []column[config.FastRoute]{
		{"username", func(v *config.FastRoute) any { return &v.Username }, required()},
		{"schemaname", func(v *config.FastRoute) any { return &v.Schemaname }, required()},
		{"flagIN", func(v *config.FastRoute) any { return &v.FlagIN }, orDefault(0)},
		{"destination_hostgroup", func(v *config.FastRoute) any { return &v.DestinationHostgroup }, required()},
		{"comment", func(v *config.FastRoute) any { return &v.Comment }, orDefault("")},
	},
}).build()

var schedulerTable = (&table[config.SchedulerJob]{
	name: "scheduler",
	read: "ORDER BY id",
	rows: func(s *config.Snapshot) *[]config.SchedulerJob { return &s.Scheduler },
	cols: []column[config.SchedulerJob]{
		{"id", func(v *config.SchedulerJob) any { return &v.ID }, required()},
		{"active", func(v *config.SchedulerJob) any { return &v.Active }, orDefault(1)},
		{"interval_ms", func(v *config.SchedulerJob) any { return &v.IntervalMs }, required()},
		{"filename", func(v *config.SchedulerJob) any { return &v.Filename }, required()},
		{"arg1", func(v *config.SchedulerJob) any { return &v.Args[0] }, orNull()},
		{"arg2", func(v *config.SchedulerJob) any { return &v.Args[1] }, orNull()},
		{"arg3", func(v *config.SchedulerJob) any { return &v.Args[2] }, orNull()},
		{"arg4", func(v *config.SchedulerJob) any { return &v.Args[3] }, orNull()},
		{"arg5", func(v *config.SchedulerJob) any { return &v.Args[4] }, orNull()},
		{"comment", func(v *config.SchedulerJob) any { return &v.Comment }, orDefault("")},
	},
}).build()

var proxySQLServersTable = (&table[config.ProxySQLServer]{
	name: "proxysql_servers",
	read: "ORDER BY hostname, port",
	rows: func(s *config.Snapshot) *[]config.ProxySQLServer { return &s.ProxySQLServers },
	cols: []column[config.ProxySQLServer]{
		{"hostname", func(v *config.ProxySQLServer) any { return &v.Hostname }, required("address", "hostname")},
		{"port", func(v *config.ProxySQLServer) any { return &v.Port }, required()},
		{"weight", func(v *config.ProxySQLServer) any { return &v.Weight }, orDefault(0)},
		{"comment", func(v *config.ProxySQLServer) any { return &v.Comment }, orDefault("")},
	},
}).build()
