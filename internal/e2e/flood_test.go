package e2e

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestSilentSocketFlood: sockets that connect to the data port and never
// log in do not count against mysql-max_connections. With 8 000 of them
// open and 2 000 more arriving while real clients log in (bounded by the
// descriptor limit; far over ProxySQL's default limit of 2 048, which the
// test sets), go-sql-driver and the mariadb CLI still log in and query.
// Before the fix every login got ERR 1040 until mysql-connect_timeout_client
// expired (0/50 logins served).
func TestSilentSocketFlood(t *testing.T) {
	flood := floodSize(t, 10000)
	// ProxySQL's default limit (the test config raises it), or less with
	// a low descriptor limit: the flood must exceed it.
	maxConns := min(2048, flood/4)
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf("SET mysql-max_connections=%d; LOAD MYSQL VARIABLES TO RUNTIME;", maxConns))
	routeTo(t, s, 0, bs[0].Port)
	addr := fmt.Sprintf("127.0.0.1:%d", s.DataPort)
	var mu sync.Mutex
	socks := make([]net.Conn, 0, flood)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range socks {
			c.Close()
		}
	}()
	// Four fifths open before the logins, the rest while they run: a
	// flood goes on and never closes a socket.
	upFront := flood * 4 / 5
	start := time.Now()
	for range upFront {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(socks), err)
		}
		socks = append(socks, c)
	}
	dialed := time.Since(start)
	stop := make(chan struct{})
	churned := make(chan int, 1)
	go func() {
		n := 0
		defer func() { churned <- n }()
		for ; n < flood-upFront; n++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			socks = append(socks, c)
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const logins = 50
	served, cliServed := 0, 0
	var firstErr error
	t0 := time.Now()
	for range logins {
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			firstErr = cmp.Or(firstErr, err)
		} else {
			served++
		}
		db.Close()
	}
	for range 3 {
		if out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1"); err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("mariadb CLI: %v %s", err, out))
		} else {
			cliServed++
		}
	}
	took := time.Since(t0)
	close(stop)
	more := <-churned
	// The silent sockets stay bounded (at most 4 x the limit; those
	// silent past the grace are closed to make room), and
	// stats_mysql_global says how many.
	global := func(name string) int64 {
		return adminInt(t, s, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='"+name+"'")
	}
	pending, closed := global("Client_Connections_handshakes_pending"), global("Client_Connections_handshakes_closed")
	t.Logf("%d silent sockets opened in %v, then %d more during the logins (mysql-max_connections=%d): %d/%d go-sql-driver logins and %d/3 mariadb CLI logins served in %v; %d handshakes pending, %d closed to make room",
		upFront, dialed.Round(time.Millisecond), more, maxConns, served, logins, cliServed, took.Round(time.Millisecond), pending, closed)
	if served != logins || cliServed != 3 {
		t.Fatalf("logins refused during the flood: %v", firstErr)
	}
	if pending > int64(4*maxConns) {
		t.Fatalf("%d handshakes pending (%d closed) after %d silent sockets: want at most 4 x %d",
			pending, closed, upFront+more, maxConns)
	}
}

// floodSize raises this process's RLIMIT_NOFILE soft limit to the hard one
// (Sluice, started after, inherits it and raises its own) and returns how
// many sockets a flood may open: want, or less to keep 1 000 descriptors
// spare on each side.
func floodSize(t *testing.T, want int) int {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	// Set even when equal: children then inherit it (Go restores the
	// original soft limit for children only while no one has set it).
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	n := min(want, int(min(lim.Cur, 1<<20))-1000)
	if n < 1000 {
		t.Skipf("RLIMIT_NOFILE %d: too low for a socket flood", lim.Cur)
	}
	return n
}

