package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// Column lists of the tables Sluice reads into typed snapshot fields. The
// same lists write the runtime_* twins, so a column cannot be read and then
// forgotten on the way back.
const (
	colsServers = "hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, " +
		"max_replication_lag, use_ssl, max_latency_ms, comment"
	colsServersBalance = "hostname, port, labels, metrics_url, comment"
	colsReplication    = "writer_hostgroup, reader_hostgroup, check_type, comment"
	colsHGAttributes   = "hostgroup_id, max_num_online_servers, autocommit, free_connections_pct, init_connect, " +
		"multiplex, connection_warming, throttle_connections_per_sec, ignore_session_variables, " +
		"hostgroup_settings, servers_defaults, comment"
	colsUsers = "username, password, active, use_ssl, default_hostgroup, default_schema, schema_locked, " +
		"transaction_persistent, fast_forward, backend, frontend, max_connections, attributes, comment"
	colsRules = "rule_id, active, username, schemaname, flagIN, client_addr, proxy_addr, proxy_port, digest, " +
		"match_digest, match_pattern, negate_match_pattern, re_modifiers, flagOUT, replace_pattern, " +
		"destination_hostgroup, cache_ttl, cache_empty_result, cache_timeout, reconnect, timeout, retries, delay, " +
		"next_query_flagIN, mirror_flagOUT, mirror_hostgroup, error_msg, OK_msg, sticky_conn, multiplex, " +
		"gtid_from_hostgroup, log, apply, attributes, comment"
	colsFastRouting = "username, schemaname, flagIN, destination_hostgroup, comment"
	colsScheduler   = "id, active, interval_ms, filename, arg1, arg2, arg3, arg4, arg5, comment"
	colsProxySQL    = "hostname, port, weight, comment"
)

