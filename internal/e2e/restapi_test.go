package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestAPISync: restapi_routes rows loaded with LOAD RESTAPI TO RUNTIME
// are served on admin-restapi_port as /sync/<uri>, running real shell
// scripts: the JSON input (POST body, GET parameters) reaches the script as
// argv[1] and on stdin, valid JSON output comes back as is, and each of
// ProxySQL's failure answers (non-zero exit, empty and invalid output,
// timeout, unknown route, bad input) has its status and JSON error. A
// timed-out script's whole process group is killed; bodies and outputs
// past Sluice's bounds are refused. SAVE RESTAPI TO DISK keeps the routes
// across a restart.
func TestRestAPISync(t *testing.T) {
	s := startFresh(t, "")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	scripts := map[string]string{
		"echo.sh":    "#!/bin/sh\nin=$(cat)\nprintf '{\"arg\":%s,\"stdin\":%s}' \"$1\" \"$in\"\n",
		"fail.sh":    "#!/bin/sh\necho '{\"partial\":1}'\necho boom >&2\nexit 3\n",
		"empty.sh":   "#!/bin/sh\nexit 0\n",
		"notjson.sh": "#!/bin/sh\necho 'this is not json'\n",
		"slow.sh":    "#!/bin/sh\nsleep 60 &\necho $! > " + pidFile + "\nwait\n",
		"big.sh":     "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\000' a\n",
	}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	route := func(id int, method, uri, script string, timeoutMs int, active int) string {
		return fmt.Sprintf("INSERT INTO restapi_routes (id, active, timeout_ms, method, uri, script, comment) VALUES (%d, %d, %d, '%s', '%s', '%s', 'test');",
			id, active, timeoutMs, method, uri, filepath.Join(dir, script))
	}
	admin(t, s, route(1, "POST", "echo", "echo.sh", 5000, 1)+route(2, "GET", "echo", "echo.sh", 5000, 1)+
		route(3, "POST", "fail", "fail.sh", 5000, 1)+route(4, "POST", "empty", "empty.sh", 5000, 1)+
		route(5, "POST", "notjson", "notjson.sh", 5000, 1)+route(6, "POST", "slow", "slow.sh", 500, 1)+
		route(7, "POST", "big", "big.sh", 5000, 1)+route(8, "POST", "off", "echo.sh", 5000, 0)+
		"LOAD RESTAPI TO RUNTIME; SAVE RESTAPI TO DISK;")
	if n := adminInt(t, s, "SELECT COUNT(*) FROM runtime_restapi_routes"); n != 8 {
		t.Fatalf("runtime_restapi_routes has %d rows", n)
	}
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	base := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path, body string) (int, map[string]any, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "*" {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q", method, path, o)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m, string(raw)
	}

	// POST: the body is argv[1] and stdin; the output comes back as is.
	code, m, raw := call("POST", "/sync/echo", `{"hostgroup":10,"x":"y"}`)
	if code != 200 || m["arg"] == nil || fmt.Sprint(m["arg"]) != fmt.Sprint(m["stdin"]) || fmt.Sprint(m["arg"].(map[string]any)["hostgroup"]) != "10" {
		t.Fatalf("POST /sync/echo: %d %s", code, raw)
	}
	t.Logf("POST /sync/echo → %d %s", code, raw)
	// GET: the query parameters as a JSON object of strings.
	code, m, raw = call("GET", "/sync/echo?a=1&b=two", "")
	if code != 200 || fmt.Sprint(m["arg"]) != "map[a:1 b:two]" {
		t.Fatalf("GET /sync/echo: %d %s", code, raw)
	}
	t.Logf("GET /sync/echo?a=1&b=two → %d %s", code, raw)

	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/sync/fail", `{}`, 424, `"error":"Script failed to be executed"`},
		{"POST", "/sync/empty", `{}`, 424, "Script response is empty, only valid JSONs are accepted"},
		{"POST", "/sync/notjson", `{}`, 424, `"script_stdout":"this is not json\n"`},
		{"POST", "/sync/nosuch", `{}`, 400, "The script for method [POST] and route [/sync/nosuch] was not found. Rows count returned [0]"},
		{"POST", "/sync/off", `{}`, 400, "Rows count returned [0]"},
		{"GET", "/sync/fail", ``, 400, "The script for method [GET] and route [/sync/fail] was not found"},
		{"POST", "/sync/echo", ``, 400, `"error":"Empty parameters"`},
		{"POST", "/sync/echo", `{"unterminated":`, 400, "Error parsing input JSON parameters"},
		{"PUT", "/sync/echo", `{}`, 405, "HTTP method PUT is not implemented"},
		{"POST", "/sync/big", `{}`, 424, "Script output exceeds 1048576 bytes"},
		{"POST", "/sync/echo", `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "request body larger than 1048576 bytes"},
	} {
		code, m, raw := call(c.method, c.path, c.body)
		if code != c.status || !strings.Contains(raw, c.want) {
			t.Errorf("%s %s: %d %.300s, want %d with %q", c.method, c.path, code, raw, c.status, c.want)
			continue
		}
		if c.path == "/sync/fail" && c.method == "POST" && (m["error_code"] != "3" || !strings.Contains(fmt.Sprint(m["script_stderr"]), "boom")) {
			t.Errorf("POST /sync/fail: %s, want error_code 3 and stderr boom", raw)
		}
		t.Logf("%s %s → %d %.200s", c.method, c.path, code, raw)
	}

	// Timeout: 424 ETIME, and the script's child (same process group) is gone.
	code, m, raw = call("POST", "/sync/slow", `{}`)
	if code != 424 || m["error"] != "Script execution timed out" || m["error_code"] != "62" {
		t.Fatalf("POST /sync/slow: %d %s", code, raw)
	}
	t.Logf("POST /sync/slow (timeout_ms=500) → %d %s", code, raw)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(child, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(child, 0) == nil {
		t.Fatalf("the timed-out script's child %d still runs", child)
	}

	// The routes were saved to disk: a restart serves them.
	s.Restart()
	if code, _, raw := call("POST", "/sync/echo", `{"after":"restart"}`); code != 200 || !strings.Contains(raw, `"after":"restart"`) {
		t.Fatalf("after a restart: %d %s", code, raw)
	}
	if n := adminInt(t, s, "SELECT COUNT(*) FROM runtime_restapi_routes"); n != 8 {
		t.Fatalf("runtime_restapi_routes after a restart: %d rows", n)
	}
}