// TestConnectTimeoutClient: mysql-connect_timeout_client is honoured
// wherever a client has to answer a login step — a silent socket on the
// data port and on the admin port, and a COM_CHANGE_USER whose auth switch
// is never answered — all closed at the configured 500 ms, not at a fixed
// 10 s.
func TestConnectTimeoutClient(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	admin(t, s, "SET mysql-connect_timeout_client=500; LOAD MYSQL VARIABLES TO RUNTIME;")
	routeTo(t, s, 0, bs[0].Port)
	// closedAfter waits (at most 8 s) for the server to close c.
	closedAfter := func(what string, c net.Conn, since time.Time) time.Duration {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("%s: not closed by the server within 8 s with mysql-connect_timeout_client=500: %v", what, err)
		}
		return time.Since(since)
	}
	var figures []string
	for _, p := range []struct {
		name string
		port int
	}{{"data port", s.DataPort}, {"admin port", s.AdminPort}} {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addrOf(p.port), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d := closedAfter(p.name, c, t0)
		figures = append(figures, fmt.Sprintf("%s silent socket closed after %v", p.name, d.Round(time.Millisecond)))
	}
	// COM_CHANGE_USER with a plugin the proxy does not serve (MariaDB's
	// ed25519) gets an auth switch; the client never answers it.
	c := wireLogin(t, s.DataPort, "sbtest", "sbtest")
	c.ResetSeq()
	caps := uint32(wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth | wire.ClientTransactions)
	if err := c.WritePacket(wire.AppendChangeUser(nil, caps, &wire.ChangeUser{
		User: "sbtest", AuthResponse: make([]byte, 64), Charset: 33, AuthPlugin: "client_ed25519"})); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if p, err := c.ReadPacket(); err != nil || len(p) == 0 || p[0] != 0xfe {
		t.Fatalf("no auth switch for COM_CHANGE_USER: %v %q", err, p)
	}
	d := closedAfter("unanswered auth switch", c.NetConn(), t0)
	figures = append(figures, fmt.Sprintf("unanswered COM_CHANGE_USER auth switch closed after %v", d.Round(time.Millisecond)))
	t.Logf("mysql-connect_timeout_client=500: %s", strings.Join(figures, "; "))
}

