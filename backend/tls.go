package backend

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// ClientTLS is how the proxy encrypts its connections to servers with
// mysql_servers.use_ssl=1: the configuration of mysql-ssl_p2s_* (Default)
// and the per-server rows of mysql_servers_ssl_params, which ProxySQL 2.6
// looks up by (hostname, port, username) first, then (hostname, port, ”).
// It is built once per LOAD (internal/live), never per connection.
type ClientTLS struct {
	Default *tls.Config
	Params  map[TLSParamsKey]*tls.Config
}

// TLSParamsKey is the key of a mysql_servers_ssl_params row.
type TLSParamsKey struct {
	Host     string
	Port     int
	Username string // "" applies to every user
}

// defaultClientTLS encrypts without verifying: use_ssl=1 with no p2s
// setting at all (and in tests that build Options by hand).
var defaultClientTLS, _ = NewClientTLSConfig(nil, nil, nil, "", "")

// For returns the configuration for a login of user to srv.
func (t *ClientTLS) For(host string, port int, user string) *tls.Config {
	if t == nil {
		return nil
	}
	if c, ok := t.Params[TLSParamsKey{host, port, user}]; ok {
		return c
	}
	if c, ok := t.Params[TLSParamsKey{host, port, ""}]; ok {
		return c
	}
	return t.Default
}

// NewClientTLSConfig makes the configuration of one set of p2s settings:
// caPEM (the CA bundle, may be empty), a client certificate (certPEM and
// keyPEM, both or neither), the cipher list (OpenSSL names separated by
// ':' or ',', as mysql-ssl_p2s_cipher; "" for Go's defaults; see
// ParseCipherList) and the TLS versions allowed ("": TLSv1.2 and up; else
// a comma-separated list of TLSv1.2 and TLSv1.3, only those). Without a CA the
// server's certificate is not verified — the link is encrypted, the server
// not authenticated — as ProxySQL does (its libmariadb does not verify
// unless asked); with a CA the server's chain must lead to it. Host names
// are not checked (ProxySQL does not).
//
// crls are certificate revocation lists (PEM or DER; mysql-ssl_p2s_crl and
// the files of _crlpath). They need a CA: a certificate of the verified
// chain that a list from its issuer (signed by it) names is refused, and so
// is a chain whose issuer's list has passed its next update, as OpenSSL
// does.
func NewClientTLSConfig(caPEM, certPEM, keyPEM []byte, cipher, versions string, crls ...[]byte) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // verified below when a CA is given
	if versions != "" {
		// The versions listed are the ones allowed, as libmariadb's
		// MARIADB_OPT_TLS_VERSION: "TLSv1.2" alone keeps TLS 1.3 out.
		var v12, v13 bool
		for _, v := range strings.Split(versions, ",") {
			switch strings.TrimSpace(v) {
			case "TLSv1.2":
				v12 = true
			case "TLSv1.3":
				v13 = true
			default:
				return nil, fmt.Errorf("tls_version %q: Sluice speaks TLSv1.2 and TLSv1.3", versions)
			}
		}
		if !v12 {
			conf.MinVersion = tls.VersionTLS13
		}
		if !v13 {
			conf.MaxVersion = tls.VersionTLS12
		}
	}
	if cipher != "" {
		suites, err := ParseCipherList(cipher)
		if err != nil {
			return nil, err
		}
		conf.CipherSuites = suites
	}
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	revoked, err := parseCRLs(crls)
	if err != nil {
		return nil, err
	}
	if len(revoked) > 0 && len(caPEM) == 0 {
		return nil, errors.New("a revocation list needs a CA (ssl_ca or ssl_capath): revocation is checked on the verified chain")
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("CA: no certificate in the file")
		}
		conf.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			chains, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if err != nil || len(revoked) == 0 {
				return err
			}
			return checkRevoked(chains, revoked, time.Now())
		}
	}
	return conf, nil
}

// clientTLS is the configuration of a new connection of user to s: nil
// when s has use_ssl=0.
func (s *Server) clientTLS(o *Options, user string) *tls.Config {
	if s.useSSL.Load() == 0 {
		return nil
	}
	var t *ClientTLS
	if o != nil {
		t = o.TLS
	}
	if c := t.For(s.key.Host, s.key.Port, user); c != nil {
		return c
	}
	return defaultClientTLS
}

