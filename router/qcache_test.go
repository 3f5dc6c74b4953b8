package router

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// executeUnbound is a COM_STMT_EXECUTE of statement id with one parameter
// whose type the client sent with an earlier execute
// (new_params_bound_flag = 0).
func executeUnbound(id uint32, v uint64) []byte {
	p := []byte{wire.ComStmtExecute}
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, 0, 1, 0, 0, 0) // flags, iteration count
	p = append(p, 0, 0)          // null bitmap, new_params_bound_flag
	return binary.LittleEndian.AppendUint64(p, v)
}

// withValue is executePacket with another parameter value.
func withValue(p []byte, v uint64) []byte {
	p = append([]byte(nil), p...)
	binary.LittleEndian.PutUint64(p[len(p)-8:], v)
	return p
}

// TestStmtExecuteCacheKey: an execute's cache entry is found again whatever
// the client's statement id (a second PREPARE of the same text has another)
// and whether the execute resends the parameter types or relies on those
// of the previous one; another parameter value is another entry; a cursor
// execute and one with long data pending neither look up nor store.
func TestStmtExecuteCacheKey(t *testing.T) {
	r, c := newBenchRouter(t, cacheRule())
	qc := r.QueryCache()
	id1 := prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?")
	id2 := prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?")
	if id1 == id2 {
		t.Fatalf("two PREPAREs share client id %d", id1)
	}
	step := func(what string, p []byte, get, getOK, set uint64) {
		t.Helper()
		before := qc.Stats()
		roundTrip(t, c, p)
		// The session stores a response after the client has it: a
		// COM_PING answered means the execute is settled.
		roundTrip(t, c, []byte{wire.ComPing})
		after := qc.Stats()
		if g, ok, s := after.GET-before.GET, after.GETOK-before.GETOK, after.SET-before.SET; g != get || ok != getOK || s != set {
			t.Fatalf("%s: GET +%d GET_OK +%d SET +%d, want +%d +%d +%d", what, g, ok, s, get, getOK, set)
		}
	}
	step("first execute", executePacket(id1), 1, 0, 1)
	step("repeat", executePacket(id1), 1, 1, 0)
	step("types not resent", executeUnbound(id1, 4242), 1, 1, 0)
	step("other client statement id", executePacket(id2), 1, 1, 0)
	step("other value", withValue(executePacket(id1), 7), 1, 0, 1)
	step("other value, types not resent", executeUnbound(id2, 7), 1, 1, 0)

	cursor := executePacket(id1)
	cursor[5] = 1 // CURSOR_TYPE_READ_ONLY
	step("cursor", cursor, 0, 0, 0)

	c.ResetSeq()
	long := append([]byte{wire.ComStmtSendLongData}, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(long[1:], id1)
	c.WritePacket(append(long, "4242"...)) // no response
	step("long data", executePacket(id1), 0, 0, 0)
	step("after long data", executePacket(id1), 1, 1, 0)

	// The text protocol's entry for the same words is another one.
	step("text", append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = ?"...), 1, 0, 1)

	// The statement is its PREPARE's: after USE, the same text prepared
	// in the new schema is another statement, and another entry, than the
	// one prepared before.
	roundTrip(t, c, append([]byte{wire.ComQuery}, "USE other"...))
	step("old statement, new schema", executePacket(id1), 1, 0, 1)
	step("old statement, new schema, repeat", executePacket(id1), 1, 1, 0)
	id3 := prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?")
	step("statement prepared in the new schema", executePacket(id3), 1, 0, 1)
}

// TestStmtExecuteCachedAllocations: a prepared execute answered from the
// query cache allocates nothing, as an uncached one and a cached COM_QUERY.
func TestStmtExecuteCachedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	r, c := newBenchRouter(t, cacheRule())
	ex := executePacket(prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	q := append([]byte{wire.ComQuery}, "SELECT c FROM sbtest1 WHERE id = 4242"...)
	roundTrip(t, c, ex)
	roundTrip(t, c, q)
	roundTrip(t, c, []byte{wire.ComPing}) // both stored
	for _, tc := range []struct {
		name string
		p    []byte
	}{{"COM_STMT_EXECUTE", ex}, {"COM_QUERY", q}} {
		ok0 := r.QueryCache().Stats().GETOK
		n := testing.AllocsPerRun(200, func() { roundTrip(t, c, tc.p) })
		if hits := r.QueryCache().Stats().GETOK - ok0; hits < 200 {
			t.Fatalf("%s: %d cache hits in 201 round trips", tc.name, hits)
		}
		t.Logf("%.1f allocations per cached %s round trip", n, tc.name)
		if n > 0 {
			t.Errorf("%.1f allocations per cached %s, want 0", n, tc.name)
		}
	}
}

// exchange sends one command and returns the packets of its response, up
// to the result set's terminator (an OK or ERR outside a result set ends
// it too); depr says how the client logged in.
func exchange(tb testing.TB, c *wire.Conn, p []byte, depr bool) [][]byte {
	tb.Helper()
	c.ResetSeq()
	c.WritePacket(p)
	if err := c.Flush(); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	read := func() []byte {
		q, err := c.ReadPacket()
		if err != nil {
			tb.Fatal(err)
		}
		q = append([]byte(nil), q...)
		out = append(out, q)
		return q
	}
	first := read()
	if first[0] == wire.HeaderOK || first[0] == wire.HeaderERR {
		return out
	}
	n, _, _, _ := wire.ReadLenEncInt(first)
	for range n {
		read()
	}
	if !depr {
		read() // EOF after the column definitions
	}
	for read()[0] != wire.HeaderEOF {
	}
	return out
}

// prepareIn is prepare for a client of either EOF dialect.
func prepareIn(tb testing.TB, c *wire.Conn, q string, depr bool) uint32 {
	tb.Helper()
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
	cols, params := binary.LittleEndian.Uint16(p[5:]), binary.LittleEndian.Uint16(p[7:])
	for _, defs := range []uint16{params, cols} {
		if defs == 0 {
			continue
		}
		for range int(defs) + b2i(!depr) {
			if _, err := c.ReadPacket(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return id
}

// TestStmtExecuteCacheDialects: a client with CLIENT_DEPRECATE_EOF and one
// without execute the same statement; the backend (classic EOF) answers
// each once, the streamer translating for the first, and each client's
// hits are the very packets its miss got: column count, definition, an
// EOF only for the classic client, the binary row, and the terminator —
// an EOF packet, or an OK with the 0xFE header.
func TestStmtExecuteCacheDialects(t *testing.T) {
	r, classic := newBenchRouter(t, cacheRule())
	depr := login(t, r, wire.ClientDeprecateEOF)
	qc := r.QueryCache()
	before := qc.Stats()
	for _, tc := range []struct {
		name string
		c    *wire.Conn
		depr bool
	}{{"classic EOF", classic, false}, {"CLIENT_DEPRECATE_EOF", depr, true}} {
		ex := executePacket(prepareIn(t, tc.c, "SELECT c FROM sbtest1 WHERE id = ?", tc.depr))
		miss := exchange(t, tc.c, ex, tc.depr)
		exchange(t, tc.c, []byte{wire.ComPing}, tc.depr) // stored by now
		want := 5
		if tc.depr {
			want = 4
		}
		if len(miss) != want || !bytes.Equal(miss[want-2], []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0}) {
			t.Fatalf("%s: uncached response %q", tc.name, miss)
		}
		term := miss[want-1]
		if tc.depr && (term[0] != wire.HeaderEOF || len(term) < 7) || !tc.depr && !wire.IsEOF(term) {
			t.Fatalf("%s: terminator %q", tc.name, term)
		}
		for i := range 3 {
			if hit := exchange(t, tc.c, ex, tc.depr); !equalPackets(hit, miss) {
				t.Fatalf("%s: hit %d %q, uncached %q", tc.name, i, hit, miss)
			}
		}
	}
	after := qc.Stats()
	if sets, hits := after.SET-before.SET, after.GETOK-before.GETOK; sets != 2 || hits != 6 {
		t.Fatalf("two dialects, 4 executes each: %d stores, %d hits; want 2 (one per dialect) and 6", sets, hits)
	}
}

func equalPackets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestStmtExecuteCacheNotFastForward: a fast_forward user's executes do not
// use the cache (its COM_QUERY never reaches the rules).
func TestStmtExecuteCacheNotFastForward(t *testing.T) {
	r, _ := newBenchRouter(t, cacheRule())
	rt := r.rt.Load()
	snap := *rt.Snap
	snap.Users = append([]config.User(nil), snap.Users...)
	snap.Users[0].FastForward = true
	next, err := live.Build(rt, &snap, config.ModMySQLUsers)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.rt.Store(next); err != nil {
		t.Fatal(err)
	}
	c := login(t, r, 0)
	ex := executePacket(prepare(t, c, "SELECT c FROM sbtest1 WHERE id = ?"))
	before := r.QueryCache().Stats()
	for range 3 {
		roundTrip(t, c, ex)
	}
	roundTrip(t, c, []byte{wire.ComPing})
	if after := r.QueryCache().Stats(); after.GET != before.GET || after.SET != before.SET {
		t.Fatalf("fast_forward executes: GET +%d SET +%d, want none", after.GET-before.GET, after.SET-before.SET)
	}
}