// TestHandshakeErrorsAreClear: a malformed handshake response gets a MySQL
// error a person can read on both ports (1043 Bad handshake, or the
// connection closed for a truncated one), never the parser's internals
// (go-mysql's "io.CopyN failed…", "invalid sequence 7 != 1" on the admin
// port before it moved to internal/wire); and the log carries them at the
// failed-login rate.
func TestHandshakeErrorsAreClear(t *testing.T) {
	s := startFresh(t, "")
	bad := []struct {
		name string
		pkt  []byte
	}{
		{"wrong sequence id", []byte{0x05, 0x00, 0x00, 0x07, 1, 2, 3, 4, 5}},
		{"no protocol 4.1", append([]byte{0x20, 0x00, 0x00, 0x01}, make([]byte, 0x20)...)},
		{"truncated response", append([]byte{0x20, 0x00, 0x00, 0x01, 0x85, 0xa2, 0x0f, 0x00}, make([]byte, 0x1c)...)},
		{"16 MiB claimed, 100 bytes sent", append([]byte{0xff, 0xff, 0xff, 0x01}, make([]byte, 100)...)},
	}
	leaks := []string{"io.", "CopyN", "invalid sequence", "wire:", "EOF", "!="}
	var figures []string
	for _, port := range []int{s.AdminPort, s.DataPort} {
		name := map[bool]string{true: "admin", false: "data"}[port == s.AdminPort]
		for _, b := range bad {
			// 30 of each on the admin port: the log must not take them all.
			for i := range 30 {
				c, err := net.DialTimeout("tcp", addrOf(port), 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				w := wire.NewConn(c)
				if _, err := w.ReadPacket(); err != nil {
					t.Fatalf("%d: no greeting: %v", port, err)
				}
				_, _ = c.Write(b.pkt)
				if tcp, ok := c.(*net.TCPConn); ok && b.name == "16 MiB claimed, 100 bytes sent" {
					_ = tcp.CloseWrite() // the rest never comes
				}
				p, _ := io.ReadAll(c)
				w.Close()
				if i > 0 {
					continue
				}
				msg := "connection closed"
				if len(p) > 4 {
					if e, err := wire.ParseERR(p[4:]); err == nil {
						msg = fmt.Sprintf("ERR %d %s", e.Code, e.Message)
						for _, l := range leaks {
							if strings.Contains(e.Message, l) {
								t.Errorf("port %d, %s: the error shows internals: %q", port, b.name, e.Message)
							}
						}
					} else {
						msg = fmt.Sprintf("%q", p)
					}
				}
				figures = append(figures, fmt.Sprintf("%s port, %s: %s", name, b.name, msg))
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := strings.Count(s.Output(), "admin login failed"); n > 40 {
		t.Errorf("%d 'admin login failed' lines for 120 malformed admin handshakes", n)
	}
	t.Logf("%s; %d 'admin login failed' log lines for 120 malformed handshakes", strings.Join(figures, "; "), strings.Count(s.Output(), "admin login failed"))
	if out := admin(t, s, "SELECT 1"); strings.TrimSpace(out) != "1" {
		t.Fatalf("admin after bad handshakes: %q", out)
	}
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
		SET mysql-auditlog_filename='audit.log'; LOAD MYSQL VARIABLES TO RUNTIME;`)
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
	// The same name on the admin port.
	adb := testenv.DB(t, s.AdminPort, long, "x", "", "")
	err = adb.PingContext(ctx)
	adb.Close()
	if err == nil || !strings.Contains(err.Error(), "1045") || len(err.Error()) > 400 {
		t.Fatalf("60 KiB user name on the admin port: %d bytes of error: %.200v", len(fmt.Sprint(err)), err)
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
	// (And a plugin name before the password, for a user that does not
	// exist either.)
	if _, err := c.ExecContext(ctx, "ALTER USER 'no_such_user_x'@'%' IDENTIFIED WITH 'mysql_native_password' BY 'plugin-s3cret-not-for-logs'"); err == nil {
		t.Fatal("ALTER USER for a missing user succeeded")
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
	// The logs are written asynchronously: wait (up to 10 s) for the lines
	// checked below, and for the last query, before judging them.
	var events, audit []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err1, err2 error
		events, err1 = os.ReadFile(filepath.Join(s.Datadir, "queries.log.00000001"))
		audit, err2 = os.ReadFile(filepath.Join(s.Datadir, "audit.log.00000001"))
		if err := errors.Join(err1, err2); err != nil && time.Now().After(deadline) {
			t.Fatal(err)
		}
		if bytes.Contains(events, []byte("PASSWORD('***')")) && bytes.Contains(events, []byte("SELECT 'after', 1")) &&
			bytes.Contains(audit, []byte("uuu…")) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(out, "s3cret-not-for-logs") || strings.Contains(string(events), "s3cret-not-for-logs") {
		t.Fatalf("the password is in a log:\n%s\n%s", out, events)
	}
	longestAudit := 0
	for _, line := range strings.Split(string(audit), "\n") {
		longestAudit = max(longestAudit, len(line))
	}
	if longestAudit > 8<<10 || !strings.Contains(string(audit), "uuu…") {
		t.Errorf("the audit log's longest line is %d bytes, or the 60 KiB user name is not clipped", longestAudit)
	}
	if !strings.Contains(string(events), "PASSWORD('***')") {
		t.Errorf("the events log does not show the masked statement:\n%s", events)
	}
	t.Logf("302 failed logins → %d log lines; longest log line %d bytes, audit log line %d bytes; SET PASSWORD and ALTER USER … IDENTIFIED WITH 'plugin' BY logged masked", denied, longest, longestAudit)
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
	// The admin bound: 600 more idle sockets. At 512 the oldest that have
	// not logged in are closed to make room, so an operator still logs in
	// (silent sockets must not lock the admin port).
	var admins []net.Conn
	for range 600 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.AdminPort), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, c)
		admins = append(admins, c)
	}
	if _, err := testenv.CLI(t, s.AdminPort, "admin", "admin", "SELECT 1"); err != nil {
		t.Fatalf("admin login beside 750 silent sockets: %v", err)
	}
	closed := 0
	buf := make([]byte, 4096)
	for _, c := range admins[:200] {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					closed++ // the handshake, then the close
				}
				break
			}
		}
	}
	if closed == 0 {
		t.Fatal("none of the oldest silent admin sockets was closed to make room")
	}
	refused := closed
	t.Logf("RSS %d → %d KiB with 150 sockets per port claiming 16 MiB; %d of the first 200 more admin sockets closed to make room", rss0, rss1, refused)
}
