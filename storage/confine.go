package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// What a client's SQL may do to files (Query). ProxySQL hands any admin
// statement to SQLite, so its admin can ATTACH or VACUUM INTO any path the
// process can write (a full copy of the configuration, passwords included)
// and turn off the DISK database's durability with a PRAGMA. Sluice's
// authorizer (store.go) checks what SQLite itself parsed, so comments, case,
// spacing and multi-statements change nothing:
//   - ATTACH and VACUUM INTO (SQLite authorizes both as an ATTACH of the
//     file) take a file of the datadir, or ':memory:'. A new file is created
//     0600 before SQLite opens it. URI names, computed names and Sluice's
//     own sluice.db files are refused;
//   - a PRAGMA that sets a value is refused unless it only reads or checks
//     (table_info(t), integrity_check(n), wal_checkpoint(…)…): synchronous,
//     journal_mode, locking_mode, writable_schema and the rest would change
//     how DISK is kept. Pragmas without a value only read, and are allowed.

// argPragmas are the pragmas allowed with an argument: it names what to
// read or check, it sets nothing.
var argPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true,
	"index_info": true, "index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true,
	"integrity_check": true, "quick_check": true, "wal_checkpoint": true, "optimize": true,
	"incremental_vacuum": true,
}

// checkPragma returns why a client may not run PRAGMA name = arg, or "".
func checkPragma(name, arg string) string {
	if arg == "" || argPragmas[strings.ToLower(name)] {
		return ""
	}
	return fmt.Sprintf("PRAGMA %s=%s is refused on the admin port: it would change how Sluice keeps its configuration (durability, journal, locking or schema); only pragmas that read are allowed", name, arg)
}

// checkAttach returns why a client may not ATTACH (or VACUUM INTO) the file
// name, or "". A file of the datadir that does not exist yet is created
// with mode 0600, so SQLite writes the configuration into a private file.
func (s *Store) checkAttach(name string) string {
	switch {
	case name == ":memory:":
		return ""
	case name == "":
		return "ATTACH and VACUUM INTO take the file name as a string literal"
	case len(name) >= 5 && strings.EqualFold(name[:5], "file:"):
		return fmt.Sprintf("ATTACH and VACUUM INTO do not take URI file names (%q)", name)
	}
	path, err := filepath.Abs(name)
	if err != nil {
		return fmt.Sprintf("%q: %v", name, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return fmt.Sprintf("%q is outside the datadir %s: ATTACH and VACUUM INTO may only use files in it", name, s.datadir)
	}
	path = filepath.Join(dir, filepath.Base(path))
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(path)
		if err != nil { // dangling: SQLite would create its target
			return fmt.Sprintf("%q is a symbolic link to a missing file", name)
		}
		path = real
	}
	rel, err := filepath.Rel(s.datadir, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Sprintf("%q is outside the datadir %s: ATTACH and VACUUM INTO may only use files in it", name, s.datadir)
	}
	if filepath.Dir(path) == s.datadir && strings.HasPrefix(filepath.Base(path), DiskFile) {
		return fmt.Sprintf("%q is Sluice's own DISK database (attached as disk)", name)
	}
	if filepath.Dir(path) == s.datadir && strings.HasPrefix(filepath.Base(path), StatsFile) {
		return fmt.Sprintf("%q is Sluice's own history database (attached as stats_history)", name)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return fmt.Sprintf("%q: %v", name, err)
	}
	return ""
}

// refuse records why the authorizer denies, and reports whether it does.
func (s *Store) refuse(why string) bool {
	if why == "" {
		return false
	}
	s.denyWhy.Store(&why)
	return true
}

// realDir is dir made absolute with its symlinks resolved.
func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("storage: datadir: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("storage: datadir: %w", err)
	}
	return real, nil
}

// privateFile makes the DISK database readable by its owner only: it holds
// every password. A missing sluice.db is created 0600 before SQLite opens
// it (SQLite gives its -wal and -shm files the database file's mode); an
// existing one, its WAL files and the --initial backup lose group and other
// permissions.
func privateFile(path string, log zerolog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = f.Close()
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("storage: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".bak", path + ".bak-wal", path + ".bak-shm"} {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			log.Warn().Err(err).Str("file", p).Msg("cannot make a Sluice database file private (the configuration holds passwords)")
			continue
		}
		log.Info().Str("file", p).Str("was", fi.Mode().Perm().String()).Msg("Sluice database file made readable by its owner only (the configuration holds passwords)")
	}
	return nil
}
