package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	spooky "github.com/dgryski/go-spooky"
)

// ProxySQL Cluster: the queries a peer sends to fetch a module, and how the
// module checksums of runtime_checksums_values are computed from them.
//
// ProxySQL computes the checksum a node publishes for a module from the
// very result sets its peers fetch (ProxySQL_Cluster.hpp, "CLUSTER QUERIES
// DEFINITION"): a peer recomputes it from what it received and applies the
// module only when the two agree. So one list serves the three uses here —
// the checksum at LOAD (RecordLoad), the admin's answers to the queries,
// and the queries Sluice's own poller (internal/cluster) sends.

// ClusterQuery is one query of ProxySQL Cluster.
type ClusterQuery struct {
	// Text is the query as a ProxySQL peer sends it, byte for byte.
	Text string
	// Into is the MEMORY table its rows are written to by the node that
	// fetched them ("global_variables" for the variables modules).
	Into string
	// Optional is set for Sluice's own extra (mysql_servers_balance): a
	// ProxySQL peer neither sends nor answers it.
	Optional bool
	// run is what the Store runs to answer it: Text without PROXY_ and on the
	// tables Sluice has (mysql_servers_v2 is ProxySQL's internal copy of
	// the loaded mysql_servers; in Sluice that is runtime_mysql_servers as
	// the LOAD wrote it).
	run string
	// cached: a PROXY_SELECT, answered from the rows of the last LOAD, as
	// ProxySQL answers it from the loaded module rather than from a table
	// (runtime_mysql_servers is rewritten with live health when read).
	cached bool
}

// CLUSTER_QUERY_* of ProxySQL 2.7 (include/ProxySQL_Cluster.hpp).
const (
	queryRuntimeMySQLServers = "PROXY_SELECT hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment FROM runtime_mysql_servers WHERE status<>'OFFLINE_HARD' ORDER BY hostgroup_id, hostname, port"
	queryMySQLServersV2      = "PROXY_SELECT hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment FROM mysql_servers_v2 WHERE status<>'OFFLINE_HARD' ORDER BY hostgroup_id, hostname, port"
	queryReplicationHGs      = "PROXY_SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups ORDER BY writer_hostgroup"
	queryGroupReplHGs        = "PROXY_SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, max_writers, writer_is_also_reader, max_transactions_behind, comment FROM runtime_mysql_group_replication_hostgroups ORDER BY writer_hostgroup"
	queryGaleraHGs           = "PROXY_SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, max_writers, writer_is_also_reader, max_transactions_behind, comment FROM runtime_mysql_galera_hostgroups ORDER BY writer_hostgroup"
	queryAuroraHGs           = "PROXY_SELECT writer_hostgroup, reader_hostgroup, active, aurora_port, domain_name, max_lag_ms, check_interval_ms, check_timeout_ms, writer_is_also_reader, new_reader_weight, add_lag_ms, min_lag_ms, lag_num_checks, comment FROM runtime_mysql_aws_aurora_hostgroups ORDER BY writer_hostgroup"
	queryHGAttributes        = "PROXY_SELECT hostgroup_id, max_num_online_servers, autocommit, free_connections_pct, init_connect, multiplex, connection_warming, throttle_connections_per_sec, ignore_session_variables, hostgroup_settings, servers_defaults, comment FROM runtime_mysql_hostgroup_attributes ORDER BY hostgroup_id"
	queryServersSSLParams    = "PROXY_SELECT hostname, port, username, ssl_ca, ssl_cert, ssl_key, ssl_capath, ssl_crl, ssl_crlpath, ssl_cipher, tls_version, comment FROM runtime_mysql_servers_ssl_params ORDER BY hostname, port, username"
	queryServersBalance      = "PROXY_SELECT hostname, port, labels, metrics_url, comment FROM runtime_mysql_servers_balance ORDER BY hostname, port"
	queryMySQLUsers          = "PROXY_SELECT username, password, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, backend, frontend, max_connections, attributes, comment FROM runtime_mysql_users"
	queryQueryRules          = "PROXY_SELECT rule_id, username, schemaname, flagIN, client_addr, proxy_addr, proxy_port, digest, match_digest, match_pattern, negate_match_pattern, re_modifiers, flagOUT, replace_pattern, destination_hostgroup, cache_ttl, cache_empty_result, cache_timeout, reconnect, timeout, retries, delay, next_query_flagIN, mirror_flagOUT, mirror_hostgroup, error_msg, ok_msg, sticky_conn, multiplex, gtid_from_hostgroup, log, apply, attributes, comment FROM runtime_mysql_query_rules ORDER BY rule_id"
	queryQueryRulesFast      = "PROXY_SELECT username, schemaname, flagIN, destination_hostgroup, comment FROM runtime_mysql_query_rules_fast_routing ORDER BY username, schemaname, flagIN"
	// pull_global_variables_from_peer, with cluster_sync_interfaces=false
	// (the default): interfaces stay each node's own.
	queryMySQLVariables = "SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'mysql-%' AND variable_name NOT IN ('mysql-threads') AND variable_name NOT IN ('mysql-interfaces') ORDER BY variable_name"
	queryAdminVariables = "SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'admin-%' AND variable_name NOT IN ('admin-mysql_ifaces','admin-restapi_port','admin-telnet_admin_ifaces','admin-telnet_stats_ifaces','admin-web_port') ORDER BY variable_name"
	// pull_proxysql_servers_from_peer.
	queryProxySQLServers = "SELECT hostname, port, weight, comment FROM runtime_proxysql_servers ORDER BY hostname, port"
)

