package cluster

import (
	"context"
	"net"
	"strconv"
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

	st, _, err := storage.Open(storage.Options{Datadir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt := &config.Snapshot{
		AdminVars: map[string]string{"admin-cluster_username": "c", "admin-cluster_password": "p",
			"admin-cluster_check_interval_ms": "50", "admin-mysql_ifaces": "127.0.0.1:1"},
		ProxySQLServers: []config.ProxySQLServer{{Hostname: "127.0.0.1", Port: port}},
	}
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
