package router

import (
	"database/sql"
	"encoding/binary"
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The benchmark measures what the proxy adds to one COM_QUERY round trip:
// client → router (digest, rules, routing, pool) → backend → streamed
// result → client. The backend is a minimal in-process server that answers
// every query with the same one-row result, so the numbers are the proxy's
// own cost (plus loopback I/O), not a database's. Real backends are used by
// the end-to-end tests and the sysbench comparison (docs/benchmarks.md).

// fakeBackend accepts connections, logs every user in, and answers each
// COM_QUERY with a prebuilt result set (one column, one row); it prepares
// any statement as one with one parameter and one column, and answers each
// COM_STMT_EXECUTE with a binary result set of one row.
func fakeBackend(tb testing.TB) string {
	// Column count, column definition, EOF, row, EOF: the classic
	// (non-DEPRECATE_EOF) layout.
	var resp [][]byte
	resp = append(resp, wire.AppendLenEncInt(nil, 1))
	col := wire.AppendLenEncString(nil, "def")
	for _, s := range []string{"", "", "", "1", ""} {
		col = wire.AppendLenEncString(col, s)
	}
	col = append(col, 0x0c, 63, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0, 0)
	resp = append(resp, col, wire.AppendEOF(nil, 0, wire.StatusAutocommit))
	resp = append(resp, wire.AppendLenEncString(nil, "1"), wire.AppendEOF(nil, 0, wire.StatusAutocommit))
	ok := wire.AppendOK(nil, 0, 0, wire.StatusAutocommit, 0, "")
	// PREPARE: OK with statement id 7, 1 column, 1 parameter, then the
	// parameter and column definitions, each list ended by an EOF.
	prep := [][]byte{{wire.HeaderOK, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, col, wire.AppendEOF(nil, 0, wire.StatusAutocommit),
		col, wire.AppendEOF(nil, 0, wire.StatusAutocommit)}
	// EXECUTE: count, definition, EOF, binary row (header, null bitmap,
	// 8-byte 1), EOF.
	exec := [][]byte{wire.AppendLenEncInt(nil, 1), col, wire.AppendEOF(nil, 0, wire.StatusAutocommit),
		{0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, wire.AppendEOF(nil, 0, wire.StatusAutocommit)}
	return fakeServer(tb, func(c *wire.Conn, _ net.Conn) {
		for {
			c.ResetSeq()
			p, err := c.ReadPacket()
			if err != nil || len(p) == 0 || p[0] == wire.ComQuit {
				return
			}
			switch {
			case p[0] == wire.ComStmtClose:
				continue // no response
			case p[0] == wire.ComStmtPrepare:
				for _, r := range prep {
					c.WritePacket(r)
				}
			case p[0] == wire.ComStmtExecute:
				for _, r := range exec {
					c.WritePacket(r)
				}
			case p[0] == wire.ComQuery && (hasPrefixFold(p[1:], "SELECT") || hasPrefixFold(p[1:], "SHOW")):
				for _, r := range resp {
					c.WritePacket(r)
				}
			default:
				c.WritePacket(ok)
			}
			if c.Flush() != nil {
				return
			}
		}
	})
}

// fakeServer listens on 127.0.0.1, logs every connection in as a MariaDB
// server without CLIENT_DEPRECATE_EOF would, and hands it to serve (with
// its raw socket, for bytes that are not packets); it returns the address.
func fakeServer(tb testing.TB, serve func(c *wire.Conn, nc net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c := wire.NewConn(nc)
				defer c.Close()
				hs := &wire.InitialHandshake{ServerVersion: "10.11.0-fake", ConnID: 1, Salt: wire.NewSalt(),
					Capabilities: wire.ServerCapabilities(false), Charset: 33, Status: wire.StatusAutocommit}
				c.WritePacket(wire.AppendInitialHandshake(nil, hs))
				c.Flush()
				if _, err := c.ReadPacket(); err != nil {
					return
				}
				c.WritePacket(wire.AppendOK(nil, 0, 0, wire.StatusAutocommit, 0, ""))
				c.Flush()
				serve(c, nc)
			}()
		}
	}()
	return l.Addr().String()
}

// benchRouter starts a router in front of the fake backend and returns a
// logged-in client connection.
func benchRouter(tb testing.TB) *wire.Conn {
	_, c := newBenchRouter(tb)
	return c
}

// newBenchRouter is benchRouter that also returns the router, with the
// query rules given.
func newBenchRouter(tb testing.TB, qrules ...config.QueryRule) (*Router, *wire.Conn) {
	return newBenchRouterVars(tb, nil, qrules...)
}

// newBenchRouterVars is newBenchRouter with mysql- variables set too.
func newBenchRouterVars(tb testing.TB, vars map[string]string, qrules ...config.QueryRule) (*Router, *wire.Conn) {
	return newRouterAt(tb, fakeBackend(tb), vars, qrules...)
}

// newRouterAt is newBenchRouterVars in front of the backend at addr.
func newRouterAt(tb testing.TB, addr string, vars map[string]string, qrules ...config.QueryRule) (*Router, *wire.Conn) {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	snap := &config.Snapshot{
		Servers: []config.Server{{HostgroupID: 0, Hostname: host, Port: p, Status: "ONLINE", Weight: 1, MaxConnections: 100}},
		Users: []config.User{{Username: "bench", Password: "bench", Active: true, Frontend: true, Backend: true,
			DefaultHostgroup: 0, MaxConnections: 100, TransactionPersistent: true}},
		QueryRules: qrules,
	}
	h := live.NewHolder()
	rt, err := live.Build(h.Load(), snap, config.ModMySQLServers)
	if err != nil {
		tb.Fatal(err)
	}
	if len(qrules) > 0 {
		if rt, err = live.Build(rt, snap, config.ModMySQLQueryRules); err != nil {
			tb.Fatal(err)
		}
	}
	if vars != nil {
		snap.MySQLVars = vars
		if rt, err = live.Build(rt, snap, config.ModMySQLVariables); err != nil {
			tb.Fatal(err)
		}
	}
	if err := h.Store(rt); err != nil {
		tb.Fatal(err)
	}
	reg := backend.NewRegistry(h.BackendOptions, zerolog.Nop())
	tb.Cleanup(reg.Close)
	reg.Reconcile(snap.Servers)
	r := New(Config{Runtime: h, Registry: reg, Log: zerolog.Nop()})
	if err := r.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })

	return r, login(tb, r, 0)
}

