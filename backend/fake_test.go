package backend

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// fakeHandler answers the few statements the pool sends.
type fakeHandler struct {
	server.EmptyHandler
	mu      sync.Mutex
	queries []string
	stall   chan struct{} // "STALL" waits until it is closed: a frozen server
}

func (h *fakeHandler) UseDB(string) error { return nil }

func (h *fakeHandler) HandleQuery(q string) (*mysql.Result, error) {
	h.mu.Lock()
	h.queries = append(h.queries, q)
	stall := h.stall
	h.mu.Unlock()
	if q == "STALL" && stall != nil {
		<-stall
	}
	if q == "SELECT 1" {
		rs, err := mysql.BuildSimpleTextResultset([]string{"1"}, [][]any{{1}})
		if err != nil {
			return nil, err
		}
		return mysql.NewResult(rs), nil
	}
	return nil, nil
}

// startFakeMySQL8 serves the MySQL protocol with go-mysql's server package,
// defaulting to caching_sha2_password with an RSA key, which MariaDB cannot
// do. Users: sha2/pw (caching_sha2_password), native/pw
// (mysql_native_password).
func startFakeMySQL8(t *testing.T) (string, *fakeHandler) {
	t.Helper()
	return startFakeMySQL8Bench(t)
}

func startFakeMySQL8Bench(t testing.TB) (string, *fakeHandler) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer("8.0.36", 45, mysql.AUTH_CACHING_SHA2_PASSWORD, key, nil)
	auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_CACHING_SHA2_PASSWORD)
	_ = auth.AddUser("sha2", "pw", mysql.AUTH_CACHING_SHA2_PASSWORD)
	_ = auth.AddUser("native", "pw", mysql.AUTH_NATIVE_PASSWORD)
	h := &fakeHandler{}
	return serveFake(t, srv, auth, h), h
}

// serveFake serves srv's protocol with auth and h on a loopback port until
// the test ends, and returns its address.
func serveFake(t testing.TB, srv *server.Server, auth server.AuthenticationHandler, h server.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				c, err := srv.NewCustomizedConn(nc, auth, h)
				if err != nil {
					return
				}
				for range 1000 {
					if err := c.HandleCommand(); err != nil || c.Closed() {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// fakeHostPort splits a fake server's 127.0.0.1:port address.
func fakeHostPort(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return host, p
}

func fakeServer(t *testing.T, addr string) *Server {
	t.Helper()
	host, p := fakeHostPort(addr)
	r := newTestRegistry(t, DefaultOptions())
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: host, Port: p, Weight: 1, MaxConnections: 10}})
	return r.Hostgroup(0)[0]
}

func TestCachingSha2FullAndFastAuth(t *testing.T) {
	addr, h := startFakeMySQL8(t)
	s := fakeServer(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cred := &Credentials{User: "sha2", Password: "pw"}
	want := &State{Autocommit: true}
	for i := range 2 { // first full auth over RSA, then fast auth from the server's cache
		c, err := s.Pool().Get(ctx, nil, cred, want)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		res, err := c.Query(ctx, "SELECT 1")
		if err != nil || len(res.Rows) != 1 || res.Rows[0][0].String != "1" || res.Columns[0] != "1" {
			t.Fatalf("query %d: %+v %v", i, res, err)
		}
		_ = c.Close()
	}
	if st := s.Stats(); st.ConnOK != 2 || st.ConnUsed != 0 {
		t.Fatalf("stats %+v", st)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queries) == 0 {
		t.Fatal("no query reached the fake server")
	}
}

func TestStage1OnlyAgainstCachingSha2(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	s := fakeServer(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A native user on a caching_sha2 server logs in with SHA1(pw) alone.
	c, err := s.Pool().Get(ctx, nil, &Credentials{User: "native", Stage1: wire.Stage1([]byte("pw"))}, &State{Autocommit: true})
	if err != nil {
		t.Fatalf("native user with stage1: %v", err)
	}
	_ = c.Close()
	// A caching_sha2 user cannot: the error says why.
	_, err = s.Pool().Get(ctx, nil, &Credentials{User: "sha2", Stage1: wire.Stage1([]byte("pw"))}, &State{Autocommit: true})
	if !errors.Is(err, ErrNeedClearPassword) {
		t.Fatalf("got %v, want ErrNeedClearPassword", err)
	}
	// A wrong password is an access-denied SQL error that does not shun.
	_, err = s.Pool().Get(ctx, nil, &Credentials{User: "sha2", Password: "nope"}, &State{Autocommit: true})
	if e, ok := IsSQLError(err); !ok || e.Code != 1045 || !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	if s.Status() != StatusOnline || s.Stats().ConnERR != 2 {
		t.Fatalf("status %v stats %+v", s.Status(), s.Stats())
	}
}

func TestConnectErrorsShunThroughPool(t *testing.T) {
	o := DefaultOptions()
	o.ShunOnFailures = 3
	o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("connection refused (injected)")
	}
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "127.0.0.1", Port: 1, Weight: 1, MaxConnections: 10}})
	s := r.Hostgroup(0)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		_, err := s.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
		if !errors.Is(err, ErrConnect) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if s.Status() != StatusShunned || s.Healthy() {
		t.Fatalf("not shunned after 3 connect errors: %v", s.Status())
	}
	if _, err := s.Pool().Get(ctx, nil, &Credentials{User: "u"}, &State{}); !errors.Is(err, ErrServerUnavailable) {
		t.Fatalf("Get on a shunned server: %v", err)
	}
	if st := s.Stats(); st.ConnERR != 3 || st.ConnUsed != 0 || st.Errors != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestKillConnectionsAbortsQueriesInFlight: a query waiting on a server
