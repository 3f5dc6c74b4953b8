package stats

// Counter names one stats_mysql_global value the data plane counts. Values
// Sluice reads from elsewhere at query time (Server_Connections_*, the
// backend byte totals, Stmt_Cached, Mirror_*, Servers_table_version) are
// not counters: the composition root adds them to the table.
type Counter uint8

// The counters, with ProxySQL's variable names (lib/MySQL_Thread.cpp,
// SQL3_GlobalStatus). Gauges go up and down (Add with a negative n).
const (
	// Active_Transactions (gauge): client sessions with a transaction open
	// on a backend connection.
	ActiveTransactions Counter = iota
	// Client_Connections_aborted: logins refused or failed, and sessions
	// that ended without COM_QUIT.
	ClientConnectionsAborted
	// Client_Connections_connected (gauge): client connections open now.
	ClientConnectionsConnected
	// Client_Connections_created: client connections accepted.
	ClientConnectionsCreated
	// Questions: COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE and
	// COM_STMT_CLOSE commands served (ProxySQL counts all four).
	Questions
	// Slow_queries: queries that took longer than mysql-long_query_time.
	SlowQueries
	// Com_autocommit: SET autocommit statements sent to a backend.
	ComAutocommit
	// Com_autocommit_filtered: SET autocommit answered by the proxy.
	ComAutocommitFiltered
	// Com_commit: COMMITs sent to a backend.
	ComCommit
	// Com_commit_filtered: COMMITs answered by the proxy.
	ComCommitFiltered
	// Com_rollback: ROLLBACKs sent to a backend.
	ComRollback
	// Com_rollback_filtered: ROLLBACKs answered by the proxy.
	ComRollbackFiltered
	// Com_backend_stmt_prepare: COM_STMT_PREPARE sent to backends.
	ComBackendStmtPrepare
	// Com_backend_stmt_execute: COM_STMT_EXECUTE sent to backends.
	ComBackendStmtExecute
	// Com_backend_stmt_close: COM_STMT_CLOSE sent to backends (the
	// statements of a connection past mysql-max_stmts_per_connection).
	ComBackendStmtClose
	// Com_frontend_stmt_prepare: COM_STMT_PREPARE from clients.
	ComFrontendStmtPrepare
	// Com_frontend_stmt_execute: COM_STMT_EXECUTE from clients.
	ComFrontendStmtExecute
	// Com_frontend_stmt_close: COM_STMT_CLOSE from clients.
	ComFrontendStmtClose
	// Com_frontend_init_db: COM_INIT_DB from clients.
	ComFrontendInitDB
	// Com_frontend_set_names: SET NAMES from clients that the proxy
	// answered (a SET beginning with NAMES, as ProxySQL counts it).
	ComFrontendSetNames
	// Com_frontend_use_db: USE statements from clients.
	ComFrontendUseDB
	// Query_Processor_time_nsec: time in the digest and the rules, counted
	// only with mysql-stats_time_query_processor=true, as in ProxySQL.
	QueryProcessorTimeNsec
	// Backend_query_time_nsec: time waiting for backends, counted only with
	// mysql-stats_time_backend_query=true.
	BackendQueryTimeNsec
	// ConnPool_get_conn_immediate: ProxySQL's gets from a worker thread's
	// own cache of connections. Sluice has no such cache (a TryGet hit is
	// a pool get, counted in ConnPool_get_conn_success): it stays 0. A
	// query on the connection its session holds is no get (it was counted
	// here, which made the counter dwarf ProxySQL's on transactions).
	ConnPoolGetConnImmediate
	// ConnPool_get_conn_success: a session got a connection from a pool.
	ConnPoolGetConnSuccess
	// ConnPool_get_conn_failure: a session could not get one.
	ConnPoolGetConnFailure
	// Access_Denied_Wrong_Password: unknown user or wrong password.
	AccessDeniedWrongPassword
	// Access_Denied_Max_Connections: refused at mysql-max_connections.
	AccessDeniedMaxConnections
	// Access_Denied_Max_User_Connections: refused at the user's max_connections.
	AccessDeniedMaxUserConnections
	// generated_error_packets: ERR packets the proxy wrote itself.
	GeneratedErrorPackets
	// hostgroup_locked_set_cmds: SETs that locked a session to a hostgroup.
	HostgroupLockedSetCmds
	// hostgroup_locked_queries: queries refused with ERR 9006.
	HostgroupLockedQueries
	// max_connect_timeouts: queries failed with ERR 9001.
	MaxConnectTimeouts
	// Selects_for_update__autocommit0: SELECT … FOR UPDATE with autocommit=0.
	SelectsForUpdateAutocommit0
	// Stmt_Client_Active_Total (gauge): prepared statements clients hold.
	StmtClientActiveTotal
	// mysql_unexpected_frontend_packets: client packets the proxy could not
	// take as a command (empty, or an unknown command byte).
	MySQLUnexpectedFrontendPackets
	// automatic_detected_sql_injection: queries mysql-automatic_detect_sqli
	// refused (the client was disconnected).
	AutomaticDetectedSQLInjection
	// whitelisted_sqli_fingerprint: queries libinjection flagged whose
	// fingerprint is whitelisted.
	WhitelistedSQLiFingerprint
	// Queries_frontends_bytes_recv / _sent: bytes of MySQL packets read
	// from and written to clients (headers included).
	QueriesFrontendsBytesRecv
	QueriesFrontendsBytesSent
	// Client_Connections_hostgroup_locked (gauge): sessions locked on a
	// hostgroup (after a SET the proxy cannot track).
	ClientConnectionsHostgroupLocked
	// client_host_error_killed_connections: connections closed because
	// their address reached mysql-client_host_error_counts.
	ClientHostErrorKilledConnections
	// Com_frontend_reset_connection (Sluice; ProxySQL's MySQL side has no
	// such row): COM_RESET_CONNECTION from clients, served by the proxy.
	ComFrontendResetConnection
	numCounters
)

