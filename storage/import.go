package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// ReplaceMemoryModule writes rows that came from another node (cluster
// sync) into module m's MEMORY tables, in one transaction. tables is keyed
// by MEMORY table name; each row holds a value for every column of that
// table, in the table's column order (nil is NULL). A table of m that is
// not in tables is left as it is. For a variables module the only table is
// global_variables, rows are (variable_name, variable_value), every name
// must carry the module's prefix, and the module's rows are replaced while
// the other module's stay. Nothing is loaded to RUNTIME here.
func (s *Store) ReplaceMemoryModule(m config.Module, tables map[string][][]any) error {
	own := m.Tables()
	if len(own) == 0 {
		return fmt.Errorf("storage: module %s has no tables", m)
	}
	for t := range tables {
		if !slices.Contains(own, t) {
			return fmt.Errorf("storage: table %q is not part of %s", t, m)
		}
	}
	prefix := m.VarPrefix()
	if prefix != "" {
		for i, r := range tables["global_variables"] {
			name, ok := r[0].(string)
			if len(r) != 2 || !ok || !strings.HasPrefix(name, prefix) {
				return fmt.Errorf("storage: global_variables row %d is not a %s variable", i, prefix)
			}
		}
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	if _, err := s.conn.ExecContext(ctx, "PRAGMA foreign_keys=OFF"); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return s.inTx(ctx, "IMMEDIATE", func() error {
		for _, t := range own {
			rows, ok := tables[t]
			if !ok {
				continue
			}
			ncols, err := s.columnCount(ctx, "main", t)
			if err != nil {
				return err
			}
			del, args := "DELETE FROM main."+t, []any(nil)
			if prefix != "" {
				del, args = del+" WHERE variable_name LIKE ?", []any{prefix + "%"}
			}
			if _, err := s.conn.ExecContext(ctx, del, args...); err != nil {
				return fmt.Errorf("storage: clear main.%s: %w", t, sqlError(err))
			}
			ins := "INSERT INTO main." + t + " VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
			for i, r := range rows {
				if len(r) != ncols {
					return fmt.Errorf("storage: main.%s row %d has %d values for %d columns", t, i, len(r), ncols)
				}
				if _, err := s.conn.ExecContext(ctx, ins, r...); err != nil {
					return fmt.Errorf("storage: main.%s row %d: %w", t, i, sqlError(err))
				}
			}
		}
		return nil
	})
}

// columnCount is the number of columns of schema.table.
func (s *Store) columnCount(ctx context.Context, schema, table string) (int, error) {
	var n int
	err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info(?, ?)", table, schema).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage: columns of %s.%s: %w", schema, table, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("storage: no table %s.%s", schema, table)
	}
	return n, nil
}
