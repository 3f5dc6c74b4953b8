package router

import (
	"net"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestStatsRecording runs queries through the router in front of the fake
// backend and reads what the stats tables are built from.
func TestStatsRecording(t *testing.T) {
	r, c := newBenchRouter(t)
	const sql = "SELECT c FROM sbtest1 WHERE id = 4242"
	q := append([]byte{wire.ComQuery}, sql...)
	roundTrip(t, c, q)
	roundTrip(t, c, q)
	roundTrip(t, c, append([]byte{wire.ComQuery}, "SET NAMES utf8mb4"...))

	st := r.Stats()
	// A command is recorded when it ends, just after its response is sent:
	// wait (bounded) until the session has recorded the third one.
	hash, text := sqlscan.DigestString(sql, sqlscan.DefaultOptions())
	var sel, set *stats.DigestRow
	var rows []stats.DigestRow
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		rows = st.Digests().Snapshot(false)
		if len(rows) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	for i := range rows {
		switch rows[i].DigestText {
		case text:
			sel = &rows[i]
		case "SET NAMES utf8mb4":
			set = &rows[i]
		}
	}
	if sel == nil || sel.Digest != hash || sel.CountStar != 2 || sel.Hostgroup != 0 || sel.User != "bench" ||
		sel.Schema != "information_schema" {
		t.Fatalf("SELECT digest row %+v (want hash %x, count 2, hostgroup 0)", sel, hash)
	}
	if set == nil || set.Hostgroup != -1 || set.CountStar != 1 {
		t.Fatalf("SET NAMES row %+v, want hostgroup -1", set)
	}
	if v := st.Value(stats.Questions); v != 3 {
		t.Errorf("Questions = %d, want 3", v)
	}
	if v := st.Value(stats.ClientConnectionsConnected); v != 1 {
		t.Errorf("Client_Connections_connected = %d", v)
	}
	if v := st.Value(stats.ConnPoolGetConnSuccess); v != 2 {
		t.Errorf("ConnPool_get_conn_success = %d, want 2", v)
	}
	if v := st.Value(stats.ComFrontendSetNames); v != 1 { // answered by the proxy
		t.Errorf("Com_frontend_set_names = %d, want 1", v)
	}
	if n := st.Commands()[sqlscan.KindSelect].TotalCnt; n != 2 {
		t.Errorf("SELECT count %d", n)
	}

	pl := r.Processlist()
	if len(pl) != 1 {
		t.Fatalf("processlist %+v", pl)
	}
	p := pl[0]
	if p.User != "bench" || p.DB != "information_schema" || p.Command != "Sleep" || p.HasInfo || p.Hostgroup != 0 ||
		p.ClientHost != "127.0.0.1" || p.ClientPort == 0 || p.ServerHost != "" {
		t.Errorf("idle session row %+v", p)
	}
	users := r.Users()
	if len(users) != 1 || users[0] != (UserStats{Username: "bench", FrontendConnections: 1, FrontendMaxConnections: 100}) {
		t.Errorf("users %+v", users)
	}

	roundTrip(t, c, []byte{wire.ComResetConnection})
	if v := st.Value(stats.ComFrontendResetConnection); v != 1 {
		t.Errorf("Com_frontend_reset_connection = %d after a COM_RESET_CONNECTION, want 1", v)
	}

	// A client that goes away without COM_QUIT is an aborted connection.
	c.NetConn().Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.Processlist()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for st.Value(stats.ClientConnectionsConnected) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if v := st.Value(stats.ClientConnectionsAborted); v != 1 {
		t.Errorf("Client_Connections_aborted = %d, want 1", v)
	}
	if v := st.Value(stats.ClientConnectionsConnected); v != 0 {
		t.Errorf("Client_Connections_connected = %d after close", v)
	}
}

// BenchmarkStatsHooks measures what the stats add to one COM_QUERY: the
// begin/end publishing and the record of a known digest.
func BenchmarkStatsHooks(b *testing.B) {
	r, _ := newBenchRouter(b)
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	s := newSession(r, a)
	s.username, s.state.Schema = "bench", "sbtest"
	p := append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = 4242"...)
	s.digester = sqlscan.NewDigester(sqlscan.DefaultOptions())
	s.digester.Digest(&s.digest, p[1:], 0)
	s.cmdRT = r.rt.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.beginCommand(p)
		s.startQuery()
		s.noteHostgroup(0)
		s.finishEvent(nil, 0, "", backend.Response{ResultSets: 1, Rows: 1})
		s.endCommand()
	}
}

