// Package testenv gives integration tests real parts: MariaDB backends
// started by scripts/backends.sh, a freshly built sluice binary run as a
// child process, and the mariadb command-line client.
//
// Backends are shared by every test of a process and left running for the
// next package (make test stops them by pid at the end); Sluice processes
// belong to one test and are stopped by its cleanup.
package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver real applications use
)

// Backend is one MariaDB server on 127.0.0.1.
type Backend struct {
	Host string
	Port int
}

// Addr returns host:port.
func (b Backend) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// RepoRoot is the directory that holds go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	backendsMu  sync.Mutex
	backendsUp  int
	backendsErr error
)

func basePort() int {
	if p, err := strconv.Atoi(os.Getenv("SLUICE_BACKENDS_PORT")); err == nil && p > 0 {
		return p
	}
	return 23306
}

// Backends returns n running MariaDB servers, starting them with
// scripts/backends.sh when needed (it installs MariaDB with apt-get when it
// is missing). Each has the users root/test, sbtest/sbtest, monitor/monitor.
func Backends(t testing.TB, n int) []Backend {
	t.Helper()
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if backendsUp < n && backendsErr == nil {
		cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "backends.sh"), "start", strconv.Itoa(n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			backendsErr = fmt.Errorf("scripts/backends.sh start %d: %v\n%s", n, err, out)
		} else {
			backendsUp = n
		}
	}
	if backendsErr != nil {
		t.Fatal(backendsErr)
	}
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Host: "127.0.0.1", Port: basePort() + 1 + i}
	}
	return bs
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this test process has not handed out before: the kernel may offer a
// port again as soon as the probe closes it, and two calls in a row (an
// admin and a data port) must not get the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portsMu.Lock()
		seen := portsGiven[port]
		portsGiven[port] = true
		portsMu.Unlock()
		if !seen {
			return port
		}
	}
	t.Fatal("FreePort: no port that was not handed out before in 100 tries")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/sluice once per test process (with the race detector
// when the tests run with it) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "sluice")
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			// SQLite's engine (C translated to Go) runs five to ten times
			// slower instrumented, and every sluice start and admin
			// command runs it: half of each start's second under the race
			// detector. It is reached only through the Store's one
			// connection, under the Store's lock and database/sql's; the
			// race detector still watches everything else, the Go driver
			// modernc.org/sqlite included.
			args = append(args, "-race", "-gcflags=modernc.org/sqlite/lib=-race=false")
			quickRaceExit()
		}
		args = append(args, "./cmd/sluice")
		cmd := exec.Command("go", args...)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// quickRaceExit turns off, for the processes the tests start, the race
// detector's pause of a second at exit (GORACE atexit_sleep_ms, 1000 by
// default), unless GORACE already sets it: a race found before the exit
// is reported when it is found, and the pause cost every sluice process
// the tests stop a second — more than three minutes of the e2e run.
func quickRaceExit() {
	if v := os.Getenv("GORACE"); !strings.Contains(v, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(v+" atexit_sleep_ms=0"))
	}
}

// Sluice is a running sluice process.
type Sluice struct {
	t         testing.TB
	Cmd       *exec.Cmd
	AdminPort int
	DataPort  int
	Datadir   string
	Config    string
	Args      []string
	// Monitor: started without --no-monitor (StartWithMonitor).
	Monitor bool
	out     *SyncBuffer
	waitErr chan error
}

