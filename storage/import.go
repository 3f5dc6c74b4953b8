package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// ReplaceMemory writes rows fetched from elsewhere into module m's MEMORY
// tables, in one transaction: each table named in tables is emptied and
// gets the rows given (in the table's column order); tables of m not named
// are left as they are. For the variables modules the rows are
// (variable_name, variable_value) pairs written with INSERT OR REPLACE, and
// every name must carry the module's prefix: variables not given keep their
// value, as in ProxySQL, whose cluster leaves the interfaces alone.
// Both ProxySQL Cluster pulls (internal/cluster) and the etcd store
// (internal/etcdsync) write through it, via admin.ImportModule.
func (s *Store) ReplaceMemory(m config.Module, tables map[string][][]any) error {
	own := make(map[string]bool)
	for _, t := range m.Tables() {
		own[t] = true
	}
	for t := range tables {
		if !own[t] {
			return fmt.Errorf("storage: %s is not a table of %s", t, m)
		}
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	return s.inTx(ctx, "IMMEDIATE", func() error {
		if p := m.VarPrefix(); p != "" {
			for _, r := range tables["global_variables"] {
				if len(r) != 2 {
					return fmt.Errorf("storage: global_variables row has %d values, want 2", len(r))
				}
				name, ok := r[0].(string)
				if !ok || !strings.HasPrefix(name, p) {
					return fmt.Errorf("storage: variable %v is not of %s", r[0], m)
				}
			}
			_, err := s.insertRows(ctx, "INSERT OR REPLACE INTO", "main.global_variables", "variable_name, variable_value", tables["global_variables"])
			return err
		}
		for _, t := range m.Tables() {
			rows, ok := tables[t]
			if !ok {
				continue
			}
			if _, err := s.conn.ExecContext(ctx, "DELETE FROM main."+t); err != nil {
				return err
			}
			if _, err := s.insertRows(ctx, "INSERT INTO", "main."+t, "", rows); err != nil {
				return fmt.Errorf("storage: %s: %w", t, err)
			}
		}
		return nil
	})
}
