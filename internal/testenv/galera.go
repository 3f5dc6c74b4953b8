package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Galera is a real MariaDB Galera cluster of one test, started by
// scripts/galera.sh in its own directory, on 127.0.0.1 (node i's SQL port
// is base+1+i; the script's header has the group communication ports) and
// stopped by the script, by pid, at the end of the test.
type Galera struct {
	Nodes []Backend
	dir   string
	base  int
}

// StartGalera starts a cluster of n nodes (about 20 s for three).
func StartGalera(t testing.TB, n int) *Galera {
	t.Helper()
	dir := serverDir(t, "sluice-galera-")
	g := &Galera{dir: dir, base: 24306}
	if v, err := strconv.Atoi(os.Getenv("SLUICE_GALERA_PORT")); err == nil && v > 0 {
		g.base = v
	}
	t.Cleanup(func() {
		if out, err := g.script("stop"); err != nil {
			t.Logf("stopping the Galera cluster: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	if out, err := g.script("start", strconv.Itoa(n)); err != nil {
		t.Fatalf("scripts/galera.sh start %d: %v\n%s", n, err, out)
	}
	for i := range n {
		g.Nodes = append(g.Nodes, Backend{Host: "127.0.0.1", Port: g.base + 1 + i})
	}
	return g
}

// Kill kills node i (0-based) with SIGKILL, as a crash would, and waits
// until it is gone.
func (g *Galera) Kill(t testing.TB, i int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, strconv.Itoa(i+1), "node.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file of Galera node %d: %q", i, b)
	}
	killWait(t, pid, fmt.Sprintf("Galera node %d", i))
}

func (g *Galera) script(args ...string) (string, error) {
	c := exec.Command(filepath.Join(RepoRoot(), "scripts", "galera.sh"), args...)
	c.Env = append(os.Environ(), "SLUICE_GALERA_DIR="+g.dir, "SLUICE_GALERA_PORT="+strconv.Itoa(g.base))
	out, err := c.CombinedOutput()
	return string(out), err
}
