package proxy

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

func md5s(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// answer computes a client's digest answer (RFC 7616, MD5, qop=auth) on
// its own, as curl and browsers do.
func answer(user, pass, method, uri, nonce string) string {
	ha1 := md5s(user + ":" + webRealm + ":" + pass)
	ha2 := md5s(method + ":" + uri)
	resp := md5s(ha1 + ":" + nonce + ":00000001:0a4f113b:auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, response="%s", qop=auth, nc=00000001, cnonce="0a4f113b"`,
		user, webRealm, nonce, uri, resp)
}

// The web UI's digest check: right answers pass, anything that lies about
// the user, the password, the URI, the realm or the nonce fails, an old
// nonce asks for a fresh one (stale), and malformed headers are refused.
func TestWebDigest(t *testing.T) {
	p := newTestProxy(t)
	snap := p.Runtime().Clone()
	snap.AdminVars = map[string]string{"admin-restapi_enabled": "false", "admin-stats_credentials": "stats:stats;ops:p,w\"d"}
	if err := p.Apply(config.ModAdminVariables, snap); err != nil {
		t.Fatal(err)
	}
	w := p.web
	now := time.Now()
	nonce := w.nonce(now)
	check := func(method, uri, auth string, at time.Time) (bool, bool) {
		r := httptest.NewRequest(method, uri, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return w.check(r, at)
	}
	if ok, _ := check("GET", "/api/status", answer("stats", "stats", "GET", "/api/status", nonce), now); !ok {
		t.Fatal("the right answer was refused")
	}
	cases := map[string]string{
		"wrong password":  answer("stats", "nope", "GET", "/api/status", nonce),
		"unknown user":    answer("root", "stats", "GET", "/api/status", nonce),
		"other URI":       answer("stats", "stats", "GET", "/", nonce),
		"other method":    answer("stats", "stats", "POST", "/api/status", nonce),
		"forged nonce":    answer("stats", "stats", "GET", "/api/status", "5f000000-00112233445566778899aabbccddeeff"),
		"basic auth":      "Basic c3RhdHM6c3RhdHM=",
		"unterminated":    `Digest username="stats, realm="ProxySQL`,
		"no equals":       `Digest username`,
		"other algorithm": answer("stats", "stats", "GET", "/api/status", nonce) + `, algorithm=SHA-256`,
	}
	for name, auth := range cases {
		if ok, stale := check("GET", "/api/status", auth, now); ok || stale {
			t.Errorf("%s: accepted (stale %v)", name, stale)
		}
	}
	// A password with a comma and a quote (quoted-string escapes).
	if ok, _ := check("GET", "/", answer("ops", `p,w"d`, "GET", "/", nonce), now); !ok {
		t.Error("a password with , and \" was refused")
	}
	old := w.nonce(now.Add(-nonceLife - time.Minute))
	if ok, stale := check("GET", "/", answer("stats", "stats", "GET", "/", old), now); ok || !stale {
		t.Errorf("old nonce: ok %v stale %v, want a stale challenge", ok, stale)
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add(`username="stats", realm="ProxySQL", nonce="a-b", uri="/", response="x", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`a="\"", b=c,,, d=`)
	f.Fuzz(func(t *testing.T, s string) {
		m := parseDigest(s)
		if len(m) > 16 {
			t.Fatalf("%d fields", len(m))
		}
		for k, v := range m {
			if len(k)+len(v) > len(s) {
				t.Fatalf("field %q=%q longer than the input", k, v)
			}
		}
	})
}
