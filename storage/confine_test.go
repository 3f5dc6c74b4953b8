package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfinedFiles: a client's ATTACH and VACUUM INTO stay in the datadir
// and create private files; whatever the spelling, comments or position in
// a multi-statement, SQLite's own parse is what is checked.
func TestConfinedFiles(t *testing.T) {
	s, dir := openTemp(t)
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "link.db"), filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ATTACH DATABASE '" + filepath.Join(outside, "x.db") + "' AS x",
		"/* c */ attach   '" + filepath.Join(outside, "x.db") + "' as x",
		"SELECT 1; ATTACH '" + filepath.Join(outside, "x.db") + "' AS x",
		"ATTACH '" + dir + "/../" + filepath.Base(outside) + "/x.db' AS x",
		"ATTACH '" + filepath.Join(dir, "link.db") + "' AS x", // a symlink out of the datadir
		"ATTACH 'relative.db' AS x",                           // relative to the process's directory
		"ATTACH 'file:" + filepath.Join(dir, "u.db") + "?mode=rwc' AS x",
		"ATTACH ('" + dir + "/' || 'c.db') AS x",
		"ATTACH '" + filepath.Join(dir, DiskFile) + "' AS x",
		"ATTACH '" + filepath.Join(dir, DiskFile) + "-wal' AS x",
		"VACUUM INTO '" + filepath.Join(outside, "copy.db") + "'",
		"vacuum disk into '" + filepath.Join(outside, "copy.db") + "'",
		"PRAGMA disk.synchronous=OFF",
		"pragma DISK.Synchronous = 0",
		"SELECT 1;\n-- x\n PRAGMA disk.journal_mode = DELETE",
		"PRAGMA journal_mode=MEMORY",
		"PRAGMA disk.locking_mode=EXCLUSIVE",
		"PRAGMA writable_schema=ON",
		"PRAGMA disk.wal_autocheckpoint=0",
		"PRAGMA disk.journal_size_limit=0",
		"PRAGMA foreign_keys=ON",
	} {
		_, err := s.Query(ctx, q, false)
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "Command not allowed: ") {
			t.Errorf("%s: err %v, want Command not allowed with a reason", q, err)
		}
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("files written outside the datadir: %v", ents)
	}
	if got := scalar(t, s, "PRAGMA disk.synchronous"); got != "2" {
		t.Errorf("disk.synchronous = %s, want 2 (FULL)", got)
	}
	if got := scalar(t, s, "PRAGMA disk.journal_mode"); got != "wal" {
		t.Errorf("disk.journal_mode = %s", got)
	}

	// Allowed: reading pragmas, checks, files of the datadir, :memory:.
	mustExec(t, s, "PRAGMA table_info(mysql_servers)", "PRAGMA disk.integrity_check(1)",
		"PRAGMA disk.wal_checkpoint(PASSIVE)", "PRAGMA foreign_keys",
		"ATTACH ':memory:' AS m", "DETACH m",
		"ATTACH '"+filepath.Join(dir, "extra.db")+"' AS extra", "CREATE TABLE extra.t (a)", "DETACH extra",
		"VACUUM disk INTO '"+filepath.Join(dir, "backup.db")+"'",
		// A plain VACUUM attaches a temporary database of an empty name;
		// it runs, as on ProxySQL (it used to be refused as an ATTACH).
		"VACUUM", "VACUUM main", "VACUUM disk;")
	for _, f := range []string{"extra.db", "backup.db"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// TestDiskFilePrivate: sluice.db and its WAL files are 0600, a new file
// from the start and an old one once opened.
func TestDiskFilePrivate(t *testing.T) {
	s, dir := openTemp(t)
	mustExec(t, s, "INSERT INTO disk.mysql_servers (hostgroup_id, hostname) VALUES (1, 'a')")
	check := func() {
		t.Helper()
		for _, f := range []string{DiskFile, DiskFile + "-wal", DiskFile + "-shm"} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
			}
		}
	}
	check()
	s.Close()
	for _, f := range []string{DiskFile, DiskFile + "-wal", DiskFile + "-shm"} {
		_ = os.Chmod(filepath.Join(dir, f), 0o644)
	}
	s2, existed, err := Open(Options{Datadir: dir})
	if err != nil || !existed {
		t.Fatalf("reopen: %v %v", existed, err)
	}
	defer s2.Close()
	check()
}
