package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestDatadirLocked: a second Sluice on a datadir in use (other ports, even
// with --reload) is refused with a message naming the first one's pid,
// and leaves the first one's DISK configuration alone: it used to start,
// write its own ports into the shared sluice.db, and the first one's next
// restart came up on them. The datadir's sluice.pid holds the pid.
func TestDatadirLocked(t *testing.T) {
	dir := t.TempDir()
	first := startIn(t, dir, "", false)
	datadir := filepath.Join(dir, "data")
	pid, err := os.ReadFile(filepath.Join(datadir, "sluice.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(first.Cmd.Process.Pid) {
		t.Fatalf("sluice.pid: %q %v, want %d", pid, err, first.Cmd.Process.Pid)
	}
	before := admin(t, first, "SELECT variable_value FROM disk.global_variables WHERE variable_name='mysql-interfaces'")

	other := t.TempDir()
	cfg := testenv.WriteConfig(t, other, testenv.FreePort(t), testenv.FreePort(t), "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.Binary(t), "-c", cfg, "-D", datadir, "--reload", "--no-monitor").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another Sluice (pid "+strconv.Itoa(first.Cmd.Process.Pid)) {
		t.Fatalf("a second Sluice on the same datadir: %v\n%s", err, out)
	}
	if after := admin(t, first, "SELECT variable_value FROM disk.global_variables WHERE variable_name='mysql-interfaces'"); after != before {
		t.Fatalf("the first Sluice's DISK mysql-interfaces went from %q to %q", before, after)
	}
	// A restart of the first takes the datadir again.
	first.Restart()
	if pid2, err := os.ReadFile(filepath.Join(datadir, "sluice.pid")); err != nil || strings.TrimSpace(string(pid2)) != strconv.Itoa(first.Cmd.Process.Pid) {
		t.Fatalf("sluice.pid after a restart: %q %v", pid2, err)
	}
}
