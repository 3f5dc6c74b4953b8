package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestSIGHUPReopensErrorLog moves the error log away, as logrotate does,
// and checks that SIGHUP (and PROXYSQL FLUSH LOGS) make sluice write to a
// fresh file at the configured path.
func TestSIGHUPReopensErrorLog(t *testing.T) {
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := testenv.WriteConfig(t, dir, adminPort, dataPort, `errorlog="sluice.log"`)
	datadir := filepath.Join(dir, "data")
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort)
	logPath := filepath.Join(datadir, "sluice.log")
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	contains := func(path, text string) bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), text)
	}
	waitFor("the start-up lines in the error log", func() bool { return contains(logPath, "Sluice ready") })

	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("a new error log after SIGHUP", func() bool { return contains(logPath, "SIGHUP: error log reopened") })
	if contains(rotated, "SIGHUP: error log reopened") {
		t.Error("the moved log file was still written to after SIGHUP")
	}

	if err := os.Rename(logPath, rotated+"2"); err != nil {
		t.Fatal(err)
	}
	admin(t, s, "PROXYSQL FLUSH LOGS")
	admin(t, s, "LOGENTRY after flush logs")
	waitFor("a new error log after PROXYSQL FLUSH LOGS", func() bool { return contains(logPath, "after flush logs") })
}
