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
// fallback). With use_ssl=0 the same server sees a clear-text session.
func TestBackendTLSUseSSL(t *testing.T) {
	start := time.Now()
	own := testenv.OwnBackendsSSL(t, 1)
	t.Logf("MariaDB with certificates started in %v", time.Since(start).Round(time.Millisecond))
	b := own.Backends[0]
	s := startFresh(t, "")
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

	// A CA that did not sign the server: the connect fails, with the reason.
	other := t.TempDir()
	if err := tlsconf.Generate(other, time.Now()); err != nil {
		t.Fatal(err)
	}
	admin(t, s, fmt.Sprintf("SET mysql-ssl_p2s_ca='%s'; LOAD MYSQL VARIABLES TO RUNTIME", filepath.Join(other, tlsconf.CAFile)))
	if out, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT 1", "-N", "--connect-timeout=5"); err == nil {
		t.Fatalf("a backend whose certificate the CA did not sign was used: %q", out)
	} else {
		t.Logf("wrong CA: %v", err)
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