var counterNames = [numCounters]string{
	"Active_Transactions",
	"Client_Connections_aborted",
	"Client_Connections_connected",
	"Client_Connections_created",
	"Questions",
	"Slow_queries",
	"Com_autocommit",
	"Com_autocommit_filtered",
	"Com_commit",
	"Com_commit_filtered",
	"Com_rollback",
	"Com_rollback_filtered",
	"Com_backend_stmt_prepare",
	"Com_backend_stmt_execute",
	"Com_backend_stmt_close",
	"Com_frontend_stmt_prepare",
	"Com_frontend_stmt_execute",
	"Com_frontend_stmt_close",
	"Com_frontend_init_db",
	"Com_frontend_set_names",
	"Com_frontend_use_db",
	"Query_Processor_time_nsec",
	"Backend_query_time_nsec",
	"ConnPool_get_conn_immediate",
	"ConnPool_get_conn_success",
	"ConnPool_get_conn_failure",
	"Access_Denied_Wrong_Password",
	"Access_Denied_Max_Connections",
	"Access_Denied_Max_User_Connections",
	"generated_error_packets",
	"hostgroup_locked_set_cmds",
	"hostgroup_locked_queries",
	"max_connect_timeouts",
	"Selects_for_update__autocommit0",
	"Stmt_Client_Active_Total",
	"mysql_unexpected_frontend_packets",
	"automatic_detected_sql_injection",
	"whitelisted_sqli_fingerprint",
	"Queries_frontends_bytes_recv",
	"Queries_frontends_bytes_sent",
	"Client_Connections_hostgroup_locked",
	"client_host_error_killed_connections",
	"Com_frontend_reset_connection",
}

// String returns the stats_mysql_global Variable_Name.
func (k Counter) String() string {
	if k >= numCounters {
		return "unknown"
	}
	return counterNames[k]
}
