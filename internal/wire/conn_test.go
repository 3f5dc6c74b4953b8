package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// memConn is a net.Conn over an io.Reader and an io.Writer.
type memConn struct {
	r io.Reader
	w io.Writer
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.r == nil {
		return 0, io.EOF
	}
	return m.r.Read(p)
}

func (m *memConn) Write(p []byte) (int, error) {
	if m.w == nil {
		return len(p), nil
	}
	return m.w.Write(p)
}
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

func readerConn(b []byte) *Conn      { return NewConn(&memConn{r: bytes.NewReader(b)}) }
func writerConn(w io.Writer) *Conn   { return NewConn(&memConn{w: w}) }
func header(n int, seq byte) []byte  { return []byte{byte(n), byte(n >> 8), byte(n >> 16), seq} }
func filled(n int, seed byte) []byte { return bytes.Repeat([]byte{seed}, n) }

// encode builds the wire bytes of payloads written one after the other
// starting at sequence id 0, by the rules of the protocol (independently of
// WritePacket).
func encode(payloads ...[]byte) []byte {
	var out []byte
	seq := byte(0)
	for _, p := range payloads {
		for {
			n := min(len(p), MaxPayloadLen)
			out = append(out, header(n, seq)...)
			out = append(out, p[:n]...)
			seq++
			p = p[n:]
			if n < MaxPayloadLen {
				break
			}
		}
	}
	return out
}

func TestWritePacketSplits(t *testing.T) {
	sizes := []int{0, 1, 100, BufferSize - 4, BufferSize, BufferSize + 1, MaxPayloadLen - 1, MaxPayloadLen,
		MaxPayloadLen + 7, 2 * MaxPayloadLen}
	for _, n := range sizes {
		p := filled(n, byte(n))
		var out bytes.Buffer
		c := writerConn(&out)
		if err := c.WritePacket(p); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		want := encode(p)
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("size %d: wire bytes differ (got %d bytes, want %d)", n, out.Len(), len(want))
		}
		if c.BytesWritten() != uint64(len(want)) {
			t.Fatalf("size %d: BytesWritten %d, want %d", n, c.BytesWritten(), len(want))
		}
		_ = c.Close()
	}
}

func TestReadPacketAssembles(t *testing.T) {
	payloads := [][]byte{
		{}, []byte("hello"), filled(BufferSize-4, 1), filled(BufferSize, 2), filled(BufferSize+1, 3),
		filled(200_000, 4), filled(MaxPayloadLen, 5), filled(MaxPayloadLen+3, 6), []byte("tail"),
	}
	c := readerConn(encode(payloads...))
	defer c.Close()
	for i, want := range payloads {
		got, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := c.ReadPacket(); !errors.Is(err, io.EOF) || !errors.Is(err, ErrRead) {
		t.Fatalf("after last packet: %v, want ErrRead wrapping io.EOF", err)
	}
}

func TestReadPacketSequence(t *testing.T) {
	c := readerConn(append(header(1, 0), 'x', 0, 0, 0, 5))
	if _, err := c.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPacket(); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("got %v, want ErrBadSequence", err)
	}
}

func TestReadPacketTruncated(t *testing.T) {
	for _, b := range [][]byte{{1, 0}, append(header(10, 0), "abc"...), append(header(MaxPayloadLen, 0), 1, 2)} {
		c := readerConn(b)
		if _, err := c.ReadPacket(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%x…: got %v, want io.ErrUnexpectedEOF", b[:4], err)
		}
	}
}

func TestReadPacketTooLarge(t *testing.T) {
	big := filled(100_000, 9)
	c := readerConn(encode(big, []byte("next")))
	c.SetMaxPayload(50_000)
	if _, err := c.ReadPacket(); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("got %v, want ErrPacketTooLarge", err)
	}
	p, err := c.ReadPacket()
	if err != nil || string(p) != "next" {
		t.Fatalf("stream not usable after a too-large packet: %q %v", p, err)
	}

	// A multi-packet payload over the limit is skipped as a whole.
	c = readerConn(encode(filled(MaxPayloadLen+10, 1), []byte("after")))
	c.SetMaxPayload(MaxPayloadLen)
	if _, err := c.ReadPacket(); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("got %v, want ErrPacketTooLarge", err)
	}
	if p, err := c.ReadPacket(); err != nil || string(p) != "after" {
		t.Fatalf("after multi-packet skip: %q %v", p, err)
	}
}

func TestPeekHeaderAndSkip(t *testing.T) {
	c := readerConn(encode([]byte{}, []byte{0xfe, 0, 0, 2, 0}, []byte("zz")))
	n, first, err := c.PeekHeader()
	if err != nil || n != 0 || first != 0 {
		t.Fatalf("empty packet: %d %x %v", n, first, err)
	}
	if _, err := c.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	n, first, err = c.PeekHeader()
	if err != nil || n != 5 || first != 0xfe || !IsTerminator(first, n) {
		t.Fatalf("eof packet: %d %x %v", n, first, err)
	}
	// Peeking twice does not consume.
	if n2, f2, _ := c.PeekHeader(); n2 != n || f2 != first {
		t.Fatal("PeekHeader consumed")
	}
	if f, l, err := c.SkipPacket(); err != nil || f != 0xfe || l != 5 {
		t.Fatalf("SkipPacket: %x %d %v", f, l, err)
	}
	p, err := c.ReadPacket()
	if err != nil || string(p) != "zz" {
		t.Fatalf("after skip: %q %v", p, err)
	}
}

