// Package storage is Sluice's admin database: one SQLite handle that holds
// the configuration layers MEMORY (schema main, in memory) and DISK (schema
// disk, <datadir>/sluice.db), the runtime_* mirror of RUNTIME, and the stats,
// monitor and stats_history schemas, exactly as ProxySQL lays them out.
//
// Everything runs on one *sql.Conn that lives as long as the Store: an
// in-memory SQLite database dies with its connection, and one connection also
// serializes the admin statements as ProxySQL does. Copies between MEMORY and
// DISK run in one SQLite transaction on a WAL file with synchronous=FULL, so a
// crash at any moment leaves DISK with either the old or the new
// configuration, never a mix.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"modernc.org/sqlite"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
)

// DiskFile is the name of the DISK database in the datadir.
const DiskFile = "sluice.db"

// StatsFile is the name of the stats_history database in the datadir
// (ProxySQL's proxysql_stats.db).
const StatsFile = "sluice_stats.db"

// Errors callers may need to tell apart.
var (
	// ErrClosed is returned by every method once Close has run.
	ErrClosed = errors.New("storage: store is closed")
	// ErrSchemaTooNew means sluice.db was written by a newer Sluice.
	ErrSchemaTooNew = errors.New("storage: sluice.db schema is newer than this Sluice")
	// ErrNotAllowed is returned by Query for a statement a read-only (stats)
	// session may not run. Its text is ProxySQL's.
	ErrNotAllowed = errors.New("Command not allowed") //lint:ignore ST1005 ProxySQL's text
	// ErrUnknownTable is returned by Checksum for a table group it does not know.
	ErrUnknownTable = errors.New("storage: unknown table for CHECKSUM")
)

// SQLError is an error SQLite reported for a statement. Its message is
// SQLite's own text (sqlite3_errmsg, for example "no such table: foo"), which
// the admin shows after "ProxySQL Admin Error: " as ProxySQL does; the
// driver's error stays reachable with errors.As.
type SQLError struct {
	Msg  string
	Code int // SQLite (extended) result code
	Err  error
}

func (e *SQLError) Error() string { return e.Msg }
func (e *SQLError) Unwrap() error { return e.Err }

// Options configure Open.
type Options struct {
	Datadir string
	// Initial renames an existing sluice.db (with its -wal and -shm files)
	// to sluice.db.bak before opening, as ProxySQL's --initial does.
	Initial bool
	// Logger receives the few events worth an operator's attention (backup
	// made, schema upgraded). The zero Logger discards them.
	Logger zerolog.Logger
}

// execQuerier is what the config file import and export (cnffile.go) run
// their SQL on: the Store's connection, inside a transaction the Store owns.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Store is the admin database. All methods are safe for concurrent use; they
// are serialized by one mutex, as admin statements are in ProxySQL.
type Store struct {
	mu     sync.Mutex
	db     *sql.DB
	conn   *sql.Conn
	log    zerolog.Logger
	closed bool

	// checksums is the source of truth for runtime_checksums_values.
	checksums map[string]*checksumValue
	// clusterCache holds the answers to ProxySQL Cluster's PROXY_SELECT
	// queries as of each module's last LOAD (cluster.go).
	clusterCache map[string]*clusterResult

	// Authorizer state, read by the SQLite authorizer callback, which runs
	// on the goroutine executing a statement (under mu).
	restricted atomic.Bool // a read-only (stats) statement is running
	denied     atomic.Bool // the authorizer refused something since last reset
	// confined: a client's statement is running (Query): ATTACH and VACUUM
	// INTO stay in the datadir, pragmas cannot weaken DISK (confine.go).
	confined atomic.Bool
	denyWhy  atomic.Pointer[string] // why the authorizer refused, for the client
	datadir  string                 // absolute, symlinks resolved

	// What Open did to the DISK file, for DiscardCreated.
	diskPath string
	created  bool // the file did not exist: this Open made it
	backedUp bool // --initial moved the previous one to .bak
}

