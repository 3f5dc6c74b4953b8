package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestSilentSocketFlood: sockets that connect to the data port and never
// log in do not count against mysql-max_connections. With 3 000 of them
// open (over the default limit of 2 048), real clients still log in and
// query; mysql-connect_timeout_client closes a silent socket when it
// expires.
func TestSilentSocketFlood(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, `
		SET mysql-connect_timeout_client=3000; LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, bs[0].Port)
	addr := fmt.Sprintf("127.0.0.1:%d", s.DataPort)
	const flood = 3000
	socks := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range socks {
			c.Close()
		}
	}()
	start := time.Now()
	for range flood {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(socks), err)
		}
		socks = append(socks, c)
	}
	// Real logins during the flood.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := 0
	for i := range 20 {
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("login %d during a flood of %d silent sockets: %v", i, flood, err)
		}
		db.Close()
		served++
	}
	if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
		t.Fatalf("mariadb CLI during the flood: %v %s", err, out)
	}
	loginsDone := time.Since(start)
	// mysql-connect_timeout_client: the last silent socket is closed at
	// about 3 s (its handshake packet first, then EOF).
	last := socks[len(socks)-1]
	_ = last.SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	_, err := io.Copy(io.Discard, last)
	closedAfter := time.Since(start)
	if err != nil {
		t.Fatalf("the silent socket was not closed by the server: %v", err)
	}
	if closedAfter > 9*time.Second {
		t.Fatalf("a silent socket lived %v with mysql-connect_timeout_client=3000", closedAfter)
	}
	t.Logf("%d silent sockets: %d go-sql-driver logins and the mariadb CLI served in %v; a silent socket closed %v after it connected (waited %v)",
		flood, served, loginsDone.Round(time.Millisecond), closedAfter.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// TestUntrustedTextInLogs: what clients choose does not flood or leak
// through logs. A 60 KiB user name is clipped in ERR 1045 and in the log;
// 300 failed logins in a burst give a handful of log lines and a count of
// the rest; SET PASSWORD's password appears neither in the warning the
// proxy logs for it nor in the events log.
func TestUntrustedTextInLogs(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, `
		SET mysql-eventslog_filename='queries.log'; SET mysql-eventslog_format=2; SET mysql-eventslog_default_log=1;
		LOAD MYSQL VARIABLES TO RUNTIME;`)
	routeTo(t, s, 0, bs[0].Port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	long := strings.Repeat("u", 60<<10)
	db := testenv.DB(t, s.DataPort, long, "x", "", "")
	err := db.PingContext(ctx)
	db.Close()
	if err == nil || !strings.Contains(err.Error(), "1045") || len(err.Error()) > 400 {
		t.Fatalf("60 KiB user name: %d bytes of error: %.200v", len(fmt.Sprint(err)), err)
	}
	for i := range 300 {
		db := testenv.DB(t, s.DataPort, "sbtest", "wrong", "", "")
		if err := db.PingContext(ctx); err == nil {
			t.Fatalf("login %d with a wrong password succeeded", i)
		}
		db.Close()
	}
	// The next failure after the burst's second says how many were held back.
	time.Sleep(1100 * time.Millisecond)
	db = testenv.DB(t, s.DataPort, "sbtest", "wrong", "", "")
	_ = db.PingContext(ctx)
	db.Close()
	// SET PASSWORD through the data port.
	c := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	c.SetMaxOpenConns(1)
	// (For a user that does not exist: the shared backends' users must
	// keep their passwords.)
	if _, err := c.ExecContext(ctx, "SET PASSWORD FOR 'no_such_user_x'@'%' = PASSWORD('s3cret-not-for-logs')"); err == nil {
		t.Fatal("SET PASSWORD for a missing user succeeded")
	}
	if _, err := c.ExecContext(ctx, "SELECT 'after', 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the events log flushes every 100 ms
	out := s.Output()
	denied := strings.Count(out, "access denied")
	longest := 0
	for _, line := range strings.Split(out, "\n") {
		longest = max(longest, len(line))
	}
	if denied > 40 || !strings.Contains(out, "more_failures_not_logged") {
		t.Errorf("%d 'access denied' lines for 302 failures, or no count of those not logged", denied)
	}
	if longest > 8<<10 {
		t.Errorf("a log line of %d bytes", longest)
	}
	events, err := os.ReadFile(filepath.Join(s.Datadir, "queries.log.00000001"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "s3cret-not-for-logs") || strings.Contains(string(events), "s3cret-not-for-logs") {
		t.Fatalf("the password is in a log:\n%s\n%s", out, events)
	}
	if !strings.Contains(string(events), "PASSWORD('***')") {
		t.Errorf("the events log does not show the masked statement:\n%s", events)
	}
	t.Logf("302 failed logins → %d log lines; longest log line %d bytes; SET PASSWORD logged masked", denied, longest)
}

// TestPreAuthMemory: a peer that announces a 16 MiB packet during the
// login and sends 100 bytes earns no buffer for the claim, on either port:
// 150 such sockets on each leave RSS about where it was. Past 512
// connections the admin port answers ERR 1040 at once.
func TestPreAuthMemory(t *testing.T) {
	s := startFresh(t, "")
	pid := s.Cmd.Process.Pid
	rss0 := rssKiB(t, pid)
	var socks []net.Conn
	defer func() {
		for _, c := range socks {
			c.Close()
		}
	}()
	claim := append([]byte{0xff, 0xff, 0xff, 1}, make([]byte, 100)...)
	for _, port := range []int{s.AdminPort, s.DataPort} {
		for range 150 {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			socks = append(socks, c)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			greeting := make([]byte, 4)
			if _, err := io.ReadFull(c, greeting); err != nil {
				t.Fatalf("no greeting on %d: %v", port, err)
			}
			n := int(greeting[0]) | int(greeting[1])<<8 | int(greeting[2])<<16
			if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(claim); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	rss1 := rssKiB(t, pid)
	if grew := rss1 - rss0; grew > 64<<10 { // 64 MiB: far below 300 × 16 MiB
		t.Fatalf("RSS grew by %d KiB for 300 sockets claiming 16 MiB each", grew)
	}
	// The admin bound: 600 idle sockets, the last ones refused with 1040.
	refused := 0
	for range 600 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.AdminPort), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, c)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err == nil && hdr[4] == 0xff {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("the admin port took 600 more connections without refusing any")
	}
	if out, err := testenv.CLI(t, s.AdminPort, "admin", "admin", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "1040") {
		t.Logf("admin login at the bound: %v %s", err, out)
	}
	t.Logf("RSS %d → %d KiB with 150 sockets per port claiming 16 MiB; %d of 600 more admin sockets refused with ERR 1040", rss0, rss1, refused)
}