// startTLS sends the SSLRequest and runs the TLS handshake with the
// server (which offers SSL: the caller checked): the login continues over
// TLS.
func (c *BackendConn) startTLS(conf *tls.Config, collation uint8) error {
	c.scratch = wire.AppendSSLRequest(c.scratch[:0], c.caps, 1<<30, collation)
	if err := c.w.WritePacket(c.scratch); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if err := c.w.StartClientTLS(conf); err != nil {
		return fmt.Errorf("%w: %w", ErrTLS, err)
	}
	return nil
}

// TLSState returns the connection's TLS state, and whether it is
// encrypted.
func (c *BackendConn) TLSState() (tls.ConnectionState, bool) { return c.w.TLSState() }

// openSSLCiphers maps OpenSSL's names of the TLS 1.2 suites Go implements
// to Go's identifiers.
var openSSLCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// tls13Suites are the TLS 1.3 suites: Go always offers all three, as
// OpenSSL does unless its (separate) ciphersuites list is set.
var tls13Suites = map[string]bool{"TLS_AES_128_GCM_SHA256": true, "TLS_AES_256_GCM_SHA384": true, "TLS_CHACHA20_POLY1305_SHA256": true}

// ParseCipherList reads an OpenSSL cipher list of explicit suite names
// (mysql-ssl_p2s_cipher, mysql_servers_ssl_params.ssl_cipher) into the TLS
// 1.2 suites Go offers, in the order given. TLS 1.3 names are accepted and
// change nothing (Go offers them all). OpenSSL's keywords and operators
// (HIGH, !aNULL, @STRENGTH…) and unknown names are an error, never
// silently widened: the operator asked for a restriction.
func ParseCipherList(list string) ([]uint16, error) {
	var out []uint16
	n := 0
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		n++
		if id, ok := openSSLCiphers[name]; ok {
			out = append(out, id)
			continue
		}
		if tls13Suites[name] {
			continue
		}
		return nil, fmt.Errorf("cipher %q: not a TLS 1.2 or 1.3 suite Sluice speaks (give OpenSSL suite names such as ECDHE-RSA-AES128-GCM-SHA256; keywords like HIGH or !aNULL are not supported)", name)
	}
	if n == 0 {
		return nil, nil
	}
	if len(out) == 0 {
		return nil, nil // TLS 1.3 names only: TLS 1.2 keeps Go's defaults, as OpenSSL's cipher list does
	}
	return out, nil
}

// parseCRLs reads revocation lists, each file PEM ("X509 CRL" blocks) or
// DER.
func parseCRLs(files [][]byte) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	for _, b := range files {
		if len(b) == 0 {
			continue
		}
		if !bytes.Contains(b, []byte("-----BEGIN")) {
			l, err := x509.ParseRevocationList(b)
			if err != nil {
				return nil, fmt.Errorf("revocation list: %w", err)
			}
			out = append(out, l)
			continue
		}
		found := false
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "X509 CRL" {
				continue
			}
			l, err := x509.ParseRevocationList(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("revocation list: %w", err)
			}
			out = append(out, l)
			found = true
		}
		if !found {
			return nil, errors.New("revocation list: no X509 CRL block in the file")
		}
	}
	return out, nil
}

// checkRevoked refuses a chain in which a certificate is listed by a
// revocation list of its issuer, or whose issuer's list has expired. A
// list counts for a certificate only when the chain's issuer signed it.
func checkRevoked(chains [][]*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	var last error
	for _, chain := range chains {
		last = nil
		for i := 0; i+1 < len(chain) && last == nil; i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, l := range crls {
				if !bytes.Equal(l.RawIssuer, cert.RawIssuer) || l.CheckSignatureFrom(issuer) != nil {
					continue
				}
				if !l.NextUpdate.IsZero() && now.After(l.NextUpdate) {
					last = fmt.Errorf("the revocation list of %q expired at %s", issuer.Subject.String(), l.NextUpdate.UTC().Format(time.RFC3339))
					break
				}
				for _, e := range l.RevokedCertificateEntries {
					if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
						last = fmt.Errorf("certificate %q (serial %s) is revoked", cert.Subject.String(), cert.SerialNumber.String())
						break
					}
				}
			}
		}
		if last == nil {
			return nil // one clean chain is enough
		}
	}
	return last
}