// builtinSchemas are the databases the Store attaches; nobody may DETACH them.
var builtinSchemas = map[string]bool{"main": true, "disk": true, "stats": true, "monitor": true, "stats_history": true}

// readOnlyPragmas are the introspection pragmas a read-only session may run
// (SHOW DATABASES becomes PRAGMA database_list). Anything else, in particular
// PRAGMA query_only=OFF, is refused.
var readOnlyPragmas = map[string]bool{
	"database_list": true, "table_info": true, "table_xinfo": true, "table_list": true,
	"index_list": true, "index_info": true, "index_xinfo": true, "foreign_key_list": true,
	"collation_list": true, "function_list": true, "module_list": true, "pragma_list": true,
}

// Open opens (creating if needed) the DISK database in opts.Datadir, builds
// the in-memory schemas and returns the Store. existed reports whether
// sluice.db was present when it was opened (false after Initial moved it to
// sluice.db.bak).
func Open(opts Options) (s *Store, existed bool, err error) {
	if opts.Datadir == "" {
		return nil, false, errors.New("storage: empty datadir")
	}
	if fi, err := os.Stat(opts.Datadir); err != nil {
		return nil, false, fmt.Errorf("storage: datadir: %w", err)
	} else if !fi.IsDir() {
		return nil, false, fmt.Errorf("storage: datadir %s is not a directory", opts.Datadir)
	}
	path := filepath.Join(opts.Datadir, DiskFile)
	moved := false
	if opts.Initial {
		if moved, err = backupDisk(path); err != nil {
			return nil, false, err
		}
		if moved {
			opts.Logger.Info().Str("file", path+".bak").Msg("--initial: previous configuration database kept as backup")
		}
	}
	if _, err := os.Stat(path); err == nil {
		existed = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("storage: %w", err)
	}

	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, false, fmt.Errorf("storage: open sqlite: %w", err)
	}
	// One connection for the Store's whole life: main is in memory and
	// lives only as long as this connection.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, false, fmt.Errorf("storage: open sqlite connection: %w", err)
	}
	s = &Store{db: db, conn: conn, log: opts.Logger, checksums: make(map[string]*checksumValue),
		clusterCache: make(map[string]*clusterResult), diskPath: path, created: !existed, backedUp: moved}
	if s.datadir, err = realDir(opts.Datadir); err != nil {
		conn.Close()
		db.Close()
		return nil, false, err
	}
	if err := privateFile(path, opts.Logger); err != nil {
		conn.Close()
		db.Close()
		return nil, false, err
	}
	statsPath := filepath.Join(opts.Datadir, StatsFile)
	if err := privateFile(statsPath, opts.Logger); err != nil {
		conn.Close()
		db.Close()
		return nil, false, err
	}
	if err := s.init(ctx, path, statsPath); err != nil {
		conn.Close()
		db.Close()
		return nil, false, err
	}
	return s, existed, nil
}

// DiscardCreated undoes what Open did to the DISK file when the start it
// began fails before the proxy runs (a config file that does not load, a
// port in use): a sluice.db this Open created is removed, so the next
// start reads the config file again instead of finding a database holding
// neither it nor anything an operator saved; with --initial the previous
// database goes back in place. A database that existed before is left as
// it is. It closes the Store.
func (s *Store) DiscardCreated() error {
	s.Close()
	if !s.created {
		return nil
	}
	for _, suf := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(s.diskPath + suf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("storage: remove %s: %w", filepath.Base(s.diskPath+suf), err)
		}
	}
	if s.backedUp {
		if err := renameDB(s.diskPath+".bak", s.diskPath); err != nil {
			return fmt.Errorf("storage: restore the backup %w", err)
		}
	}
	return nil
}