func TestForwardPacketRestamps(t *testing.T) {
	payloads := [][]byte{[]byte{0x03, 's', 'e', 'l'}, {}, filled(BufferSize*3, 7), filled(MaxPayloadLen, 8),
		filled(MaxPayloadLen+100, 9)}
	src := readerConn(encode(payloads...))
	var out bytes.Buffer
	dst := writerConn(&out)
	dst.SetSeq(0)
	// The destination starts at sequence 0 too; bump src's view to check
	// re-stamping by starting dst at 0 and src at 0 with different drifts.
	for i, p := range payloads {
		first, n, err := src.ForwardPacket(dst)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		wantFirst := byte(0)
		if len(p) > 0 {
			wantFirst = p[0]
		}
		if first != wantFirst || n != len(p) {
			t.Fatalf("packet %d: first %x len %d, want %x %d", i, first, n, wantFirst, len(p))
		}
	}
	if err := dst.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), encode(payloads...)) {
		t.Fatal("forwarded bytes differ from the source")
	}

	// Re-stamping: the destination's counter wins.
	src = readerConn(encode([]byte("a"), []byte("b")))
	out.Reset()
	dst = writerConn(&out)
	dst.SetSeq(5)
	for range 2 {
		if _, _, err := src.ForwardPacket(dst); err != nil {
			t.Fatal(err)
		}
	}
	_ = dst.Flush()
	want := append(append(header(1, 5), 'a'), append(header(1, 6), 'b')...)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("got % x, want % x", out.Bytes(), want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("boom") }

func TestForwardPacketErrorSides(t *testing.T) {
	src := readerConn(encode(filled(BufferSize*2, 1)))
	dst := writerConn(failWriter{})
	_, _, err := src.ForwardPacket(dst)
	if !errors.Is(err, ErrWrite) || errors.Is(err, ErrRead) {
		t.Fatalf("write failure: %v", err)
	}
	src = readerConn(append(header(100, 0), 1, 2, 3))
	dst = writerConn(io.Discard)
	_, _, err = src.ForwardPacket(dst)
	if !errors.Is(err, ErrRead) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read failure: %v", err)
	}
}

func TestClosedConn(t *testing.T) {
	c := readerConn(encode([]byte("x")))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := c.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadPacket after Close: %v", err)
	}
	if err := c.WritePacket([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("WritePacket after Close: %v", err)
	}
}

