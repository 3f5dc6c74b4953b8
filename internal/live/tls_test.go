package live

import (
	"crypto/tls"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
)

// TestBackendTLSBuild: mysql-ssl_p2s_* and mysql_servers_ssl_params become
// the pool's TLS configurations; a LOAD that changes none of them keeps
// the same values (pooled TLS connections stay reusable), a changed cipher
// list makes a new one, a missing file or a bad cipher fails the LOAD
// with the setting named.
func TestBackendTLSBuild(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconf.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, tlsconf.CAFile)
	vars := offDefaults(map[string]string{"mysql-ssl_p2s_ca": ca})
	row := sslRow("db1", "3306", "app", "", "ECDHE-RSA-AES128-GCM-SHA256")
	row[sslpCA] = sql.NullString{String: ca, Valid: true}
	row[sslpTLSVersion] = sql.NullString{String: "TLSv1.2", Valid: true}
	snap := snapWith(vars)
	snap.Tables = map[string][][]sql.NullString{"mysql_servers_ssl_params": {row}}
	rt, err := Build(nil, snap, config.ModMySQLVariables)
	if err != nil {
		t.Fatal(err)
	}
	ct := rt.Backend.TLS
	if ct.Default == nil || ct.Default.VerifyPeerCertificate == nil {
		t.Fatal("mysql-ssl_p2s_ca: the default configuration does not verify")
	}
	if c := ct.For("db1", 3306, "app"); c == ct.Default || len(c.CipherSuites) != 1 || c.MaxVersion != 0 && c.MaxVersion < c.MinVersion {
		t.Fatalf("ssl params row: %+v", c)
	}
	if ct.For("db1", 3306, "other") != ct.Default {
		t.Fatal("another user of db1 gets the row of app")
	}
	// Same settings: same values.
	rt2, err := Build(rt, snap, config.ModMySQLVariables)
	if err != nil || rt2.Backend.TLS.Default != ct.Default || rt2.Backend.TLS.For("db1", 3306, "app") != ct.For("db1", 3306, "app") {
		t.Fatalf("an unchanged LOAD made new TLS configurations (%v)", err)
	}
	// Another module's LOAD does not read the files again.
	if rt3, err := Build(rt2, snap, config.ModMySQLQueryRules); err != nil || rt3.Backend.TLS != rt2.Backend.TLS {
		t.Fatalf("query rules LOAD: %v", err)
	}
	vars2 := offDefaults(map[string]string{"mysql-ssl_p2s_ca": ca, "mysql-ssl_p2s_cipher": "ECDHE-RSA-AES256-GCM-SHA384"})
	snap2 := snapWith(vars2)
	rt4, err := Build(rt2, snap2, config.ModMySQLVariables)
	if err != nil || rt4.Backend.TLS.Default == ct.Default || len(rt4.Backend.TLS.Default.CipherSuites) != 1 {
		t.Fatalf("a new cipher list: %v", err)
	}
	for _, c := range []struct{ name, value, want string }{
		{"mysql-ssl_p2s_ca", filepath.Join(dir, "missing.pem"), "missing.pem: no such file"},
		{"mysql-ssl_p2s_cert", ca, "a client certificate needs both ssl_cert and ssl_key"},
		{"mysql-ssl_p2s_cipher", "HIGH:!aNULL", `cipher "HIGH"`},
	} {
		// The LOAD goes through with a warning (a certificate not deployed
		// yet must not take the proxy down, as in ProxySQL); TLS
		// connections that would use the settings fail with the reason.
		bad, err := Build(rt, snapWith(offDefaults(map[string]string{c.name: c.value})), config.ModMySQLVariables)
		if err != nil {
			t.Errorf("%s=%s: LOAD failed: %v", c.name, c.value, err)
			continue
		}
		warned := false
		for _, n := range bad.Notices {
			warned = warned || !n.Refused && strings.Contains(n.Msg, c.want) && strings.Contains(n.Msg, "mysql-ssl_p2s_")
		}
		if !warned {
			t.Errorf("%s=%s: notices %+v, want a warning with %q", c.name, c.value, bad.Notices, c.want)
		}
		vc := bad.Backend.TLS.Default.VerifyConnection
		if vc == nil || vc(tls.ConnectionState{}) == nil || !strings.Contains(vc(tls.ConnectionState{}).Error(), c.want) {
			t.Errorf("%s=%s: a TLS connection under the settings does not fail with the reason", c.name, c.value)
		}
	}
}