// backupDisk renames path and its WAL files to path.bak*, reporting whether
// there was anything to move. Stale .bak WAL files are removed first: paired
// with a different main file they would corrupt the backup.
func backupDisk(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	for _, suf := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + ".bak" + suf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("storage: remove stale backup: %w", err)
		}
	}
	if err := renameDB(path, path+".bak"); err != nil {
		return false, fmt.Errorf("storage: back up %w", err)
	}
	return true, nil
}

// renameDB renames database file from and its WAL files to to (with the
// same suffixes); a WAL file that does not exist is skipped.
func renameDB(from, to string) error {
	for _, suf := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(from+suf, to+suf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", filepath.Base(from+suf), err)
		}
	}
	return nil
}

// init attaches the schemas, builds the tables and seeds the checksums.
func (s *Store) init(ctx context.Context, path, statsPath string) error {
	setup := []struct {
		q    string
		args []any
	}{
		// No foreign keys exist, but the layer copies must never cascade.
		{"PRAGMA foreign_keys=OFF", nil},
		// Another process holding sluice.db (a second Sluice, a backup
		// tool) makes us wait a little instead of failing at once.
		{"PRAGMA busy_timeout=5000", nil},
		{"ATTACH DATABASE ? AS disk", []any{path}},
		{"PRAGMA disk.synchronous=FULL", nil},
		{"ATTACH DATABASE ':memory:' AS stats", nil},
		{"ATTACH DATABASE ':memory:' AS monitor", nil},
		// History is not configuration: like ProxySQL's proxysql_stats.db
		// (synchronous=0) it is not synced; a crash loses the last samples.
		{"ATTACH DATABASE ? AS stats_history", []any{statsPath}},
		{"PRAGMA stats_history.synchronous=OFF", nil},
	}
	for _, st := range setup {
		_, err := s.conn.ExecContext(ctx, st.q, st.args...)
		if err != nil && len(st.args) == 1 && st.args[0] == statsPath && damaged(err) != "" {
			// History is not configuration: a damaged file must not keep
			// the proxy down. It is kept aside and a new one begins.
			if aside, merr := setAside(statsPath); merr == nil {
				s.log.Warn().Err(err).Str("file", statsPath).Str("kept_as", aside).
					Msg("stats history database damaged: kept aside, a new one started")
				_, err = s.conn.ExecContext(ctx, st.q, st.args...)
			}
		}
		if err != nil {
			if len(st.args) == 1 {
				return fmt.Errorf("storage: open %v: %w%s", st.args[0], err, damaged(err))
			}
			return fmt.Errorf("storage: %s: %w", st.q, err)
		}
	}
	var mode string
	if err := s.conn.QueryRowContext(ctx, "PRAGMA disk.journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("storage: set WAL on %s: %w%s", path, err, damaged(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("storage: %s: journal_mode is %q, want wal", path, mode)
	}
	for _, q := range mainSchema() {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storage: build schema: %w", err)
		}
	}
	if err := s.prepareDisk(ctx); err != nil {
		return err
	}
	if err := s.conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return r.RegisterAuthorizer(s.authorize)
	}); err != nil {
		return fmt.Errorf("storage: install authorizer: %w", err)
	}
	return s.initChecksums(ctx, time.Now())
}

// authorize is the SQLite authorizer. It keeps the attached schemas attached
// and, during a read-only statement, refuses ATTACH, DETACH, every pragma but
// the introspection ones, and reading the MEMORY and DISK tables: a stats
// session sees the stats, monitor and stats_history schemas, as on ProxySQL,
// not the configuration (which holds every password).
func (s *Store) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, db, _ string) sqlite.AuthorizerReturnCode {
	deny := false
	switch action {
	case sqlite.AuthRead:
		deny = s.restricted.Load() && (db == "main" || db == "disk") && !isSchemaTable(arg1)
	case sqlite.AuthDetach:
		deny = s.restricted.Load() || builtinSchemas[strings.ToLower(arg1)]
	case sqlite.AuthAttach:
		deny = s.restricted.Load()
		if !deny && s.confined.Load() {
			deny = s.refuse(s.checkAttach(arg1))
		}
	case sqlite.AuthPragma:
		deny = s.restricted.Load() && !readOnlyPragmas[strings.ToLower(arg1)]
		if !deny && s.confined.Load() {
			deny = s.refuse(checkPragma(arg1, arg2))
		}
	}
	if deny {
		s.denied.Store(true)
		return sqlite.AuthorizerDeny
	}
	return sqlite.AuthorizerOK
}

