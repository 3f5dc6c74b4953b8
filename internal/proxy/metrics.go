package proxy

import (
	"bytes"
	"net"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

// Prometheus metrics (GET /metrics on admin-restapi_port, and SHOW
// PROMETHEUS METRICS on the admin port), with ProxySQL's metric names
// (lib/MySQL_Thread.cpp th_metrics_map, lib/MySQL_HostGroups_Manager.cpp
// hg_metrics_map) so its dashboards and alerts work unchanged, plus
// Sluice's own under sluice_. The collector reads the counters the proxy
// already keeps — the rows of stats_mysql_global, the pools, the
// migrations — at scrape time: nothing is added to the query path.

// promVar maps one stats_mysql_global variable to a ProxySQL metric.
type promVar struct {
	metric, help string
	gauge        bool
	label        [2]string // one label name and value, "" for none
	scale        float64   // multiplier (ns → s); 0 means 1
}

// globalMetrics: stats_mysql_global Variable_Name → metric. Metrics that
// share a name (differing by one label) share their help, as ProxySQL's.
var globalMetrics = map[string]promVar{
	"ProxySQL_Uptime":                         {metric: "proxysql_uptime_seconds_total", help: "The total uptime of ProxySQL."},
	"Active_Transactions":                     {metric: "proxysql_active_transactions", help: "Provides a count of how many client connection are currently processing a transaction.", gauge: true},
	"Client_Connections_connected":            {metric: "proxysql_client_connections_connected", help: "Client connections that are currently connected.", gauge: true},
	"Client_Connections_created":              {metric: "proxysql_client_connections_total", help: clientConnsHelp, label: [2]string{"status", "created"}},
	"Client_Connections_aborted":              {metric: "proxysql_client_connections_total", help: clientConnsHelp, label: [2]string{"status", "aborted"}},
	"Server_Connections_connected":            {metric: "proxysql_server_connections_connected", help: "Backend connections that are currently connected.", gauge: true},
	"Server_Connections_created":              {metric: "proxysql_server_connections_total", help: serverConnsHelp, label: [2]string{"status", "created"}},
	"Server_Connections_aborted":              {metric: "proxysql_server_connections_total", help: serverConnsHelp, label: [2]string{"status", "aborted"}},
	"Server_Connections_delayed":              {metric: "proxysql_server_connections_total", help: serverConnsHelp, label: [2]string{"status", "delayed"}},
	"Questions":                               {metric: "proxysql_questions_total", help: "The total number of client requests / statements executed."},
	"Slow_queries":                            {metric: "proxysql_slow_queries_total", help: "The total number of queries with an execution time greater than \"mysql-long_query_time\" milliseconds."},
	"Com_autocommit":                          {metric: "proxysql_com_autocommit_total", help: "Total queries autocommited."},
	"Com_autocommit_filtered":                 {metric: "proxysql_com_autocommit_filtered_total", help: "Total queries filtered autocommit."},
	"Com_commit":                              {metric: "proxysql_com_commit_cnt_total", help: "Total queries commit."},
	"Com_commit_filtered":                     {metric: "proxysql_com_commit_cnt_filtered_total", help: "Total queries commit filtered."},
	"Com_rollback":                            {metric: "proxysql_com_rollback_total", help: "Total queries rollbacked."},
	"Com_rollback_filtered":                   {metric: "proxysql_com_rollback_filtered_total", help: "Total queries filtered rollbacked."},
	"Com_backend_stmt_prepare":                {metric: "proxysql_com_backend_stmt_total", help: backendStmtHelp, label: [2]string{"op", "prepare"}},
	"Com_backend_stmt_execute":                {metric: "proxysql_com_backend_stmt_total", help: backendStmtHelp, label: [2]string{"op", "execute"}},
	"Com_backend_stmt_close":                  {metric: "proxysql_com_backend_stmt_total", help: backendStmtHelp, label: [2]string{"op", "close"}},
	"Com_frontend_stmt_prepare":               {metric: "proxysql_com_frontend_stmt_total", help: frontendStmtHelp, label: [2]string{"op", "prepare"}},
	"Com_frontend_stmt_execute":               {metric: "proxysql_com_frontend_stmt_total", help: frontendStmtHelp, label: [2]string{"op", "execute"}},
	"Com_frontend_stmt_close":                 {metric: "proxysql_com_frontend_stmt_total", help: frontendStmtHelp, label: [2]string{"op", "close"}},
	"Com_backend_change_user":                 {metric: "proxysql_com_backend_change_user_total", help: "Total CHANGE_USER queries backend."},
	"Com_backend_init_db":                     {metric: "proxysql_com_backend_init_db_total", help: "Total queries backend INIT DB."},
	"Com_backend_set_names":                   {metric: "proxysql_com_backend_set_names_total", help: "Total queries backend SET NAMES."},
	"Com_frontend_init_db":                    {metric: "proxysql_com_frontend_init_db_total", help: "Total INIT DB queries frontend."},
	"Com_frontend_use_db":                     {metric: "proxysql_com_frontend_use_db_total", help: "Total USE DB queries frontend."},
	"Com_frontend_set_names":                  {metric: "proxysql_com_frontend_set_names_total", help: "Total SET NAMES frontend queries."},
	"Com_frontend_reset_connection":           {metric: "sluice_com_frontend_reset_connection_total", help: "Sluice: COM_RESET_CONNECTION commands from clients."},
	"mysql_backend_buffers_bytes":             {metric: "proxysql_mysql_backend_buffers_bytes", help: "Buffers related to backend connections (Sluice: the read/write buffers of the backend connections in use).", gauge: true},
	"mysql_frontend_buffers_bytes":            {metric: "proxysql_mysql_frontend_buffers_bytes", help: "Buffers related to frontend connections (read/write buffers and other queues).", gauge: true},
	"mysql_session_internal_bytes":            {metric: "proxysql_mysql_session_internal_bytes", help: "Other memory used by ProxySQL to handle MySQL Sessions (Sluice: the sessions' own structures).", gauge: true},
	"MyHGM_myconnpoll_get":                    {metric: "proxysql_myhgm_myconnpool_get_total", help: "The number of requests made to the connection pool."},
	"MyHGM_myconnpoll_get_ok":                 {metric: "proxysql_myhgm_myconnpool_get_ok_total", help: "The number of successful requests to the connection pool (i.e. where a connection was available)."},
	"MyHGM_myconnpoll_push":                   {metric: "proxysql_myhgm_myconnpool_push_total", help: "The number of connections returned to the connection pool."},
	"MyHGM_myconnpoll_destroy":                {metric: "proxysql_myhgm_myconnpool_destroy_total", help: "The number of connections considered unhealthy and therefore closed."},
	"SQLite3_memory_bytes":                    {metric: "proxysql_sqlite3_memory_bytes", help: "Memory used by SQLite.", gauge: true},
	"ConnPool_memory_bytes":                   {metric: "proxysql_connpool_memory_bytes", help: "Memory used by the connection pool to store connections metadata (Sluice: the buffers of the idle pooled connections).", gauge: true},
	"MySQL_Monitor_Workers":                   {metric: "proxysql_mysql_monitor_workers", help: "Number of monitor workers threads.", gauge: true},
	"MySQL_Monitor_Workers_Started":           {metric: "proxysql_mysql_monitor_workers_started_total", help: "Number of MySQL Monitor workers started."},
	"Query_Processor_time_nsec":               {metric: "proxysql_query_processor_time_seconds_total", help: "The time spent inside the \"Query Processor\" to determine what action needs to be taken with the query (internal module).", scale: 1e-9},
	"Backend_query_time_nsec":                 {metric: "proxysql_backend_query_time_seconds_total", help: "Time spent making network calls to communicate with the backends.", scale: 1e-9},
	"ConnPool_get_conn_immediate":             {metric: "proxysql_connpool_get_conn_success_immediate_total", help: "The connection is provided from per-thread cache."},
	"ConnPool_get_conn_success":               {metric: "proxysql_connpool_get_conn_success_total", help: "The session is able to get a connection, either from per-thread cache or connection pool."},
	"ConnPool_get_conn_failure":               {metric: "proxysql_connpool_get_conn_failure_total", help: "The connection pool cannot provide any connection."},
	"Access_Denied_Wrong_Password":            {metric: "proxysql_access_denied_wrong_password_total", help: "Total access denied \"wrong password\"."},
	"Access_Denied_Max_Connections":           {metric: "proxysql_access_denied_max_connections_total", help: "Total access denied \"max connections\"."},
	"Access_Denied_Max_User_Connections":      {metric: "proxysql_access_denied_max_user_connections_total", help: "Total access denied \"max user connections\"."},
	"generated_error_packets":                 {metric: "proxysql_generated_error_packets_total", help: "Total generated error packets."},
	"hostgroup_locked_set_cmds":               {metric: "proxysql_hostgroup_locked_set_cmds_total", help: "Total number of connections that have been locked in a hostgroup."},
	"hostgroup_locked_queries":                {metric: "proxysql_hostgroup_locked_queries_total", help: "Query blocked because connection is locked into some hostgroup but is trying to reach other."},
	"max_connect_timeouts":                    {metric: "proxysql_max_connect_timeouts_total", help: "Maximum connection timeout reached when trying to connect to backend sever."},
	"Selects_for_update__autocommit0":         {metric: "proxysql_selects_for_update__autocommit0_total", help: "Total queries that are SELECT for update or equivalent."},
	"mysql_unexpected_frontend_packets":       {metric: "proxysql_mysql_unexpected_frontend_packets_total", help: "Unexpected packet received from client."},
	"Queries_backends_bytes_sent":             {metric: "proxysql_queries_backends_bytes_total", help: backendBytesHelp, label: [2]string{"traffic_flow", "sent"}},
	"Queries_backends_bytes_recv":             {metric: "proxysql_queries_backends_bytes_total", help: backendBytesHelp, label: [2]string{"traffic_flow", "received"}},
	"Queries_frontends_bytes_sent":            {metric: "proxysql_queries_frontends_bytes_total", help: frontendBytesHelp, label: [2]string{"traffic_flow", "sent"}},
	"Queries_frontends_bytes_recv":            {metric: "proxysql_queries_frontends_bytes_total", help: frontendBytesHelp, label: [2]string{"traffic_flow", "received"}},
	"Client_Connections_hostgroup_locked":     {metric: "proxysql_client_connections_hostgroup_locked", help: "Number of client connections locked to a specific hostgroup.", gauge: true},
	"Client_Connections_non_idle":             {metric: "proxysql_client_connections_non_idle", help: "Number of client connections that are currently handled by the main worker threads.", gauge: true},
	"mysql_killed_backend_connections":        {metric: "proxysql_mysql_killed_backend_connections_total", help: "Number of backend connections killed."},
	"mysql_killed_backend_queries":            {metric: "proxysql_mysql_killed_backend_queries_total", help: "Killed backend queries."},
	"Mirror_concurrency":                      {metric: "proxysql_mirror_concurrency", help: "Mirror current concurrency", gauge: true},
	"Mirror_queue_length":                     {metric: "proxysql_mirror_queue_lengths", help: "Mirror queue length", gauge: true},
	"Servers_table_version":                   {metric: "proxysql_servers_table_version_total", help: "Number of times the \"servers_table\" have been modified."},
	"MySQL_Thread_Workers":                    {metric: "proxysql_mysql_thread_workers", help: "Number of MySQL Thread workers i.e. 'mysql-threads' (Sluice: the Go threads running now, mysql-threads_adaptive).", gauge: true},
	"Runtime_generation":                      {metric: "sluice_runtime_generation", help: "Sluice: the running configuration's generation (one per LOAD ... TO RUNTIME).", gauge: true},
	"Runtime_mixed_commands":                  {metric: "sluice_runtime_mixed_commands_total", help: "Sluice: commands that saw a runtime other than the one they started with (must stay 0)."},
	"Query_digests_overflow":                  {metric: "sluice_query_digests_overflow_total", help: "Sluice: queries whose digest found the digest map full (mysql-query_digests_max_entries)."},
	"Client_Connections_handshakes_pending":   {metric: "sluice_client_connections_handshakes_pending", help: "Sluice: client connections that have not logged in yet.", gauge: true},
	"Client_Connections_handshakes_closed":    {metric: "sluice_client_connections_handshakes_closed_total", help: "Sluice: pending handshakes closed to make room past mysql-max_connections (a flood of sockets that never log in)."},
	"Query_Cache_Memory_bytes":                {metric: "proxysql_query_cache_memory_bytes", help: "Memory currently used by the query cache.", gauge: true},
	"Query_Cache_count_GET_OK":                {metric: "proxysql_query_cache_count_get_total", help: "Number of (failed|successful) read requests.", label: [2]string{"status", "ok"}},
	"Query_Cache_count_SET":                   {metric: "proxysql_query_cache_count_set_total", help: "Number of write requests."},
	"Query_Cache_bytes_IN":                    {metric: "proxysql_query_cache_bytes_total", help: "Number of bytes (read|written) into the Query Cache.", label: [2]string{"op", "written"}},
	"Query_Cache_bytes_OUT":                   {metric: "proxysql_query_cache_bytes_total", help: "Number of bytes (read|written) into the Query Cache.", label: [2]string{"op", "read"}},
	"Query_Cache_Purged":                      {metric: "proxysql_query_cache_purged_total", help: "Number of entries purged by the Query Cache due to TTL expiration."},
	"Query_Cache_Entries":                     {metric: "proxysql_query_cache_entries_total", help: "Number of entries currently stored in the query cache.", gauge: true}, // a counter in ProxySQL, whose value never falls there; a gauge here, since it does
	"automatic_detected_sql_injection":        {metric: "proxysql_automatic_detected_sql_injection_total", help: "Blocked a detected 'sql injection' attempt."},
	"whitelisted_sqli_fingerprint":            {metric: "proxysql_whitelisted_sqli_fingerprint_total", help: "Detected a whitelisted 'sql injection' fingerprint."},
	"client_host_error_killed_connections":    {metric: "proxysql_client_host_error_killed_connections", help: "Killed client connections because address exceeded 'client_host_error_counts'."},
	"Stmt_Client_Active_Total":                {metric: "proxysql_stmt_client_active", help: "The total number of prepared statements that are in use by clients.", gauge: true},
	"Stmt_Client_Active_Unique":               {metric: "proxysql_stmt_client_active_unique", help: "This variable tracks the number of unique prepared statements currently in use by clients.", gauge: true},
	"Stmt_Server_Active_Total":                {metric: "proxysql_stmt_server_active", help: "The total number of prepared statements currently available across all backend connections.", gauge: true},
	"Stmt_Server_Active_Unique":               {metric: "proxysql_stmt_server_active_unique", help: "The number of unique prepared statements currently available across all backend connections.", gauge: true},
	"Stmt_Cached":                             {metric: "proxysql_stmt_cached", help: "This is the number of global prepared statements for which proxysql has metadata.", gauge: true},
	"Stmt_Max_Stmt_id":                        {metric: "proxysql_stmt_max_stmt_id", help: "When starting a new global prepared statement, a new \"stmt_id\" is used. Stmt_Max_Stmt_id represents the maximum \"stmt_id\" ever used.", gauge: true},
	"MySQL_Monitor_connect_check_OK":          {metric: "proxysql_mysql_monitor_connect_check_total", help: monConnectHelp, label: [2]string{"status", "ok"}},
	"MySQL_Monitor_connect_check_ERR":         {metric: "proxysql_mysql_monitor_connect_check_total", help: monConnectHelp, label: [2]string{"status", "err"}},
	"MySQL_Monitor_ping_check_OK":             {metric: "proxysql_mysql_monitor_ping_check_total", help: monPingHelp, label: [2]string{"status", "ok"}},
	"MySQL_Monitor_ping_check_ERR":            {metric: "proxysql_mysql_monitor_ping_check_total", help: monPingHelp, label: [2]string{"status", "err"}},
	"MySQL_Monitor_read_only_check_OK":        {metric: "proxysql_mysql_monitor_read_only_check_total", help: monReadOnlyHelp, label: [2]string{"status", "ok"}},
	"MySQL_Monitor_read_only_check_ERR":       {metric: "proxysql_mysql_monitor_read_only_check_total", help: monReadOnlyHelp, label: [2]string{"status", "err"}},
	"MySQL_Monitor_replication_lag_check_OK":  {metric: "proxysql_mysql_monitor_replication_lag_check_total", help: monLagHelp, label: [2]string{"status", "ok"}},
	"MySQL_Monitor_replication_lag_check_ERR": {metric: "proxysql_mysql_monitor_replication_lag_check_total", help: monLagHelp, label: [2]string{"status", "err"}},
}

const (
	clientConnsHelp   = "Total number of client connections created or failed (including improperly closed)."
	serverConnsHelp   = "Total number of server connections (created|delayed|aborted)."
	backendStmtHelp   = "Represents the number of statements (PREPARE|EXECUTE|CLOSE) executed by ProxySQL against the backends."
	frontendStmtHelp  = "Represents the number of statements (PREPARE|EXECUTE|CLOSE) executed by clients."
	backendBytesHelp  = "Total number of bytes (sent|received) in backend connections."
	frontendBytesHelp = "Total number of bytes (sent|received) in frontend connections."
	monConnectHelp    = "Number of (succeed|failed) 'connect checks' from 'monitor_connect_thread'."
	monPingHelp       = "Number of (succeed|failed) 'ping checks' from 'monitor_ping_thread'."
	monReadOnlyHelp   = "Number of (succeed|failed) 'read only checks' from 'monitor_read_only_thread'."
	monLagHelp        = "Number of (succeed|failed)'replication lag checks' from 'monitor_replication_lag_thread'."
)

var (
	hgLabels          = []string{"hostgroup", "endpoint"}
	descConns         = prometheus.NewDesc("proxysql_connpool_conns", "How many backend connections are currently (free|used).", append(hgLabels, "status"), nil)
	descConnsTotal    = prometheus.NewDesc("proxysql_connpool_conns_total", "How many connections have been tried to be established.", append(hgLabels, "status"), nil)
	descConnQueries   = prometheus.NewDesc("proxysql_connpool_conns_queries_total", "The number of queries routed towards this particular backend server.", hgLabels, nil)
	descDataBytes     = prometheus.NewDesc("proxysql_connpool_data_bytes_total", "Amount of data (sent|recv) from the backend, excluding metadata.", append(hgLabels, "traffic_flow"), nil)
	descLatency       = prometheus.NewDesc("proxysql_connpool_conns_latency_us", "The currently ping time in microseconds, as reported from Monitor.", hgLabels, nil)
	descStatus        = prometheus.NewDesc("proxysql_connpool_conns_status", "The status of the backend server (1 - ONLINE, 2 - SHUNNED, 3 - OFFLINE_SOFT, 4 - OFFLINE_HARD, 5 - SHUNNED_REPLICATION_LAG).", hgLabels, nil)
	errLabels         = []string{"hostgroup", "address", "port", "code"}
	descMySQLErrors   = prometheus.NewDesc("mysql_error_total", "Tracks the mysql errors encountered.", errLabels, nil)
	descProxyErrors   = prometheus.NewDesc("proxysql_mysql_error_total", "Tracks the mysql errors generated by proxysql.", errLabels, nil)
	descMaxUsed       = prometheus.NewDesc("sluice_connpool_conns_max_used", "Sluice: the most connections in use at once on the server.", hgLabels, nil)
	descServerErrors  = prometheus.NewDesc("sluice_server_errors_total", "Sluice: failed operations on the server, as the proxy observed them (the health factor's input).", hgLabels, nil)
	descServerQueryS  = prometheus.NewDesc("sluice_server_query_seconds_total", "Sluice: total time of the queries counted on the server (with proxysql_connpool_conns_queries_total: the mean latency).", hgLabels, nil)
	descVersion       = prometheus.NewDesc("proxysql_version_info", "ProxySQL version.", []string{"version", "version_comment"}, nil)
	descMigrations    = prometheus.NewDesc("sluice_migrations_total", "Sluice: sessions moved between servers (stats_mysql_migrations), by reason and outcome.", []string{"hostgroup", "from", "to", "reason", "outcome"}, nil)
	descMaxConns      = prometheus.NewDesc("proxysql_mysql_max_connections", "The maximum number of client connections that the proxy can handle.", nil, nil)
	descMonitorOn     = prometheus.NewDesc("proxysql_mysql_monitor_enabled", "Enables or disables MySQL Monitor.", nil, nil)
	descWaitTimeout   = prometheus.NewDesc("proxysql_mysql_wait_timeout", "If a proxy session has been idle for more than this threshold, the proxy will kill the session.", nil, nil)
	descRoutableHG    = prometheus.NewDesc("sluice_hostgroup_routable_servers", "Sluice: servers of the hostgroup that new requests may use now.", []string{"hostgroup"}, nil)
	descFdsInUse      = prometheus.NewDesc("proxysql_fds_in_use", "The number of file descriptors currently in use by ProxySQL.", nil, nil)
	descServerSession = prometheus.NewDesc("sluice_server_sessions", "Sluice: connections in use on the server that the balancer counts (TiProxy's connection score).", hgLabels, nil)
)

// statusCode is proxysql_connpool_conns_status's value of a status.
func statusCode(s backend.Status) float64 {
	switch s {
	case backend.StatusOnline:
		return 1
	case backend.StatusShunned:
		return 2
	case backend.StatusOfflineSoft:
		return 3
	case backend.StatusOfflineHard:
		return 4
	case backend.StatusShunnedReplicationLag:
		return 5
	}
	return 0
}

// collector is the prometheus.Collector of a Proxy.
type collector struct{ p *Proxy }

// Describe sends nothing: the collector is unchecked (its series follow
// the configuration).
func (c collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the proxy's counters now.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	descs := make(map[string]*prometheus.Desc, len(globalMetrics))
	for _, v := range p.globalVars() {
		m, ok := globalMetrics[v.Name]
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			continue
		}
		if m.scale != 0 {
			n *= m.scale
		}
		d := descs[m.metric]
		if d == nil {
			var labels []string
			if m.label[0] != "" {
				labels = []string{m.label[0]}
			}
			d = prometheus.NewDesc(m.metric, m.help, labels, nil)
			descs[m.metric] = d
		}
		typ := prometheus.CounterValue
		if m.gauge {
			typ = prometheus.GaugeValue
		}
		if m.label[0] != "" {
			ch <- prometheus.MustNewConstMetric(d, typ, n, m.label[1])
		} else {
			ch <- prometheus.MustNewConstMetric(d, typ, n)
		}
	}
	// The failed reads of the query cache, which stats_mysql_global shows
	// only as GET − GET_OK.
	if qc := p.router.QueryCache().Stats(); descs["proxysql_query_cache_count_get_total"] != nil {
		ch <- prometheus.MustNewConstMetric(descs["proxysql_query_cache_count_get_total"], prometheus.CounterValue,
			float64(qc.GET-qc.GETOK), "err")
	}
	snap := p.Runtime()
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, 1, config.ProxySQLVersion, "Sluice")
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(snap.Int("mysql-max_connections")))
	ch <- prometheus.MustNewConstMetric(descMonitorOn, prometheus.GaugeValue, b2f(snap.Bool("mysql-monitor_enabled") && p.monitor != nil))
	ch <- prometheus.MustNewConstMetric(descWaitTimeout, prometheus.GaugeValue, float64(snap.Int("mysql-wait_timeout")))
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		ch <- prometheus.MustNewConstMetric(descFdsInUse, prometheus.GaugeValue, float64(len(fds)-1)) // less the one reading it
	}

	// The errors of stats_mysql_errors by server and code, as ProxySQL's
	// two families split them: what the proxy generated (a query timeout's
	// 1907, the 1317 of a query it killed), and what servers returned or
	// the proxy met on them (failed connects among them).
	for k, n := range p.router.ErrorTotals() {
		d := descMySQLErrors
		if k.Proxy {
			d = descProxyErrors
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n),
			strconv.Itoa(k.Hostgroup), k.Host, strconv.Itoa(k.Port), strconv.Itoa(int(k.Errno)))
	}

	routable := map[int]int{}
	for _, s := range p.registry.Servers() {
		st := s.Stats()
		hg := strconv.Itoa(st.Hostgroup)
		ep := net.JoinHostPort(st.Host, strconv.Itoa(st.Port))
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(st.ConnUsed), hg, ep, "used")
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(st.ConnFree), hg, ep, "free")
		ch <- prometheus.MustNewConstMetric(descConnsTotal, prometheus.CounterValue, float64(st.ConnOK), hg, ep, "ok")
		ch <- prometheus.MustNewConstMetric(descConnsTotal, prometheus.CounterValue, float64(st.ConnERR), hg, ep, "err")
		ch <- prometheus.MustNewConstMetric(descConnQueries, prometheus.CounterValue, float64(st.Queries), hg, ep)
		ch <- prometheus.MustNewConstMetric(descDataBytes, prometheus.CounterValue, float64(st.BytesRecv), hg, ep, "recv")
		ch <- prometheus.MustNewConstMetric(descDataBytes, prometheus.CounterValue, float64(st.BytesSent), hg, ep, "sent")
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, float64(st.LatencyUs), hg, ep)
		ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, statusCode(st.Status), hg, ep)
		ch <- prometheus.MustNewConstMetric(descMaxUsed, prometheus.GaugeValue, float64(st.MaxConnUsed), hg, ep)
		ch <- prometheus.MustNewConstMetric(descServerErrors, prometheus.CounterValue, float64(st.Errors), hg, ep)
		ch <- prometheus.MustNewConstMetric(descServerQueryS, prometheus.CounterValue, st.QueryTime.Seconds(), hg, ep)
		ch <- prometheus.MustNewConstMetric(descServerSession, prometheus.GaugeValue, float64(s.ConnScore()), hg, ep)
		if _, ok := routable[st.Hostgroup]; !ok {
			routable[st.Hostgroup] = 0
		}
		if s.Healthy() && s.Weight() > 0 {
			routable[st.Hostgroup]++
		}
	}
	for hg, n := range routable {
		ch <- prometheus.MustNewConstMetric(descRoutableHG, prometheus.GaugeValue, float64(n), strconv.Itoa(hg))
	}
	for _, m := range p.router.Migrations() {
		ch <- prometheus.MustNewConstMetric(descMigrations, prometheus.CounterValue, float64(m.Count),
			strconv.Itoa(m.Hostgroup), m.From, m.To, m.Reason, m.Outcome)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PrometheusText renders the metrics in the Prometheus text format: the
// body of GET /metrics and the Data column of SHOW PROMETHEUS METRICS.
func (p *Proxy) PrometheusText() ([]byte, error) {
	mfs, err := p.promRegistry.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
