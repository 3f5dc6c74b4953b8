// Package config holds the immutable runtime configuration of Sluice.
//
// A Snapshot is built from the MEMORY layer (the admin SQLite tables) when an
// operator runs LOAD <module> TO RUNTIME. It is validated, then handed to the
// running proxy as one value: nothing in the data plane ever sees half a
// configuration. This package has no behaviour beyond validation and imports
// nothing of Sluice's own.
package config

import (
	"database/sql"
	"strings"
)

// Module is one unit of LOAD/SAVE, as in ProxySQL's admin grammar.
type Module int

// The modules of the LOAD/SAVE grammar.
const (
	ModMySQLUsers Module = iota
	ModMySQLServers
	ModMySQLQueryRules
	ModMySQLVariables
	ModAdminVariables
	ModScheduler
	ModProxySQLServers
	ModMySQLFirewall
	ModRestAPI
	numModules
)

// Modules lists every module in a stable order.
var Modules = []Module{
	ModMySQLUsers, ModMySQLServers, ModMySQLQueryRules, ModMySQLVariables,
	ModAdminVariables, ModScheduler, ModProxySQLServers, ModMySQLFirewall, ModRestAPI,
}

var moduleNames = [numModules]string{
	"MYSQL USERS", "MYSQL SERVERS", "MYSQL QUERY RULES", "MYSQL VARIABLES",
	"ADMIN VARIABLES", "SCHEDULER", "PROXYSQL SERVERS", "MYSQL FIREWALL", "RESTAPI",
}

// String returns the module's name as written in LOAD/SAVE commands.
func (m Module) String() string {
	if m < 0 || m >= numModules {
		return "UNKNOWN"
	}
	return moduleNames[m]
}

// ParseModule maps "mysql query rules" (any case, single spaces) to a Module.
func ParseModule(s string) (Module, bool) {
	s = strings.ToUpper(s)
	for i, n := range moduleNames {
		if n == s {
			return Module(i), true
		}
	}
	return 0, false
}

// Tables returns the admin tables that make up a module, in the order
// ProxySQL copies them between layers. Variables modules share
// global_variables and are told apart by the name prefix (VarPrefix).
func (m Module) Tables() []string {
	switch m {
	case ModMySQLUsers:
		return []string{"mysql_users"}
	case ModMySQLServers:
		return []string{"mysql_servers", "mysql_replication_hostgroups", "mysql_group_replication_hostgroups",
			"mysql_galera_hostgroups", "mysql_aws_aurora_hostgroups", "mysql_hostgroup_attributes",
			"mysql_servers_ssl_params", "mysql_servers_balance"}
	case ModMySQLQueryRules:
		return []string{"mysql_query_rules", "mysql_query_rules_fast_routing"}
	case ModMySQLVariables, ModAdminVariables:
		return []string{"global_variables"}
	case ModScheduler:
		return []string{"scheduler"}
	case ModProxySQLServers:
		return []string{"proxysql_servers"}
	case ModMySQLFirewall:
		return []string{"mysql_firewall_whitelist_users", "mysql_firewall_whitelist_rules",
			"mysql_firewall_whitelist_sqli_fingerprints"}
	case ModRestAPI:
		return []string{"restapi_routes"}
	}
	return nil
}

// VarPrefix is the global_variables name prefix of a variables module
// ("mysql-" or "admin-"), or "" for table modules.
func (m Module) VarPrefix() string {
	switch m {
	case ModMySQLVariables:
		return "mysql-"
	case ModAdminVariables:
		return "admin-"
	}
	return ""
}

// Server is one row of mysql_servers.
type Server struct {
	HostgroupID       int
	Hostname          string
	Port              int
	GTIDPort          int
	Status            string // ONLINE, SHUNNED, OFFLINE_SOFT, OFFLINE_HARD (upper case)
	Weight            int
	Compression       int
	MaxConnections    int
	MaxReplicationLag int
	UseSSL            int
	MaxLatencyMs      int
	Comment           string
}

// ServerBalance is one row of mysql_servers_balance: the balancing extras of
// a server (hostname, port), shared by every hostgroup it is in.
type ServerBalance struct {
	Hostname   string
	Port       int
	Labels     string // JSON object of label name → value, or ""
	MetricsURL string
	Comment    string
}

// ReplicationHostgroup is one row of mysql_replication_hostgroups.
type ReplicationHostgroup struct {
	WriterHostgroup int
	ReaderHostgroup int
	CheckType       string
	Comment         string
}

// HostgroupAttributes is one row of mysql_hostgroup_attributes.
type HostgroupAttributes struct {
	HostgroupID               int
	MaxNumOnlineServers       int
	Autocommit                int
	FreeConnectionsPct        int
	InitConnect               string
	Multiplex                 int
	ConnectionWarming         int
	ThrottleConnectionsPerSec int
	IgnoreSessionVariables    string
	HostgroupSettings         string
	ServersDefaults           string
	Comment                   string
}

