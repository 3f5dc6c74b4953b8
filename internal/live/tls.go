package live

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

// maxPEMFile bounds what a CA, certificate or key file named by a setting
// may make the proxy read.
const maxPEMFile = 1 << 20

// p2sSettings is one set of backend TLS settings: mysql-ssl_p2s_* or one
// mysql_servers_ssl_params row. capath is a directory of CA certificates
// (OpenSSL's, hashed names or not) added to ca; crl a revocation list file
// and crlpath a directory of them.
type p2sSettings struct {
	ca, cert, key, cipher, versions string
	capath, crl, crlpath            string
}

// maxDirFiles bounds the files read from a CA or CRL directory.
const maxDirFiles = 1000

// The columns of mysql_servers_ssl_params, in the table's order.
const (
	sslpHost = iota
	sslpPort
	sslpUser
	sslpCA
	sslpCert
	sslpKey
	sslpCAPath
	sslpCRL
	sslpCRLPath
	sslpCipher
	sslpTLSVersion
	sslpNumCols = 12
)

func globalP2S(s *config.Snapshot) p2sSettings {
	return p2sSettings{
		ca: s.Var("mysql-ssl_p2s_ca"), cert: s.Var("mysql-ssl_p2s_cert"), key: s.Var("mysql-ssl_p2s_key"),
		cipher: s.Var("mysql-ssl_p2s_cipher"),
		capath: s.Var("mysql-ssl_p2s_capath"), crl: s.Var("mysql-ssl_p2s_crl"), crlpath: s.Var("mysql-ssl_p2s_crlpath"),
	}
}

// sslParamsRows returns the rows of mysql_servers_ssl_params as settings,
// keyed as the backend looks them up.
func sslParamsRows(s *config.Snapshot) (map[backend.TLSParamsKey]p2sSettings, error) {
	rows := s.Tables["mysql_servers_ssl_params"]
	if len(rows) == 0 {
		return nil, nil
	}
	out := make(map[backend.TLSParamsKey]p2sSettings, len(rows))
	for _, r := range rows {
		if len(r) < sslpNumCols-1 { // comment may be absent
			return nil, fmt.Errorf("mysql_servers_ssl_params: a row has %d columns", len(r))
		}
		port, err := strconv.Atoi(r[sslpPort].String)
		if err != nil {
			return nil, fmt.Errorf("mysql_servers_ssl_params: port %q", r[sslpPort].String)
		}
		out[backend.TLSParamsKey{Host: r[sslpHost].String, Port: port, Username: r[sslpUser].String}] = p2sSettings{
			ca: r[sslpCA].String, cert: r[sslpCert].String, key: r[sslpKey].String,
			cipher: r[sslpCipher].String, versions: r[sslpTLSVersion].String,
			capath: r[sslpCAPath].String, crl: r[sslpCRL].String, crlpath: r[sslpCRLPath].String,
		}
	}
	return out, nil
}

// backendTLS builds the TLS configurations of connections to use_ssl=1
// servers from mysql-ssl_p2s_* and mysql_servers_ssl_params, reading the
// files they name. A configuration whose settings and file contents are
// those of prev's is prev's own value, so connections pooled under it stay
// reusable across LOADs that change nothing of it (the pool tells TLS
// settings apart by pointer).
//
// Settings that do not make a configuration (a file missing or unreadable,
// a certificate without its key, an unknown cipher) do not fail the LOAD:
// as in ProxySQL, whose client library reads the files only when it
// connects, they matter only to use_ssl=1 servers — a certificate not
// deployed yet must not take the proxy down. Each is a warning of the LOAD,
// and every TLS connection that would use it fails with the reason.
func backendTLS(s *config.Snapshot, prev map[string]*tls.Config) (*backend.ClientTLS, map[string]*tls.Config, []Notice) {
	cache := make(map[string]*tls.Config)
	var notices []Notice
	build := func(where string, p p2sSettings) *tls.Config {
		c, err := buildP2S(where, p, cache, prev)
		if err != nil {
			notices = append(notices, Notice{Msg: err.Error() + ": connections to use_ssl=1 servers that use these settings fail until they are fixed and loaded again"})
			return failingTLS(err)
		}
		return c
	}
	ct := &backend.ClientTLS{Default: build("global_variables (mysql-ssl_p2s_*)", globalP2S(s))}
	rows, err := sslParamsRows(s)
	if err != nil {
		notices = append(notices, Notice{Msg: err.Error()})
	}
	for k, p := range rows {
		c := build(fmt.Sprintf("mysql_servers_ssl_params (hostname='%s', port=%d, username='%s')", k.Host, k.Port, k.Username), p)
		if ct.Params == nil {
			ct.Params = make(map[backend.TLSParamsKey]*tls.Config, len(rows))
		}
		ct.Params[k] = c
	}
	return ct, cache, notices
}

// failingTLS is the configuration of settings that did not load: its
// handshakes fail with err.
func failingTLS(err error) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(tls.ConnectionState) error { return err }}
}

// buildP2S makes the configuration of one set of settings, from cache or
// prev when the settings and the files' contents are the same.
func buildP2S(where string, p p2sSettings, cache, prev map[string]*tls.Config) (*tls.Config, error) {
	var files [4][]byte
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %q %q\n", p.ca, p.cert, p.key, p.cipher, p.versions, p.capath, p.crl, p.crlpath)
	for i, path := range []string{p.ca, p.cert, p.key, p.crl} {
		if strings.TrimSpace(path) == "" {
			continue
		}
		b, err := readPEMFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		files[i] = b
		h.Write(b)
	}
	if strings.TrimSpace(p.capath) != "" {
		certs, err := readDir(p.capath, isCertFile)
		if err != nil {
			return nil, fmt.Errorf("%s: ssl_capath: %w", where, err)
		}
		for _, b := range certs {
			files[0] = append(append(files[0], '\n'), b...)
			h.Write(b)
		}
	}
	crls := [][]byte{files[3]}
	if strings.TrimSpace(p.crlpath) != "" {
		more, err := readDir(p.crlpath, isCRLFile)
		if err != nil {
			return nil, fmt.Errorf("%s: ssl_crlpath: %w", where, err)
		}
		for _, b := range more {
			h.Write(b)
		}
		crls = append(crls, more...)
	}
	if (len(files[1]) > 0) != (len(files[2]) > 0) {
		return nil, fmt.Errorf("%s: a client certificate needs both ssl_cert and ssl_key", where)
	}
	fp := string(h.Sum(nil))
	if c, ok := cache[fp]; ok {
		return c, nil
	}
	if c, ok := prev[fp]; ok {
		cache[fp] = c
		return c, nil
	}
	c, err := backend.NewClientTLSConfig(files[0], files[1], files[2], p.cipher, p.versions, crls...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	cache[fp] = c
	return c, nil
}

// readPEMFile reads a file named by a TLS setting, refusing one larger
// than maxPEMFile.
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPEMFile)
	}
	return b, nil
}

// readDir reads the files of dir that keep, in name order, at most
// maxDirFiles of them, each bounded as readPEMFile.
func readDir(dir string, keep func([]byte) bool) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if n++; n > maxDirFiles {
			return nil, fmt.Errorf("%s: more than %d files", dir, maxDirFiles)
		}
		b, err := readPEMFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if keep(b) {
			out = append(out, b)
		}
	}
	return out, nil
}

func isCertFile(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) }

// isCRLFile: a PEM revocation list, or a DER one.
func isCRLFile(b []byte) bool {
	if bytes.Contains(b, []byte("-----BEGIN X509 CRL-----")) {
		return true
	}
	_, err := x509.ParseRevocationList(b)
	return err == nil
}
