package wire

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// An idle Conn on a socket holds no read buffer, takes one when bytes
// arrive, and keeps what the peer pipelined.
func TestIdleReleasesReadBuffer(t *testing.T) {
	a, b := tcpPair(t)
	c := NewClientConn(b)
	peer := NewConn(a)
	defer peer.Close()

	send := func(payloads ...string) {
		t.Helper()
		for _, p := range payloads {
			peer.ResetSeq()
			if err := peer.WritePacket([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := peer.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(want string) {
		t.Helper()
		c.ResetSeq()
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if string(p) != want {
			t.Fatalf("read %q, want %q", p, want)
		}
	}

	c.Idle()
	if c.br.buf != nil {
		t.Fatal("a fresh Conn holds a read buffer")
	}
	// The read parks with no buffer, then takes one for the bytes.
	sent := make(chan struct{})
	go func() { time.Sleep(50 * time.Millisecond); send("\x03SELECT 1"); close(sent) }()
	recv("\x03SELECT 1")
	<-sent
	c.Idle()
	if c.br.buf != nil {
		t.Fatal("Idle kept the read buffer of a drained Conn")
	}

	// Two pipelined commands: Idle after the first must keep the second.
	send("\x03one", "\x03two")
	time.Sleep(50 * time.Millisecond)
	recv("\x03one")
	if c.Buffered() == 0 {
		t.Skip("the kernel delivered the two packets apart; nothing pipelined to check")
	}
	c.Idle()
	if c.br.buf == nil {
		t.Fatal("Idle released a buffer holding a pipelined command")
	}
	recv("\x03two")

	// A payload larger than the buffer arrives through it in pieces.
	big := make([]byte, 3*ClientReadBufferSize)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	c.Idle()
	send(string(big))
	recv(string(big))
}

// A read with no buffer still honours deadlines and Close from another
// goroutine, and reports the peer's close as EOF.
func TestReleasedReadInterrupts(t *testing.T) {
	_, b := tcpPair(t)
	c := NewClientConn(b)
	c.Idle()

	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadPacket()
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, ErrRead) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if c.br.buf != nil {
		t.Fatal("a timed-out read kept a buffer")
	}
	_ = c.SetReadDeadline(time.Time{})

	go func() { time.Sleep(50 * time.Millisecond); c.NetConn().Close() }()
	if _, err := c.ReadPacket(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed socket: %v", err)
	}

	a2, b2 := tcpPair(t)
	c2 := NewClientConn(b2)
	c2.Idle()
	go func() { time.Sleep(50 * time.Millisecond); a2.Close() }()
	if _, err := c2.ReadPacket(); !errors.Is(err, ErrRead) || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed: %v", err)
	}
}
