package backend

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// byteConn is a net.Conn that reads a fixed byte string (a server's
// answer, whatever it holds) and swallows writes.
type byteConn struct{ r *bytes.Reader }

func (c *byteConn) Read(p []byte) (int, error)          { return c.r.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)         { return len(p), nil }
func (c *byteConn) Close() error                        { return nil }
func (c *byteConn) LocalAddr() net.Addr                 { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr                { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(time.Time) error         { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error     { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error    { return nil }
func (c *byteConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

// packet frames payload as one MySQL packet with sequence seq.
func packet(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// FuzzRunResponse feeds arbitrary server bytes to the response walker, in
// every shape and dialect, with and without the query cache's tee and the
// client's cached column definitions: it must
// end (the bytes run out) without a panic, whatever a server sends.
func FuzzRunResponse(f *testing.F) {
	ok := packet(1, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00)
	var rs []byte
	rs = append(rs, packet(1, 0x01)...)                                                                                 // one column
	rs = append(rs, packet(2, 3, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 0x21, 0, 1, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0)...) // column def
	rs = append(rs, packet(3, 0xfe, 0, 0, 2, 0)...)                                                                     // EOF
	rs = append(rs, packet(4, 1, '1')...)                                                                               // row
	rs = append(rs, packet(5, 0xfe, 0, 0, 2, 0)...)                                                                     // EOF
	errp := packet(1, append([]byte{0xff, 0x7a, 0x04, '#', '4', '2', 'S', '0', '2'}, "no table"...)...)
	def := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 0x21, 0, 1, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0}
	for _, seed := range [][]byte{ok, rs, errp, {0xff, 0xff, 0xff, 1}, nil} {
		for flags := range 128 {
			f.Add(seed, byte(flags))
		}
	}
	f.Fuzz(func(t *testing.T, server []byte, flags byte) {
		c := &BackendConn{w: wire.NewConn(&byteConn{r: bytes.NewReader(server)}), srv: &Server{addr: "fuzz"}}
		if flags&1 != 0 {
			c.caps |= wire.ClientDeprecateEOF
		}
		sink := Sink{Client: wire.NewConn(&byteConn{r: bytes.NewReader(nil)}), DeprecateEOF: flags&2 != 0}
		if flags&4 != 0 {
			sink.Tee = &wire.Tee{Max: 1 << 16}
		}
		// A MARIADB_CLIENT_CACHE_METADATA client, holding the seed's
		// column definition or none.
		sink.Client.MetaFollows = flags&32 != 0
		known := [][]byte{def}
		if flags&64 != 0 {
			sink.Known = &known
		}
		shape := Shape(int(flags>>3) % 3)
		_, _ = c.Run(append([]byte{wire.ComQuery}, "SELECT 1"...), shape, &sink)
		if sink.Tee != nil && len(sink.Tee.Buf) > sink.Tee.Max {
			t.Fatalf("the tee grew past its bound: %d > %d", len(sink.Tee.Buf), sink.Tee.Max)
		}
	})
}
