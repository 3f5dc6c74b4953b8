package storage

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// WriteRuntime replaces the runtime_* tables of module m with what the
// snapshot holds, in one transaction, so that SELECT … FROM runtime_x shows
// what RUNTIME runs. runtime_mysql_users shows each user once per role, with
// the password as its mysql_native_password hash, as ProxySQL does;
// runtime_global_variables keeps the other module's prefix untouched, and
// stats.global_variables gets mysql-max_allowed_packet (ProxySQL's #708).
func (s *Store) WriteRuntime(snap *config.Snapshot, m config.Module) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if snap == nil {
		snap = &config.Snapshot{}
	}
	ctx := context.Background()
	return s.inTx(ctx, "IMMEDIATE", func() error {
		if p := m.VarPrefix(); p != "" {
			vars := moduleVars(snap, m)
			if _, err := s.replaceVars(ctx, "main.runtime_global_variables", p, vars, true); err != nil {
				return err
			}
			if m != config.ModMySQLVariables {
				return nil
			}
			statsVars := map[string]string{}
			if v, ok := vars[maxAllowedPacket]; ok {
				statsVars[maxAllowedPacket] = v
			}
			_, err := s.replaceVars(ctx, "stats.global_variables", p, statsVars, true)
			return err
		}
		for _, t := range m.Tables() {
			cols, rows := tableRows(snap, t, true)
			if _, err := s.replaceRows(ctx, "main.runtime_"+t, cols, rows); err != nil {
				return fmt.Errorf("storage: write runtime_%s: %w", t, err)
			}
		}
		return nil
	})
}

// maxAllowedPacket is the one variable stats.global_variables mirrors.
const maxAllowedPacket = "mysql-max_allowed_packet"

