package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Own is a set of MariaDB servers that belong to one test (its own
// datadirs and ports, started with scripts/backends.sh), for tests that
// kill, stop or reconfigure a server, which the shared Backends must never
// be. They are stopped at the end of the test, by the script, by pid.
type Own struct {
	Backends []Backend
	dir      string
	base     int
	n        int
	env      []string // extra environment of the script
}

// OwnBackends starts n servers of the test's own.
func OwnBackends(t testing.TB, n int) *Own {
	t.Helper()
	return ownBackends(t, n)
}

// OwnBackendsBinlog is OwnBackends with the binary log on (for
// replication: see Replicate).
func OwnBackendsBinlog(t testing.TB, n int) *Own {
	t.Helper()
	return ownBackends(t, n, "SLUICE_BACKENDS_BINLOG=1")
}

// OwnBackendsSSL is OwnBackends with TLS on (SLUICE_BACKENDS_SSL=1): each
// server has a certificate signed by the CA at SSLDir(i)/ca.pem, and the
// user sslonly/sslonly that may only log in over TLS.
func OwnBackendsSSL(t testing.TB, n int) *Own {
	t.Helper()
	return ownBackends(t, n, "SLUICE_BACKENDS_SSL=1")
}

// SSLDir is where server i (0-based) of OwnBackendsSSL keeps ca.pem,
// server-cert.pem and server-key.pem.
func (o *Own) SSLDir(i int) string { return filepath.Join(o.dir, strconv.Itoa(i+1), "ssl") }

// serverDir makes a temporary directory for servers of a test's own.
func serverDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	// mariadbd runs as user mysql: it must reach its datadir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ownBackends(t testing.TB, n int, env ...string) *Own {
	t.Helper()
	dir := serverDir(t, "sluice-own-")
	o := &Own{dir: dir, base: freeRun(t, n) - 1, n: n, env: env}
	t.Cleanup(func() {
		if out, err := o.script("stop"); err != nil {
			t.Logf("stopping the test's own servers: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	o.Start(t)
	for i := range n {
		o.Backends = append(o.Backends, Backend{Host: "127.0.0.1", Port: o.base + 1 + i})
	}
	return o
}

// Start starts the servers that are not running (all of them, the first
// time; after Kill, the killed one, with its data).
func (o *Own) Start(t testing.TB) {
	t.Helper()
	if out, err := o.script("start", o.n); err != nil {
		t.Fatalf("scripts/backends.sh start: %v\n%s", err, out)
	}
}

// Signal sends sig to server i (0-based): SIGSTOP freezes it (its port
// still accepts connections, nothing answers), SIGCONT thaws it. After
// SIGSTOP it waits until every thread of the server is stopped: the signal
// is delivered asynchronously, and a thread still running could answer
// one more query.
func (o *Own) Signal(t testing.TB, i int, sig syscall.Signal) {
	t.Helper()
	pid := o.pid(t, i)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); !allStopped(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("server %d (pid %d) not stopped 5 s after SIGSTOP", i, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allStopped reports whether every thread of pid is in state T (stopped).
func allStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// pid (comm) state …: the state follows the last ')'.
		j := strings.LastIndexByte(string(b), ')')
		if j < 0 || j+2 >= len(b) || b[j+2] != 'T' {
			return false
		}
	}
	return true
}

func (o *Own) pid(t testing.TB, i int) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.dir, strconv.Itoa(i+1), "mysqld.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file of server %d: %q", i, b)
	}
	return pid
}

// Kill kills server i (0-based) with SIGKILL, as a crash would.
func (o *Own) Kill(t testing.TB, i int) {
	t.Helper()
	killWait(t, o.pid(t, i), fmt.Sprintf("server %d", i))
}

// killWait kills pid with SIGKILL and waits until it is gone.
func killWait(t testing.TB, pid int, what string) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still alive 10 s after SIGKILL", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Replicate makes server replica (0-based) a replica of server primary
// (scripts/backends.sh replicate: GTID replication from the primary's
// current position, read_only=1 on the replica). The servers must come
// from OwnBackendsBinlog.
func (o *Own) Replicate(t testing.TB, primary, replica int) {
	t.Helper()
	if out, err := o.script("replicate", primary+1, replica+1); err != nil {
		t.Fatalf("scripts/backends.sh replicate: %v\n%s", err, out)
	}
}

func (o *Own) script(cmd string, n ...int) (string, error) {
	args := []string{cmd}
	for _, i := range n {
		args = append(args, strconv.Itoa(i))
	}
	c := exec.Command(filepath.Join(RepoRoot(), "scripts", "backends.sh"), args...)
	c.Env = append(os.Environ(), "SLUICE_BACKENDS_DIR="+o.dir, "SLUICE_BACKENDS_PORT="+strconv.Itoa(o.base))
	c.Env = append(c.Env, o.env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// freeRun finds n consecutive free ports on 127.0.0.1 and returns the
// first. Like FreePort's, the ports are never handed out again in this
// test process (tests that run in parallel get different ones).
func freeRun(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		first := FreePort(t)
		ok := true
		for p := first + 1; p < first+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			portsMu.Lock()
			for p := first + 1; p < first+n; p++ {
				ok = ok && !portsGiven[p]
			}
			if ok {
				for p := first + 1; p < first+n; p++ {
					portsGiven[p] = true
				}
			}
			portsMu.Unlock()
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
