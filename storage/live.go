package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrNotLiveTable is returned by ReplaceTable for a table it may not
// rewrite: configuration tables (MEMORY, DISK) and the tables the Store
// keeps itself (runtime_checksums_values, stats.global_variables).
var ErrNotLiveTable = errors.New("storage: not a stats, runtime or monitor table")

// liveTables maps the tables ReplaceTable may rewrite, by the name a caller
// gives (bare or schema-qualified), to their qualified name.
var liveTables = func() map[string]string {
	m := make(map[string]string)
	add := func(schema, name string) {
		m[name] = schema + "." + name
		m[schema+"."+name] = schema + "." + name
	}
	for _, t := range statsTables {
		if strings.HasPrefix(t.name, "stats_") {
			add("stats", t.name)
		}
	}
	for _, t := range runtimeTables() {
		add("main", "runtime_"+t.name)
	}
	for _, t := range monitorTables {
		m["monitor."+t.name] = "monitor." + t.name // bare names would be ambiguous with main's
	}
	return m
}()

// ReplaceTable replaces every row of a live table (stats_*, runtime_*,
// monitor.*) with rows, in one transaction: a reader never sees the table
// half rewritten. cols names the columns each row fills, in order; rows
// must all have len(cols) values. It is how the running proxy publishes
// its live state just before an admin statement reads it (admin.Refresher).
// Monitor tables must be named with their "monitor." prefix.
func (s *Store) ReplaceTable(ctx context.Context, table string, cols []string, rows [][]any) error {
	qualified, ok := liveTables[strings.ToLower(table)]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotLiveTable, table)
	}
	if len(cols) == 0 {
		return fmt.Errorf("storage: replace %s: no columns", table)
	}
	for _, c := range cols {
		if !isPlainIdent(c) {
			return fmt.Errorf("storage: replace %s: bad column name %q", table, c)
		}
	}
	for i, r := range rows {
		if len(r) != len(cols) {
			return fmt.Errorf("storage: replace %s: row %d has %d values for %d columns", table, i, len(r), len(cols))
		}
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	err := s.inTx(ctx, "IMMEDIATE", func() error {
		if _, err := s.conn.ExecContext(ctx, "DELETE FROM "+qualified); err != nil {
			return err
		}
		return s.insertBatches(ctx, qualified, cols, rows)
	})
	if err != nil {
		return fmt.Errorf("storage: replace %s: %w", table, sqlError(err))
	}
	return nil
}

// insertBatches inserts rows into the table qualified (a name this package
// chose, never a client's), inside the caller's transaction. Rows go in
// batches of one multi-row INSERT each: a statement per row costs tens of
// microseconds in the driver, and the digest table can have a hundred
// thousand rows. cols must be plain identifiers and every row must have
// len(cols) values.
func (s *Store) insertBatches(ctx context.Context, qualified string, cols []string, rows [][]any) error {
	per := max(1, min(256, maxParams/len(cols)))
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	head := "INSERT INTO " + qualified + " (" + strings.Join(cols, ", ") + ") VALUES "
	stmt := func(n int) string {
		return head + strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
	}
	args := make([]any, 0, per*len(cols))
	var full *sql.Stmt // the statement of a whole batch, parsed once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		args = args[:0]
		for _, r := range batch {
			args = append(args, r...)
		}
		var err error
		switch {
		case len(batch) < per:
			_, err = s.conn.ExecContext(ctx, stmt(len(batch)), args...)
		case full == nil:
			if full, err = s.conn.PrepareContext(ctx, stmt(per)); err == nil {
				_, err = full.ExecContext(ctx, args...)
			}
		default:
			_, err = full.ExecContext(ctx, args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// maxParams keeps a batch under SQLite's limit on bound parameters (32766
// since 3.32; far below it, so an older limit of 999 is the only worry).
const maxParams = 999

// isPlainIdent reports whether s is a bare SQL identifier, safe to splice.
func isPlainIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
