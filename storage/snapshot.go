package storage

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-proxy/sluice/internal/config"
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

// readTable fills the snapshot field of MEMORY table t: the typed field of
// a typed table (tables.go), else its raw rows in Tables.
func (s *Store) readTable(ctx context.Context, snap *config.Snapshot, t string) error {
	if tt, ok := typedTables[t]; ok {
		return tt.load(ctx, s, snap)
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
	_, out, err := readAll(rows, 0)
	return out, err
}