func TestStmtCacheBound(t *testing.T) {
	var c stmtCache
	for i := 0; i < 10; i++ {
		k := stmtKey{user: "u", schema: "s", query: string(rune('a' + i))}
		g := &globalStmt{id: uint64(i)}
		g.clients.Add(1) // in use: a full cache keeps it (TestStmtCachePurgesUnreferenced)
		if got := c.put(k, g, 4); got != g {
			t.Fatalf("put %d returned another statement", i)
		}
	}
	if n := c.len(); n != 4 {
		t.Fatalf("cache holds %d statements, want the bound 4", n)
	}
	// A statement already cached is shared, even at the bound.
	k := stmtKey{user: "u", schema: "s", query: "a"}
	if got := c.put(k, &globalStmt{id: 99}, 4); got.id != 0 {
		t.Fatalf("a cached statement was not reused: id %d", got.id)
	}
}

// TestBackendStmtCloseCounted: the statements closed on a backend
// connection that holds more than mysql-max_stmts_per_connection are
// counted in Com_backend_stmt_close.
func TestBackendStmtCloseCounted(t *testing.T) {
	r, c := newBenchRouterVars(t, map[string]string{"mysql-max_stmts_per_connection": "1"})
	roundTrip(t, c, executePacket(prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?")))
	if v := r.Stats().Value(stats.ComBackendStmtClose); v != 0 {
		t.Fatalf("Com_backend_stmt_close = %d with one statement on the connection", v)
	}
	roundTrip(t, c, executePacket(prepare(t, c, "SELECT c FROM sbtest2 WHERE id = ?")))
	// The connection goes back to the pool once the command has answered.
	var v int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if v = r.Stats().Value(stats.ComBackendStmtClose); v != 0 {
			break
		}
	}
	if v != 2 {
		t.Errorf("Com_backend_stmt_close = %d after a second statement on a connection allowed one, want 2", v)
	}
}

// TestEmptyInitDB: a COM_INIT_DB without a name is MariaDB's 1046 "No
// database selected" (it was answered OK, the schema unchanged).
func TestEmptyInitDB(t *testing.T) {
	_, c := newBenchRouter(t)
	p := exchange(t, c, []byte{wire.ComInitDB}, false)[0]
	if e, perr := wire.ParseERR(p); perr != nil || e.Code != 1046 {
		t.Fatalf("empty COM_INIT_DB: %q, want ERR 1046", p)
	}
	roundTrip(t, c, append([]byte{wire.ComInitDB}, "sbtest"...))
}

// TestSetOptionValues: COM_SET_OPTION takes a two-byte option; one MariaDB
// does not know (2, or 0x0100 whose low byte is ON) gets its 1047 "Unknown
// command" and changes nothing, and a known one gets the EOF.
func TestSetOptionValues(t *testing.T) {
	_, c := newBenchRouter(t)
	for _, opt := range [][]byte{{2, 0}, {0, 1}} {
		p := exchange(t, c, append([]byte{wire.ComSetOption}, opt...), false)[0]
		if e, perr := wire.ParseERR(p); perr != nil || e.Code != 1047 || e.Message != "Unknown command" {
			t.Fatalf("COM_SET_OPTION %v: %q, want ERR 1047 Unknown command", opt, p)
		}
	}
	c.ResetSeq()
	c.WritePacket([]byte{wire.ComSetOption, 1, 0})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(); err != nil || p[0] != wire.HeaderEOF {
		t.Fatalf("COM_SET_OPTION OFF: %q %v, want EOF", p, err)
	}
	roundTrip(t, c, append([]byte{wire.ComQuery}, "SELECT 1"...))
}
