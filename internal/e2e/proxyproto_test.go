package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestProxyProtocolBehindHAProxy: a real HAProxy in front of Sluice with
// send-proxy (v1) and send-proxy-v2, and a client connecting from
// 127.0.0.2. While mysql-proxy_protocol_networks does not list HAProxy's
// address, the header is skipped (logged) and the client is HAProxy's
// 127.0.0.1; once it does, query rules on client_addr and the processlist
// see 127.0.0.2. A client without a header still logs in, and a value that
// is not a network list is refused.
func TestProxyProtocolBehindHAProxy(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=haproxy)")
	}
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (1, '127.0.0.1', %d);
		LOAD MYSQL SERVERS TO RUNTIME;
		INSERT INTO mysql_query_rules (rule_id, active, client_addr, destination_hostgroup, apply) VALUES (1, 1, '127.0.0.2', 1, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME`, bs[1].Port))

	v1, v2 := testenv.FreePort(t), testenv.FreePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend v1
    bind 127.0.0.1:%d
    default_backend sluice_v1
backend sluice_v1
    server s 127.0.0.1:%d send-proxy
frontend v2
    bind 127.0.0.1:%d
    default_backend sluice_v2
backend sluice_v2
    server s 127.0.0.1:%d send-proxy-v2
`, v1, s.DataPort, v2, s.DataPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	hap := exec.Command("haproxy", "-db", "-f", cfg)
	hapOut := &strings.Builder{}
	hap.Stdout, hap.Stderr = hapOut, hapOut
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hap.Process.Kill(); _ = hap.Wait() })
	for _, p := range []int{v1, v2} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy does not listen on %d: %s", p, hapOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The client's own address is 127.0.0.2: HAProxy reaches Sluice from
	// 127.0.0.1 and names 127.0.0.2 in its header.
	from := dialFrom("127.0.0.2")
	// ask returns the backend port a query reached and the client address
	// the processlist shows for the session.
	ask := func(port int) (backendPort, cliHost string) {
		t.Helper()
		db, err := sql.Open("mysql", fmt.Sprintf("sbtest:sbtest@%s(127.0.0.1:%d)/?timeout=5s", from, port))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatalf("connect through port %d: %v", port, err)
		}
		defer conn.Close()
		var id int64
		if err := conn.QueryRowContext(context.Background(), "SELECT @@port").Scan(&backendPort); err != nil {
			t.Fatalf("query through port %d: %v", port, err)
		}
		// The proxy's session id (Sluice answers CONNECTION_ID() itself).
		if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		cliHost = strings.TrimSpace(admin(t, s, fmt.Sprintf("SELECT cli_host FROM stats_mysql_processlist WHERE SessionID=%d", id)))
		return backendPort, cliHost
	}
	direct, proxied := fmt.Sprint(bs[0].Port), fmt.Sprint(bs[1].Port)

	// Not trusted (the default, empty): the header is skipped.
	for _, p := range []int{v1, v2} {
		if got, host := ask(p); got != direct || host != "127.0.0.1" {
			t.Fatalf("untrusted header through %d: backend %s, cli_host %q; want %s and 127.0.0.1", p, got, host, direct)
		}
	}
	waitLog(t, s, "PROXY protocol header skipped", "not in mysql-proxy_protocol_networks")

	// Trusted: the rule on client_addr sees 127.0.0.2, as the processlist.
	admin(t, s, "SET mysql-proxy_protocol_networks='10.0.0.0/8, 127.0.0.1/32'; LOAD MYSQL VARIABLES TO RUNTIME")
	for _, p := range []int{v1, v2} {
		if got, host := ask(p); got != proxied || host != "127.0.0.2" {
			t.Fatalf("trusted header through %d: backend %s, cli_host %q; want %s and 127.0.0.2", p, got, host, proxied)
		}
	}
	// No header: the connection's own address, and a login as usual.
	if got, host := ask(s.DataPort); got != proxied || host != "127.0.0.2" {
		t.Fatalf("direct from 127.0.0.2: backend %s, cli_host %q", got, host)
	}
	out := testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT @@port", "-N")
	if strings.TrimSpace(out) != direct {
		t.Fatalf("mariadb CLI from 127.0.0.1 without a header: %q", out)
	}

	// Not a network list: reverted at LOAD, the runtime keeps its value.
	admin(t, s, "SET mysql-proxy_protocol_networks='10.0.0.0/33'; LOAD MYSQL VARIABLES TO RUNTIME")
	rt := admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-proxy_protocol_networks'")
	if strings.TrimSpace(rt) != "10.0.0.0/8, 127.0.0.1/32" {
		t.Fatalf("runtime mysql-proxy_protocol_networks after an invalid SET: %q", rt)
	}
	waitLog(t, s, "Impossible to set variable mysql-proxy_protocol_networks")
}