// RuntimeToMemory writes module m of the snapshot to MEMORY (SAVE m TO
// MEMORY) in one transaction and returns the rows written. Table modules are
// replaced whole, except mysql_users: users RUNTIME does not have (inactive
// ones) stay in MEMORY, and the others come back with hashed passwords, as
// in ProxySQL. Variables are replaced for the module's prefix.
func (s *Store) RuntimeToMemory(snap *config.Snapshot, m config.Module) (int64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if snap == nil {
		snap = &config.Snapshot{}
	}
	ctx := context.Background()
	var total int64
	err := s.inTx(ctx, "IMMEDIATE", func() error {
		if p := m.VarPrefix(); p != "" {
			vars := moduleVars(snap, m)
			// An empty map means the module was never loaded: keep MEMORY.
			n, err := s.replaceVars(ctx, "main.global_variables", p, vars, len(vars) > 0)
			total = n
			return err
		}
		for _, t := range m.Tables() {
			cols, rows := tableRows(snap, t, false)
			var n int64
			var err error
			if t == "mysql_users" {
				n, err = s.replaceUsers(ctx, snap.Users, cols, rows)
			} else {
				n, err = s.replaceRows(ctx, "main."+t, cols, rows)
			}
			if err != nil {
				return fmt.Errorf("storage: save %s to MEMORY: %w", t, err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// moduleVars returns the variables of a variables module.
func moduleVars(snap *config.Snapshot, m config.Module) map[string]string {
	if m == config.ModMySQLVariables {
		return snap.MySQLVars
	}
	return snap.AdminVars
}

// replaceVars writes vars (sorted by name) into a global_variables table,
// first deleting the prefix's rows if del is set.
func (s *Store) replaceVars(ctx context.Context, table, prefix string, vars map[string]string, del bool) (int64, error) {
	if del {
		if _, err := s.conn.ExecContext(ctx, "DELETE FROM "+table+" WHERE variable_name LIKE ?", prefix+"%"); err != nil {
			return 0, fmt.Errorf("storage: clear %s: %w", table, err)
		}
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	var total int64
	for _, n := range names {
		res, err := s.conn.ExecContext(ctx, "INSERT OR REPLACE INTO "+table+" (variable_name, variable_value) VALUES (?, ?)", n, vars[n])
		if err != nil {
			return 0, fmt.Errorf("storage: write %s %s: %w", table, n, err)
		}
		k, _ := res.RowsAffected()
		total += k
	}
	return total, nil
}

// replaceRows empties table and inserts rows (cols may be "" for all columns
// in table order).
func (s *Store) replaceRows(ctx context.Context, table, cols string, rows [][]any) (int64, error) {
	if _, err := s.conn.ExecContext(ctx, "DELETE FROM "+table); err != nil {
		return 0, err
	}
	return s.insertRows(ctx, "INSERT INTO", table, cols, rows)
}

// replaceUsers replaces the MEMORY rows of the users present in the
// snapshot, leaving other users alone.
func (s *Store) replaceUsers(ctx context.Context, users []config.User, cols string, rows [][]any) (int64, error) {
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		if seen[u.Username] {
			continue
		}
		seen[u.Username] = true
		if _, err := s.conn.ExecContext(ctx, "DELETE FROM main.mysql_users WHERE username = ?", u.Username); err != nil {
			return 0, err
		}
	}
	return s.insertRows(ctx, "INSERT INTO", "main.mysql_users", cols, rows)
}

// insertRows inserts rows with one statement per row.
func (s *Store) insertRows(ctx context.Context, verb, table, cols string, rows [][]any) (int64, error) {
	var total int64
	for _, r := range rows {
		q := verb + " " + table
		if cols != "" {
			q += " (" + cols + ")"
		}
		q += " VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(r)), ", ") + ")"
		res, err := s.conn.ExecContext(ctx, q, r...)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// tableRows converts the snapshot's content of table t into rows for an
// INSERT with the returned column list ("" = all columns, for raw tables).
// With runtime set, users are split into one row per role and passwords are
// hashed (runtime_mysql_users); without it, users keep their row and only the
// password is hashed (SAVE MYSQL USERS TO MEMORY).
func tableRows(snap *config.Snapshot, t string, runtime bool) (string, [][]any) {
	var rows [][]any
	switch t {
	case "mysql_servers":
		for _, v := range snap.Servers {
			rows = append(rows, []any{v.HostgroupID, v.Hostname, v.Port, v.GTIDPort, strings.ToUpper(v.Status), v.Weight,
				v.Compression, v.MaxConnections, v.MaxReplicationLag, v.UseSSL, v.MaxLatencyMs, v.Comment})
		}
		return colsServers, rows
	case "mysql_servers_balance":
		for _, v := range snap.ServersBalance {
			rows = append(rows, []any{v.Hostname, v.Port, v.Labels, v.MetricsURL, v.Comment})
		}
		return colsServersBalance, rows
	case "mysql_replication_hostgroups":
		for _, v := range snap.ReplicationHostgroups {
			rows = append(rows, []any{v.WriterHostgroup, v.ReaderHostgroup, v.CheckType, v.Comment})
		}
		return colsReplication, rows
	case "mysql_hostgroup_attributes":
		for _, v := range snap.HostgroupAttributes {
			rows = append(rows, []any{v.HostgroupID, v.MaxNumOnlineServers, v.Autocommit, v.FreeConnectionsPct, v.InitConnect,
				v.Multiplex, v.ConnectionWarming, v.ThrottleConnectionsPerSec, v.IgnoreSessionVariables,
				v.HostgroupSettings, v.ServersDefaults, v.Comment})
		}
		return colsHGAttributes, rows
	case "mysql_users":
		for _, v := range snap.Users {
			user := func(active, backend, frontend bool) []any {
				return []any{v.Username, nativePasswordHash(v.Password), b2i(active), b2i(v.UseSSL), v.DefaultHostgroup,
					v.DefaultSchema, b2i(v.SchemaLocked), b2i(v.TransactionPersistent), b2i(v.FastForward),
					b2i(backend), b2i(frontend), v.MaxConnections, v.Attributes, v.Comment}
			}
			if !runtime {
				rows = append(rows, user(v.Active, v.Backend, v.Frontend))
				continue
			}
			if v.Frontend {
				rows = append(rows, user(true, false, true))
			}
			if v.Backend {
				rows = append(rows, user(true, true, false))
			}
		}
		return colsUsers, rows
	case "mysql_query_rules":
		for _, v := range snap.QueryRules {
			rows = append(rows, []any{v.RuleID, b2i(v.Active), v.Username, v.Schemaname, v.FlagIN, v.ClientAddr, v.ProxyAddr,
				v.ProxyPort, v.Digest, v.MatchDigest, v.MatchPattern, b2i(v.NegateMatchPattern), v.ReModifiers,
				v.FlagOUT, v.ReplacePattern, v.DestinationHostgroup, v.CacheTTL, v.CacheEmptyResult,
				v.CacheTimeout, v.Reconnect, v.Timeout, v.Retries, v.Delay, v.NextQueryFlagIN,
				v.MirrorFlagOUT, v.MirrorHostgroup, v.ErrorMsg, v.OKMsg, v.StickyConn, v.Multiplex,
				v.GTIDFromHostgroup, v.Log, b2i(v.Apply), v.Attributes, v.Comment})
		}
		return colsRules, rows
	case "mysql_query_rules_fast_routing":
		for _, v := range snap.FastRouting {
			rows = append(rows, []any{v.Username, v.Schemaname, v.FlagIN, v.DestinationHostgroup, v.Comment})
		}
		return colsFastRouting, rows
	case "scheduler":
		for _, v := range snap.Scheduler {
			rows = append(rows, []any{v.ID, b2i(v.Active), v.IntervalMs, v.Filename, v.Args[0], v.Args[1], v.Args[2],
				v.Args[3], v.Args[4], v.Comment})
		}
		return colsScheduler, rows
	case "proxysql_servers":
		for _, v := range snap.ProxySQLServers {
			rows = append(rows, []any{v.Hostname, v.Port, v.Weight, v.Comment})
		}
		return colsProxySQL, rows
	}
	for _, raw := range snap.Tables[t] {
		r := make([]any, len(raw))
		for i, v := range raw {
			r[i] = v
		}
		rows = append(rows, r)
	}
	return "", rows
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nativePasswordHash returns how RUNTIME shows a mysql_users password: a
// clear-text password becomes its mysql_native_password hash, "*" followed by
// the upper-case hex of SHA1(SHA1(password)). A password that is already such
// a hash, or a caching_sha2_password hash ("$A$…"), is returned unchanged, and
// an empty password stays empty.
func nativePasswordHash(pw string) string {
	if pw == "" || config.IsHashedPassword(pw) || strings.HasPrefix(pw, "$A$") {
		return pw
	}
	h1 := sha1.Sum([]byte(pw))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// runtimeRows reads what module m's checksum covers: the rows of its
// runtime twins in the order WriteRuntime wrote them, and for a variables
// module its runtime_global_variables rows by name.
func (s *Store) runtimeRows(ctx context.Context, m config.Module) ([][]sql.NullString, error) {
	if p := m.VarPrefix(); p != "" {
		q := "SELECT variable_name, variable_value FROM main.runtime_global_variables WHERE variable_name LIKE ?"
		if m == config.ModMySQLVariables {
			// ProxySQL leaves mysql-threads out: it never syncs across a cluster.
			q += " AND variable_name NOT IN ('mysql-threads')"
		}
		return s.rawRows(ctx, q+" ORDER BY variable_name", p+"%")
	}
	var all [][]sql.NullString
	for _, t := range m.Tables() {
		rows, err := s.rawRows(ctx, "SELECT * FROM main.runtime_"+t+" ORDER BY rowid")
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
	}
	return all, nil
}
