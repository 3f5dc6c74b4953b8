package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// metaClient is a raw client that asks for MARIADB_CLIENT_CACHE_METADATA
// when the server offers it.
type metaClient struct {
	t    *testing.T
	c    *wire.Conn
	depr bool // CLIENT_DEPRECATE_EOF
	ext  uint32
}

// metaLogin logs in as sbtest; ask: request MARIADB_CLIENT_CACHE_METADATA if offered.
func metaLogin(t *testing.T, port int, depr, ask bool) (*metaClient, *wire.InitialHandshake) {
	t.Helper()
	c, hs := wireGreeting(t, port, time.Minute)
	caps := wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth | wire.ClientTransactions |
		wire.ClientMultiResults | wire.ClientPSMultiResults
	if depr {
		caps |= wire.ClientDeprecateEOF
	}
	var ext uint32
	if ask {
		ext = hs.ExtCapabilities & wire.MariaDBCacheMetadata
	}
	resp := &wire.HandshakeResponse{
		Capabilities: caps, ExtCapabilities: ext,
		MaxPacket: 1 << 24, Charset: 33, User: "sbtest",
		AuthResponse: wire.NativeScramble(hs.Salt, []byte("sbtest")), AuthPlugin: "mysql_native_password",
	}
	c.WritePacket(wire.AppendHandshakeResponse(nil, resp))
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsOK(p) {
		t.Fatalf("login: %v %q", err, p)
	}
	return &metaClient{t: t, c: c, depr: depr, ext: resp.ExtCapabilities}, hs
}

// result is one result set as the client read it.
type result struct {
	count   []byte   // the column count packet
	defs    [][]byte // column definitions sent
	rows    [][]byte
	classic int // classic EOF packets seen (after the definitions and at the end)
}

func (m *metaClient) send(p []byte) {
	m.t.Helper()
	m.c.ResetSeq()
	if err := m.c.WritePacket(p); err != nil {
		m.t.Fatal(err)
	}
	if err := m.c.Flush(); err != nil {
		m.t.Fatal(err)
	}
}

func (m *metaClient) read() []byte {
	m.t.Helper()
	p, err := m.c.ReadPacket()
	if err != nil {
		m.t.Fatal(err)
	}
	if wire.IsERR(p) {
		e, _ := wire.ParseERR(p)
		m.t.Fatalf("ERR %v", e)
	}
	return bytes.Clone(p)
}

// readResult reads one result set of ncols columns: the definitions are
// expected when the count packet says they follow (or always, without the
// capability).
func (m *metaClient) readResult(ncols int) result {
	m.t.Helper()
	var r result
	r.count = m.read()
	follows := m.ext == 0 || r.count[len(r.count)-1] == 1
	if follows {
		for range ncols {
			r.defs = append(r.defs, m.read())
		}
	}
	if !m.depr {
		if p := m.read(); !wire.IsEOF(p) {
			m.t.Fatalf("no EOF after the column definitions: % x", p)
		}
		r.classic++
	}
	for {
		p := m.read()
		if p[0] == wire.HeaderEOF && len(p) < 0xffffff && (wire.IsEOF(p) || m.depr) {
			if wire.IsEOF(p) {
				r.classic++
			}
			return r
		}
		r.rows = append(r.rows, p)
	}
}

func (m *metaClient) prepare(q string) (id uint32, cols [][]byte) {
	m.t.Helper()
	m.send(append([]byte{wire.ComStmtPrepare}, q...))
	p := m.read()
	id = binary.LittleEndian.Uint32(p[1:])
	ncols, nparams := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
	for range nparams {
		m.read()
	}
	if nparams > 0 && !m.depr {
		m.read()
	}
	for range ncols {
		cols = append(cols, m.read())
	}
	if ncols > 0 && !m.depr {
		m.read()
	}
	return id, cols
}

// execute runs statement id with one INT parameter.
func (m *metaClient) execute(id uint32, v int32, ncols int) result {
	m.t.Helper()
	p := []byte{wire.ComStmtExecute}
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, 0, 1, 0, 0, 0, 0, 1, byte(wire.TypeLongLong), 0)
	p = binary.LittleEndian.AppendUint64(p, uint64(v))
	m.send(p)
	return m.readResult(ncols)
}

