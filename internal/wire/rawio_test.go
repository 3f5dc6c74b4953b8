package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// A socket Conn writes through rawWriter; what the peer reads must be what
// was written, also when the socket buffer fills and the writer has to wait
// for writability (partial writes, EAGAIN) many times over.
func TestRawWriterLargeWrites(t *testing.T) {
	a, b := tcpPair(t)
	c := NewConn(a)
	if _, ok := c.out.(*rawWriter); !ok {
		t.Fatalf("a TCP Conn writes through %T, want *rawWriter", c.out)
	}
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		// A slow reader: small reads with pauses keep the sender's socket
		// buffer full.
		p := make([]byte, 32<<10)
		for buf.Len() < len(payload) {
			n, err := b.Read(p)
			buf.Write(p[:n])
			if err != nil {
				break
			}
			if buf.Len()%(1<<20) < len(p) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		got <- buf.Bytes()
	}()
	for off := 0; off < len(payload); off += 100_000 {
		if _, err := c.writer().Write(payload[off:min(off+100_000, len(payload))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if !bytes.Equal(g, payload) {
			t.Fatalf("the peer read %d bytes that differ from the %d written", len(g), len(payload))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the peer did not get the payload in 20s")
	}
}

// A write to a peer that reads nothing ends at the write deadline with a
// timeout error, as net.Conn.Write would.
func TestRawWriterDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	c := NewConn(a)
	if err := c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<20)
	start := time.Now()
	_, err := c.writer().Write(big)
	if err == nil {
		err = c.Flush()
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the deadline: %v, want a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the write returned after %v", d)
	}
}

// Closing the socket from another goroutine ends a blocked write with
// net.ErrClosed.
func TestRawWriterClosedUnderWrite(t *testing.T) {
	a, _ := tcpPair(t)
	c := NewConn(a)
	done := make(chan error, 1)
	go func() {
		_, err := c.writer().Write(make([]byte, 64<<20))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked write did not return after Close")
	}
}

// A write to a peer that went away reports the system error (EPIPE or
// ECONNRESET), wrapped as net.Conn.Write would.
func TestRawWriterPeerGone(t *testing.T) {
	a, b := tcpPair(t)
	c := NewConn(a)
	b.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.writer().Write(make([]byte, 64<<10))
		if err == nil {
			err = c.Flush()
		}
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a closed peer: %v, want a *net.OpError for write", err)
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("write error %v wraps io.EOF", err)
	}
}

// Writing and reading through the raw calls allocate nothing.
func TestRawIOAllocations(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	payload := []byte("\x03SELECT 1")
	allocs := testing.AllocsPerRun(200, func() {
		ca.ResetSeq()
		if err := ca.WritePacket(payload); err != nil {
			t.Fatal(err)
		}
		if err := ca.Flush(); err != nil {
			t.Fatal(err)
		}
		cb.ResetSeq()
		if _, err := cb.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet written and read, want 0", allocs)
	}
}
