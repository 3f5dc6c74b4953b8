package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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

// answerer reads one packet on c and, after delay, answers it with answer
// (or closes the connection when answer is nil). The request is sent on got.
func answerer(c *Conn, delay time.Duration, answer []byte, got chan<- []byte) {
	c.ResetSeq()
	p, err := c.ReadPacket()
	if err != nil {
		got <- nil
		return
	}
	got <- append([]byte(nil), p...)
	time.Sleep(delay)
	if answer == nil {
		c.Close()
		return
	}
	if c.WritePacket(answer) == nil {
		_ = c.Flush()
	}
}

// FlushAwait sends the request and returns once the answer's first bytes
// are buffered; the answer then reads as usual.
func TestFlushAwaitAnswer(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	got := make(chan []byte, 1)
	go answerer(cb, 30*time.Millisecond, []byte("\x00\x00\x00\x02\x00\x00\x00"), got)
	ca.ResetSeq()
	if err := ca.WritePacket([]byte("\x03SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if err := ca.FlushAwait(); err != nil {
		t.Fatal(err)
	}
	if req := <-got; string(req) != "\x03SELECT 1" {
		t.Fatalf("the peer got %q", req)
	}
	if n := ca.Buffered(); n != 4+7 {
		t.Fatalf("after FlushAwait %d bytes are buffered, want the 11-byte answer", n)
	}
	p, err := ca.ReadPacket()
	if err != nil || string(p) != "\x00\x00\x00\x02\x00\x00\x00" {
		t.Fatalf("answer %q, %v", p, err)
	}
}

// A peer that closes instead of answering: the request went out, so
// FlushAwait succeeds, and the read that follows reports EOF (never a
// write error: a caller may retry a failed write elsewhere, not this).
func TestFlushAwaitPeerCloses(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	got := make(chan []byte, 1)
	go answerer(cb, 0, nil, got)
	ca.ResetSeq()
	if err := ca.WritePacket([]byte("\x03SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if err := ca.FlushAwait(); err != nil {
		t.Fatalf("FlushAwait: %v, want nil (the request was sent)", err)
	}
	<-got
	_, err := ca.ReadPacket()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
	if errors.Is(err, ErrWrite) {
		t.Fatalf("%v is tagged as a write error", err)
	}
	// The error was given once; the connection reads on as any other.
	if _, err := ca.ReadPacket(); err == nil {
		t.Fatal("a second read after EOF succeeded")
	}
}

// The read deadline bounds the wait; the timeout is the next read's error.
func TestFlushAwaitDeadline(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	got := make(chan []byte, 1)
	go answerer(cb, time.Hour, []byte("\x00"), got)
	if err := ca.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ca.ResetSeq()
	if err := ca.WritePacket([]byte("\x03SELECT SLEEP(10)")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ca.FlushAwait(); err != nil {
		t.Fatalf("FlushAwait: %v", err)
	}
	if _, err := ca.ReadPacket(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the wait ended after %v", d)
	}
}

// Closing the connection from another goroutine (an abort) ends the wait.
func TestFlushAwaitClosedUnderWait(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	got := make(chan []byte, 1)
	go answerer(cb, time.Hour, []byte("\x00"), got)
	go func() {
		<-got
		time.Sleep(50 * time.Millisecond)
		a.Close()
	}()
	ca.ResetSeq()
	if err := ca.WritePacket([]byte("\x03SELECT 1")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if err := ca.FlushAwait(); err != nil {
			done <- err
			return
		}
		_, err := ca.ReadPacket()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end after Close")
	}
}

// A request that cannot go out in one write(2) (the socket buffers are
// full) is finished the ordinary way and the answer read the ordinary way.
func TestFlushAwaitFullSocket(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	// Fill the socket: write(2) until EAGAIN.
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	filled := 0
	chunk := make([]byte, 64<<10)
	if err := raw.Write(func(fd uintptr) bool {
		for {
			n, e := syscall.Write(int(fd), chunk)
			if e != nil {
				return true
			}
			filled += n
		}
	}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.ReadFull(b, make([]byte, filled)); err != nil {
			got <- nil
			return
		}
		answerer(cb, 10*time.Millisecond, []byte("\x00\x00\x00\x02\x00\x00\x00"), got)
	}()
	ca.ResetSeq()
	if err := ca.WritePacket([]byte("\x03SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if err := ca.FlushAwait(); err != nil {
		t.Fatal(err)
	}
	if g := <-got; string(g) != "\x03SELECT 1" {
		t.Fatalf("the peer got %q after %d filler bytes", g, filled)
	}
	p, err := ca.ReadPacket()
	if err != nil || len(p) != 7 {
		t.Fatalf("answer %q, %v", p, err)
	}
}

// A request and its awaited answer allocate nothing.
func TestFlushAwaitAllocations(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // an echo peer
		for {
			cb.ResetSeq()
			p, err := cb.ReadPacket()
			if err != nil {
				return
			}
			if cb.WritePacket(p) != nil || cb.Flush() != nil {
				return
			}
		}
	}()
	payload := []byte("\x03SELECT 1")
	allocs := testing.AllocsPerRun(200, func() {
		ca.ResetSeq()
		if err := ca.WritePacket(payload); err != nil {
			t.Fatal(err)
		}
		if err := ca.FlushAwait(); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per awaited round trip, want 0", allocs)
	}
}

// An answer that filled the read buffer to its end, all of it read: the
// next awaited answer goes to the buffer's start (a read into the empty
// rest of the buffer would read nothing and look like EOF).
func TestFlushAwaitAfterFullBuffer(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	go func() { // answers the first request with exactly BufferSize bytes, the second with 7
		for i, answer := range [][]byte{make([]byte, BufferSize-4), []byte("\x00\x00\x00\x02\x00\x00\x00")} {
			cb.ResetSeq()
			if _, err := cb.ReadPacket(); err != nil {
				return
			}
			answer[0] = byte(i)
			if cb.WritePacket(answer) != nil || cb.Flush() != nil {
				return
			}
		}
	}()
	for i, want := range []int{BufferSize - 4, 7} {
		ca.ResetSeq()
		if err := ca.WritePacket([]byte("\x03SELECT 1")); err != nil {
			t.Fatal(err)
		}
		if err := ca.FlushAwait(); err != nil {
			t.Fatal(err)
		}
		p, err := ca.ReadPacket()
		if err != nil || len(p) != want {
			t.Fatalf("answer %d: %d bytes, %v; want %d bytes", i, len(p), err, want)
		}
		if i == 0 && (ca.br.buf == nil || ca.br.w != BufferSize) {
			t.Fatalf("the first answer did not fill the buffer (w %d)", ca.br.w)
		}
	}
}

// TestPeek: what a look at a socket finds, without consuming it.
func TestPeek(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pair := func() (net.Conn, net.Conn) {
		t.Helper()
		a, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	// waitFor polls: the kernel delivers what the peer did a moment later.
	waitFor := func(c net.Conn, want PeekResult) {
		t.Helper()
		var got PeekResult
		for i := 0; i < 200; i++ {
			if got = Peek(c); got == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("Peek = %d, want %d", got, want)
	}
	a, b := pair()
	waitFor(a, PeekEmpty)
	b.Write([]byte("x"))
	waitFor(a, PeekData)
	waitFor(a, PeekData) // not consumed
	buf := make([]byte, 1)
	if n, err := a.Read(buf); n != 1 || err != nil {
		t.Fatalf("read after the peeks: %d %v", n, err)
	}
	waitFor(a, PeekEmpty)
	b.Close()
	waitFor(a, PeekClosed)
	a.Close()

	a, b = pair()
	b.(*net.TCPConn).SetLinger(0) // close with a reset
	b.Close()
	waitFor(a, PeekClosed)
	a.Close()

	p, q := net.Pipe() // not a socket: nothing is known
	defer p.Close()
	defer q.Close()
	if got := Peek(p); got != PeekUnknown {
		t.Fatalf("Peek of a pipe = %d, want PeekUnknown", got)
	}
}