// TestMariaDBCacheMetadata: with mysql-mariadb_cache_metadata and
// mysql-server_version naming MariaDB (either alone changes nothing; the
// variable alone is warned about at LOAD), the
// proxy speaks as a MariaDB 10.6+ server does to clients that ask for
// MARIADB_CLIENT_CACHE_METADATA: its handshake clears CLIENT_MYSQL and
// offers the capability; every column count carries the "metadata follows"
// byte (1 for text results); an execute whose column definitions equal
// what the client holds (its PREPARE response's, or the last ones sent)
// sends 0 and no definitions — in both EOF dialects, the EOF after the
// definitions staying as MariaDB sends it — and an ALTER TABLE that changes
// them sends them once again. Executes stored by the query cache and their
// hits always carry the definitions, and leave the client's unknown (sent
// by the next execute). A client without the capability, and
// a proxy presented as MySQL (the default), are unchanged. libmariadb
// clients run on it: sysbench's prepared oltp_read_only without errors and
// the mariadb CLI.
func TestMariaDBCacheMetadata(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	backendSQL(t, b, `CREATE DATABASE IF NOT EXISTS cmeta; CREATE OR REPLACE TABLE cmeta.t (id INT PRIMARY KEY, v VARCHAR(20));
		INSERT INTO cmeta.t VALUES (1, 'one'), (2, 'two');`)

	mysqlHandshake := func(what string) {
		t.Helper()
		if _, hs := metaLogin(t, s.DataPort, true, true); hs.Capabilities&wire.ClientLongPassword == 0 || hs.ExtCapabilities != 0 {
			t.Fatalf("%s: caps %x ext %x, want a MySQL handshake", what, hs.Capabilities, hs.ExtCapabilities)
		}
	}
	mysqlHandshake("default")
	// A MariaDB version alone changes nothing (as in ProxySQL)...
	admin(t, s, `SET mysql-server_version = '5.5.5-10.11.6-MariaDB-sluice'; LOAD MYSQL VARIABLES TO RUNTIME;`)
	mysqlHandshake("MariaDB version only")
	// ...nor the variable alone, which LOAD warns about.
	admin(t, s, `SET mysql-server_version = '8.0.11'; SET mysql-mariadb_cache_metadata = 'true'`)
	if out := admin(t, s, "LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); !strings.Contains(out, "mysql-mariadb_cache_metadata=true: offered only when mysql-server_version names MariaDB") {
		t.Fatalf("LOAD with a MySQL version: no warning in %q", out)
	}
	mysqlHandshake("mysql-mariadb_cache_metadata with a MySQL version")
	admin(t, s, `SET mysql-server_version = '5.5.5-10.11.6-MariaDB-sluice'; LOAD MYSQL VARIABLES TO RUNTIME;`)

	const q = "SELECT id, v FROM cmeta.t WHERE id = ?"
	for _, depr := range []bool{false, true} {
		m, hs := metaLogin(t, s.DataPort, depr, true)
		if hs.Capabilities&wire.ClientLongPassword != 0 || hs.ExtCapabilities != wire.MariaDBCacheMetadata || m.ext == 0 {
			t.Fatalf("MariaDB handshake: caps %x ext %x", hs.Capabilities, hs.ExtCapabilities)
		}
		backendSQL(t, b, "ALTER TABLE cmeta.t MODIFY v VARCHAR(20)")
		m.send([]byte("\x03SELECT v FROM cmeta.t WHERE id = 1"))
		if r := m.readResult(1); !bytes.Equal(r.count, []byte{1, 1}) || len(r.rows) != 1 {
			t.Fatalf("depr=%v text result: count % x, %d rows", depr, r.count, len(r.rows))
		}
		id, prepCols := m.prepare(q)
		for i := range 3 {
			r := m.execute(id, 2, 2)
			if !bytes.Equal(r.count, []byte{2, 0}) || r.defs != nil || len(r.rows) != 1 || !bytes.Contains(r.rows[0], []byte("two")) {
				t.Fatalf("depr=%v execute %d: count % x, %d definitions, rows %q", depr, i, r.count, len(r.defs), r.rows)
			}
			if !depr && r.classic != 2 {
				t.Fatalf("execute %d: %d EOF packets, want 2", i, r.classic)
			}
		}
		// New column definitions: sent once, then held by the client again.
		backendSQL(t, b, "ALTER TABLE cmeta.t MODIFY v VARCHAR(40)")
		r := m.execute(id, 1, 2)
		if !bytes.Equal(r.count, []byte{2, 1}) || len(r.defs) != 2 || bytes.Equal(r.defs[1], prepCols[1]) || len(r.rows) != 1 {
			t.Fatalf("depr=%v after ALTER: count % x, %d definitions, %d rows", depr, r.count, len(r.defs), len(r.rows))
		}
		if r := m.execute(id, 1, 2); !bytes.Equal(r.count, []byte{2, 0}) || r.defs != nil || len(r.rows) != 1 {
			t.Fatalf("depr=%v second execute after ALTER: count % x, %d definitions", depr, r.count, len(r.defs))
		}
	}

	// A client that does not ask: the plain protocol.
	m2, _ := metaLogin(t, s.DataPort, true, false)
	id, _ := m2.prepare(q)
	for range 2 {
		if r := m2.execute(id, 1, 2); !bytes.Equal(r.count, []byte{2}) || len(r.defs) != 2 || len(r.rows) != 1 {
			t.Fatalf("client without the capability: count % x, %d definitions", r.count, len(r.defs))
		}
	}

	// The query cache stores whole responses, and serves them whole.
	admin(t, s, `INSERT INTO mysql_query_rules(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, 'FROM cmeta', 60000, 1);
		LOAD MYSQL QUERY RULES TO RUNTIME;`)
	mc, _ := metaLogin(t, s.DataPort, true, true)
	id, _ = mc.prepare(q)
	hits := globalStat(t, s, "Query_Cache_count_GET_OK")
	for i := range 3 {
		r := mc.execute(id, 2, 2)
		if !bytes.Equal(r.count, []byte{2, 1}) || len(r.defs) != 2 || len(r.rows) != 1 || !bytes.Contains(r.rows[0], []byte("two")) {
			t.Fatalf("cached execute %d: count % x, %d definitions, rows %q", i, r.count, len(r.defs), r.rows)
		}
	}
	if got := globalStat(t, s, "Query_Cache_count_GET_OK") - hits; got < 2 {
		t.Fatalf("%d cache hits, want 2", got)
	}
	admin(t, s, "DELETE FROM mysql_query_rules; LOAD MYSQL QUERY RULES TO RUNTIME;")
	// What the client holds after answers the cache carried is not assumed:
	// the next execute sends the definitions, the one after does not — even
	// when they are back to the statement's PREPARE ones (VARCHAR(20), the
	// client having the cached VARCHAR(40) ones).
	backendSQL(t, b, "ALTER TABLE cmeta.t MODIFY v VARCHAR(20)")
	for i, want := range [][]byte{{2, 1}, {2, 0}} {
		if r := mc.execute(id, 2, 2); !bytes.Equal(r.count, want) || (want[1] == 1) != (len(r.defs) == 2) || len(r.rows) != 1 {
			t.Fatalf("execute %d after cached ones: count % x, %d definitions", i, r.count, len(r.defs))
		}
	}

	// go-sql-driver (v1.10 asks for the capability): prepared queries read
	// their rows with the definitions it keeps.
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "cmeta", "interpolateParams=false")
	gst, err := db.Prepare("SELECT v FROM cmeta.t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 2, 1} {
		var v string
		if err := gst.QueryRow(id).Scan(&v); err != nil || v != map[int]string{1: "one", 2: "two"}[id] {
			t.Fatalf("go-sql-driver prepared query %d: %q %v", id, v, err)
		}
	}
	gst.Close()

	// Real libmariadb clients.
	if out := testenv.MustCLI(t, s.DataPort, "sbtest", "sbtest", "SELECT v FROM cmeta.t WHERE id = 2; SELECT VERSION()"); !bytes.Contains([]byte(out), []byte("two")) {
		t.Fatalf("mariadb CLI: %q", out)
	}
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make test installs it")
	}
	common := []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-user=sbtest", "--mysql-password=sbtest",
		"--mysql-db=cmeta", "--tables=2", "--table-size=1000"}
	exec.Command("sysbench", append(append([]string{"oltp_read_only"}, common...), "--mysql-port="+itoa(b.Port), "cleanup")...).Run()
	if out, err := exec.Command("sysbench", append(append([]string{"oltp_read_only"}, common...), "--mysql-port="+itoa(b.Port), "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sysbench", append(append([]string{"oltp_read_only"}, common...), "--mysql-port="+itoa(s.DataPort),
		"--threads=4", "--time=3", "--db-ps-mode=auto", "--report-interval=0", "run")...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysbench: %v\n%s", err, out)
	}
	errs := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindSubmatch(out)
	queries := regexp.MustCompile(`queries:\s+(\d+)`).FindSubmatch(out)
	if errs == nil || queries == nil || string(errs[1]) != "0" || string(queries[1]) == "0" {
		t.Fatalf("sysbench through a MariaDB-presented proxy:\n%s", out)
	}
	t.Logf("sysbench oltp_read_only --db-ps-mode=auto 3 s: %s queries, 0 errors", queries[1])
}
