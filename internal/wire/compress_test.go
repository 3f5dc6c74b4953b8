package wire

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// compPacket builds one compressed packet by the protocol's rules with the
// standard library's zlib (independently of compWriter): deflated when
// deflate is set, stored otherwise.
func compPacket(seq byte, plain []byte, deflate bool) []byte {
	body, ulen := plain, 0
	if deflate {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		_, _ = zw.Write(plain)
		_ = zw.Close()
		body, ulen = b.Bytes(), len(plain)
	}
	out := []byte{byte(len(body)), byte(len(body) >> 8), byte(len(body) >> 16), seq, byte(ulen), byte(ulen >> 8), byte(ulen >> 16)}
	return append(out, body...)
}

// compHeaders splits a compressed stream into its packets' headers.
type compHdr struct {
	clen, ulen int
	seq        byte
}

func compHeaders(t *testing.T, b []byte) []compHdr {
	t.Helper()
	var out []compHdr
	for len(b) > 0 {
		if len(b) < compHeaderLen {
			t.Fatalf("%d bytes left, not a header", len(b))
		}
		h := compHdr{clen: int(b[0]) | int(b[1])<<8 | int(b[2])<<16, seq: b[3], ulen: int(b[4]) | int(b[5])<<8 | int(b[6])<<16}
		out = append(out, h)
		b = b[compHeaderLen+h.clen:]
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Packets of every size class cross a compressed TCP connection both ways
// intact: empty, below and at the 50-byte threshold, compressible and
// random, and logical packets beyond 16 MiB that span many compressed
// packets.
func TestCompressedRoundTrip(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close()
	defer cb.Close()
	if err := ca.StartCompression(3); err != nil {
		t.Fatal(err)
	}
	if err := cb.StartCompression(MinCompressionLevel); err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{
		{}, []byte("\x03select 1"), filled(49, 'a'), filled(50, 'b'), randomBytes(50, 1),
		filled(100_000, 'c'), randomBytes(100_000, 2), filled(MaxPayloadLen, 'd'),
		append(filled(MaxPayloadLen, 'e'), randomBytes(1000, 3)...),
	}
	for dir, pair := range [][2]*Conn{{ca, cb}, {cb, ca}} {
		w, r := pair[0], pair[1]
		w.ResetSeq()
		r.ResetSeq()
		errc := make(chan error, 1)
		go func() {
			for _, p := range payloads {
				if err := w.WritePacket(p); err != nil {
					errc <- err
					return
				}
			}
			errc <- w.Flush()
		}()
		for i, want := range payloads {
			got, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("direction %d, packet %d: %v", dir, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("direction %d, packet %d: %d bytes back, want %d", dir, i, len(got), len(want))
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// What the writer sends: small payloads stored, larger ones deflated when
// that pays, compressed sequence ids counting up within a command and
// restarting with it, and a reply numbered after the request it answers.
func TestCompressedFraming(t *testing.T) {
	var out bytes.Buffer
	req := compPacket(4, encode([]byte("\x03select 1")), false) // the peer's request, compressed seq 4
	c := NewConn(&memConn{r: bytes.NewReader(req), w: &out})
	defer c.Close()
	if err := c.StartCompression(3); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(); err != nil || string(p) != "\x03select 1" {
		t.Fatalf("ReadPacket = %q, %v", p, err)
	}
	_ = c.WritePacket([]byte("ok"))
	_ = c.Flush()
	_ = c.WritePacket(filled(1000, 'x'))
	_ = c.Flush()
	_ = c.WritePacket(randomBytes(1000, 9))
	_ = c.Flush()
	c.ResetSeq()
	_ = c.WritePacket(filled(200_000, 'y'))
	_ = c.Flush()
	got := compHeaders(t, out.Bytes())
	if len(got) != 3+4 {
		t.Fatalf("%d compressed packets: %+v", len(got), got)
	}
	// The answer to seq 4 is 5, then 6 and 7; the new command restarts at 0.
	if got[0].seq != 5 || got[0].ulen != 0 || got[0].clen != 6 {
		t.Fatalf("short reply: %+v, want stored, seq 5", got[0])
	}
	if got[1].seq != 6 || got[1].ulen != 1004 || got[1].clen >= 1004 {
		t.Fatalf("compressible reply: %+v, want deflated, seq 6", got[1])
	}
	if got[2].seq != 7 || got[2].ulen != 0 || got[2].clen != 1004 {
		t.Fatalf("random reply: %+v, want stored, seq 7", got[2])
	}
	total := 0
	for i, h := range got[3:] {
		if h.seq != byte(i) || h.ulen > compChunk {
			t.Fatalf("chunk %d: %+v", i, h)
		}
		total += h.ulen
	}
	if total != 200_004 {
		t.Fatalf("chunks hold %d bytes, want 200004", total)
	}
	// And the standard library reads it back.
	rd := NewConn(&memConn{r: bytes.NewReader(out.Bytes())})
	defer rd.Close()
	_ = rd.StartCompression(0)
	rd.SetSeq(1)
	for i, want := range [][]byte{[]byte("ok"), filled(1000, 'x'), randomBytes(1000, 9), filled(200_000, 'y')} {
		if i == 3 {
			rd.ResetSeq()
		}
		p, err := rd.ReadPacket()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("packet %d: %d bytes, %v", i, len(p), err)
		}
	}
}

// A command left buffered when the next one starts goes out in its own
// compressed packet (a server restarts its compressed sequence per
// command, so one packet must not hold two).
func TestCompressedCommandBoundary(t *testing.T) {
	var out bytes.Buffer
	c := NewConn(&memConn{w: &out})
	defer c.Close()
	_ = c.StartCompression(3)
	c.ResetSeq()
	_ = c.WritePacket([]byte{ComStmtClose, 1, 0, 0, 0})
	c.ResetSeq()
	_ = c.WritePacket([]byte("\x03select 1"))
	_ = c.Flush()
	got := compHeaders(t, out.Bytes())
	if len(got) != 2 || got[0].seq != 0 || got[1].seq != 0 {
		t.Fatalf("headers %+v, want two packets with seq 0", got)
	}
}

// A peer's stream that lies is an error that names it, never a panic, a
// hang or a buffer of the announced size.
func TestCompressedMalformed(t *testing.T) {
	plain := encode(filled(300, 'q'))
	good := compPacket(0, plain, true)
	withULen := func(p []byte, ulen int) []byte {
		p = bytes.Clone(p)
		p[4], p[5], p[6] = byte(ulen), byte(ulen>>8), byte(ulen>>16)
		return p
	}
	trailing := bytes.Clone(good)
	trailing = append(trailing, 0xAA)
	trailing[0]++ // the extra byte is inside the packet
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"announced longer than inflated":  {withULen(good, len(plain)+10), ErrMalformed},
		"announced shorter than inflated": {withULen(good, len(plain)-10), ErrMalformed},
		"not zlib":                        {withULen(compPacket(0, filled(60, 'z'), false), 60), ErrMalformed},
		"bytes after the zlib stream":     {trailing, ErrMalformed},
		"truncated deflated packet":       {good[:len(good)-5], io.ErrUnexpectedEOF},
		"truncated stored packet":         {compPacket(0, plain, false)[:100], io.ErrUnexpectedEOF},
		"truncated header":                {good[:5], io.ErrUnexpectedEOF},
		"16 MiB announced, nothing sent":  {withULen(good[:compHeaderLen], MaxPayloadLen), io.ErrUnexpectedEOF},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := readerConn(tc.in)
			defer c.Close()
			_ = c.StartCompression(3)
			// The error comes with the read that reaches the packet's
			// end: the logical packet inside may be delivered first.
			var err error
			for range 3 {
				if _, err = c.ReadPacket(); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrRead) {
				t.Fatalf("err = %v, want %v (as a read error)", err, tc.want)
			}
		})
	}
}

// Bytes that arrived before StartCompression (a client that sent its first
// command right behind its login) are read as compressed packets.
func TestCompressedEarlyBytes(t *testing.T) {
	stream := append(encode([]byte("login")), compPacket(0, encode(filled(500, 'k')), true)...)
	c := readerConn(stream)
	defer c.Close()
	if p, err := c.ReadPacket(); err != nil || string(p) != "login" {
		t.Fatalf("login packet %q, %v", p, err)
	}
	if c.Buffered() == 0 {
		t.Fatal("the test wants the command already buffered")
	}
	_ = c.StartCompression(3)
	c.ResetSeq()
	if p, err := c.ReadPacket(); err != nil || !bytes.Equal(p, filled(500, 'k')) {
		t.Fatalf("command: %d bytes, %v", len(p), err)
	}
}

// BenchmarkCompressedReply: what the compressed protocol costs a reply of
// a point select's size and a 16 KiB buffer of rows, per level.
func BenchmarkCompressedReply(b *testing.B) {
	// A point select's answer: a column definition, then a row of
	// sysbench's c column (eleven groups of eleven digits), then EOF.
	small := []byte("\x03def\x06sbtest\x07sbtest1\x07sbtest1\x01c\x01c\x0c\x08\x00\xe0\x01\x00\x00\xfe\x81\x10\x00\x00\x00")
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 11 {
		if i > 0 {
			small = append(small, '-')
		}
		for range 11 {
			small = append(small, byte('0'+r.IntN(10)))
		}
	}
	var rows []byte
	for i := 0; len(rows) < 16<<10; i++ {
		rows = append(rows, fmt.Sprintf("%d\t%08d-%s\n", i, i*7919, strings.Repeat("abcdefgh", i%8))...)
	}
	for _, size := range []struct {
		name  string
		reply []byte
	}{{"200B", small}, {"16KiB", rows[:16<<10-4]}} {
		for _, level := range []int{1, 3, 6} {
			b.Run(fmt.Sprintf("%s/level%d", size.name, level), func(b *testing.B) {
				var sink discard
				c := NewConn(&memConn{w: &sink})
				defer c.Close()
				_ = c.StartCompression(level)
				b.ReportAllocs()
				b.SetBytes(int64(len(size.reply)))
				for b.Loop() {
					c.ResetSeq()
					_ = c.WritePacket(size.reply)
					_ = c.Flush()
				}
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// The answer to a request that spanned compressed packets is numbered
// from the compressed sequence, inside and out, as MySQL's servers do.
func TestCompressedReplyNumbering(t *testing.T) {
	inner := encode(filled(300, 'r'))
	req := append(compPacket(0, inner[:100], true), compPacket(1, inner[100:], false)...)
	var out bytes.Buffer
	c := NewConn(&memConn{r: bytes.NewReader(req), w: &out})
	defer c.Close()
	_ = c.StartCompression(3)
	if p, err := c.ReadPacket(); err != nil || len(p) != 300 {
		t.Fatalf("request: %d bytes, %v", len(p), err)
	}
	_ = c.WritePacket([]byte("a"))
	_ = c.WritePacket([]byte("b"))
	_ = c.Flush()
	h := compHeaders(t, out.Bytes())
	body := out.Bytes()[compHeaderLen:]
	if len(h) != 1 || h[0].seq != 2 || h[0].ulen != 0 || body[3] != 2 || body[5+3] != 3 {
		t.Fatalf("reply %+v, inner seq %d then %d; want compressed seq 2, inner 2 and 3", h, body[3], body[8])
	}
}

// A write limit holds the bytes on the wire to its rate in 100 ms windows
// (the first window's budget goes out at once), below compression, and
// lifting it restores the socket writer itself.
func TestWriteLimit(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		var out bytes.Buffer
		c := NewConn(&memConn{w: &out})
		if compressed {
			_ = c.StartCompression(1)
		}
		if err := c.SetWriteLimit(100_000); err != nil { // 10 000 bytes per window
			t.Fatal(err)
		}
		payload := randomBytes(35_000, 7) // incompressible: the same bytes on the wire
		start := time.Now()
		_ = c.WritePacket(payload)
		_ = c.Flush()
		took := time.Since(start)
		if took < 300*time.Millisecond {
			t.Fatalf("compressed=%v: %d bytes at 100 000 B/s went out in %v", compressed, out.Len(), took)
		}
		_ = c.SetWriteLimit(0)
		if c.lim != nil || (!compressed && c.out != c.nc) || (compressed && c.comp.w.out != c.nc) {
			t.Fatalf("compressed=%v: the limit is still in the chain", compressed)
		}
		rd := readerConn(out.Bytes())
		if compressed {
			_ = rd.StartCompression(0)
		}
		if p, err := rd.ReadPacket(); err != nil || !bytes.Equal(p, payload) {
			t.Fatalf("compressed=%v: read back %d bytes, %v", compressed, len(p), err)
		}
		c.Close()
		rd.Close()
	}
}
