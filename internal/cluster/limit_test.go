package cluster

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// packet frames payload as one MySQL packet of sequence seq.
func packet(seq byte, payloadLen int) []byte {
	b := []byte{byte(payloadLen), byte(payloadLen >> 8), byte(payloadLen >> 16), seq}
	return append(b, bytes.Repeat([]byte{'x'}, payloadLen)...)
}

// TestFrameLimit: small packets pass whatever the read boundaries; a chain
// of full (16 MB) packets is refused at the header that takes it past the
// bound, before its payload is read; a chain that ends (a packet shorter
// than 16 MB) starts the count again.
func TestFrameLimit(t *testing.T) {
	var stream []byte
	for i := range 50 {
		stream = append(stream, packet(byte(i), 1000)...)
	}
	c := &frameLimitConn{max: 4000, chainEnds: true}
	for len(stream) > 0 { // reads of 7 bytes: headers split across reads
		k := min(7, len(stream))
		if err := c.follow(stream[:k]); err != nil {
			t.Fatalf("small packets refused: %v", err)
		}
		stream = stream[k:]
	}

	// Full packets: each header announces 0xffffff; the second one takes
	// the chain past a 20 MB bound.
	c = &frameLimitConn{max: 20 << 20, chainEnds: true, Conn: fakeConn{}}
	if err := c.follow([]byte{0xff, 0xff, 0xff, 0}); err != nil {
		t.Fatalf("first 16 MB packet refused: %v", err)
	}
	if err := c.follow(make([]byte, 0xffffff)); err != nil {
		t.Fatal(err)
	}
	err := c.follow([]byte{0xff, 0xff, 0xff, 1})
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a 32 MB packet chain: %v, want refused", err)
	}

	// A chain that ended does not count towards the next one.
	c = &frameLimitConn{max: 20 << 20, chainEnds: true, Conn: fakeConn{}}
	for i := range 3 {
		if err := c.follow([]byte{0, 0, 0xf0, byte(i)}); err != nil { // 15 MB, ends its chain
			t.Fatalf("packet %d: %v", i, err)
		}
		if err := c.follow(make([]byte, 0xf00000)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFrameLimitRead: Read fails, and closes the connection, on the read
// that brings the header of an oversized packet.
func TestFrameLimitRead(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &frameLimitConn{Conn: a, max: 100, chainEnds: true}
	go func() {
		b.Write(packet(0, 10))
		b.Write([]byte{200, 0, 0, 1})
	}()
	buf := make([]byte, 14)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("first packet: %v", err)
	}
	if _, err := c.Read(make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("oversized packet header: %v", err)
	}
}

// fakeConn names a remote address for the error text.
type fakeConn struct{ net.Conn }

func (fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6032} }
