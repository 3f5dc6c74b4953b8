package router

import (
	"testing"
)

// FuzzRewriteExecute: a client's COM_STMT_EXECUTE, whatever its bytes,
// against a statement of any parameter count, twice (the second time the
// types come from the first): rewriteExecute answers an error or a packet,
// never panics, and never reads past the packet.
func FuzzRewriteExecute(f *testing.F) {
	// cmd, stmt id, flags, iteration count, null bitmap, new-params flag,
	// types, values.
	f.Add([]byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 42, 0, 0, 0, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{0x17}, uint8(200))
	f.Fuzz(func(t *testing.T, p []byte, params uint8) {
		cs := &clientStmt{g: &globalStmt{numParams: uint16(params)}}
		for range 2 {
			out, e := cs.rewriteExecute(nil, p)
			if e == nil && len(out) < len(p) {
				t.Fatalf("rewritten packet shorter than the client's: %d < %d", len(out), len(p))
			}
		}
	})
}
