package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestWebUI: admin-web_enabled serves ProxySQL's web UI port over HTTPS
// (the datadir certificate) with HTTP digest authentication against
// admin-stats_credentials, checked with curl: the stats user gets the
// status page and /api/status, a wrong password or an admin user 401,
// plain HTTP nothing; LOAD ADMIN VARIABLES moves it and turns it off.
func TestWebUI(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=curl)")
	}
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	routeTo(t, s, 0, b.Port)
	port := testenv.FreePort(t)
	out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", fmt.Sprintf(
		"SET admin-web_enabled='true'; SET admin-web_port=%d; SET admin-stats_credentials='stats:stats;viewer:s3cret'; LOAD ADMIN VARIABLES TO RUNTIME", port),
		"-N", "--show-warnings")
	if err != nil || strings.Contains(out, "Warning") {
		t.Fatalf("LOAD ADMIN VARIABLES with the web UI on: %q %v", out, err)
	}
	curl := func(url, user string, extra ...string) (code int, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args := append([]string{"-s", "-k", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"}, extra...)
		if user != "" {
			args = append(args, "--digest", "-u", user)
		}
		res, _ := exec.CommandContext(ctx, "curl", append(args, url)...).Output()
		text := string(res)
		i := strings.LastIndexByte(text, '\n')
		code, _ = strconv.Atoi(text[i+1:])
		return code, text[:max(i, 0)]
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	for _, user := range []string{"stats:stats", "viewer:s3cret"} {
		if code, body := curl(base+"/", user); code != 200 || !strings.Contains(body, "<html") {
			t.Fatalf("%s: GET / = %d\n%.300s", user, code, body)
		}
	}
	if code, body := curl(base+"/api/status", "stats:stats"); code != 200 || !strings.Contains(body, `"servers"`) {
		t.Fatalf("GET /api/status = %d\n%.300s", code, body)
	}
	for _, user := range []string{"stats:wrong", "admin:admin", ""} {
		if code, _ := curl(base+"/", user); code != 401 {
			t.Fatalf("%q: GET / = %d, want 401", user, code)
		}
	}
	if code, _ := curl(fmt.Sprintf("http://127.0.0.1:%d/", port), "stats:stats"); code == 200 {
		t.Fatal("the web UI answered plain HTTP")
	}
	// net/http's own complaint goes through the error log (a file when
	// errorlog is set), not straight to stderr.
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`TLS handshake error.*component=http`).MatchString(s.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("the TLS handshake error is not an error-log line:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Turned off: nothing listens.
	admin(t, s, "SET admin-web_enabled='false'; LOAD ADMIN VARIABLES TO RUNTIME")
	if code, _ := curl(base+"/", "stats:stats"); code != 0 {
		t.Fatalf("web UI off: GET / = %d", code)
	}
}
