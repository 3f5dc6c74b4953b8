package storage

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// WriteRuntime replaces the runtime_* tables of module m with what the
// snapshot holds, in one transaction, so that SELECT … FROM runtime_x shows
// what RUNTIME runs. runtime_mysql_users shows each user once per role, with
// the password exactly as mysql_users holds it, clear text or hash, as
// ProxySQL 2.6+ does (2.5 and older hashed clear-text passwords under
// admin-hash_passwords; sysown/proxysql#4218 removed that);
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
// replaced whole, except mysql_users: users RUNTIME does not have stay in
// MEMORY, inactive, and the others come back as RUNTIME holds them, the
// password unchanged (ProxySQL 2.6+). Variables are replaced for the
// module's prefix.
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
// snapshot and marks every other user inactive, as ProxySQL's SAVE MYSQL
// USERS FROM RUNTIME does: a user added to MEMORY and never loaded does not
// become active at the next LOAD.
func (s *Store) replaceUsers(ctx context.Context, users []config.User, cols string, rows [][]any) (int64, error) {
	if _, err := s.conn.ExecContext(ctx, "UPDATE main.mysql_users SET active = 0"); err != nil {
		return 0, err
	}
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

// insertRows inserts rows with one statement per row, each statement
// prepared once per row width: preparing (parsing and compiling the INSERT
// with its constraint checks) cost more than executing it, about half of a
// LOAD MYSQL USERS TO RUNTIME with 10 000 users when it was done per row.
func (s *Store) insertRows(ctx context.Context, verb, table, cols string, rows [][]any) (int64, error) {
	var total int64
	stmts := make(map[int]*sql.Stmt, 1)
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for _, r := range rows {
		st := stmts[len(r)]
		if st == nil {
			q := verb + " " + table
			if cols != "" {
				q += " (" + cols + ")"
			}
			q += " VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(r)), ", ") + ")"
			var err error
			if st, err = s.conn.PrepareContext(ctx, q); err != nil {
				return 0, err
			}
			stmts[len(r)] = st
		}
		res, err := st.ExecContext(ctx, r...)
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
// With runtime set, they are the rows of runtime_<t>: users are split into
// one row per role (see userRows). Passwords are written as they are.
func tableRows(snap *config.Snapshot, t string, runtime bool) (string, [][]any) {
	if tt, ok := typedTables[t]; ok {
		return tt.insertRows(snap, runtime)
	}
	var rows [][]any
	for _, raw := range snap.Tables[t] {
		r := make([]any, len(raw))
		for i, v := range raw {
			r[i] = v
		}
		rows = append(rows, r)
	}
	return "", rows
}