// login connects a client to r as user bench, with the capabilities the
// benchmark client has plus extra (wire.ClientDeprecateEOF, say).
func login(tb testing.TB, r *Router, extra uint32) *wire.Conn {
	nc, err := net.Dial("tcp", r.Addrs()[0].String())
	if err != nil {
		tb.Fatal(err)
	}
	c := wire.NewConn(nc)
	tb.Cleanup(func() { c.Close() })
	p1, err := c.ReadPacket()
	if err != nil {
		tb.Fatal(err)
	}
	hs, err := wire.ParseInitialHandshake(p1)
	if err != nil {
		tb.Fatal(err)
	}
	resp := &wire.HandshakeResponse{
		Capabilities: wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth | wire.ClientTransactions | extra,
		// MARIADB_CLIENT_CACHE_METADATA when offered, as libmariadb asks.
		ExtCapabilities: hs.ExtCapabilities & wire.MariaDBCacheMetadata,
		MaxPacket:       1 << 24, Charset: 33, User: "bench",
		AuthResponse: wire.NativeScramble(hs.Salt, []byte("bench")), AuthPlugin: "mysql_native_password",
	}
	if err := c.WritePacket(wire.AppendHandshakeResponse(nil, resp)); err != nil {
		tb.Fatal(err)
	}
	c.Flush()
	p2, err := c.ReadPacket()
	if err != nil || !wire.IsOK(p2) {
		tb.Fatalf("login: %v %q", err, p2)
	}
	return c
}

// roundTrip sends one COM_QUERY and reads the whole response.
func roundTrip(tb testing.TB, c *wire.Conn, q []byte) {
	c.ResetSeq()
	if err := c.WritePacket(q); err != nil {
		tb.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		tb.Fatal(err)
	}
	eofs := 0
	for {
		p, err := c.ReadPacket()
		if err != nil {
			tb.Fatal(err)
		}
		switch {
		case wire.IsERR(p):
			tb.Fatalf("query failed: %q", p)
		case wire.IsOK(p) && eofs == 0:
			return
		case wire.IsEOF(p):
			if eofs++; eofs == 2 {
				return
			}
		}
	}
}

// BenchmarkComQuery is one SELECT through the proxy per iteration: the
// per-query allocations it reports are the hot path's (the client and the
// fake backend allocate nothing per query).
func BenchmarkComQuery(b *testing.B) {
	c := benchRouter(b)
	q := append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = 4242"...)
	roundTrip(b, c, q) // warm the pool
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip(b, c, q)
	}
}

// TestComQueryAllocations pins the hot path's allocation count, so a change
// that adds per-query garbage shows up as a failing test, not a slow drift.
func TestComQueryAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	c := benchRouter(t)
	q := append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = 4242"...)
	roundTrip(t, c, q)
	n := testing.AllocsPerRun(200, func() { roundTrip(t, c, q) })
	t.Logf("%.1f allocations per COM_QUERY round trip", n)
	if n > 0 {
		t.Errorf("%.1f allocations per COM_QUERY through the proxy, want 0", n)
	}
}

