package storage

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-proxy/sluice/internal/config"
)

// InitDefaults writes the compiled-in variable defaults (ProxySQL's
// bootstrap step 4): DISK gets the rows it lacks (INSERT OR IGNORE, so saved
// values win), and MEMORY's global_variables is cleared and refilled with the
// defaults. Read-only variables (admin-version) are overwritten on DISK too:
// they describe this binary, not a choice. One transaction.
func (s *Store) InitDefaults() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	defs := config.VarDefs()
	return s.inTx(ctx, "IMMEDIATE", func() error {
		if _, err := s.conn.ExecContext(ctx, "DELETE FROM main.global_variables"); err != nil {
			return fmt.Errorf("storage: reset MEMORY variables: %w", err)
		}
		// Hundreds of rows: prepare once.
		stmts := make([]*sql.Stmt, 3)
		for i, q := range []string{
			"INSERT OR IGNORE INTO disk.global_variables (variable_name, variable_value) VALUES (?, ?)",
			"INSERT OR REPLACE INTO disk.global_variables (variable_name, variable_value) VALUES (?, ?)",
			"INSERT INTO main.global_variables (variable_name, variable_value) VALUES (?, ?)",
		} {
			st, err := s.conn.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("storage: prepare defaults: %w", err)
			}
			defer st.Close()
			stmts[i] = st
		}
		keepSaved, overwrite, memory := stmts[0], stmts[1], stmts[2]
		for _, d := range defs {
			disk := keepSaved
			if d.ReadOnly {
				disk = overwrite
			}
			if _, err := disk.ExecContext(ctx, d.Name, d.Default); err != nil {
				return fmt.Errorf("storage: default %s on DISK: %w", d.Name, err)
			}
			if _, err := memory.ExecContext(ctx, d.Name, d.Default); err != nil {
				return fmt.Errorf("storage: default %s in MEMORY: %w", d.Name, err)
			}
		}
		return nil
	})
}

// DiskToMemory copies module m from DISK to MEMORY (LOAD m TO MEMORY) and
// returns the number of rows copied.
func (s *Store) DiskToMemory(m config.Module) (int64, error) {
	return s.copyLayer(m, "disk", "main")
}

// MemoryToDisk copies module m from MEMORY to DISK (SAVE m TO DISK) and
// returns the number of rows copied. The copy is one transaction on the WAL
// file, so a crash leaves DISK with the old or the new module, never a mix.
func (s *Store) MemoryToDisk(m config.Module) (int64, error) {
	return s.copyLayer(m, "main", "disk")
}

// copyLayer copies module m between two schemas in one transaction, the way
// ProxySQL does: table modules are replaced whole (DELETE, then INSERT …
// SELECT *), variables modules are merged row by row for their prefix.
func (s *Store) copyLayer(m config.Module, from, to string) (int64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	tables := m.Tables()
	if len(tables) == 0 {
		return 0, fmt.Errorf("storage: module %s has no tables", m)
	}
	ctx := context.Background()
	// ProxySQL copies with foreign keys off; an admin may have turned them
	// on with a PRAGMA, and the setting cannot change inside a transaction.
	if _, err := s.conn.ExecContext(ctx, "PRAGMA foreign_keys=OFF"); err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	var total int64
	err := s.inTx(ctx, "IMMEDIATE", func() error {
		if p := m.VarPrefix(); p != "" {
			res, err := s.conn.ExecContext(ctx, "INSERT OR REPLACE INTO "+to+".global_variables SELECT * FROM "+from+".global_variables WHERE variable_name LIKE ?", p+"%")
			if err != nil {
				return fmt.Errorf("storage: copy %s variables: %w", p, err)
			}
			total, err = res.RowsAffected()
			return err
		}
		for _, t := range tables {
			if _, err := s.conn.ExecContext(ctx, "DELETE FROM "+to+"."+t); err != nil {
				return fmt.Errorf("storage: clear %s.%s: %w", to, t, err)
			}
			res, err := s.conn.ExecContext(ctx, "INSERT INTO "+to+"."+t+" SELECT * FROM "+from+"."+t)
			if err != nil {
				return fmt.Errorf("storage: copy %s.%s: %w", from, t, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
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