func proxyQuery(text, into string) ClusterQuery {
	run := strings.TrimPrefix(text, "PROXY_")
	run = strings.Replace(run, " FROM mysql_servers_v2 ", " FROM main.runtime_mysql_servers ", 1)
	run = strings.Replace(run, " FROM runtime_", " FROM main.runtime_", 1)
	return ClusterQuery{Text: text, Into: into, run: run, cached: true}
}

func plainQuery(text, into string) ClusterQuery {
	return ClusterQuery{Text: text, Into: into, run: strings.Replace(text, " FROM runtime_", " FROM main.runtime_", 1)}
}

// clusterQueries are the queries of each runtime_checksums_values row, in
// the order a peer sends them; the row's checksum is computed from their
// results as ProxySQL does (ClusterChecksum).
var clusterQueries = map[string][]ClusterQuery{
	"mysql_servers": {proxyQuery(queryRuntimeMySQLServers, "mysql_servers")},
	"mysql_servers_v2": {
		proxyQuery(queryMySQLServersV2, "mysql_servers"),
		proxyQuery(queryReplicationHGs, "mysql_replication_hostgroups"),
		proxyQuery(queryGroupReplHGs, "mysql_group_replication_hostgroups"),
		proxyQuery(queryGaleraHGs, "mysql_galera_hostgroups"),
		proxyQuery(queryAuroraHGs, "mysql_aws_aurora_hostgroups"),
		proxyQuery(queryHGAttributes, "mysql_hostgroup_attributes"),
		proxyQuery(queryServersSSLParams, "mysql_servers_ssl_params"),
		// Sluice's balancing extras: empty, its raw checksum is 0 and is
		// left out (ClusterChecksum), so a ProxySQL peer computes the same
		// checksum without it.
		func() ClusterQuery {
			q := proxyQuery(queryServersBalance, "mysql_servers_balance")
			q.Optional = true
			return q
		}(),
	},
	"mysql_users": {func() ClusterQuery {
		// ProxySQL answers with one row per user, frontend and backend
		// together (MySQL_Authentication's resultset); runtime_mysql_users
		// has a row for each. Ordered, so that equal users give equal
		// checksums on every node.
		q := proxyQuery(queryMySQLUsers, "mysql_users")
		q.run = "SELECT username, password, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, " +
			"MAX(backend) AS backend, MAX(frontend) AS frontend, max_connections, attributes, comment FROM main.runtime_mysql_users " +
			"GROUP BY username, password, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, max_connections, attributes, comment " +
			"ORDER BY username, backend"
		return q
	}()},
	"mysql_query_rules": {proxyQuery(queryQueryRules, "mysql_query_rules"), proxyQuery(queryQueryRulesFast, "mysql_query_rules_fast_routing")},
	"mysql_variables":   {plainQuery(queryMySQLVariables, "global_variables")},
	"admin_variables":   {plainQuery(queryAdminVariables, "global_variables")},
	"proxysql_servers":  {plainQuery(queryProxySQLServers, "proxysql_servers")},
}

// ClusterQueries returns the queries that fetch the module behind a
// runtime_checksums_values row (mysql_servers_v2 for MYSQL SERVERS), in the
// order a peer sends them, or nil for an unknown name.
func ClusterQueries(name string) []ClusterQuery {
	return clusterQueries[name]
}

