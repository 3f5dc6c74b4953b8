package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
)

// TestBackendTLSUseSSL (issue 10, TLS): a MariaDB started with
// certificates by scripts/backends.sh (SLUICE_BACKENDS_SSL=1). With
// mysql_servers.use_ssl=1 the backend session is encrypted: the backend's
// own Ssl_cipher, read through Sluice, names a cipher, and the user
// sslonly (REQUIRE SSL on the server) logs in through Sluice. With
// mysql-ssl_p2s_ca set to the backends' CA the chain is verified; a CA that
// did not sign the server makes the connect fail (never a clear-text
// fallback). The monitor, whose user the server only admits over TLS,
// connects and pings. With use_ssl=0 the same server sees a clear-text
// session.
func TestBackendTLSUseSSL(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	start := time.Now()
	own := testenv.OwnBackendsSSL(t, 1)
	t.Logf("MariaDB with certificates started in %v", time.Since(start).Round(time.Millisecond))
	b := own.Backends[0]
	// The monitor user may only log in over TLS: the monitor's checks
	// succeed only if they use TLS to a use_ssl=1 server too.
	hosts := testenv.MustCLI(t, b.Port, "root", "test", "SELECT host FROM mysql.user WHERE user='monitor'", "-N")
	for _, h := range strings.Fields(hosts) {
		testenv.MustCLI(t, b.Port, "root", "test", fmt.Sprintf("ALTER USER 'monitor'@'%s' REQUIRE SSL", h))
	}
	s := startIn(t, t.TempDir(), "", true)
	admin(t, s, `SET mysql-monitor_connect_interval=500; SET mysql-monitor_ping_interval=500; LOAD MYSQL VARIABLES TO RUNTIME`)
	ca := filepath.Join(own.SSLDir(0), "ca.pem")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port, use_ssl) VALUES (0, '%s', %d, 1);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', 'test', 0), ('sslonly', 'sslonly', 0);
SET mysql-ssl_p2s_ca='%s'; SET mysql-connect_timeout_server_max=3000;
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL VARIABLES TO RUNTIME`, b.Host, b.Port, ca))

	cipher := func(user, pw string) (string, error) {
		out, err := testenv.CLI(t, s.DataPort, user, pw, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", "-N")
		name, value, _ := strings.Cut(strings.TrimRight(out, "\n"), "\t")
		if err == nil && name != "Ssl_cipher" {
			return "", fmt.Errorf("unexpected answer %q", out)
		}
		return value, err
	}
	for _, u := range [][2]string{{"root", "test"}, {"sslonly", "sslonly"}} {
		c, err := cipher(u[0], u[1])
		if err != nil || c == "" {
			t.Fatalf("%s through Sluice to a use_ssl=1 server: cipher %q, %v", u[0], c, err)
		}
		t.Logf("backend session of %s through Sluice: Ssl_cipher %s", u[0], c)
	}
	v := testenv.MustCLI(t, s.DataPort, "root", "test", "SHOW SESSION STATUS LIKE 'Ssl_version'", "-N")
	t.Logf("backend Ssl_version: %s", strings.TrimSpace(v))
	// The monitor (REQUIRE SSL user) connects and pings over TLS.
	for q, deadline := "", time.Now().Add(15*time.Second); ; time.Sleep(200 * time.Millisecond) {
		q = admin(t, s, fmt.Sprintf(`SELECT (SELECT COUNT(*) FROM monitor.mysql_server_connect_log WHERE port=%d AND connect_error IS NULL),
			(SELECT COUNT(*) FROM monitor.mysql_server_ping_log WHERE port=%d AND ping_error IS NULL)`, b.Port, b.Port))
		if f := strings.Fields(q); len(f) == 2 && f[0] != "0" && f[1] != "0" {
			t.Logf("monitor over TLS: %s successful connects, %s successful pings", f[0], f[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful monitor connect and ping over TLS: %q\n%s", q, admin(t, s, "SELECT * FROM monitor.mysql_server_connect_log ORDER BY time_start_us DESC LIMIT 3"))
		}
	}
	// The rest changes TLS settings under the servers: the monitor's
	// verdicts on them are not the subject.
	admin(t, s, "SET mysql-monitor_enabled='false'; LOAD MYSQL VARIABLES TO RUNTIME")

	// A mysql_servers_ssl_params row for root: TLS 1.2 with the cipher it
	// names; sslonly keeps the global settings. root's pooled connection,
	// made under the old settings, is not reused.
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers_ssl_params(hostname, port, username, ssl_ca, ssl_cipher, tls_version)
VALUES ('%s', %d, 'root', '%s', 'ECDHE-RSA-AES256-GCM-SHA384', 'TLSv1.2'); LOAD MYSQL SERVERS TO RUNTIME`, b.Host, b.Port, ca))
	if c, err := cipher("root", "test"); err != nil || c != "ECDHE-RSA-AES256-GCM-SHA384" {
		t.Fatalf("root with its mysql_servers_ssl_params row: cipher %q, %v", c, err)
	}
	if c, err := cipher("sslonly", "sslonly"); err != nil || c != "TLS_AES_128_GCM_SHA256" {
		t.Fatalf("sslonly without a row: cipher %q, %v", c, err)
	}
	t.Log("mysql_servers_ssl_params: root on TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384, sslonly on the global TLSv1.3")
	admin(t, s, "DELETE FROM mysql_servers_ssl_params; LOAD MYSQL SERVERS TO RUNTIME")

	// A CA that did not sign the server: the connect fails, with the reason.
	other := t.TempDir()
	if err := tlsconf.Generate(other, time.Now()); err != nil {
		t.Fatal(err)
	}
	admin(t, s, fmt.Sprintf("SET mysql-ssl_p2s_ca='%s'; LOAD MYSQL VARIABLES TO RUNTIME", filepath.Join(other, tlsconf.CAFile)))
	if out, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT 1", "-N", "--connect-timeout=5"); err == nil {
		t.Fatalf("a backend whose certificate the CA did not sign was used: %q", out)
	} else if !strings.Contains(err.Error(), "TLS/SSL error") || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong CA: %v, want an error that says TLS failed and why", err)
	}

	// use_ssl=0: clear text (the setting is really what decides).
	admin(t, s, "SET mysql-ssl_p2s_ca=''; LOAD MYSQL VARIABLES TO RUNTIME; UPDATE mysql_servers SET use_ssl=0; LOAD MYSQL SERVERS TO RUNTIME")
	if c, err := cipher("root", "test"); err != nil || c != "" {
		t.Fatalf("use_ssl=0: cipher %q, %v", c, err)
	}
	if _, err := cipher("sslonly", "sslonly"); err == nil {
		t.Fatal("use_ssl=0: sslonly (REQUIRE SSL) logged in, so the session was not in clear text")
	}
}
