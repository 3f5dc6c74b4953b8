package tlsconf

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenGeneratesLoadsAndRefusesPartial: the first Open writes the three
// files (key 0600) with ProxySQL's names and common names, the next loads
// them unchanged, and a datadir with only some of them is an error.
func TestOpenGeneratesLoadsAndRefusesPartial(t *testing.T) {
	dir := t.TempDir()
	s, gen, err := Open(dir)
	if err != nil || !gen {
		t.Fatalf("first open: generated=%v %v", gen, err)
	}
	for f, mode := range map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v want %v", f, err, st.Mode().Perm(), mode)
		}
	}
	m := s.Current()
	if m.Subject != "CN=ProxySQL_Auto_Generated_Server_Certificate" || m.Key == nil || len(m.PublicPEM) == 0 {
		t.Fatalf("material: %q key=%v", m.Subject, m.Key != nil)
	}
	if len(m.Cert.Certificate) != 2 || m.NotAfter.Before(time.Now().AddDate(9, 0, 0)) {
		t.Fatalf("chain of %d, not after %v", len(m.Cert.Certificate), m.NotAfter)
	}
	// A certificate file that already ends with its CA (a full chain, as
	// many tools write it): the CA is sent once.
	certPEM, _ := os.ReadFile(filepath.Join(dir, CertFile))
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	chained := t.TempDir()
	for f, b := range map[string][]byte{CertFile: append(append([]byte{}, certPEM...), caPEM...), CAFile: caPEM} {
		if err := os.WriteFile(filepath.Join(chained, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if err := os.WriteFile(filepath.Join(chained, KeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(chained); err != nil {
		t.Fatalf("a chained certificate file: %v", err)
	} else if len(c.Cert.Certificate) != 2 {
		t.Fatalf("a chained certificate file: chain of %d, want 2 (the CA once)", len(c.Cert.Certificate))
	}
	s2, gen, err := Open(dir)
	if err != nil || gen {
		t.Fatalf("second open: generated=%v %v", gen, err)
	}
	if string(s2.Current().Cert.Certificate[0]) != string(m.Cert.Certificate[0]) {
		t.Fatal("the second open did not load the same certificate")
	}
	if err := os.Remove(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "only 2 of the TLS files") {
		t.Fatalf("partial datadir: %v", err)
	}
	if _, err := s.Reload(); err == nil || err.Error() != "RELOAD TLS failed: 2 TLS files are present. Expected: 3" {
		t.Fatalf("reload with 2 files: %v", err)
	}
	if s.Current() != m {
		t.Fatal("a failed reload changed the material")
	}
}

// TestReloadSwapsTheCertificateOfNewHandshakes: after new files and
// Reload, a new TLS handshake gets the new certificate; a bad key file
// keeps the old one.
func TestReloadSwapsTheCertificateOfNewHandshakes(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Current().Cert.Leaf.SerialNumber
	if got := handshakeSerial(t, s); got != old.String() {
		t.Fatalf("served %s, want %s", got, old)
	}
	if err := Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if m.Cert.Leaf.SerialNumber.Cmp(old) == 0 {
		t.Fatal("same serial after regeneration")
	}
	if got := handshakeSerial(t, s); got != m.Cert.Leaf.SerialNumber.String() {
		t.Fatalf("after reload served %s, want %s", got, m.Cert.Leaf.SerialNumber)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("a garbage key reloaded")
	}
	if s.Current() != m {
		t.Fatal("a failed reload changed the material")
	}
}

func handshakeSerial(t *testing.T, s *Store) string {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		srv := tls.Server(a, s.Config())
		_ = srv.Handshake()
	}()
	c := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	t.Logf("served %s, chain of %d", CipherName(cs), len(cs.PeerCertificates))
	return cs.PeerCertificates[0].SerialNumber.String()
}