// ChecksumSum adds raw checksums as ProxySQL does for a module fetched with
// several queries (mysql_query_rules: rules plus fast routing), and formats
// the sum as runtime_checksums_values shows it.
func ChecksumSum(results ...[][]sql.NullString) string {
	var h uint64
	for _, r := range results {
		h += rawChecksum(r)
	}
	return formatChecksum(h)
}

// ClusterChecksum is the checksum of runtime_checksums_values row name
// computed from the results of its ClusterQueries, in order, as ProxySQL
// computes it: for mysql_users usersChecksum, for mysql_servers_v2 ProxySQL's
// compute_servers_tables_raw_checksum (the raw checksums that are not 0,
// each as its 8 bytes in memory order, hashed with SpookyHash seeded
// (19, 3); 0 when every result is empty), for the others the sum of the
// raw checksums.
func ClusterChecksum(name string, results ...[][]sql.NullString) string {
	if name == "mysql_users" && len(results) == 1 {
		return formatChecksum(usersChecksum(results[0]))
	}
	if name != "mysql_servers_v2" {
		return ChecksumSum(results...)
	}
	var h *spooky.Spooky
	var buf [8]byte
	for _, r := range results {
		raw := rawChecksum(r)
		if raw == 0 {
			continue
		}
		if h == nil {
			h = spooky.New(19, 3)
		}
		binary.LittleEndian.PutUint64(buf[:], raw)
		_, _ = h.Write(buf[:])
	}
	if h == nil {
		return formatChecksum(0)
	}
	return formatChecksum(h.Sum64())
}

// usersChecksum is ProxySQL 2.7's MySQL_Authentication::get_runtime_checksum
// of the answer to its mysql_users PROXY_SELECT (username, password,
// use_ssl, default_hostgroup, default_schema, schema_locked,
// transaction_persistent, fast_forward, backend, frontend,
// max_connections, attributes, comment): the backend accounts and the
// frontend accounts are each put in a map keyed by the SpookyHash (1, 2)
// of the username (the first row of a username wins), and each map is
// hashed in key order with SpookyHash (13, 4) — for every account whose
// default_hostgroup is not negative, use_ssl (1 byte), default_hostgroup
// (4 bytes), schema_locked, transaction_persistent, fast_forward (1 byte
// each), max_connections (4 bytes), then username, password,
// default_schema, comment and attributes — 0 for a map without such an
// account. The checksum is the sum of the two.
func usersChecksum(rows [][]sql.NullString) uint64 {
	type account struct {
		key uint64
		row []sql.NullString
	}
	var backends, frontends []account
	seenB, seenF := map[uint64]bool{}, map[uint64]bool{}
	for _, r := range rows {
		if len(r) < 13 {
			continue
		}
		h1, h2 := uint64(1), uint64(2)
		spooky.Hash128([]byte(r[0].String), &h1, &h2)
		if r[8].String == "1" && !seenB[h1] {
			seenB[h1] = true
			backends = append(backends, account{h1, r})
		}
		if r[9].String == "1" && !seenF[h1] {
			seenF[h1] = true
			frontends = append(frontends, account{h1, r})
		}
	}
	hashAccounts := func(accs []account) uint64 {
		slices.SortFunc(accs, func(a, b account) int { return cmp.Compare(a.key, b.key) })
		var h *spooky.Spooky
		flag := func(v sql.NullString) []byte {
			if v.String == "1" {
				return []byte{1}
			}
			return []byte{0}
		}
		int32LE := func(v sql.NullString) []byte {
			n, _ := strconv.ParseInt(strings.TrimSpace(v.String), 10, 32)
			return binary.LittleEndian.AppendUint32(nil, uint32(int32(n)))
		}
		for _, a := range accs {
			r := a.row
			if hg, _ := strconv.ParseInt(strings.TrimSpace(r[3].String), 10, 32); hg < 0 {
				continue
			}
			if h == nil {
				h = spooky.New(13, 4)
			}
			for _, b := range [][]byte{flag(r[2]), int32LE(r[3]), flag(r[5]), flag(r[6]), flag(r[7]), int32LE(r[10]),
				[]byte(r[0].String), []byte(r[1].String), []byte(r[4].String), []byte(r[12].String), []byte(r[11].String)} {
				_, _ = h.Write(b)
			}
		}
		if h == nil {
			return 0
		}
		return h.Sum64()
	}
	return hashAccounts(backends) + hashAccounts(frontends)
}

