package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProxySQL's /sync/<uri> routes (lib/ProxySQL_RESTAPI_Server.cpp) on
// admin-restapi_port: a request whose first path segment after /sync/ is
// the uri of exactly one active runtime_restapi_routes row with the
// request's method runs that row's script, and the answer is the script's
// stdout when it is valid JSON. As ProxySQL:
//   - the input is the POST body, or for a GET the query parameters as a
//     JSON object of strings; it must be valid JSON (400 {"type":"in",…});
//     an empty one is 400 {"type":"in","error":"Empty parameters"};
//   - no matching route, or several, is 400 "The script for method [M] and
//     route [/sync/…] was not found. Rows count returned [n]";
//   - the script gets the JSON as its argument (argv[1], ProxySQL's
//     wexecvp); Sluice also writes it to the script's stdin and closes it,
//     so a script may read either;
//   - a non-zero exit is 424 {"type":"out","error":"Script failed to be
//     executed","error_code":"<exit code>","script_stdout","script_stderr"};
//     a script that cannot be started is the same with the errno (execvp's
//     child exits with it in ProxySQL); death by a signal is 424
//     "Terminated without exit code…" with the raw wait status;
//   - past timeout_ms the script is killed and the answer is 424 "Script
//     execution timed out" with error_code 62 (ETIME);
//   - empty stdout is 424 "Script response is empty, only valid JSONs are
//     accepted"; stdout that is not JSON is 424 with the parser's message,
//     the output and stderr;
//   - every answer has Content-Type: application/json and
//     Access-Control-Allow-Origin: *.
// Sluice's bounds (ProxySQL has none): the body is at most restMaxBody
// (413), stdout and stderr at most restMaxOutput each (past it the script
// is killed: 424 "Script output exceeds …"), at most restMaxScripts
// scripts run at once (503). The script runs in its own process group;
// on timeout or overflow the group gets SIGTERM, then SIGKILL after
// restKillGrace. Other methods on /sync/ are 405 with ProxySQL's text
// "HTTP method X is not implemented" (ProxySQL answers it with 200).

const (
	restMaxBody    = 1 << 20 // bytes of a request body
	restMaxOutput  = 1 << 20 // bytes of a script's stdout, and of its stderr
	restMaxScripts = 4       // scripts running at once
	restKillGrace  = time.Second
	restETIME      = 62 // Linux's ETIME, ProxySQL's error_code of a timeout
)

// restRoute is one active runtime_restapi_routes row.
type restRoute struct {
	timeout time.Duration
	script  string
}

func restJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(status)
	switch b := body.(type) {
	case []byte:
		_, _ = w.Write(b)
	default:
		_ = json.NewEncoder(w).Encode(b)
	}
}

// findRoute looks up the active routes of the running runtime for uri and
// method; n is how many matched.
func (p *Proxy) findRoute(uri, method string) (restRoute, int) {
	var found restRoute
	n := 0
	for _, r := range p.Runtime().Tables["restapi_routes"] {
		// id, active, timeout_ms, method, uri, script, comment
		if len(r) < 6 || r[1].String != "1" || !strings.EqualFold(r[3].String, method) || r[4].String != uri {
			continue
		}
		n++
		ms, _ := strconv.ParseInt(r[2].String, 10, 64)
		found = restRoute{timeout: time.Duration(ms) * time.Millisecond, script: r[5].String}
	}
	return found, n
}

func (h *httpEndpoint) sync(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		restJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "HTTP method " + r.Method + " is not implemented"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, restMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			restJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"type": "in",
				"error": fmt.Sprintf("request body larger than %d bytes", restMaxBody)})
			return
		}
		restJSON(w, http.StatusBadRequest, map[string]string{"type": "in", "error": "reading the request body: " + err.Error()})
		return
	}
	params := body
	if len(params) == 0 && r.Method == http.MethodGet {
		args := map[string]string{}
		for k, vs := range r.URL.Query() {
			args[k] = vs[len(vs)-1]
		}
		params, _ = json.Marshal(args)
	}
	if len(params) == 0 {
		restJSON(w, http.StatusBadRequest, map[string]string{"type": "in", "error": "Empty parameters"})
		return
	}
	if !json.Valid(params) {
		var v any
		perr := json.Unmarshal(params, &v)
		restJSON(w, http.StatusBadRequest, map[string]string{"type": "in",
			"error": fmt.Sprintf("Error parsing input JSON parameters - params: `%s`, error: '%v'", clip(params, 256), perr)})
		return
	}
	uri, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/sync/"), "/")
	route, n := h.p.findRoute(uri, r.Method)
	if n != 1 {
		restJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(
			"The script for method [%s] and route [%s] was not found. Rows count returned [%d]", r.Method, r.URL.Path, n)})
		return
	}
	select {
	case h.scripts <- struct{}{}:
		defer func() { <-h.scripts }()
	default:
		restJSON(w, http.StatusServiceUnavailable, map[string]string{"type": "out",
			"error": fmt.Sprintf("%d scripts are running already; try again", restMaxScripts)})
		return
	}
	res := runScript(r.Context(), route, params)
	if res.status != http.StatusOK {
		h.p.log.Warn().Str("path", r.URL.Path).Str("script", route.script).Int("status", res.status).
			Bytes("answer", clip(res.body, 512)).Msg("REST API script failed")
	}
	restJSON(w, res.status, res.body)
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// capBuffer keeps at most max bytes and calls over once when more come.
type capBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	full bool
	over func()
}