// that stopped answering fails as soon as the server's connections are
// killed (the monitor's shun), and its connection never returns to the
// pool.
func TestKillConnectionsAbortsQueriesInFlight(t *testing.T) {
	addr, h := startFakeMySQL8(t)
	stall := make(chan struct{})
	h.mu.Lock()
	h.stall = stall
	h.mu.Unlock()
	t.Cleanup(func() { close(stall) })
	s := fakeServer(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Pool().Get(ctx, nil, &Credentials{User: "native", Password: "pw"}, &State{Autocommit: true})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := s.Pool().Get(ctx, nil, &Credentials{User: "native", Password: "pw"}, &State{Autocommit: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Pool().Put(idle)
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(append([]byte{wire.ComQuery}, "STALL"...), ShapeResult, &Sink{})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("STALL returned before the kill: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	if n := s.KillConnections(); n != 1 {
		t.Fatalf("KillConnections: %d in use, want 1", n)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the stalled query succeeded after the kill")
		}
		t.Logf("stalled query failed %v after the kill: %v", time.Since(start).Round(time.Microsecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled query still waits 5 s after the kill")
	}
	if s.Pool().Free() != 0 {
		t.Fatalf("idle connections left: %d", s.Pool().Free())
	}
	s.Pool().Put(c)
	if u, f := s.Pool().Used(), s.Pool().Free(); u != 0 || f != 0 {
		t.Fatalf("after Put of the aborted connection: used %d free %d, want 0 0", u, f)
	}
}

// BenchmarkPoolGetPut measures the per-query pool round trip when a
// connection in exactly the session's state is idle: no I/O, no allocation.
func BenchmarkPoolGetPut(b *testing.B) {
	addr, _ := startFakeMySQL8Bench(b)
	host, p := fakeHostPort(addr)
	r := NewRegistry(FixedOptions(DefaultOptions()), zerologNop())
	defer r.Close()
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: host, Port: p, Weight: 1, MaxConnections: 10}})
	s := r.Hostgroup(0)[0]
	ctx := context.Background()
	cred := &Credentials{User: "native", Password: "pw"}
	want := &State{Schema: "db", Collation: 45, Autocommit: true, Vars: []Var{{"sql_mode", "SET sql_mode='ANSI'"}}}
	c, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		b.Fatal(err)
	}
	s.Pool().Put(c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := s.Pool().Get(ctx, nil, cred, want)
		if err != nil {
			b.Fatal(err)
		}
		s.Pool().Put(c)
	}
}

// TestConnectBurstBounded: a burst of requests that find no free
// connection dials at most maxOpening connections at a time; the rest wait
// for a connect to finish or a connection to come back, and all are served.
func TestConnectBurstBounded(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	host, p := fakeHostPort(addr)
	var mu sync.Mutex
	inFlight, peak, dials := 0, 0, 0
	o := DefaultOptions()
	o.Dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		inFlight++
		dials++
		peak = max(peak, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		time.Sleep(20 * time.Millisecond) // a slow server: connects overlap
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: host, Port: p, Weight: 1, MaxConnections: 500}})
	s := r.Hostgroup(0)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const requests = 120
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.Pool().Get(ctx, nil, &Credentials{User: "native", Password: "pw"}, &State{})
			if err != nil {
				errs <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
			s.Pool().Put(c)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("request failed: %v", err)
	}
	if peak > maxOpening || peak < 2 {
		t.Fatalf("%d connects in flight at once (bound %d)", peak, maxOpening)
	}
	if st := s.Stats(); st.ConnUsed != 0 || int(st.ConnFree) != dials || st.ConnERR != 0 {
		t.Fatalf("stats %+v after %d dials", st, dials)
	}
	t.Logf("%d requests: %d connections dialed, at most %d at once", requests, dials, peak)
}

