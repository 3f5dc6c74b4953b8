package monitor

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// startMonitor starts a monitor whose options the test can change, as a
// LOAD changes the running configuration's.
func startMonitor(reg *backend.Registry, o Options) (*Monitor, func(Options)) {
	p := new(atomic.Pointer[Options])
	p.Store(&o)
	return New(reg, p.Load, zerolog.Nop()), func(o Options) { p.Store(&o) }
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }

// mariadb returns a real MariaDB server (scripts/backends.sh).
func mariadb(t *testing.T) testenv.Backend {
	t.Helper()
	return testenv.Backends(t, 1)[0]
}

// waitFor polls cond every 20 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastMonitor returns options with short intervals for tests.
func fastMonitor() Options {
	o := DefaultOptions()
	o.ConnectInterval = 200 * time.Millisecond
	o.ConnectTimeout = 500 * time.Millisecond
	o.PingInterval = 100 * time.Millisecond
	o.PingTimeout = 300 * time.Millisecond
	o.ReadOnlyInterval = 100 * time.Millisecond
	o.ReadOnlyTimeout = 500 * time.Millisecond
	return o
}

func countErrors(rows []LogEntry, port int) (ok, failed int) {
	for _, e := range rows {
		if e.Port != port {
			continue
		}
		if e.Error == "" {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}

// TestMonitorPingShunsAndRecovers: one host:port in two hostgroups behind a
// relay. Pings set the latency; once the relay is down, three failed pings
// shun both servers and close their idle connections, and failing pings
// keep them out; when the relay is back, good pings do not bring them back
// by themselves (as in ProxySQL, so a flapping server does not take
// traffic at every good ping): traffic does, through the lazy recovery of
// Server.Healthy, once shun_recovery_time has passed since the last failed
// ping.
func TestMonitorPingShunsAndRecovers(t *testing.T) {
	b := mariadb(t)
	rl := testenv.NewRelay(t, b.Addr())
	opts := backend.DefaultOptions()
	opts.ShunRecoveryTime = time.Second
	reg := backend.NewRegistry(backend.FixedOptions(opts), zerologNop())
	defer reg.Close()
	reg.Reconcile([]config.Server{
		{HostgroupID: 0, Hostname: "127.0.0.1", Port: rl.Port(), Weight: 1, MaxConnections: 10},
		{HostgroupID: 1, Hostname: "127.0.0.1", Port: rl.Port(), Weight: 1, MaxConnections: 10},
	})
	s0, s1 := reg.Hostgroup(0)[0], reg.Hostgroup(1)[0]

	// An idle pooled connection, which the shun must close.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s0.Pool().Get(ctx, nil, &backend.Credentials{User: "root", Password: "test"}, &backend.State{Autocommit: true})
	if err != nil {
		t.Fatal(err)
	}
	s0.Pool().Put(c)
	if s0.Pool().Free() != 1 {
		t.Fatalf("free connections = %d, want 1", s0.Pool().Free())
	}

	mon, _ := startMonitor(reg, fastMonitor())
	defer mon.Close()
	waitFor(t, 5*time.Second, "a successful ping and a latency", func() bool {
		ok, _ := countErrors(mon.PingLog(), rl.Port())
		return ok > 0 && s0.LatencyUs() > 0 && s1.LatencyUs() > 0
	})

	start := time.Now()
	rl.SetDown(true)
	waitFor(t, 5*time.Second, "both servers SHUNNED", func() bool {
		return s0.Status() == backend.StatusShunned && s1.Status() == backend.StatusShunned
	})
	t.Logf("shunned %v after the cut", time.Since(start).Round(time.Millisecond))
	if _, failed := countErrors(mon.PingLog(), rl.Port()); failed < 3 {
		t.Errorf("ping log has %d failures, want at least 3 before shunning", failed)
	}
	if n := s0.Pool().Free(); n != 0 {
		t.Errorf("free connections after the shun = %d, want 0", n)
	}
	// Failing pings renew the error time: the lazy path does not revive it.
	time.Sleep(1500 * time.Millisecond)
	if s0.Healthy() {
		t.Fatal("a server whose pings fail came back after shun_recovery_time")
	}

	// Back up: good pings leave the status alone; traffic (Healthy)
	// brings the server back after shun_recovery_time.
	rl.SetDown(false)
	back := time.Now()
	waitFor(t, 5*time.Second, "a good ping", func() bool {
		ok, _ := countErrors(mon.PingLog(), rl.Port())
		return ok > 0 && mon.PingLog()[len(mon.PingLog())-1].Error == ""
	})
	if s0.Status() != backend.StatusShunned || s1.Status() != backend.StatusShunned {
		t.Fatal("a good ping brought the servers back at once")
	}
	waitFor(t, 3*time.Second, "lazy recovery through Healthy", func() bool { return s0.Healthy() && s1.Healthy() })
	t.Logf("back ONLINE %v after the relay came back (recovery time 1 s)", time.Since(back).Round(time.Millisecond))
}

// TestMonitorConnectLogAndAuth: the connect log records a success for a
// live server and an error for a dead one; pings refused for a wrong
// monitor password are logged but never shun.
func TestMonitorConnectLogAndAuth(t *testing.T) {
	b := mariadb(t)
	dead := testenv.FreePort(t) // nothing listens there
	reg := backend.NewRegistry(backend.FixedOptions(backend.DefaultOptions()), zerologNop())
	defer reg.Close()
	reg.Reconcile([]config.Server{
		{HostgroupID: 0, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: 10},
		{HostgroupID: 0, Hostname: "127.0.0.1", Port: dead, Weight: 1, MaxConnections: 10},
	})
	var logged testenv.SyncBuffer
	p := new(atomic.Pointer[Options])
	first := fastMonitor()
	p.Store(&first)
	mon := New(reg, p.Load, zerolog.New(&logged))
	setOpts := func(o Options) { p.Store(&o) }
	defer mon.Close()
	waitFor(t, 5*time.Second, "connect log rows for both servers", func() bool {
		okLive, _ := countErrors(mon.ConnectLog(), b.Port)
		_, failDead := countErrors(mon.ConnectLog(), dead)
		return okLive > 0 && failDead > 0
	})
	for _, e := range mon.ConnectLog() {
		switch {
		case e.Port == b.Port && e.Error == "" && e.Success <= 0:
			t.Errorf("successful connect without a time: %+v", e)
		case e.Port == dead && (e.Success != 0 || !strings.Contains(e.Error, "connect")):
			t.Errorf("dead server row: %+v", e)
		}
	}
	waitFor(t, 5*time.Second, "dead server shunned by pings", func() bool {
		return reg.Lookup(backend.Key{Hostgroup: 0, Host: "127.0.0.1", Port: dead}).Status() == backend.StatusShunned
	})

	// Wrong password: the server is alive, the pings fail, nothing is shunned.
	o := fastMonitor()
	o.Password = "wrong"
	o.PingMaxFailures = 1
	setOpts(o)
	live := reg.Lookup(backend.Key{Hostgroup: 0, Host: b.Host, Port: b.Port})
	since := time.Now()
	waitFor(t, 5*time.Second, "access-denied pings in the log", func() bool {
		n := 0
		for _, e := range mon.PingLog() {
			if e.Port == b.Port && e.Start.After(since) && strings.HasPrefix(e.Error, "Access denied for user") {
				n++
			}
		}
		return n >= 3
	})
	if st := live.Status(); st != backend.StatusOnline {
		t.Errorf("access denied shunned the server: %s", st)
	}
	if got := mon.Options().Password; got != "wrong" {
		t.Errorf("new options not applied: %q", got)
	}
	// The refused credentials are logged, as ProxySQL logs them, once a
	// minute per server although the connect check runs every 200 ms.
	want := `is returning \"Access denied\" for monitoring user`
	waitFor(t, 5*time.Second, "the access-denied log line", func() bool { return strings.Contains(logged.String(), want) })
	time.Sleep(time.Second)
	if n := strings.Count(logged.String(), want); n != 1 {
		t.Errorf("access-denied lines: %d, want 1\n%s", n, logged.String())
	}
}

// TestMonitorReadOnlyMoves drives the read_only moves with SET GLOBAL
// read_only on a backend no other test uses (the third one).
func TestMonitorReadOnlyMoves(t *testing.T) {
	mariadb(t)
	b := testenv.Backends(t, 3)[2]
	root := testenv.DB(t, b.Port, "root", "test", "", "")
	if _, err := root.Exec("SET GLOBAL read_only=0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := root.Exec("SET GLOBAL read_only=0"); err != nil {
			t.Errorf("restoring read_only=0 on %s: %v", b.Addr(), err)
		}
	})
	reg := backend.NewRegistry(backend.FixedOptions(backend.DefaultOptions()), zerologNop())
	defer reg.Close()
	reg.Reconcile([]config.Server{{HostgroupID: 10, Hostname: b.Host, Port: b.Port, Weight: 7, MaxConnections: 10}})
	o := fastMonitor()
	o.ReplicationHostgroups = []config.ReplicationHostgroup{{WriterHostgroup: 10, ReaderHostgroup: 11, CheckType: "read_only"}}
	mon, setOpts := startMonitor(reg, o)
	defer mon.Close()
	wKey := backend.Key{Hostgroup: 10, Host: b.Host, Port: b.Port}
	rKey := backend.Key{Hostgroup: 11, Host: b.Host, Port: b.Port}

	// read_only=0 with writer_is_also_reader: the writer joins the readers.
	waitFor(t, 5*time.Second, "writer also in the reader hostgroup", func() bool {
		return reg.Lookup(wKey) != nil && reg.Lookup(rKey) != nil
	})
	if r := reg.Lookup(rKey); r.Weight() != 7 || r.Status() != backend.StatusOnline || r.ReadOnly() != 0 {
		t.Errorf("reader copy: weight %d status %s read_only %d", r.Weight(), r.Status(), r.ReadOnly())
	}

	writer := reg.Lookup(wKey)
	if _, err := root.Exec("SET GLOBAL read_only=1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "read_only=1 removes it from the writer hostgroup", func() bool {
		return reg.Lookup(wKey) == nil && reg.Lookup(rKey) != nil
	})
	if writer.Status() != backend.StatusOfflineHard {
		t.Errorf("removed writer status = %s, want OFFLINE_HARD", writer.Status())
	}
	if len(reg.Hostgroup(10)) != 0 || len(reg.Hostgroup(11)) != 1 {
		t.Errorf("hostgroups: writer %d servers, reader %d", len(reg.Hostgroup(10)), len(reg.Hostgroup(11)))
	}
	found := false
	for _, e := range mon.ReadOnlyLog() {
		if e.Port == b.Port && e.ReadOnly == 1 && e.Error == "" {
			found = true
		}
	}
	if !found {
		t.Error("no read_only=1 row in the read_only log")
	}

	if _, err := root.Exec("SET GLOBAL read_only=0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "read_only=0 brings it back to the writer hostgroup", func() bool {
		w := reg.Lookup(wKey)
		return w != nil && w.Status() == backend.StatusOnline && reg.Lookup(rKey) != nil
	})

	// writer_is_also_reader=false: the reader copy goes.
	o.WriterIsAlsoReader = false
	setOpts(o)
	waitFor(t, 5*time.Second, "reader copy removed", func() bool { return reg.Lookup(rKey) == nil && reg.Lookup(wKey) != nil })
}

