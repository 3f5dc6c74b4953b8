package proxy

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

// ProxySQL's web UI (admin-web_enabled, admin-web_port 6080): HTTPS with
// the proxy's certificate (the datadir's proxysql-*.pem, as PROXYSQL
// RELOAD TLS leaves it), HTTP digest authentication (RFC 7616, MD5,
// qop=auth) against the admin-stats_credentials users, as ProxySQL's, and
// behind it the status page of the REST endpoint (/, polling
// /api/status) and /metrics. It follows LOAD ADMIN VARIABLES like the
// REST endpoint, on the host of the admin interface.

// webRealm is the digest realm the browser shows.
const webRealm = "ProxySQL"

// nonceLife is how long a nonce is good for; an older one gets a new
// challenge with stale=true, which browsers answer without asking again.
const nonceLife = 5 * time.Minute

type webEndpoint struct {
	p      *Proxy
	slot   httpSlot
	secret [32]byte // signs nonces, so the server keeps none
}

func newWebEndpoint(p *Proxy) *webEndpoint {
	w := &webEndpoint{p: p}
	_, _ = rand.Read(w.secret[:])
	return w
}

// webAddr is where the web UI listens: the admin interface's host and
// admin-web_port; "" when admin-web_enabled is false.
func webAddr(snap *config.Snapshot) string {
	if !snap.Bool("admin-web_enabled") {
		return ""
	}
	return net.JoinHostPort(adminHost(snap), strconv.FormatInt(snap.Int("admin-web_port"), 10))
}

// configure makes the web UI listen on addr ("" stops it); a bind failure
// leaves it as it was and is returned.
func (w *webEndpoint) configure(addr string) error {
	if addr != "" && w.p.cfg.TLS == nil {
		return errors.New("admin-web_enabled: the web UI is served over HTTPS and Sluice has no certificate (proxysql-*.pem in the datadir)")
	}
	return w.slot.move(addr, "admin-web_port", w.start, w.stopped)
}

func (w *webEndpoint) start(ln net.Listener) *http.Server {
	h := w.p.http
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", h.status)
	mux.HandleFunc("GET /metrics", h.metrics)
	mux.HandleFunc("GET /", h.page)
	conf := w.p.cfg.TLS.Config().Clone()
	srv := &http.Server{Handler: w.authenticated(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10, TLSConfig: conf, ErrorLog: httpErrorLog(w.p.log)}
	go func() { _ = srv.Serve(tls.NewListener(ln, conf)) }()
	w.p.log.Info().Str("addr", ln.Addr().String()).Msg("web UI listening (HTTPS, digest authentication with admin-stats_credentials)")
	return srv
}

func (w *webEndpoint) stopped(at string) { w.p.log.Info().Str("addr", at).Msg("web UI closed") }

func (w *webEndpoint) close() { w.slot.close(w.stopped) }

// WebAddr returns the address of the web UI, nil when it is off.
func (p *Proxy) WebAddr() net.Addr { return p.web.slot.addr() }

// authenticated lets through requests that carry a valid digest answer and
// challenges the others.
func (w *webEndpoint) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ok, stale := w.check(r, time.Now())
		if ok {
			next.ServeHTTP(rw, r)
			return
		}
		ch := fmt.Sprintf(`Digest realm="%s", qop="auth", algorithm=MD5, nonce="%s"`, webRealm, w.nonce(time.Now()))
		if stale {
			ch += ", stale=true"
		}
		rw.Header().Set("WWW-Authenticate", ch)
		http.Error(rw, "401 Unauthorized: log in with an admin-stats_credentials user", http.StatusUnauthorized)
	})
}

// nonce is the issue time and its HMAC: checked without server state.
func (w *webEndpoint) nonce(t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 16)
	m := hmac.New(sha256.New, w.secret[:])
	m.Write([]byte(ts))
	return ts + "-" + hex.EncodeToString(m.Sum(nil)[:16])
}

// validNonce reports whether n was issued by this endpoint (and not in the
// future), and whether it is too old to be used.
func (w *webEndpoint) validNonce(n string, now time.Time) (authentic, stale bool) {
	ts, _, found := strings.Cut(n, "-")
	sec, err := strconv.ParseInt(ts, 16, 64)
	if !found || err != nil || !hmac.Equal([]byte(w.nonce(time.Unix(sec, 0))), []byte(n)) {
		return false, false
	}
	age := now.Sub(time.Unix(sec, 0))
	return age >= -time.Minute, age > nonceLife
}

// check verifies the request's digest answer against the runtime
// admin-stats_credentials.
func (w *webEndpoint) check(r *http.Request, now time.Time) (ok, stale bool) {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Digest ") {
		return false, false
	}
	f := parseDigest(auth[7:])
	if f == nil || f["realm"] != webRealm || f["uri"] != r.RequestURI {
		return false, false
	}
	if alg := f["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return false, false
	}
	good, stale := w.validNonce(f["nonce"], now)
	if !good {
		return false, false
	}
	pass, found := admin.LookupCredential(w.p.Runtime().Var("admin-stats_credentials"), f["username"])
	if !found || f["username"] == "" {
		return false, false
	}
	ha1 := md5hex(f["username"] + ":" + webRealm + ":" + pass)
	ha2 := md5hex(r.Method + ":" + f["uri"])
	var want string
	switch f["qop"] {
	case "auth":
		want = md5hex(ha1 + ":" + f["nonce"] + ":" + f["nc"] + ":" + f["cnonce"] + ":auth:" + ha2)
	case "":
		want = md5hex(ha1 + ":" + f["nonce"] + ":" + ha2)
	default:
		return false, false
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(f["response"]))) != 1 {
		return false, false
	}
	if stale {
		return false, true // right password, old nonce: a fresh challenge
	}
	return true, false
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// parseDigest parses the comma-separated key=value and key="value" list of
// a Digest Authorization header (backslash escapes in quoted values). It
// returns nil for a malformed list.
func parseDigest(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(out) >= 16 {
			return nil
		}
		key := sqlscan.LowerASCII(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil // unterminated
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		out[key] = val
	}
}
