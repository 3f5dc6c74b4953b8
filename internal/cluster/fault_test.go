package cluster

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// TestSilentPeerBounded: a peer that accepts connections and never
// answers (fault injection: an in-process listener) costs a bounded wait
// per attempt, is counted in stats_proxysql_servers_status.checks_ERR, and
// does not keep the poller from stopping at once on LOAD PROXYSQL SERVERS
// (Reload with the peer gone) or at Close.
func TestSilentPeerBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		heldMu sync.Mutex
		held   []net.Conn
	)
	accepted := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c) // never answered, closed with the test
			heldMu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	st, rt := onePeer(t, port, "50")
	var cur atomic.Pointer[config.Snapshot]
	cur.Store(rt)
	m := New(Config{Store: st, Runtime: cur.Load, Log: zerolog.Nop(), UUID: "u"})
	defer m.Close()

	// Two failed attempts: each is bounded by the handshake timeout.
	start := time.Now()
	deadline := time.After(30 * time.Second)
	for errs := 0; errs < 2; {
		select {
		case <-deadline:
			t.Fatalf("checks_ERR still %d after 30 s", errs)
		case <-time.After(50 * time.Millisecond):
		}
		m.RefreshTables([]string{"stats_proxysql_servers_status"})
		res, err := st.Query(context.Background(), "SELECT checks_ERR FROM stats_proxysql_servers_status", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) == 1 {
			errs, _ = strconv.Atoi(res.Rows[0][0].String)
		}
	}
	t.Logf("two failed checks of a silent peer took %v", time.Since(start))

	// The peer removed (LOAD PROXYSQL SERVERS): its poller stops, even in
	// the middle of a handshake.
	<-accepted
	cur.Store(&config.Snapshot{AdminVars: rt.AdminVars})
	start = time.Now()
	m.Reload()
	for {
		m.RefreshTables([]string{"stats_proxysql_servers_status"})
		res, err := st.Query(context.Background(), "SELECT COUNT(*) FROM stats_proxysql_servers_status", true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows[0][0].String == "0" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the removed peer is still polled after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("removed peer's poller stopped in %v", time.Since(start))
}

// syncBuffer is a log sink the poller goroutines write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestPeerFailuresLogged: a peer that refuses every connection is logged
// at its first failure and then every 20th (ProxySQL's pace), not once for
// the life of the process nor at every check.
func TestPeerFailuresLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // refused from now on
	st, rt := onePeer(t, port, "10")
	var logged syncBuffer
	m := New(Config{Store: st, Runtime: func() *config.Snapshot { return rt }, Log: zerolog.New(&logged), UUID: "u"})
	defer m.Close()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(logged.String(), `"failures_in_a_row":40`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no 40th failure logged in 20 s:\n%s", logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.Close()
	lines := strings.Count(logged.String(), "unable to query peer")
	for _, n := range []string{`"failures_in_a_row":1,`, `"failures_in_a_row":20,`, `"failures_in_a_row":40,`} {
		if !strings.Contains(logged.String(), n) {
			t.Errorf("no line with %s", n)
		}
	}
	if lines < 3 || lines > 4 {
		t.Errorf("%d lines for 40-odd failures, want 3 (the 1st, 20th, 40th):\n%s", lines, logged.String())
	}
}

// onePeer returns a store (closed with the test) and a runtime whose one
// proxysql_servers row is 127.0.0.1:port, checked every intervalMs.
func onePeer(t *testing.T, port int, intervalMs string) (*storage.Store, *config.Snapshot) {
	t.Helper()
	st, _, err := storage.Open(storage.Options{Datadir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, &config.Snapshot{
		AdminVars: map[string]string{"admin-cluster_username": "c", "admin-cluster_password": "p",
			"admin-cluster_check_interval_ms": intervalMs, "admin-mysql_ifaces": "127.0.0.1:1"},
		ProxySQLServers: []config.ProxySQLServer{{Hostname: "127.0.0.1", Port: port}},
	}
}
