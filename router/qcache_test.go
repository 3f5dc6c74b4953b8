package router

import (
	"encoding/binary"
	"testing"

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
