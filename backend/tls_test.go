package backend

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
)

// startFakeMySQL8TLS is startFakeMySQL8 offering TLS with a certificate
// signed by the CA in the returned directory (tlsconf's files). go-mysql's
// server expects the clear-text password for caching_sha2_password full
// authentication over TLS (an RSA key request there fails the login), so a
// login that succeeds proves the password went over TLS.
func startFakeMySQL8TLS(t *testing.T) (addr, certDir string) {
	t.Helper()
	certDir = t.TempDir()
	m, err := func() (*tlsconf.Material, error) {
		if err := tlsconf.Generate(certDir, time.Now()); err != nil {
			return nil, err
		}
		return tlsconf.Load(certDir)
	}()
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer("8.0.36", 45, mysql.AUTH_CACHING_SHA2_PASSWORD, m.Cert.PrivateKey.(*rsa.PrivateKey),
		&tls.Config{Certificates: []tls.Certificate{m.Cert}})
	auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_CACHING_SHA2_PASSWORD)
	_ = auth.AddUser("sha2", "pw", mysql.AUTH_CACHING_SHA2_PASSWORD)
	return serveFake(t, srv, auth, &fakeHandler{}), certDir
}

func tlsServer(t *testing.T, addr string, o Options) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: host, Port: p, Weight: 1, MaxConnections: 10, UseSSL: 1}})
	return r.Hostgroup(0)[0]
}

// TestUseSSLCachingSha2OverTLS: a use_ssl=1 server that speaks MySQL 8's
// caching_sha2_password: the login goes over TLS (full authentication with
// the clear password, then fast auth from the server's cache), the chain is
// verified against mysql-ssl_p2s_ca, a CA that did not sign the server
// fails the connect, and a pooled connection made with other TLS settings
// is not reused.
func TestUseSSLCachingSha2OverTLS(t *testing.T) {
	addr, certDir := startFakeMySQL8TLS(t)
	caPEM, err := os.ReadFile(filepath.Join(certDir, tlsconf.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := NewClientTLSConfig(caPEM, nil, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.TLS = &ClientTLS{Default: conf}
	s := tlsServer(t, addr, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cred := &Credentials{User: "sha2", Password: "pw"}
	want := &State{Autocommit: true}
	for i := range 2 { // full auth over TLS, then fast auth
		c, err := s.Pool().Get(ctx, &o, cred, want)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		cs, encrypted := c.TLSState()
		if !encrypted {
			t.Fatalf("login %d: not encrypted", i)
		}
		t.Logf("login %d to the MySQL 8 fake: %s", i, tls.CipherSuiteName(cs.CipherSuite))
		if res, err := c.Query(ctx, "SELECT 1"); err != nil || len(res.Rows) != 1 {
			t.Fatalf("query %d: %v", i, err)
		}
		_ = c.Close()
	}
	// A pooled connection is reused while the settings are the same …
	c, err := s.Pool().Get(ctx, &o, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	s.Pool().Put(c)
	if c2, err := s.Pool().Get(ctx, &o, cred, want); err != nil || c2 != c {
		t.Fatalf("same settings: reused=%v %v", c2 == c, err)
	} else {
		s.Pool().Put(c2)
	}
	// … and not under other TLS settings (a new LOAD): a new one is made.
	conf2, _ := NewClientTLSConfig(caPEM, nil, nil, "", "TLSv1.3")
	o2 := o
	o2.TLS = &ClientTLS{Default: conf2}
	c3, err := s.Pool().Get(ctx, &o2, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	if c3 == c {
		t.Fatal("a connection made with other TLS settings was reused")
	}
	if cs, _ := c3.TLSState(); cs.Version != tls.VersionTLS13 {
		t.Fatalf("TLS version %x", cs.Version)
	}
	_ = c3.Close()

	// A CA that did not sign the server: the connect fails, never in clear.
	otherDir := t.TempDir()
	if err := tlsconf.Generate(otherDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	otherCA, _ := os.ReadFile(filepath.Join(otherDir, tlsconf.CAFile))
	bad, err := NewClientTLSConfig(otherCA, nil, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ob := DefaultOptions()
	ob.TLS = &ClientTLS{Default: bad}
	sb := tlsServer(t, addr, ob)
	if _, err := sb.Pool().Get(ctx, &ob, cred, want); err == nil || !errors.Is(err, ErrConnect) {
		t.Fatalf("wrong CA: %v", err)
	} else {
		t.Logf("wrong CA: %v", err)
	}
}

// TestUseSSLRefusedByServerWithoutSSL: use_ssl=1 to a server that does not
// offer SSL is a connect error, never a clear-text login.
func TestUseSSLRefusedByServerWithoutSSL(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	o := DefaultOptions()
	s := tlsServer(t, addr, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Pool().Get(ctx, &o, &Credentials{User: "sha2", Password: "pw"}, &State{Autocommit: true})
	if err == nil || !errors.Is(err, ErrConnect) {
		t.Fatalf("use_ssl=1 to a server without SSL: %v", err)
	}
}

// TestClientTLSLookup: mysql_servers_ssl_params rows by (host, port,
// user), then (host, port, ”), then the global settings.
func TestClientTLSLookup(t *testing.T) {
	def, user, anyUser := &tls.Config{}, &tls.Config{}, &tls.Config{}
	ct := &ClientTLS{Default: def, Params: map[TLSParamsKey]*tls.Config{
		{"db", 3306, "app"}: user, {"db", 3306, ""}: anyUser}}
	if ct.For("db", 3306, "app") != user || ct.For("db", 3306, "other") != anyUser || ct.For("db", 3307, "app") != def {
		t.Fatal("lookup order")
	}
	if (*ClientTLS)(nil).For("db", 3306, "app") != nil {
		t.Fatal("nil ClientTLS")
	}
	for _, v := range []string{"TLSv1.1", "SSLv3", "TLSv1.2,TLSv1"} {
		if _, err := NewClientTLSConfig(nil, nil, nil, "", v); err == nil {
			t.Fatalf("tls_version %q accepted", v)
		}
	}
	if c, err := NewClientTLSConfig(nil, nil, nil, "", "TLSv1.2,TLSv1.3"); err != nil || c.MinVersion != tls.VersionTLS12 || c.MaxVersion != 0 {
		t.Fatalf("TLSv1.2,TLSv1.3: %v", err)
	}
	if c, err := NewClientTLSConfig(nil, nil, nil, "", "TLSv1.2"); err != nil || c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS12 {
		t.Fatalf("TLSv1.2 only: %v", err)
	}
	if c, err := NewClientTLSConfig(nil, nil, nil, "", "TLSv1.3"); err != nil || c.MinVersion != tls.VersionTLS13 || c.MaxVersion != 0 {
		t.Fatalf("TLSv1.3 only: %v", err)
	}
	if ids, err := ParseCipherList("ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_128_GCM_SHA256, AES128-SHA"); err != nil ||
		len(ids) != 2 || ids[0] != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 || ids[1] != tls.TLS_RSA_WITH_AES_128_CBC_SHA {
		t.Fatalf("cipher list: %v %v", ids, err)
	}
	for _, bad := range []string{"HIGH:!aNULL", "ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA", "DES-CBC3-SHA"} {
		if _, err := NewClientTLSConfig(nil, nil, nil, bad, ""); err == nil {
			t.Fatalf("cipher list %q accepted", bad)
		}
	}
	if _, err := NewClientTLSConfig([]byte("not a pem"), nil, nil, "", ""); err == nil {
		t.Fatal("a CA file without a certificate accepted")
	}
}
