package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestBackendTLSRevocation: mysql-ssl_p2s_crl and _crlpath are checked on
// the verified chain of a use_ssl=1 backend (a list that revokes another
// serial lets the connection through, one that revokes the server's
// certificate or has expired refuses it), mysql-ssl_p2s_capath is a CA
// directory, and a revocation list without a CA is refused at LOAD.
func TestBackendTLSRevocation(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	own := testenv.OwnBackendsSSL(t, 1)
	b := own.Backends[0]
	sslDir := own.SSLDir(0)
	caCert, caKey := loadCA(t, sslDir)
	// openssl's test CA has no keyUsage extension, which any use allows
	// (and verification accepts); Go's CRL writer wants the bit spelled out.
	signer := *caCert
	signer.KeyUsage |= x509.KeyUsageCRLSign | x509.KeyUsageCertSign
	server := loadCert(t, filepath.Join(sslDir, "server-cert.pem"))
	dir := t.TempDir()
	crl := func(name string, next time.Time, serials ...*big.Int) string {
		t.Helper()
		tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: next}
		for _, s := range serials {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Hour)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, &signer, caKey)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	other := crl("other.pem", time.Now().Add(24*time.Hour), big.NewInt(424242))
	revoking := crl("revoking.pem", time.Now().Add(24*time.Hour), server.SerialNumber)
	expired := crl("expired.pem", time.Now().Add(-time.Minute))
	crlDir := filepath.Join(dir, "crls")
	caDir := filepath.Join(dir, "cas")
	for _, d := range []string{crlDir, caDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, revoking, filepath.Join(crlDir, "a1b2c3d4.r0"))
	if err := os.WriteFile(filepath.Join(crlDir, "README"), []byte("not a list"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(sslDir, "ca.pem"), filepath.Join(caDir, "ca.pem"))

	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port, use_ssl) VALUES (0, '%s', %d, 1);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', 'test', 0);
SET mysql-connect_timeout_server_max=1000; SET mysql-shun_on_failures=10000; SET mysql-connect_retries_on_failure=1000;
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME`, b.Host, b.Port))
	ca := filepath.Join(sslDir, "ca.pem")
	try := func(vars string) error {
		t.Helper()
		admin(t, s, vars+"; LOAD MYSQL VARIABLES TO RUNTIME")
		// A LOAD that changes the TLS settings keeps no pooled connection.
		_, err := testenv.CLI(t, s.DataPort, "root", "test", "SHOW SESSION STATUS LIKE 'Ssl_cipher'", "-N")
		return err
	}
	if err := try(fmt.Sprintf("SET mysql-ssl_p2s_ca='%s'; SET mysql-ssl_p2s_crl='%s'", ca, other)); err != nil {
		t.Fatalf("a list that revokes another serial: %v", err)
	}
	// The client is told why, not a bare 9001 as for a dead server.
	if err := try(fmt.Sprintf("SET mysql-ssl_p2s_crl='%s'", revoking)); err == nil ||
		!strings.Contains(err.Error(), "ERROR 9001 (HY000)") || !strings.Contains(err.Error(), "TLS/SSL error") || !strings.Contains(err.Error(), "is revoked") {
		t.Fatalf("the server's certificate revoked: %v, want ERR 9001 saying it is revoked", err)
	}
	// (One row per errno: its last_error may be a later attempt's, cut
	// short by the command's deadline.)
	if out := admin(t, s, "SELECT COUNT(*) FROM stats_mysql_errors WHERE errno=2026 AND last_error LIKE '%TLS/SSL error%'"); strings.TrimSpace(out) != "1" {
		t.Errorf("stats_mysql_errors has %q rows of errno 2026 for the failed TLS connects, want 1", out)
	}
	waitLog(t, s, "is revoked")
	if err := try(fmt.Sprintf("SET mysql-ssl_p2s_crl=''; SET mysql-ssl_p2s_crlpath='%s'", crlDir)); err == nil {
		t.Fatal("the server's certificate revoked by a list in ssl_crlpath: connected")
	}
	if err := try(fmt.Sprintf("SET mysql-ssl_p2s_crlpath=''; SET mysql-ssl_p2s_crl='%s'", expired)); err == nil {
		t.Fatal("an expired revocation list: connected")
	}
	waitLog(t, s, "expired at")
	// The CA from a directory, no CA file: verified and connected.
	if err := try(fmt.Sprintf("SET mysql-ssl_p2s_crl='%s'; SET mysql-ssl_p2s_ca=''; SET mysql-ssl_p2s_capath='%s'", other, caDir)); err != nil {
		t.Fatalf("CA from ssl_capath: %v", err)
	}
	// A list without any CA: the LOAD warns (settings that do not make a
	// TLS configuration never stop the proxy, as in ProxySQL), and TLS
	// connections fail with the reason; a missing CA file alike.
	out := admin(t, s, "SET mysql-ssl_p2s_capath=''; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS")
	if !strings.Contains(out, "needs a CA") {
		t.Fatalf("a revocation list without a CA: warnings %q, want one that says it needs a CA", out)
	}
	if _, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT 1", "-N"); err == nil {
		t.Fatal("connected under a revocation list without a CA")
	}
	waitLog(t, s, "needs a CA")
	missing := filepath.Join(dir, "not-deployed-yet.pem")
	out = admin(t, s, fmt.Sprintf("SET mysql-ssl_p2s_crl=''; SET mysql-ssl_p2s_ca='%s'; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS", missing))
	if !strings.Contains(out, "not-deployed-yet.pem") {
		t.Fatalf("a missing CA file: warnings %q", out)
	}
	// The settings are in RUNTIME; deploying the file and loading again
	// makes them work.
	copyFile(t, ca, missing)
	if err := try(""); err != nil {
		t.Fatalf("after the CA file was deployed: %v", err)
	}
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadCA reads the test backends' CA (scripts/backends.sh, openssl).
func loadCA(t *testing.T, dir string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("ca-key.pem: no PEM block")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			t.Fatalf("ca-key.pem: %v", err)
		}
	}
	return loadCert(t, filepath.Join(dir, "ca.pem")), key.(crypto.Signer)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
