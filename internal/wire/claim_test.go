package wire

import (
	"errors"
	"io"
	"runtime"
	"testing"
)

// TestReadPacketClaimEarnsNothing: a peer's announced length earns no
// buffer; what ReadPacket allocates follows the bytes that arrive (within
// the pools' size classes), under the 64 MiB limit a logged-in client has
// as under the 64 KiB login bound.
func TestReadPacketClaimEarnsNothing(t *testing.T) {
	for _, c := range []struct {
		name     string
		max      int
		sent     int
		maxAlloc uint64 // bytes
	}{
		{"login bound, 100 bytes of 16 MiB", 64 << 10, 100, 64 << 10},
		{"logged in, 100 bytes of 16 MiB", DefaultMaxPayload, 100, 256 << 10},
		{"logged in, 1 MiB of 16 MiB", DefaultMaxPayload, 1 << 20, 8 << 20},
	} {
		in := append(header(MaxPayloadLen-1, 0), make([]byte, c.sent)...)
		conn := readerConn(in)
		conn.SetMaxPayload(c.max)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := conn.ReadPacket()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("%s: got %v, want a truncated or too-large packet", c.name, err)
		}
		got := after.TotalAlloc - before.TotalAlloc
		if got > c.maxAlloc {
			t.Errorf("%s: ReadPacket allocated %d bytes (at most %d expected)", c.name, got, c.maxAlloc)
		}
		t.Logf("%s: %d bytes allocated", c.name, got)
	}
}