// clusterResult is a cached answer to a PROXY_SELECT.
type clusterResult struct {
	cols []string
	rows [][]sql.NullString
}

// computeChecksum runs the queries of checksum row name on the runtime
// tables, caches the answers of the PROXY_SELECT ones and returns the
// checksum. The caller holds s.mu.
func (s *Store) computeChecksum(ctx context.Context, name string) (string, error) {
	qs := clusterQueries[name]
	results := make([][][]sql.NullString, 0, len(qs))
	for _, q := range qs {
		rows, err := s.conn.QueryContext(ctx, q.run)
		if err != nil {
			return "", fmt.Errorf("storage: checksum %s: %w", name, err)
		}
		cols, out, err := readAll(rows, 0)
		rows.Close()
		if err != nil {
			return "", fmt.Errorf("storage: checksum %s: %w", name, err)
		}
		if q.cached {
			// The columns are named as the query spells them (SQLite
			// names them as the table does: OK_msg for ok_msg).
			if named := selectList(q.Text); len(named) == len(cols) {
				cols = named
			}
			s.clusterCache[q.Text] = &clusterResult{cols: cols, rows: out}
		}
		results = append(results, out)
	}
	return ClusterChecksum(name, results...), nil
}

// selectList is the select list of a PROXY_SELECT, as written.
func selectList(q string) []string {
	list, _, _ := strings.Cut(strings.TrimPrefix(q, "PROXY_SELECT "), " FROM ")
	return strings.Split(list, ", ")
}

// ClusterAnswer answers a PROXY_SELECT of ProxySQL Cluster from the rows of
// the module's last LOAD. ok is false when q is not one of those queries
// (the admin then runs it as any other statement).
func (s *Store) ClusterAnswer(q string) (cols []string, rows [][]sql.NullString, ok bool) {
	if err := s.lock(); err != nil {
		return nil, nil, false
	}
	defer s.mu.Unlock()
	r, ok := s.clusterCache[q]
	if !ok {
		return nil, nil, false
	}
	return r.cols, r.rows, true
}

// IsClusterQuery reports whether q is, byte for byte, a query a ProxySQL
// Cluster peer sends to fetch a module.
func IsClusterQuery(q string) bool {
	for _, qs := range clusterQueries {
		for _, c := range qs {
			if c.Text == q {
				return true
			}
		}
	}
	return false
}

// ModuleChecksum is one runtime_checksums_values row.
type ModuleChecksum struct {
	Name     string
	Version  int64
	Epoch    int64
	Checksum string
}

// Checksums returns the runtime_checksums_values rows, by name.
func (s *Store) Checksums() (map[string]ModuleChecksum, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make(map[string]ModuleChecksum, len(s.checksums))
	for n, v := range s.checksums {
		out[n] = ModuleChecksum{Name: n, Version: v.version, Epoch: v.epoch, Checksum: v.checksum}
	}
	return out, nil
}

// Column is one column of a MEMORY configuration table.
type Column struct {
	Name string
	// Default is the value the DDL's DEFAULT gives (nil when it has none,
	// or when it is NULL).
	Default any
}

// Columns returns the columns of a MEMORY configuration table, in order,
// with their defaults.
func (s *Store) Columns(table string) ([]Column, error) {
	if !isPlainIdent(table) {
		return nil, fmt.Errorf("storage: bad table name %q", table)
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	rows, err := s.rawRows(context.Background(), "SELECT name, dflt_value FROM pragma_table_info(?, 'main') ORDER BY cid", table)
	if err != nil {
		return nil, err
	}
	out := make([]Column, len(rows))
	for i, r := range rows {
		out[i] = Column{Name: r[0].String, Default: sqlLiteral(r[1])}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("storage: no table main.%s", table)
	}
	return out, nil
}

// sqlLiteral is the value of a DDL default: a quoted string, a number, or
// NULL (nil).
func sqlLiteral(v sql.NullString) any {
	t := strings.TrimSpace(v.String)
	if !v.Valid || strings.EqualFold(t, "NULL") {
		return nil
	}
	if len(t) >= 2 && t[0] == '\'' && t[len(t)-1] == '\'' {
		return strings.ReplaceAll(t[1:len(t)-1], "''", "'")
	}
	return t
}
