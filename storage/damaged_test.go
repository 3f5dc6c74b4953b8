package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedFiles: a configuration database SQLite cannot read stops the
// start with an error that names the file and what to do, and the file is
// left exactly as it was (nothing saved may be lost); a damaged stats
// history file — not configuration — is kept aside and a new one begins,
// so the proxy still starts.
func TestDamagedFiles(t *testing.T) {
	junk := bytes.Repeat([]byte("not a database "), 400)

	dir := t.TempDir()
	disk := filepath.Join(dir, DiskFile)
	if err := os.WriteFile(disk, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, _, err := Open(Options{Datadir: dir}); err == nil {
		s.Close()
		t.Fatal("a damaged sluice.db opened")
	} else if !strings.Contains(err.Error(), disk) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("error for a damaged sluice.db: %v", err)
	}
	if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, junk) {
		t.Errorf("the damaged sluice.db was changed (%d bytes, %v)", len(b), err)
	}

	dir = t.TempDir()
	stats := filepath.Join(dir, StatsFile)
	if err := os.WriteFile(stats, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, err := Open(Options{Datadir: dir})
	if err != nil {
		t.Fatalf("a damaged %s kept the store from opening: %v", StatsFile, err)
	}
	s.Close()
	aside, _ := filepath.Glob(stats + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged stats file kept aside as %v, want one file", aside)
	}
	if b, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(b, junk) {
		t.Errorf("the file kept aside is not the damaged one (%d bytes, %v)", len(b), err)
	}
}