func TestWriteHelpers(t *testing.T) {
	var out bytes.Buffer
	c := writerConn(&out)
	_ = c.WriteOK(1, 2, StatusAutocommit, 0, "")
	_ = c.WriteERR(1045, "28000", "denied")
	_ = c.WriteEOF(1, StatusInTrans)
	_ = c.WriteResultEnd(true, 0, StatusAutocommit)
	_ = c.Flush()
	want := encode(
		[]byte{0x00, 1, 2, 2, 0, 0, 0},
		append([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0'}, "denied"...),
		[]byte{0xfe, 1, 0, 1, 0},
		[]byte{0xfe, 0, 0, 2, 0, 0, 0},
	)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("got % x\nwant % x", out.Bytes(), want)
	}
}

// loopReader serves the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func benchForward(b *testing.B, size int) {
	// 256 packets so sequence ids wrap exactly at the end of the loop.
	payloads := make([][]byte, 256)
	for i := range payloads {
		payloads[i] = filled(size, byte(i))
	}
	src := NewConn(&memConn{r: &loopReader{b: encode(payloads...)}})
	dst := NewConn(&memConn{w: io.Discard})
	b.SetBytes(int64(size + 4))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := src.ForwardPacket(dst); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			if err := dst.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkForwardPacket streams packets of typical row sizes through
// ForwardPacket; the allocation count must stay at 0.
func BenchmarkForwardPacket(b *testing.B) {
	b.Run("64B", func(b *testing.B) { benchForward(b, 64) })
	b.Run("1KiB", func(b *testing.B) { benchForward(b, 1024) })
	b.Run("64KiB", func(b *testing.B) { benchForward(b, 64<<10) })
}

func BenchmarkReadPacket(b *testing.B) {
	payloads := make([][]byte, 256)
	for i := range payloads {
		payloads[i] = filled(200, byte(i))
	}
	c := NewConn(&memConn{r: &loopReader{b: encode(payloads...)}})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestForwardPacketAllocs(t *testing.T) {
	payloads := make([][]byte, 256)
	for i := range payloads {
		payloads[i] = filled(300+i*10, byte(i))
	}
	src := NewConn(&memConn{r: &loopReader{b: encode(payloads...)}})
	dst := NewConn(&memConn{w: io.Discard})
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := src.ForwardPacket(dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ForwardPacket allocates %.1f times per packet", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		if err := dst.WritePacket(payloads[3]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("WritePacket allocates %.1f times per packet", allocs)
	}
}

// TestPeekResultEnd: the terminator's status is found past rows without
// consuming them; an ERR, or rows beyond the buffer (a 16 MiB row whose
// continuation starts with 0xFE), say not found.
func TestPeekResultEnd(t *testing.T) {
	term := AppendOK(nil, 0, 0, StatusAutocommit|StatusMoreResultsExists|StatusPSOutParams, 0, "")
	term[0] = HeaderEOF
	row := []byte{3, 'a', 'b', 'c'}
	c := readerConn(encode(row, row, term))
	st, found, err := c.PeekResultEnd()
	if err != nil || !found || st != StatusAutocommit|StatusMoreResultsExists|StatusPSOutParams {
		t.Fatalf("small result: %#x %v %v", st, found, err)
	}
	if p, err := c.ReadPacket(); err != nil || !bytes.Equal(p, row) {
		t.Fatalf("the rows were consumed: %q %v", p, err)
	}

	// A 16 MiB row continues into a packet that starts with 0xFE: rows
	// beyond the buffer are not looked through.
	big := append(filled(MaxPayloadLen, 'x'), 0xfe, 1, 2)
	c = readerConn(encode(big, term))
	if _, found, err := c.PeekResultEnd(); err != nil || found {
		t.Fatalf("a row beyond the buffer: found %v %v", found, err)
	}
	if p, err := c.ReadPacket(); err != nil || len(p) != len(big) {
		t.Fatalf("the big row after the peek: %d %v", len(p), err)
	}

	errPkt := AppendERR(nil, 1317, "70100", "Query execution was interrupted")
	c = readerConn(encode(row, errPkt))
	if _, found, err := c.PeekResultEnd(); err != nil || found {
		t.Fatalf("rows ending in an ERR: found %v %v", found, err)
	}

	c = readerConn(encode(row)[:6]) // cut inside a row
	if _, _, err := c.PeekResultEnd(); err == nil {
		t.Fatal("a stream cut inside a row: no error")
	}
}

// TestBufferGauge: a Conn counts the buffers it holds in its gauge when it
// takes or gives one back — the read buffer a command arrives in, the write
// buffer of the answer, a large packet's buffer — and Idle and Close give
// them back (mysql_frontend_buffers_bytes, mysql_backend_buffers_bytes).
func TestBufferGauge(t *testing.T) {
	a, b := tcpPair(t)
	peer := NewConn(a)
	defer peer.Close()
	c := NewClientConn(b)
	if c.bufs != &FrontendBuffers {
		t.Fatal("a client connection is not counted in FrontendBuffers")
	}
	if NewConn(&memConn{}).bufs != nil {
		t.Fatal("a NewConn is counted before CountBuffers")
	}
	var g BufferGauge // its own gauge: other connections do not move it
	c.CountBuffers(&g)
	send := func(p []byte) {
		done := make(chan error, 1)
		go func() {
			peer.ResetSeq()
			if err := peer.WritePacket(p); err != nil {
				done <- err
				return
			}
			done <- peer.Flush()
		}()
		c.ResetSeq()
		got, err := c.ReadPacket()
		if err != nil || len(got) != len(p) {
			t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(p))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Bytes(); n != 0 {
		t.Fatalf("%d bytes counted before any read", n)
	}
	send([]byte("\x03SELECT 1"))
	if n := g.Bytes(); n != ClientReadBufferSize {
		t.Errorf("after reading a command: %d bytes, want the read buffer's %d", n, ClientReadBufferSize)
	}
	if err := c.WriteOK(0, 0, 2, 0, ""); err != nil {
		t.Fatal(err)
	}
	if n := g.Bytes(); n != ClientReadBufferSize+BufferSize {
		t.Errorf("while answering: %d bytes, want %d", n, ClientReadBufferSize+BufferSize)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Idle()
	if n, held := g.Bytes(), c.BufferBytes(); n != 0 || held != 0 {
		t.Errorf("idle: %d bytes counted (%d for the Conn), want 0", n, held)
	}
	big := filled(100<<10, 'x')
	send(big)
	if n := g.Bytes(); n < int64(ClientReadBufferSize+len(big)) {
		t.Errorf("after a %d-byte packet: %d bytes, want its buffer and the read buffer", len(big), n)
	}
	send([]byte("\x0e")) // the next read gives the large packet's buffer back
	if n := g.Bytes(); n != ClientReadBufferSize {
		t.Errorf("after the next command: %d bytes, want %d", n, ClientReadBufferSize)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := g.Bytes(); n != 0 {
		t.Errorf("closed: %d bytes still counted", n)
	}
}
