// Package tlsconf holds the TLS material of the proxy's own ports, as
// ProxySQL keeps it: three PEM files in the datadir (proxysql-ca.pem,
// proxysql-cert.pem, proxysql-key.pem), generated at the first start when
// none exists (a self-signed CA and a server certificate signed by it, one
// RSA-2048 key for both, ten years), loaded when all three exist, and an
// error when only some do. PROXYSQL RELOAD TLS reads the files again and
// swaps the certificate: handshakes from then on use the new one, sessions
// already encrypted keep theirs.
//
// The same key serves the caching_sha2_password RSA exchange of clients
// without TLS (RSAKey).
package tlsconf

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
)

// The file names ProxySQL uses in its datadir.
const (
	CAFile   = "proxysql-ca.pem"
	CertFile = "proxysql-cert.pem"
	KeyFile  = "proxysql-key.pem"
)

// maxPEM bounds what a certificate or key file may make the proxy read.
const maxPEM = 1 << 20

// Material is one loaded set of files.
type Material struct {
	Cert      tls.Certificate // the server certificate, then the CA
	Key       *rsa.PrivateKey // nil when the key is not RSA
	PublicPEM []byte          // the key's public half (PKIX PEM), for caching_sha2_password
	Subject   string          // the server certificate's subject, for logs
	NotAfter  time.Time
}

// Store is the material of the proxy's ports, swapped whole by Reload.
type Store struct {
	datadir string
	cur     atomic.Pointer[Material]
	conf    *tls.Config
}

// Open makes sure the datadir has the three files (generating them when
// none exists) and loads them. It logs nothing: generated reports whether
// the files were made now.
func Open(datadir string) (s *Store, generated bool, err error) {
	present, err := count(datadir)
	if err != nil {
		return nil, false, err
	}
	switch present {
	case 0:
		if err := Generate(datadir, time.Now()); err != nil {
			return nil, false, err
		}
		generated = true
	case 3:
	default:
		return nil, false, fmt.Errorf("only %d of the TLS files %s, %s, %s are in %s: either all are present, or none", present, KeyFile, CertFile, CAFile, datadir)
	}
	m, err := Load(datadir)
	if err != nil {
		return nil, false, err
	}
	s = &Store{datadir: datadir}
	s.cur.Store(m)
	s.conf = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &s.cur.Load().Cert, nil
		},
	}
	return s, generated, nil
}

// Config is the server-side configuration of the proxy's ports; its
// certificate follows Reload.
func (s *Store) Config() *tls.Config { return s.conf }

// Current returns the material in use.
func (s *Store) Current() *Material { return s.cur.Load() }

// Reload reads the files again (PROXYSQL RELOAD TLS). On any error the
// material in use is kept. The message of a missing file is ProxySQL's.
func (s *Store) Reload() (*Material, error) {
	n, err := count(s.datadir)
	if err != nil {
		return nil, err
	}
	if n != 3 {
		return nil, fmt.Errorf("RELOAD TLS failed: %d TLS files are present. Expected: 3", n)
	}
	m, err := Load(s.datadir)
	if err != nil {
		return nil, fmt.Errorf("RELOAD TLS failed: %w", err)
	}
	s.cur.Store(m)
	return m, nil
}

func count(datadir string) (int, error) {
	n := 0
	for _, f := range []string{KeyFile, CertFile, CAFile} {
		_, err := os.Stat(filepath.Join(datadir, f))
		switch {
		case err == nil:
			n++
		case !errors.Is(err, os.ErrNotExist):
			return 0, err
		}
	}
	return n, nil
}

func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("%s: more than %d bytes, more than a PEM file can need", path, maxPEM)
	}
	return b, nil
}

// Load reads the three files of datadir: the certificate and key must
// match; the CA is sent after the certificate.
func Load(datadir string) (*Material, error) {
	certPEM, err := readPEM(filepath.Join(datadir, CertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEM(filepath.Join(datadir, KeyFile))
	if err != nil {
		return nil, err
	}
	caPEM, err := readPEM(filepath.Join(datadir, CAFile))
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", CertFile, KeyFile, err)
	}
	cas := 0
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", CAFile, err)
			}
			// Once in the chain sent to clients: a certificate file that
			// already ends with its CA sent it twice.
			if !slices.ContainsFunc(cert.Certificate, func(c []byte) bool { return bytes.Equal(c, b.Bytes) }) {
				cert.Certificate = append(cert.Certificate, b.Bytes)
			}
			cas++
		}
	}
	if cas == 0 {
		return nil, fmt.Errorf("%s: no certificate", CAFile)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	m := &Material{Cert: cert, Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter}
	if k, ok := cert.PrivateKey.(*rsa.PrivateKey); ok {
		m.Key = k
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		m.PublicPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	return m, nil
}

// Generate writes a new key (mode 0600), a self-signed CA certificate and
// a server certificate signed by it into datadir, with ProxySQL's common
// names, valid ten years from now.
func Generate(datadir string, now time.Time) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		return n.Add(n, big.NewInt(1))
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "ProxySQL_Auto_Generated_CA_Certificate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "ProxySQL_Auto_Generated_Server_Certificate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		typ  string
		der  []byte
		mode os.FileMode
	}{
		{KeyFile, "PRIVATE KEY", keyDER, 0o600},
		{CAFile, "CERTIFICATE", caDER, 0o644},
		{CertFile, "CERTIFICATE", srvDER, 0o644},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(datadir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates path with mode (never widening an existing file's):
// written to a temporary file first, so a crash leaves no half file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CipherName is the OpenSSL-style name of a negotiated cipher suite as Go
// names it (for logs and status).
func CipherName(cs tls.ConnectionState) string {
	return tls.VersionName(cs.Version) + " " + tls.CipherSuiteName(cs.CipherSuite)
}