// TestAbortLeaseSparesLaterUses: an abort meant for a use of a connection
// that has ended (the session gave it back before the proxy's kill came
// round) leaves the connection alone, idle or in its next user's hands;
// one that races with Put never hands out a dead connection.
func TestAbortLeaseSparesLaterUses(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	s := fakeServer(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cred, st := &Credentials{User: "native", Password: "pw"}, &State{Autocommit: true}
	c, err := s.Pool().Get(ctx, nil, cred, st)
	if err != nil {
		t.Fatal(err)
	}
	lease := c.Lease()
	s.Pool().Put(c)
	if c.AbortLease(lease) {
		t.Fatal("AbortLease aborted a connection given back")
	}
	again, err := s.Pool().Get(ctx, nil, cred, st)
	if err != nil || again != c {
		t.Fatalf("the idle connection was not reused: %v", err)
	}
	if c.AbortLease(lease) {
		t.Fatal("AbortLease aborted the connection's next use")
	}
	if _, err := again.Run(append([]byte{wire.ComQuery}, "SELECT 1"...), ShapeResult, &Sink{}); err != nil {
		t.Fatalf("the next use failed: %v", err)
	}
	// The current use is aborted; an abort that lands after Put's check
	// leaves it in the free list, and Get takes another.
	if !again.AbortLease(again.Lease()) {
		t.Fatal("AbortLease spared the current use")
	}
	again.aborted.Store(false)
	s.Pool().Put(again)
	again.abort()
	next, err := s.Pool().Get(ctx, nil, cred, st)
	if err != nil || next == again {
		t.Fatalf("Get handed out an aborted connection (%v)", err)
	}
	s.Pool().Put(next)
}

// serveLoginRefusal answers every login on a loopback port with ERR code
// after the handshake response, and returns the address.
func serveLoginRefusal(t *testing.T, code uint16, msg string) string {
	return serveAfterLogin(t, func(c *wire.Conn) {
		_ = c.WriteError(&wire.SQLError{Code: code, State: "08004", Message: msg})
		_ = c.Flush()
	})
}

// serveAfterLogin is a server that takes a client's handshake response and
// then does what answer says.
func serveAfterLogin(t *testing.T, answer func(c *wire.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				c := wire.NewConn(nc)
				hs := &wire.InitialHandshake{ServerVersion: "10.11.0-MariaDB", ConnID: 1, Salt: wire.NewSalt(),
					Capabilities: wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth, Charset: 45,
					AuthPlugin: wire.AuthNativePassword}
				if _, err := wire.ServerHandshake(c, hs, nil); err != nil {
					return
				}
				answer(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestLoginRefusalsClassified: an ERR after the handshake response that
// says the server cannot take a connection now (1040 Too many
// connections) is a connect error — another server may be tried, and it
// counts against this one — where one that refuses the login (1045) is
// not (it used to be taken for a refused login whatever its code).
func TestLoginRefusalsClassified(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	full := fakeServer(t, serveLoginRefusal(t, 1040, "Too many connections"))
	_, err := full.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
	if !errors.Is(err, ErrConnect) || errors.Is(err, ErrAuth) || !CountsAgainstServer(err) {
		t.Fatalf("1040 after login: %v, want a connect error that counts", err)
	}
	if se, ok := IsSQLError(err); !ok || se.Code != 1040 {
		t.Fatalf("1040 after login: the server's error is not kept: %v", err)
	}
	denied := fakeServer(t, serveLoginRefusal(t, 1045, "Access denied for user 'u'"))
	_, err = denied.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
	if !errors.Is(err, ErrAuth) || CountsAgainstServer(err) {
		t.Fatalf("1045 after login: %v, want a refused login that does not count", err)
	}
}

// TestHostileLoginBounded: a server's login packets are bounded (an auth
// switch naming a 1 MiB plugin, or a 1 MiB ERR, is refused unread, not
// assembled and quoted) and so is an error message a server sends (a
// 60 KiB one is kept as its first 512 bytes): a monitor check of such a server kept every
// message whole in its log tables, 1.5 GB of RSS in a minute.
func TestHostileLoginBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	big := fakeServer(t, serveLoginRefusal(t, 1045, strings.Repeat("x", 60<<10)))
	_, err := big.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
	if se, ok := IsSQLError(err); !ok || len(se.Message) != wire.MaxErrMessage {
		t.Fatalf("a 60 KiB message: %v", err)
	}
	huge := fakeServer(t, serveLoginRefusal(t, 1045, strings.Repeat("x", 1<<20)))
	if _, err = huge.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{}); err == nil || len(err.Error()) > 1024 {
		t.Fatalf("a 1 MiB message during the login: %v", err)
	}

	// An auth switch to a plugin with a 1 MiB name.
	sw := fakeServer(t, serveAfterLogin(t, func(c *wire.Conn) {
		_ = c.WritePacket(append(append([]byte{0xFE}, strings.Repeat("p", 1<<20)...), 0))
		_ = c.Flush()
		_, _ = c.ReadPacket()
	}))
	_, err = sw.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
	if err == nil || len(err.Error()) > 1024 {
		t.Fatalf("an auth switch with a 1 MiB plugin name: %d bytes of error", len(err.Error()))
	}
}

// TestConnectionClosedAfterERR: a server answers a packet over its
// max_allowed_packet with ERR 1153 and closes. When the socket buffers
// took the whole command the send succeeds and the ERR is an ordinary
// answer; the connection must still not be used again (pooled, the next
// command failed on it and counted as a lost connection).
func TestConnectionClosedAfterERR(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, code := range []uint16{1153, 1927, 1064} {
		srv := fakeServer(t, serveAfterLogin(t, func(c *wire.Conn) {
			_ = c.WriteOK(0, 0, wire.StatusAutocommit, 0, "")
			_ = c.Flush()
			for {
				c.ResetSeq()
				p, err := c.ReadPacket()
				if err != nil {
					return
				}
				if string(p[1:]) == "SELECT 1" {
					break
				}
				_ = c.WriteOK(0, 0, wire.StatusAutocommit, 0, "")
				_ = c.Flush()
			}
			_ = c.WriteError(&wire.SQLError{Code: code, State: "08S01", Message: "closing"})
			_ = c.Flush()
		}))
		c, err := srv.Pool().Get(ctx, nil, &Credentials{User: "u", Password: "p"}, &State{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Run(append([]byte{wire.ComQuery}, "SELECT 1"...), ShapeResult, &Sink{})
		if err != nil || res.Err == nil || res.Err.Code != code {
			t.Fatalf("ERR %d: %+v, %v", code, res, err)
		}
		if want := code != 1064; c.Broken() != want {
			t.Errorf("ERR %d: broken %v, want %v", code, c.Broken(), want)
		}
		c.Close()
	}
}

// TestPoolCountsAndBuffers: the pool counts stats_mysql_global's
// MyHGM_myconnpoll_* events where they happen — a lookup that opens a new
// connection, one that takes an idle one, a connection given back, one
// closed instead — and its connections' buffers are counted in
// wire.BackendBuffers, those of idle ones in FreeBufferBytes.
func TestPoolCountsAndBuffers(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	s := fakeServer(t, addr)
	p := s.Pool()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cred := &Credentials{User: "native", Password: "pw"}
	want := &State{Schema: "db", Collation: 45, Autocommit: true}
	bufs0 := wire.BackendBuffers.Bytes()

	c, err := p.Get(ctx, nil, cred, want) // nothing idle: a lookup that opens one
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Counts(); got != (PoolCounts{Get: 1}) {
		t.Fatalf("after a Get that opened a connection: %+v, want Get 1", got)
	}
	held := c.w.BufferBytes()
	if held < int64(wire.BufferSize) { // it wrote its login and read the server's answers
		t.Errorf("a connection in use holds %d bytes of buffers, want >= %d", held, wire.BufferSize)
	}
	if d := wire.BackendBuffers.Bytes() - bufs0; d != held {
		t.Errorf("wire.BackendBuffers moved by %d, want the connection's %d", d, held)
	}
	if n := p.FreeBufferBytes(); n != 0 {
		t.Errorf("FreeBufferBytes %d with nothing idle", n)
	}
	p.Put(c)
	if got := p.Counts(); got != (PoolCounts{Get: 1, Push: 1}) {
		t.Fatalf("after Put: %+v, want Get 1 Push 1", got)
	}
	if n := p.FreeBufferBytes(); n != held {
		t.Errorf("FreeBufferBytes %d with the connection idle, want %d", n, held)
	}

	c, err = p.Get(ctx, nil, cred, want) // the idle one is taken
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Counts(); got != (PoolCounts{Get: 2, GetOK: 1, Push: 1}) {
		t.Fatalf("after a Get that took the idle connection: %+v, want Get 2 GetOK 1 Push 1", got)
	}
	p.Put(c)
	o := DefaultOptions()
	if c = p.TryGet(&o, cred.User, want, want.Fingerprint()); c == nil {
		t.Fatal("TryGet found no idle connection in the wanted state")
	}
	if got := p.Counts(); got != (PoolCounts{Get: 3, GetOK: 2, Push: 2}) {
		t.Fatalf("after a TryGet hit: %+v, want Get 3 GetOK 2 Push 2", got)
	}
	_ = c.Close() // handed out, closed instead of given back
	if got := p.Counts(); got != (PoolCounts{Get: 3, GetOK: 2, Push: 2, Destroy: 1}) {
		t.Fatalf("after closing a connection in use: %+v, want Destroy 1", got)
	}
	if d := wire.BackendBuffers.Bytes() - bufs0; d != 0 {
		t.Errorf("wire.BackendBuffers is %d above its start with every connection closed", d)
	}
	if n := p.FreeBufferBytes(); n != 0 {
		t.Errorf("FreeBufferBytes %d with nothing idle", n)
	}
}

// TestTotalsSurviveRemoval: the global counters (Registry.Totals) keep
// what a server counted after a LOAD or the monitor takes it out, and
// after its counters are folded into one sum; only Connected, a gauge,
// falls.
func TestTotalsSurviveRemoval(t *testing.T) {
	addr, _ := startFakeMySQL8(t)
	host, p := fakeHostPort(addr)
	r := newTestRegistry(t, DefaultOptions())
	servers := []config.Server{{HostgroupID: 0, Hostname: host, Port: p, Weight: 1, MaxConnections: 10}}
	r.Reconcile(servers)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cred := &Credentials{User: "native", Password: "pw"}
	want := &State{Schema: "db", Collation: 45, Autocommit: true}
	use := func(s *Server) {
		t.Helper()
		c, err := s.Pool().Get(ctx, nil, cred, want)
		if err != nil {
			t.Fatal(err)
		}
		s.Pool().Put(c)
	}
	use(r.Hostgroup(0)[0])
	before := r.Totals()
	if before.ConnOK != 1 || before.Pool.Get != 1 || before.Pool.Push != 1 || before.BytesRecv == 0 || before.Connected != 1 {
		t.Fatalf("after one connection used: %+v", before)
	}
	// Closing the idle connection sends COM_QUIT: BytesSent grows by it.
	counters := func(x Totals) Totals { x.Connected, x.BytesSent = 0, 0; return x }

	r.Reconcile(nil) // LOAD MYSQL SERVERS TO RUNTIME without it
	after := r.Totals()
	if counters(after) != counters(before) || after.BytesSent < before.BytesSent || after.Connected != 0 {
		t.Fatalf("after the server was removed: %+v, want the counters of %+v and nothing connected", after, before)
	}

	// Back under the same key: a new server, whose counts add to the old ones.
	r.Reconcile(servers)
	use(r.Hostgroup(0)[0])
	// The monitor's read_only check moves it into hostgroup 1 and out again.
	if _, added := r.AddToHostgroup(r.Hostgroup(0)[0], 1); !added {
		t.Fatal("AddToHostgroup added nothing")
	}
	use(r.Hostgroup(1)[0])
	if !r.RemoveFromHostgroup(Key{Hostgroup: 1, Host: host, Port: p}) {
		t.Fatal("RemoveFromHostgroup removed nothing")
	}
	got := r.Totals()
	if got.ConnOK != 3 || got.Pool.Get != 3 || got.Pool.Push != 3 || got.BytesRecv <= before.BytesRecv || got.Connected != 1 {
		t.Fatalf("after three servers' use, two removed: %+v", got)
	}
	r.foldRetired(time.Now().Add(retireFoldAfter))
	r.mu.Lock()
	left := len(r.retired)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("%d removed servers left unfolded", left)
	}
	if folded := r.Totals(); folded != got {
		t.Errorf("after folding: %+v, want %+v", folded, got)
	}
}
