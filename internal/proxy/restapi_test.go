package proxy

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestSyncScriptsBounded: while restMaxScripts scripts run, one more
// request is refused with 503 and a JSON error instead of queuing; once
// they finish, requests run again.
func TestSyncScriptsBounded(t *testing.T) {
	p := newTestProxy(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	script := filepath.Join(dir, "wait.sh")
	// Waits (bounded: 20 s) until the gate file exists, then answers.
	text := "#!/bin/sh\ni=0\nwhile [ ! -e " + gate + " ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\necho '{\"ok\":1}'\n"
	if err := os.WriteFile(script, []byte(text), 0o700); err != nil {
		t.Fatal(err)
	}
	snap := p.Runtime().Clone()
	ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	snap.Tables = map[string][][]sql.NullString{"restapi_routes": {
		{ns("1"), ns("1"), ns("30000"), ns("POST"), ns("wait"), ns(script), ns("")},
	}}
	if err := p.Apply(config.ModRestAPI, snap); err != nil {
		t.Fatal(err)
	}
	h := p.http
	call := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.sync(w, httptest.NewRequest(http.MethodPost, "/sync/wait", strings.NewReader(`{}`)))
		return w
	}
	var wg sync.WaitGroup
	codes := make(chan int, restMaxScripts)
	for range restMaxScripts {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- call().Code }()
	}
	// Wait (bounded) until every slot is taken.
	for deadline := time.Now().Add(10 * time.Second); len(h.scripts) < restMaxScripts && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if len(h.scripts) != restMaxScripts {
		t.Fatalf("%d scripts running, want %d", len(h.scripts), restMaxScripts)
	}
	over := call()
	if over.Code != http.StatusServiceUnavailable || !strings.Contains(over.Body.String(), "scripts are running already") {
		t.Fatalf("request over the bound: %d %s", over.Code, over.Body)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a bounded script answered %d", c)
		}
	}
	if w := call(); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"ok":1}` {
		t.Fatalf("after the others finished: %d %s", w.Code, w.Body)
	}
}