// TestErrorText: the monitor tables hold errors as ProxySQL's client
// library words them (scripts match their start), not Go's wrapping.
func TestErrorText(t *testing.T) {
	refused := fmt.Errorf("backend: connect failed: 127.0.0.1:9: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
	if got, want := errorText(refused, "127.0.0.1"), `Can't connect to MySQL server on '127.0.0.1' (111 "connection refused")`; got != want {
		t.Errorf("refused: %q, want %q", got, want)
	}
	denied := fmt.Errorf("backend: login refused: %w", &wire.SQLError{Code: 1045, State: "28000", Message: "Access denied for user 'monitor'@'localhost' (using password: YES)"})
	if got := errorText(denied, "h"); got != "Access denied for user 'monitor'@'localhost' (using password: YES)" {
		t.Errorf("denied: %q", got)
	}
}

// TestMonitorWorkers: the worker goroutines are counted while they run
// (MySQL_Monitor_Workers) and when they start (MySQL_Monitor_Workers_Started).
func TestMonitorWorkers(t *testing.T) {
	reg := backend.NewRegistry(backend.FixedOptions(backend.DefaultOptions()), zerologNop())
	defer reg.Close()
	mon, _ := startMonitor(reg, fastMonitor())
	waitFor(t, 5*time.Second, "every worker running", func() bool {
		running, started := mon.Workers()
		return running == monitorWorkers && started == monitorWorkers
	})
	mon.Close()
	if running, started := mon.Workers(); running != 0 || started != monitorWorkers {
		t.Errorf("after Close: %d running, %d started; want 0 and %d", running, started, monitorWorkers)
	}
}
