package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestOutOfFileDescriptors: a proxy out of file descriptors (its limit
// lowered with prlimit to what it has open) answers with ERR 1040 naming
// the cause, at once — a query it cannot open a backend connection for,
// and a client it cannot accept (with the descriptor it holds in reserve)
// — and does not count its own EMFILE against the server. It used to shun
// the healthy server, and its clients waited out
// connect_timeout_server_max, or their own timeouts in the listen queue.
func TestOutOfFileDescriptors(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	pid := strconv.Itoa(s.Cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "timeout=2s&readTimeout=10s")
	// Clients logged in, none holding a backend connection yet.
	var conns []*sql.Conn
	for range 6 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Every descriptor number up to the highest in use is taken: the
	// next one fails with EMFILE.
	limit := func(n int) {
		t.Helper()
		if out, err := exec.Command("prlimit", "--pid", pid, fmt.Sprintf("--nofile=%d:", n)).CombinedOutput(); err != nil {
			t.Skipf("prlimit: %v %s", err, out)
		}
	}
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	// (A descriptor far above the others, inherited from the test
	// harness, stays open whatever the limit.)
	top, low := 0, 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n < 200 {
			top, low = max(top, n), low+1
		}
	}
	if top+1 != low {
		t.Skipf("descriptors in use are not 0..%d (%d open): the limit cannot be set just above them", top, low)
	}
	limit(low)

	start := time.Now()
	var one int
	err = conns[0].QueryRowContext(ctx, "SELECT 1").Scan(&one)
	if err == nil || !strings.Contains(err.Error(), "1040") || !strings.Contains(err.Error(), "file descriptors") {
		t.Fatalf("a query needing a backend connection: %v, want ERR 1040 naming the file descriptors", err)
	}
	queryTook := time.Since(start)
	start = time.Now()
	_, err = db.Conn(ctx)
	if err == nil || !strings.Contains(err.Error(), "1040") || !strings.Contains(err.Error(), "file descriptors") {
		t.Fatalf("a new client: %v, want ERR 1040 naming the file descriptors", err)
	}
	connectTook := time.Since(start)

	limit(1024)
	for _, c := range conns {
		c.Close()
	}
	if st := admin(t, s, "SELECT status FROM runtime_mysql_servers"); st != "ONLINE\n" {
		t.Fatalf("the server after the proxy ran out of descriptors: %q, want ONLINE\n%s", st, s.Output())
	}
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("a query once descriptors are free: %v", err)
	}
	t.Logf("out of descriptors: the query answered ERR 1040 in %v, the new client in %v",
		queryTook.Round(time.Millisecond), connectTook.Round(time.Millisecond))
}