// User is one row of mysql_users.
type User struct {
	Username              string
	Password              string // clear text, or "*" + 40 upper-case hex digits (mysql_native_password hash)
	Active                bool
	UseSSL                bool
	DefaultHostgroup      int
	DefaultSchema         string
	SchemaLocked          bool
	TransactionPersistent bool
	FastForward           bool
	Backend               bool
	Frontend              bool
	MaxConnections        int
	Attributes            string
	Comment               string
}

// QueryRule is one row of mysql_query_rules. Nullable columns keep their
// NULL-ness, because NULL means "this rule does not set it".
type QueryRule struct {
	RuleID               int
	Active               bool
	Username             sql.NullString
	Schemaname           sql.NullString
	FlagIN               int
	ClientAddr           sql.NullString
	ProxyAddr            sql.NullString
	ProxyPort            sql.NullInt64
	Digest               sql.NullString
	MatchDigest          sql.NullString
	MatchPattern         sql.NullString
	NegateMatchPattern   bool
	ReModifiers          sql.NullString
	FlagOUT              sql.NullInt64
	ReplacePattern       sql.NullString
	DestinationHostgroup sql.NullInt64
	CacheTTL             sql.NullInt64
	CacheEmptyResult     sql.NullInt64
	CacheTimeout         sql.NullInt64
	Reconnect            sql.NullInt64
	Timeout              sql.NullInt64
	Retries              sql.NullInt64
	Delay                sql.NullInt64
	NextQueryFlagIN      sql.NullInt64
	MirrorFlagOUT        sql.NullInt64
	MirrorHostgroup      sql.NullInt64
	ErrorMsg             sql.NullString
	OKMsg                sql.NullString
	StickyConn           sql.NullInt64
	Multiplex            sql.NullInt64
	GTIDFromHostgroup    sql.NullInt64
	Log                  sql.NullInt64
	Apply                bool
	Attributes           string
	Comment              sql.NullString
}

// FastRoute is one row of mysql_query_rules_fast_routing.
type FastRoute struct {
	Username             string
	Schemaname           string
	FlagIN               int
	DestinationHostgroup int
	Comment              string
}

// SchedulerJob is one row of scheduler.
type SchedulerJob struct {
	ID         int
	Active     bool
	IntervalMs int
	Filename   string
	Args       [5]sql.NullString
	Comment    string
}

// ProxySQLServer is one row of proxysql_servers (cluster peers).
type ProxySQLServer struct {
	Hostname string
	Port     int
	Weight   int
	Comment  string
}

// Snapshot is the whole runtime configuration. It is never modified after
// it is handed to the runtime; LOAD builds a new one.
type Snapshot struct {
	Servers               []Server
	ServersBalance        []ServerBalance
	ReplicationHostgroups []ReplicationHostgroup
	HostgroupAttributes   []HostgroupAttributes
	Users                 []User
	QueryRules            []QueryRule // active rules only, ordered by rule_id
	FastRouting           []FastRoute
	Scheduler             []SchedulerJob
	ProxySQLServers       []ProxySQLServer

	// MySQLVars and AdminVars map a full variable name ("mysql-threads") to
	// its value as stored in global_variables.
	MySQLVars map[string]string
	AdminVars map[string]string

	// Tables holds the raw rows of tables Sluice keeps for compatibility but
	// does not interpret (for example mysql_galera_hostgroups), keyed by table
	// name, so that runtime_* and SAVE … FROM RUNTIME show what was loaded.
	Tables map[string][][]sql.NullString
}

// Clone returns a shallow copy whose module fields can be replaced without
// touching the original. Slices are shared: snapshots are immutable.
func (s *Snapshot) Clone() *Snapshot {
	if s == nil {
		return &Snapshot{}
	}
	c := *s
	c.Tables = make(map[string][][]sql.NullString, len(s.Tables))
	for k, v := range s.Tables {
		c.Tables[k] = v
	}
	return &c
}

// Var returns the value of a mysql-* or admin-* variable, or its built-in
// default when the snapshot does not hold it.
func (s *Snapshot) Var(name string) string {
	if strings.HasPrefix(name, "admin-") {
		if v, ok := s.AdminVars[name]; ok {
			return v
		}
	} else if v, ok := s.MySQLVars[name]; ok {
		return v
	}
	if d, ok := LookupVar(name); ok {
		return d.Default
	}
	return ""
}

// ProxySQLVersion is the ProxySQL release whose admin interface Sluice
// follows; admin-version and SELECT @@version report it with a suffix.
const ProxySQLVersion = "2.7.1"