// BuildSnapshot reads module m from MEMORY, inside one read transaction, and
// returns a copy of base with that module's fields replaced. Query rules are
// the active ones in rule_id order; users are the active ones with a
// default_hostgroup >= 0, as ProxySQL loads them; server statuses are upper
// case. Tables without a typed field are returned as raw rows in Tables.
func (s *Store) BuildSnapshot(base *config.Snapshot, m config.Module) (*config.Snapshot, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	snap := base.Clone()
	if snap.Tables == nil {
		snap.Tables = make(map[string][][]sql.NullString)
	}
	err := s.inTx(ctx, "DEFERRED", func() error {
		if p := m.VarPrefix(); p != "" {
			vars, err := s.readVars(ctx, "main.global_variables", p)
			if err != nil {
				return err
			}
			if m == config.ModMySQLVariables {
				snap.MySQLVars = vars
			} else {
				snap.AdminVars = vars
			}
			return nil
		}
		for _, t := range m.Tables() {
			if err := s.readTable(ctx, snap, t); err != nil {
				return fmt.Errorf("storage: read MEMORY %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// readVars returns the rows of a global_variables table whose name starts
// with prefix.
func (s *Store) readVars(ctx context.Context, table, prefix string) (map[string]string, error) {
	vars := make(map[string]string)
	err := s.each(ctx, "SELECT variable_name, variable_value FROM "+table+" WHERE variable_name LIKE ?",
		[]any{prefix + "%"}, func(r *sql.Rows) error {
			var name, value string
			if err := r.Scan(&name, &value); err != nil {
				return err
			}
			vars[name] = value
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", table, err)
	}
	return vars, nil
}

// readTable fills the snapshot field of MEMORY table t.
func (s *Store) readTable(ctx context.Context, snap *config.Snapshot, t string) error {
	switch t {
	case "mysql_servers":
		var out []config.Server
		err := s.each(ctx, "SELECT "+colsServers+" FROM main.mysql_servers ORDER BY hostgroup_id, hostname, port", nil,
			func(r *sql.Rows) error {
				var v config.Server
				if err := r.Scan(&v.HostgroupID, &v.Hostname, &v.Port, &v.GTIDPort, &v.Status, &v.Weight, &v.Compression,
					&v.MaxConnections, &v.MaxReplicationLag, &v.UseSSL, &v.MaxLatencyMs, &v.Comment); err != nil {
					return err
				}
				v.Status = strings.ToUpper(v.Status)
				out = append(out, v)
				return nil
			})
		snap.Servers = out
		return err
	case "mysql_servers_balance":
		var out []config.ServerBalance
		err := s.each(ctx, "SELECT "+colsServersBalance+" FROM main.mysql_servers_balance ORDER BY hostname, port", nil,
			func(r *sql.Rows) error {
				var v config.ServerBalance
				if err := r.Scan(&v.Hostname, &v.Port, &v.Labels, &v.MetricsURL, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.ServersBalance = out
		return err
	case "mysql_replication_hostgroups":
		var out []config.ReplicationHostgroup
		err := s.each(ctx, "SELECT "+colsReplication+" FROM main.mysql_replication_hostgroups ORDER BY writer_hostgroup", nil,
			func(r *sql.Rows) error {
				var v config.ReplicationHostgroup
				if err := r.Scan(&v.WriterHostgroup, &v.ReaderHostgroup, &v.CheckType, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.ReplicationHostgroups = out
		return err
	case "mysql_hostgroup_attributes":
		var out []config.HostgroupAttributes
		err := s.each(ctx, "SELECT "+colsHGAttributes+" FROM main.mysql_hostgroup_attributes ORDER BY hostgroup_id", nil,
			func(r *sql.Rows) error {
				var v config.HostgroupAttributes
				if err := r.Scan(&v.HostgroupID, &v.MaxNumOnlineServers, &v.Autocommit, &v.FreeConnectionsPct, &v.InitConnect,
					&v.Multiplex, &v.ConnectionWarming, &v.ThrottleConnectionsPerSec, &v.IgnoreSessionVariables,
					&v.HostgroupSettings, &v.ServersDefaults, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.HostgroupAttributes = out
		return err
	case "mysql_users":
		var out []config.User
		err := s.each(ctx, "SELECT "+colsUsers+" FROM main.mysql_users WHERE active=1 AND default_hostgroup>=0 ORDER BY username, backend DESC", nil,
			func(r *sql.Rows) error {
				var v config.User
				var password, schema sql.NullString
				if err := r.Scan(&v.Username, &password, &v.Active, &v.UseSSL, &v.DefaultHostgroup, &schema, &v.SchemaLocked,
					&v.TransactionPersistent, &v.FastForward, &v.Backend, &v.Frontend, &v.MaxConnections,
					&v.Attributes, &v.Comment); err != nil {
					return err
				}
				v.Password, v.DefaultSchema = password.String, schema.String
				out = append(out, v)
				return nil
			})
		snap.Users = out
		return err
	case "mysql_query_rules":
		var out []config.QueryRule
		err := s.each(ctx, "SELECT "+colsRules+" FROM main.mysql_query_rules WHERE active=1 ORDER BY rule_id", nil,
			func(r *sql.Rows) error {
				var v config.QueryRule
				if err := r.Scan(&v.RuleID, &v.Active, &v.Username, &v.Schemaname, &v.FlagIN, &v.ClientAddr, &v.ProxyAddr,
					&v.ProxyPort, &v.Digest, &v.MatchDigest, &v.MatchPattern, &v.NegateMatchPattern, &v.ReModifiers,
					&v.FlagOUT, &v.ReplacePattern, &v.DestinationHostgroup, &v.CacheTTL, &v.CacheEmptyResult,
					&v.CacheTimeout, &v.Reconnect, &v.Timeout, &v.Retries, &v.Delay, &v.NextQueryFlagIN,
					&v.MirrorFlagOUT, &v.MirrorHostgroup, &v.ErrorMsg, &v.OKMsg, &v.StickyConn, &v.Multiplex,
					&v.GTIDFromHostgroup, &v.Log, &v.Apply, &v.Attributes, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.QueryRules = out
		return err
	case "mysql_query_rules_fast_routing":
		var out []config.FastRoute
		err := s.each(ctx, "SELECT "+colsFastRouting+" FROM main.mysql_query_rules_fast_routing ORDER BY username, schemaname, flagIN", nil,
			func(r *sql.Rows) error {
				var v config.FastRoute
				if err := r.Scan(&v.Username, &v.Schemaname, &v.FlagIN, &v.DestinationHostgroup, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.FastRouting = out
		return err
	case "scheduler":
		var out []config.SchedulerJob
		err := s.each(ctx, "SELECT "+colsScheduler+" FROM main.scheduler ORDER BY id", nil,
			func(r *sql.Rows) error {
				var v config.SchedulerJob
				if err := r.Scan(&v.ID, &v.Active, &v.IntervalMs, &v.Filename, &v.Args[0], &v.Args[1], &v.Args[2],
					&v.Args[3], &v.Args[4], &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.Scheduler = out
		return err
	case "proxysql_servers":
		var out []config.ProxySQLServer
		err := s.each(ctx, "SELECT "+colsProxySQL+" FROM main.proxysql_servers ORDER BY hostname, port", nil,
			func(r *sql.Rows) error {
				var v config.ProxySQLServer
				if err := r.Scan(&v.Hostname, &v.Port, &v.Weight, &v.Comment); err != nil {
					return err
				}
				out = append(out, v)
				return nil
			})
		snap.ProxySQLServers = out
		return err
	}
	rows, err := s.rawRows(ctx, "SELECT * FROM main."+t+" ORDER BY rowid")
	if err != nil {
		return err
	}
	snap.Tables[t] = rows
	return nil
}

// each runs a query and calls fn for every row.
func (s *Store) each(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rawRows runs a query and returns every value as text, NULL kept, as
// sqlite3_column_text would give it.
func (s *Store) rawRows(ctx context.Context, q string, args ...any) ([][]sql.NullString, error) {
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	_, out, err := readAll(rows)
	return out, err
}
