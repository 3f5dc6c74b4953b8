package live

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

// maxPEMFile bounds what a CA, certificate or key file named by a setting
// may make the proxy read.
const maxPEMFile = 1 << 20

// p2sSettings is one set of backend TLS settings: mysql-ssl_p2s_* or one
// mysql_servers_ssl_params row. The CA directory and revocation lists are
// not implemented: unsupported.go refuses them.
type p2sSettings struct {
	ca, cert, key, cipher, versions string
}

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
func backendTLS(s *config.Snapshot, prev map[string]*tls.Config) (*backend.ClientTLS, map[string]*tls.Config, error) {
	cache := make(map[string]*tls.Config)
	build := func(where string, p p2sSettings) (*tls.Config, error) {
		var files [3][]byte
		h := sha256.New()
		fmt.Fprintf(h, "%q %q %q %q %q\n", p.ca, p.cert, p.key, p.cipher, p.versions)
		for i, path := range []string{p.ca, p.cert, p.key} {
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
		c, err := backend.NewClientTLSConfig(files[0], files[1], files[2], p.cipher, p.versions)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		cache[fp] = c
		return c, nil
	}
	def, err := build("global_variables (mysql-ssl_p2s_*)", globalP2S(s))
	if err != nil {
		return nil, nil, err
	}
	ct := &backend.ClientTLS{Default: def}
	rows, err := sslParamsRows(s)
	if err != nil {
		return nil, nil, err
	}
	for k, p := range rows {
		c, err := build(fmt.Sprintf("mysql_servers_ssl_params (hostname='%s', port=%d, username='%s')", k.Host, k.Port, k.Username), p)
		if err != nil {
			return nil, nil, err
		}
		if ct.Params == nil {
			ct.Params = make(map[backend.TLSParamsKey]*tls.Config, len(rows))
		}
		ct.Params[k] = c
	}
	return ct, cache, nil
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