// SyncBuffer is a log destination goroutines may write while a test reads
// it (a zerolog.Logger's output, a process's stdout).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WriteConfig writes a sluice.cnf that puts admin and data on the given
// ports of 127.0.0.1, followed by extra libconfig text.
func WriteConfig(t testing.TB, dir string, adminPort, dataPort int, extra string) string {
	t.Helper()
	// Each test's Sluice gets its own HTTP port (/metrics, /health), so
	// several can run at once.
	text := fmt.Sprintf(`admin_variables = { admin_credentials = "admin:admin" mysql_ifaces = "127.0.0.1:%d" restapi_enabled = true restapi_port = %d }
mysql_variables = { interfaces = "127.0.0.1:%d" }
%s
`, adminPort, FreePort(t), dataPort, extra)
	path := filepath.Join(dir, "sluice.cnf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Start runs sluice with the config file and datadir and waits until its
// admin port answers. The process is stopped with SIGTERM at cleanup.
func Start(t testing.TB, config, datadir string, adminPort, dataPort int, args ...string) *Sluice {
	t.Helper()
	s := &Sluice{t: t, AdminPort: adminPort, DataPort: dataPort, Datadir: datadir, Config: config, Args: args}
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

// StartWithMonitor is Start with the backend monitor running (Start passes
// --no-monitor so that tests sharing backends are not shunned behind their
// back).
func StartWithMonitor(t testing.TB, config, datadir string, adminPort, dataPort int, args ...string) *Sluice {
	t.Helper()
	s := &Sluice{t: t, AdminPort: adminPort, DataPort: dataPort, Datadir: datadir, Config: config, Args: args, Monitor: true}
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Sluice) start() {
	s.t.Helper()
	args := []string{"-c", s.Config, "-D", s.Datadir}
	if !s.Monitor {
		args = append(args, "--no-monitor")
	}
	args = append(args, s.Args...)
	s.Cmd = exec.Command(Binary(s.t), args...)
	s.out = &SyncBuffer{}
	s.Cmd.Stdout, s.Cmd.Stderr = s.out, s.out
	if err := s.Cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.waitErr = make(chan error, 1)
	go func() { s.waitErr <- s.Cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	s.waitPort("admin", s.AdminPort, deadline)
	// The admin port opens first and the data port a moment later (after
	// the cluster set-up): a test that went straight to the data port
	// could find it closed.
	if s.DataPort != 0 && !slices.Contains(args, "--no-start") && !slices.Contains(args, "-n") {
		s.waitPort("data", s.DataPort, deadline)
	}
}

// waitPort waits until port accepts a connection, failing the test when
// the process exits first or deadline passes.
func (s *Sluice) waitPort(name string, port int, deadline time.Time) {
	s.t.Helper()
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-s.waitErr:
			s.waitErr <- err
			s.t.Fatalf("sluice exited during start-up: %v\n%s", err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sluice %s port %d not up after 20s\n%s", name, port, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output returns what the process wrote to stdout and stderr.
func (s *Sluice) Output() string { return s.out.String() }

// Stop sends SIGTERM and waits (at most 15 s, then SIGKILL).
func (s *Sluice) Stop() error {
	if s.Cmd == nil || s.Cmd.Process == nil {
		return nil
	}
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return err
	default:
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if strings.Contains(s.out.String(), "WARNING: DATA RACE") {
			s.t.Errorf("the race detector fired in sluice:\n%s", s.out.String())
		}
		return err
	case <-time.After(15 * time.Second):
		_ = s.Cmd.Process.Kill()
		err := <-s.waitErr
		s.waitErr <- err
		return fmt.Errorf("sluice did not stop on SIGTERM within 15s: %v", err)
	}
}

// Kill sends SIGKILL and waits.
func (s *Sluice) Kill() {
	if s.Cmd == nil || s.Cmd.Process == nil {
		return
	}
	_ = s.Cmd.Process.Kill()
	err := <-s.waitErr
	s.waitErr <- err
}

// Restart stops the process (SIGTERM) and starts it again with the same
// config, datadir and arguments.
func (s *Sluice) Restart() {
	s.t.Helper()
	if exited, _ := s.Exited(0); exited {
		s.start()
		return
	}
	if err := s.Stop(); err != nil {
		s.t.Fatalf("stopping sluice: %v\n%s", err, s.out.String())
	}
	s.start()
}

// Exited reports whether the process has exited (and how).
func (s *Sluice) Exited(timeout time.Duration) (bool, error) {
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return true, err
	default:
	}
	if timeout <= 0 {
		return false, nil
	}
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return true, err
	case <-time.After(timeout):
		return false, nil
	}
}

// CLI runs the mariadb client with -e and returns its stdout (batch mode,
// tab-separated, with column names unless -N is in args).
func CLI(t testing.TB, port int, user, password, sqlText string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--no-defaults", "-h127.0.0.1", "-P" + strconv.Itoa(port), "-u" + user, "--batch"}, args...)
	if password != "" {
		full = append(full, "-p"+password)
	}
	full = append(full, "-e", sqlText)
	cmd := exec.CommandContext(ctx, "mariadb", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("mariadb: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// MustCLI is CLI that fails the test on error.
func MustCLI(t testing.TB, port int, user, password, sqlText string, args ...string) string {
	t.Helper()
	out, err := CLI(t, port, user, password, sqlText, args...)
	if err != nil {
		t.Fatalf("%v\nSQL: %s", err, sqlText)
	}
	return out
}

// DB opens a go-sql-driver/mysql handle.
func DB(t testing.TB, port int, user, password, db string, params string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s?timeout=5s&readTimeout=60s&writeTimeout=60s", user, password, port, db)
	if params != "" {
		dsn += "&" + params
	}
	h, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// RaceEnabled reports whether the tests, and so the sluice binary they
// start, run with the race detector (whose shadow memory inflates RSS).
func RaceEnabled() bool { return raceEnabled }
