package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Etcd is a real single-member etcd on 127.0.0.1 run by scripts/etcd.sh
// (Debian's etcd-server, installed when missing), with its data in a
// directory of the test. Kill and Start keep the data, as a crash and a
// restart of a real member would. Stopped at the end of the test.
type Etcd struct {
	Dir  string
	Port int // client port
}

// StartEtcd starts etcd on clientPort (peer port clientPort+1).
func StartEtcd(t testing.TB, clientPort int) *Etcd {
	t.Helper()
	e := &Etcd{Dir: t.TempDir(), Port: clientPort}
	e.Start(t)
	t.Cleanup(func() { _ = e.script("stop") })
	return e
}

// Addr is host:port of the client endpoint.
func (e *Etcd) Addr() string { return "127.0.0.1:" + strconv.Itoa(e.Port) }

// Start starts (or restarts) the member and waits until it answers.
func (e *Etcd) Start(t testing.TB) {
	t.Helper()
	if err := e.script("start"); err != nil {
		t.Fatal(err)
	}
}

// Kill sends SIGKILL to the member and waits until it is gone.
func (e *Etcd) Kill(t testing.TB) {
	t.Helper()
	if err := e.script("kill"); err != nil {
		t.Fatal(err)
	}
}

func (e *Etcd) script(cmd string) error {
	c := exec.Command(filepath.Join(RepoRoot(), "scripts", "etcd.sh"), cmd, e.Dir, strconv.Itoa(e.Port))
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/etcd.sh %s: %v\n%s", cmd, err, out)
	}
	return nil
}