func (c *capBuffer) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return len(b), nil
	}
	if room := c.max - c.buf.Len(); len(b) > room {
		c.buf.Write(b[:room])
		c.full = true
		go c.over()
		return len(b), nil
	}
	return c.buf.Write(b)
}

func (c *capBuffer) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Bytes(), c.full
}

type scriptResult struct {
	status int
	body   []byte // JSON
}

func outErr(fields map[string]string) scriptResult {
	fields["type"] = "out"
	b, _ := json.Marshal(fields)
	return scriptResult{status: http.StatusFailedDependency, body: b}
}

// runScript runs route's script with params and shapes the answer.
func runScript(ctx context.Context, route restRoute, params []byte) scriptResult {
	cmd := exec.Command(route.script, string(params))
	cmd.Stdin = bytes.NewReader(params)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child of the script that keeps stdout open must not hold the
	// answer once the script itself has exited.
	cmd.WaitDelay = restKillGrace
	var killOnce sync.Once
	var killedFor string // "timeout" or "output", set before the kill
	var kmu sync.Mutex
	kill := func(why string) {
		killOnce.Do(func() {
			kmu.Lock()
			killedFor = why
			kmu.Unlock()
			pgid := cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			go func() {
				time.Sleep(restKillGrace)
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}()
		})
	}
	stdout := &capBuffer{max: restMaxOutput, over: func() { kill("output") }}
	stderr := &capBuffer{max: restMaxOutput, over: func() { kill("output") }}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		code := 0
		var errno syscall.Errno
		if errors.As(err, &errno) {
			code = int(errno)
		}
		return outErr(map[string]string{"error": "Script failed to be executed: " + err.Error(), "error_code": strconv.Itoa(code),
			"script_stdout": "", "script_stderr": ""})
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(route.timeout)
	defer timer.Stop()
	var werr error
	select {
	case werr = <-done:
	case <-timer.C:
		kill("timeout")
		werr = <-done
	case <-ctx.Done():
		kill("client gone")
		werr = <-done
	}
	out, outFull := stdout.bytes()
	errOut, _ := stderr.bytes()
	kmu.Lock()
	why := killedFor
	kmu.Unlock()
	switch {
	case why == "timeout":
		return outErr(map[string]string{"error": "Script execution timed out", "error_code": strconv.Itoa(restETIME)})
	case why == "output" || outFull:
		return outErr(map[string]string{"error": fmt.Sprintf("Script output exceeds %d bytes; the script was killed", restMaxOutput),
			"error_code": "0"})
	case why != "":
		return outErr(map[string]string{"error": "the client went away; the script was killed", "error_code": "0"})
	}
	var exitErr *exec.ExitError
	if errors.As(werr, &exitErr) {
		ws, _ := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return outErr(map[string]string{"error": "Terminated without exit code. Child exit status reported in 'error_code'",
				"error_code": strconv.Itoa(int(ws))})
		}
		return outErr(map[string]string{"error": "Script failed to be executed", "error_code": strconv.Itoa(ws.ExitStatus()),
			"script_stdout": string(out), "script_stderr": string(errOut)})
	}
	if werr != nil && !errors.Is(werr, exec.ErrWaitDelay) {
		return scriptResult{status: http.StatusInternalServerError, body: mustJSON(map[string]string{"type": "out",
			"error": "Internal error while executing script: " + werr.Error(), "error_code": "0"})}
	}
	if len(out) == 0 {
		return outErr(map[string]string{"error": "Script response is empty, only valid JSONs are accepted", "error_code": "0"})
	}
	if !json.Valid(out) {
		var v any
		perr := json.Unmarshal(out, &v)
		return outErr(map[string]string{"error": fmt.Sprint(perr), "error_code": "0",
			"script_stdout": string(out), "script_stderr": string(errOut)})
	}
	return scriptResult{status: http.StatusOK, body: out}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