// prepare sends COM_STMT_PREPARE and returns the client's statement id.
func prepare(tb testing.TB, c *wire.Conn, q string) uint32 {
	c.ResetSeq()
	c.WritePacket(append([]byte{wire.ComStmtPrepare}, q...))
	if err := c.Flush(); err != nil {
		tb.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil || len(p) < 12 || p[0] != wire.HeaderOK {
		tb.Fatalf("PREPARE: %v %q", err, p)
	}
	id := binary.LittleEndian.Uint32(p[1:])
	for range 4 { // parameter definition, EOF, column definition, EOF
		if _, err := c.ReadPacket(); err != nil {
			tb.Fatal(err)
		}
	}
	return id
}

// executePacket is a COM_STMT_EXECUTE of statement id with one BIGINT
// parameter (types sent).
func executePacket(id uint32) []byte {
	p := []byte{wire.ComStmtExecute}
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, 0, 1, 0, 0, 0) // flags, iteration count
	p = append(p, 0, 1, 8, 0)    // null bitmap, new_params_bound_flag, MYSQL_TYPE_LONGLONG
	return binary.LittleEndian.AppendUint64(p, 4242)
}

// BenchmarkComStmtExecute is one prepared-statement execution through the
// proxy per iteration (the binary-protocol hot path).
func BenchmarkComStmtExecute(b *testing.B) {
	c := benchRouter(b)
	ex := executePacket(prepare(b, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	roundTrip(b, c, ex) // warm: prepared on the backend connection
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip(b, c, ex)
	}
}

// TestComStmtExecuteAllocations pins the binary-protocol hot path at 0
// allocations, as TestComQueryAllocations does the text one.
func TestComStmtExecuteAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	c := benchRouter(t)
	ex := executePacket(prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	roundTrip(t, c, ex)
	n := testing.AllocsPerRun(200, func() { roundTrip(t, c, ex) })
	t.Logf("%.1f allocations per COM_STMT_EXECUTE round trip", n)
	if n > 0 {
		t.Errorf("%.1f allocations per COM_STMT_EXECUTE through the proxy, want 0", n)
	}
}

// TestComStmtExecuteCacheMetadataAllocations: an execute to a client that
// holds the statement's column definitions (MARIADB_CLIENT_CACHE_METADATA,
// the proxy presented as MariaDB with mysql-mariadb_cache_metadata)
// compares them and leaves them out, at 0 allocations too.
func TestComStmtExecuteCacheMetadataAllocations(t *testing.T) {
	_, c := newBenchRouterVars(t, map[string]string{"mysql-server_version": "10.11.6-MariaDB", "mysql-mariadb_cache_metadata": "true"})
	ex := executePacket(prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	roundTrip(t, c, ex)
	// The answer: column count with "metadata follows" 0, EOF, row, EOF.
	c.ResetSeq()
	c.WritePacket(ex)
	c.Flush()
	var got [][]byte
	for range 4 {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, append([]byte(nil), p...))
	}
	if string(got[0]) != "\x01\x00" || !wire.IsEOF(got[1]) || got[2][0] != 0 || !wire.IsEOF(got[3]) {
		t.Fatalf("execute answer % x", got)
	}
	if raceEnabled {
		return // the race detector allocates on its own
	}
	n := testing.AllocsPerRun(200, func() { roundTrip(t, c, ex) })
	t.Logf("%.1f allocations per COM_STMT_EXECUTE round trip, definitions held by the client", n)
	if n > 0 {
		t.Errorf("%.1f allocations per COM_STMT_EXECUTE through the proxy, want 0", n)
	}
}

// cacheRule gives every SELECT a cache_ttl of a minute.
func cacheRule() config.QueryRule {
	return config.QueryRule{RuleID: 1, Active: true, ReModifiers: sql.NullString{String: "CASELESS", Valid: true},
		MatchDigest: sql.NullString{String: "^SELECT", Valid: true}, CacheTTL: sql.NullInt64{Int64: 60000, Valid: true}, Apply: true}
}

// BenchmarkComQueryCached is one SELECT answered from the query cache per
// iteration.
func BenchmarkComQueryCached(b *testing.B) {
	_, c := newBenchRouter(b, cacheRule())
	q := append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = 4242"...)
	roundTrip(b, c, q) // stores the entry
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip(b, c, q)
	}
}

// BenchmarkComStmtExecuteCached is one prepared execute answered from the
// query cache per iteration.
func BenchmarkComStmtExecuteCached(b *testing.B) {
	_, c := newBenchRouter(b, cacheRule())
	ex := executePacket(prepare(b, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	roundTrip(b, c, ex) // stores the entry
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip(b, c, ex)
	}
}
