package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// verifiedTLS registers a go-sql-driver TLS configuration that verifies
// the proxy's certificate against the CA in its datadir (the generated
// certificate names no host, so the chain alone is checked) and records the
// SHA-256 of the certificate each handshake saw.
func verifiedTLS(t *testing.T, name, caFile string, seen *[]string) {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in " + caFile)
	}
	conf := &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			return err
		}
		sum := sha256.Sum256(raw[0])
		*seen = append(*seen, hex.EncodeToString(sum[:8]))
		return nil
	}}
	if err := mysql.RegisterTLSConfig(name, conf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })
}

func ping(t *testing.T, port int, user, pw, params string) error {
	t.Helper()
	db := testenv.DB(t, port, user, pw, "", params)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// cliStatus runs the mariadb CLI's status command and returns its SSL line.
func cliSSLLine(t *testing.T, port int, user, pw string, args ...string) (string, error) {
	t.Helper()
	out, err := testenv.CLI(t, port, user, pw, "status", args...)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "SSL:") {
			return strings.TrimSpace(l), err
		}
	}
	return "", fmt.Errorf("no SSL line in %q (%v)", out, err)
}

// TestFrontendTLS (issue 10, TLS): mysql-have_ssl=true makes the data port
// and the admin port offer TLS with the certificates Sluice generated in
// its datadir. The mariadb CLI (--ssl) reports the cipher on both ports,
// go-sql-driver/mysql verifies the proxy's certificate against
// proxysql-ca.pem, PyMySQL reports its socket's cipher; a use_ssl=1 user
// is refused without TLS (ERR 1045 … SSL is required), also as the target
// of a COM_CHANGE_USER in a clear-text session, and served with TLS;
// PROXYSQL RELOAD TLS swaps the certificate for new handshakes, and keeps
// the old one when the files are incomplete; with have_ssl=false a client
// that insists on TLS gets a clear ERR.
func TestFrontendTLS(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	for _, f := range []string{tlsconf.CAFile, tlsconf.CertFile, tlsconf.KeyFile} {
		if _, err := os.Stat(filepath.Join(s.Datadir, f)); err != nil {
			t.Fatalf("the datadir has no %s: %v", f, err)
		}
	}
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', 'test', 0), ('sbtest', 'sbtest', 0);
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME`, b.Host, b.Port))

	// have_ssl=false (Sluice's default): no TLS offered (the mariadb CLI's
	// --ssl falls back to clear text, go-sql-driver's tls= refuses).
	if line, err := cliSSLLine(t, s.DataPort, "root", "test", "--ssl"); err != nil || !strings.Contains(line, "Not in use") {
		t.Fatalf("have_ssl=false, mariadb --ssl: %q %v", line, err)
	}
	if err := ping(t, s.DataPort, "root", "test", "tls=skip-verify"); err == nil {
		t.Fatal("go-sql-driver tls=skip-verify connected while mysql-have_ssl=false")
	} else {
		t.Logf("have_ssl=false, go-sql-driver tls=skip-verify: %v", err)
	}

	admin(t, s, "SET mysql-have_ssl='true'; LOAD MYSQL VARIABLES TO RUNTIME")
	// The mariadb CLI, data and admin ports.
	for _, c := range []struct {
		port     int
		user, pw string
		what     string
	}{{s.DataPort, "root", "test", "data port"}, {s.AdminPort, "admin", "admin", "admin port"}} {
		line, err := cliSSLLine(t, c.port, c.user, c.pw, "--ssl")
		if err != nil || !strings.Contains(line, "Cipher in use is ") {
			t.Fatalf("%s, mariadb --ssl: %q %v", c.what, line, err)
		}
		t.Logf("%s, mariadb --ssl: %s", c.what, line)
		line, err = cliSSLLine(t, c.port, c.user, c.pw, "--skip-ssl")
		if err != nil || !strings.Contains(line, "Not in use") {
			t.Fatalf("%s, mariadb --skip-ssl: %q %v", c.what, line, err)
		}
	}
	// go-sql-driver: skip-verify, and the datadir's CA.
	if err := ping(t, s.DataPort, "root", "test", "tls=skip-verify"); err != nil {
		t.Fatalf("go-sql-driver tls=skip-verify: %v", err)
	}
	var seen []string
	verifiedTLS(t, "sluice-ca", filepath.Join(s.Datadir, tlsconf.CAFile), &seen)
	if err := ping(t, s.DataPort, "root", "test", "tls=sluice-ca"); err != nil || len(seen) != 1 {
		t.Fatalf("go-sql-driver with proxysql-ca.pem: %v (%d handshakes)", err, len(seen))
	}
	// PyMySQL.
	py := `import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", password="test", ssl={"ca": sys.argv[2], "check_hostname": False}, connect_timeout=10)
cur = c.cursor(); cur.execute("SELECT 1"); assert cur.fetchone()[0] == 1
print(c._sock.version(), c._sock.cipher()[0])`
	out, err := exec.Command("/usr/bin/python3", "-c", py, itoa(s.DataPort), filepath.Join(s.Datadir, tlsconf.CAFile)).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "TLSv1") {
		t.Fatalf("PyMySQL over TLS: %v\n%s", err, out)
	}
	t.Logf("PyMySQL: %s", strings.TrimSpace(string(out)))

	// use_ssl=1: refused in clear text, served over TLS.
	admin(t, s, "UPDATE mysql_users SET use_ssl=1 WHERE username='root'; LOAD MYSQL USERS TO RUNTIME")
	_, err = testenv.CLI(t, s.DataPort, "root", "test", "SELECT 1", "--skip-ssl")
	if err == nil || !strings.Contains(err.Error(), "ERROR 1045 (28000)") || !strings.Contains(err.Error(), "SSL is required") {
		t.Fatalf("use_ssl=1 user without TLS: %v", err)
	}
	t.Logf("use_ssl=1 without TLS: %v", err)
	var me *mysql.MySQLError
	if err := ping(t, s.DataPort, "root", "test", ""); !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("use_ssl=1 user, go-sql-driver without TLS: %v", err)
	}
	if out := testenv.MustCLI(t, s.DataPort, "root", "test", "SELECT 1", "-N", "--ssl"); strings.TrimSpace(out) != "1" {
		t.Fatalf("use_ssl=1 user over TLS: %q", out)
	}
	if err := ping(t, s.DataPort, "root", "test", "tls=skip-verify"); err != nil {
		t.Fatalf("use_ssl=1 user, go-sql-driver over TLS: %v", err)
	}
	// COM_CHANGE_USER from a clear-text session to the use_ssl=1 user: refused too.
	c, salt := wireLoginSalt(t, s.DataPort, "sbtest", "sbtest")
	cu := &wire.ChangeUser{User: "root", AuthResponse: wire.NativeScramble(salt, []byte("test")), Charset: 33, AuthPlugin: "mysql_native_password"}
	c.ResetSeq()
	_ = c.WritePacket(wire.AppendChangeUser(nil, wire.ClientProtocol41|wire.ClientSecureConnection|wire.ClientPluginAuth, cu))
	_ = c.Flush()
	if p, err := c.ReadPacket(); err != nil || wire.IsOK(p) || !strings.Contains(string(p), "SSL is required") {
		t.Fatalf("COM_CHANGE_USER to a use_ssl=1 user in clear text: %q %v", p, err)
	}
	// A wrong password is still a plain access denied (no hint about TLS).
	if _, err := testenv.CLI(t, s.DataPort, "root", "wrong", "SELECT 1", "--skip-ssl"); err == nil || strings.Contains(err.Error(), "SSL") {
		t.Fatalf("use_ssl=1 user, wrong password: %v", err)
	}

	// PROXYSQL RELOAD TLS: new files, new certificate for new handshakes.
	other := t.TempDir()
	if err := tlsconf.Generate(other, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlsconf.CAFile, tlsconf.CertFile, tlsconf.KeyFile} {
		data, err := os.ReadFile(filepath.Join(other, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Datadir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	admin(t, s, "PROXYSQL RELOAD TLS")
	var seen2 []string
	verifiedTLS(t, "sluice-ca2", filepath.Join(s.Datadir, tlsconf.CAFile), &seen2)
	if err := ping(t, s.DataPort, "root", "test", "tls=sluice-ca2"); err != nil || len(seen2) != 1 || seen2[0] == seen[0] {
		t.Fatalf("after RELOAD TLS: %v (before %v, after %v)", err, seen, seen2)
	}
	if err := ping(t, s.DataPort, "root", "test", "tls=sluice-ca"); err == nil {
		t.Fatal("after RELOAD TLS the old CA still verifies the served certificate")
	}
	// Only two files: the reload fails with ProxySQL's message, the certificate stays.
	if err := os.Remove(filepath.Join(s.Datadir, tlsconf.CAFile)); err != nil {
		t.Fatal(err)
	}
	_, err = testenv.CLI(t, s.AdminPort, "admin", "admin", "PROXYSQL RELOAD TLS")
	if err == nil || !strings.Contains(err.Error(), "RELOAD TLS failed: 2 TLS files are present. Expected: 3") {
		t.Fatalf("RELOAD TLS with a file missing: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "test", "tls=sluice-ca2"); err != nil {
		t.Fatalf("after a failed RELOAD TLS: %v", err)
	}
}

// TestStartLoadsVariablesFirst: a proxysql.cnf with mysql-have_ssl=true and
// a user with use_ssl=1 starts without the warning that TLS is off (the
// users were loaded, and checked, before the variables).
func TestStartLoadsVariablesFirst(t *testing.T) {
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := filepath.Join(dir, "proxysql.cnf")
	text := fmt.Sprintf(`admin_variables = { admin_credentials = "admin:admin" mysql_ifaces = "127.0.0.1:%d" }
mysql_variables = { interfaces = "127.0.0.1:%d" have_ssl = true }
mysql_users = ( { username = "tlsonly", password = "pw", default_hostgroup = 0, use_ssl = 1 } )
`, adminPort, dataPort)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	datadir := filepath.Join(dir, "data")
	if err := os.MkdirAll(datadir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := testenv.Start(t, cfg, datadir, adminPort, dataPort, "--no-monitor")
	if v := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'mysql-have_ssl'")); v != "true" {
		t.Fatalf("runtime mysql-have_ssl = %q", v)
	}
	if strings.Contains(s.Output(), "cannot log in until TLS is offered") {
		t.Fatalf("a start with mysql-have_ssl=true warned that TLS is off:\n%s", s.Output())
	}
}
