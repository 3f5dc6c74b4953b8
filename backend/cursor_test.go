package backend

import (
	"bytes"
	"io"
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// recConn is a byteConn that records what is written to it.
type recConn struct {
	byteConn
	w bytes.Buffer
}

func (c *recConn) Write(p []byte) (int, error)         { return c.w.Write(p) }
func (c *recConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(&c.w, r) }

// payloads splits a stream of packets into their payloads.
func payloads(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated header: % x", b)
		}
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(b) < 4+n {
			t.Fatalf("truncated packet: % x", b)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

// TestCursorResponse: a COM_STMT_EXECUTE that opens a cursor is answered
// with the column definitions and one terminator carrying
// SERVER_STATUS_CURSOR_EXISTS, in either dialect; the rows follow by
// COM_STMT_FETCH. The client must get exactly that in its own dialect —
// an extra EOF before it reads as an empty result set, and a client that
// sees no CURSOR_EXISTS never fetches (PHP mysqli read 0 rows through the
// proxy). A result set with no rows keeps both of its EOFs.
func TestCursorResponse(t *testing.T) {
	def := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 0x21, 0, 1, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0}
	const cursor = wire.StatusAutocommit | wire.StatusCursorExists
	eof := func(status uint16) []byte { return wire.AppendEOF(nil, 0, status) }
	okTerm := func(status uint16) []byte { return wire.AppendOKTerminator(nil, 0, 0, status, 0) }
	for _, srvDepr := range []bool{false, true} {
		for _, cliDepr := range []bool{false, true} {
			for _, opens := range []bool{true, false} {
				var srv []byte
				seq := byte(1)
				add := func(p []byte) { srv = append(srv, packet(seq, p...)...); seq++ }
				add([]byte{1})
				add(def)
				switch {
				case opens && srvDepr:
					add(okTerm(cursor))
				case opens:
					add(eof(cursor))
				case srvDepr:
					add(okTerm(wire.StatusAutocommit))
				default:
					add(eof(wire.StatusAutocommit))
					add(eof(wire.StatusAutocommit))
				}
				c := &BackendConn{w: wire.NewConn(&recConn{byteConn: byteConn{r: bytes.NewReader(srv)}}), srv: &Server{addr: "cursor"}}
				if srvDepr {
					c.caps |= wire.ClientDeprecateEOF
				}
				cl := &recConn{byteConn: byteConn{r: bytes.NewReader(nil)}}
				sink := Sink{Client: wire.NewConn(cl), DeprecateEOF: cliDepr}
				res, err := c.Run([]byte{wire.ComStmtExecute, 1, 0, 0, 0, 1, 1, 0, 0, 0}, ShapeResult, &sink)
				if err != nil {
					t.Fatalf("server deprecate_eof=%v client=%v cursor=%v: %v", srvDepr, cliDepr, opens, err)
				}
				if got := res.Status&wire.StatusCursorExists != 0; got != opens {
					t.Errorf("server deprecate_eof=%v client=%v cursor=%v: CURSOR_EXISTS in the response = %v", srvDepr, cliDepr, opens, got)
				}
				want := [][]byte{{1}, def}
				status := uint16(wire.StatusAutocommit)
				if opens {
					status = cursor
				} else if !cliDepr {
					want = append(want, eof(status))
				}
				if cliDepr {
					want = append(want, okTerm(status))
				} else {
					want = append(want, eof(status))
				}
				got := payloads(t, cl.w.Bytes())
				if len(got) != len(want) {
					t.Fatalf("server deprecate_eof=%v client=%v cursor=%v: the client got %d packets, want %d: % x", srvDepr, cliDepr, opens, len(got), len(want), got)
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Errorf("server deprecate_eof=%v client=%v cursor=%v: packet %d = % x, want % x", srvDepr, cliDepr, opens, i, got[i], want[i])
					}
				}
			}
		}
	}
}