// isSchemaTable reports whether a table is SQLite's catalog, which only
// names tables (SHOW TABLES reads it).
func isSchemaTable(name string) bool {
	switch strings.ToLower(name) {
	case "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema":
		return true
	}
	return false
}

// Close closes the database. The Store cannot be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.conn.Close()
	if err2 := s.db.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// lock takes the mutex and fails once the Store is closed. The caller must
// unlock on success.
func (s *Store) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// inTx runs fn in one SQLite transaction of the given kind ("IMMEDIATE" for
// writes, "DEFERRED" for reads), committing if fn succeeds and rolling back
// otherwise. Everything fn does commits together or not at all.
func (s *Store) inTx(ctx context.Context, kind string, fn func() error) error {
	if _, err := s.conn.ExecContext(ctx, "BEGIN "+kind); err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	if err := fn(); err != nil {
		s.rollback()
		return err
	}
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		s.rollback()
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

// rollback ends a transaction if one is open. It ignores SQLite's "no
// transaction is active", which is the state it wants.
func (s *Store) rollback() {
	_, _ = s.conn.ExecContext(context.Background(), "ROLLBACK")
}

// SetVariable writes one MEMORY global_variables row (used to put back the
// value RUNTIME kept when LOAD … VARIABLES TO RUNTIME refused a new one).
func (s *Store) SetVariable(name, value string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, err := s.conn.ExecContext(context.Background(),
		"INSERT OR REPLACE INTO main.global_variables (variable_name, variable_value) VALUES (?, ?)", name, value)
	if err != nil {
		return fmt.Errorf("storage: set %s: %w", name, err)
	}
	return nil
}

// LoadConfigFile merges the settings of module m from a parsed config file
// into MEMORY (INSERT OR REPLACE, LOAD … FROM CONFIG) in one transaction and
// returns the number of rows read and the entries skipped, as ProxySQL
// skips them (a missing key, a wrong type, a CHECK the row violates), each
// named with its section, index, line and reason.
func (s *Store) LoadConfigFile(root *cnf.Setting, m config.Module) (int64, []error, error) {
	if err := s.lock(); err != nil {
		return 0, nil, err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	var n int64
	var skipped []error
	err := s.inTx(ctx, "IMMEDIATE", func() error {
		var err error
		n, skipped, err = importConfig(ctx, s.conn, root, m)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("storage: load %s from config: %w", m, err)
	}
	return n, skipped, nil
}

// ConfigFileText renders MEMORY as a proxysql.cnf (SELECT CONFIG FILE).
func (s *Store) ConfigFileText() (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	var text string
	err := s.inTx(ctx, "DEFERRED", func() error {
		var err error
		text, err = exportConfig(ctx, s.conn)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storage: export config: %w", err)
	}
	return text, nil
}

// setAside renames a damaged database file and its WAL files to
// path.damaged-<unix time>, returning the new name of the main file.
func setAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
	return aside, renameDB(path, aside)
}

// damaged is what to do about a database file SQLite cannot read, for the
// error that says so; empty for any other error.
func damaged(err error) string {
	if m := err.Error(); strings.Contains(m, "malformed") || strings.Contains(m, "not a database") {
		return " (the file is damaged: Sluice leaves it as it is; restore it from a backup, or move it away " +
			"and start again to rebuild it from the config file)"
	}
	return ""
}
