package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestStatusPageInChromium: headless Chromium (Debian's chromium) loads the
// status page on admin-restapi_port while a workload runs; the rendered DOM
// lists every server with its status and a non-zero QPS, from the page's
// own script polling /api/status.
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: make test installs it (scripts/backends.sh with SLUICE_BACKENDS_EXTRA_PKGS=chromium)")
	}
	bs := testenv.Backends(t, 2)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port, bs[1].Port)
	admin(t, s, "SET mysql-balance_policy='random'; LOAD MYSQL VARIABLES TO RUNTIME;")
	port := strings.TrimSpace(admin(t, s, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-restapi_port'"))
	url := "http://127.0.0.1:" + port + "/"

	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				var v int
				_ = db.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME='PORT'").Scan(&v)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(3 * time.Second) // the sampler's first seconds

	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	out, err := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--virtual-time-budget=3000", "--dump-dom", url).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, out)
	}
	dom := string(out)
	row := regexp.MustCompile(`<tr data-endpoint="([^"]+)">(.*?)</tr>`)
	status := regexp.MustCompile(`class="(\w+) status"`)
	qps := regexp.MustCompile(`class="num qps">([0-9.]+)<`)
	found := map[string]float64{}
	for _, m := range row.FindAllStringSubmatch(dom, -1) {
		st := status.FindStringSubmatch(m[2])
		q := qps.FindStringSubmatch(m[2])
		if st == nil || q == nil {
			t.Fatalf("server row without status or QPS: %s", m[0])
		}
		if st[1] != "ONLINE" {
			t.Errorf("%s shows %s", m[1], st[1])
		}
		found[m[1]], _ = strconv.ParseFloat(q[1], 64)
	}
	for _, b := range bs {
		ep := fmt.Sprintf("127.0.0.1:%d", b.Port)
		if v, ok := found[ep]; !ok || v <= 0 {
			t.Errorf("the page shows %s with QPS %v (present %v); DOM:\n%.3000s", ep, v, ok, dom)
		}
	}
	if !strings.Contains(dom, "Top digests") || !strings.Contains(dom, "<svg") {
		t.Errorf("no digests table or sparklines in the DOM")
	}
	t.Logf("Chromium rendered %d servers: %v", len(found), found)
}
