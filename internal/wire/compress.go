package wire

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// The compressed protocol (CLIENT_COMPRESS, zlib) sits under the packet
// layer: once both sides negotiated it, after the OK that ends the login,
// the byte stream of ordinary packets is cut into compressed packets, each
// with a 7-byte header: 3 bytes of compressed length, a sequence id of its
// own, and 3 bytes of uncompressed length (0: the payload is stored as is).
// A logical packet may span compressed packets and one compressed packet
// may hold several logical packets, so the layer is a reader and a writer
// beneath the Conn's buffers, and the packet code above runs unchanged.
//
// The compressed sequence id restarts at 0 with every command (ResetSeq);
// a read adopts the peer's id and the next write carries the one after it,
// which is how a server answers. Sequence ids of the packets inside are
// not checked on a compressed connection, and the first packet written
// after a read is numbered from the compressed id, as MySQL's net layer
// does (net_flush sets pkt_nr to compress_pkt_nr): a request that spanned
// several compressed packets gets an answer numbered the way its client
// (go-sql-driver checks) expects.

const (
	compHeaderLen = 7
	// minCompressLength: shorter payloads are sent stored, as MySQL's
	// clients and servers do (MIN_COMPRESS_LENGTH).
	minCompressLength = 50
	// compChunk bounds the uncompressed bytes of one compressed packet the
	// proxy sends: a 16 MiB write costs 64 KiB of buffer, not 16 MiB.
	compChunk = 64 << 10
	// Compression levels: zlib's -1 (its default, 6) to 9.
	MinCompressionLevel     = -1
	MaxCompressionLevel     = 9
	DefaultCompressionLevel = -1
)

// compState is what the compressed reader and writer of one Conn share.
type compState struct {
	seq uint8
	// fresh: a compressed packet was read since the last write, so the
	// next packet written takes its sequence id from seq.
	fresh bool
	r     *compReader
	w     *compWriter
}

// StartCompression switches the connection to the compressed protocol at
// the given zlib level (MinCompressionLevel..MaxCompressionLevel; others
// are clamped). Call it right after the OK that ends a login which
// negotiated ClientCompress, with nothing written since. Bytes already
// received are read as compressed packets.
func (c *Conn) StartCompression(level int) error {
	if c.br == nil {
		return ErrClosed
	}
	if c.comp != nil {
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	level = min(max(level, MinCompressionLevel), MaxCompressionLevel)
	src := c.br.src
	if n := c.br.Buffered(); n > 0 {
		early, _ := c.br.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), src)
	}
	st := &compState{}
	st.r = &compReader{st: st, src: newReader(src, BufferSize)}
	st.w = &compWriter{st: st, out: c.out, level: level}
	c.comp = st
	c.out = st.w
	c.br.Reset(st.r)
	if c.bw != nil {
		c.bw.Reset(st.w)
	}
	return nil
}

// Compressed reports whether the connection uses the compressed protocol.
func (c *Conn) Compressed() bool { return c.comp != nil }

// endCompressed gives back what the compressed layer holds (Close).
func (c *Conn) endCompressed() {
	if c.comp != nil {
		c.comp.r.drop()
	}
}

// compWriter cuts what the Conn's buffered writer flushes into compressed
// packets and writes each with one call to out.
type compWriter struct {
	st    *compState
	out   io.Writer
	level int
}

var compOutPool = sync.Pool{New: func() any { b := make([]byte, 0, compHeaderLen+compChunk+compChunk/8); return &b }}

// deflaters pools compressors per level (index level+1); one is taken for
// a packet and given back.
var deflaters [MaxCompressionLevel + 2]sync.Pool

// deflater is a zlib compressor and the slice it writes to.
type deflater struct {
	zw *zlib.Writer
	sw sliceWriter
}

func (w *compWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), compChunk)]
		if err := w.packet(chunk); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// packet writes chunk as one compressed packet: deflated when that makes
// it shorter, stored otherwise.
func (w *compWriter) packet(chunk []byte) error {
	bp := compOutPool.Get().(*[]byte)
	defer compOutPool.Put(bp)
	out := append((*bp)[:0], make([]byte, compHeaderLen)...)
	stored := true
	if len(chunk) >= minCompressLength {
		var err error
		if out, err = w.deflate(out, chunk); err != nil {
			return err
		}
		stored = len(out)-compHeaderLen >= len(chunk)
	}
	ulen := len(chunk)
	if stored {
		out = append(out[:compHeaderLen], chunk...)
		ulen = 0
	}
	n := len(out) - compHeaderLen
	out[0], out[1], out[2], out[3] = byte(n), byte(n>>8), byte(n>>16), w.st.seq
	out[4], out[5], out[6] = byte(ulen), byte(ulen>>8), byte(ulen>>16)
	w.st.seq++
	*bp = out[:0]
	_, err := w.out.Write(out)
	return err
}

// sliceWriter appends what is written to b.
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// deflate appends chunk, zlib-compressed, to out.
func (w *compWriter) deflate(out, chunk []byte) ([]byte, error) {
	pool := &deflaters[w.level+1]
	d, _ := pool.Get().(*deflater)
	if d == nil {
		d = &deflater{}
		zw, err := zlib.NewWriterLevel(&d.sw, w.level)
		if err != nil {
			return out, err
		}
		d.zw = zw
	} else {
		d.zw.Reset(&d.sw)
	}
	d.sw.b = out
	_, err := d.zw.Write(chunk)
	if err == nil {
		err = d.zw.Close()
	}
	out, d.sw.b = d.sw.b, nil
	pool.Put(d)
	return out, err
}

// compReader turns the compressed packets read from src into the stream of
// ordinary packets inside them. Nothing a peer announces is allocated: a
// packet's bytes are inflated straight into the caller's buffer, at most
// as many as its header announced, and it must hold exactly that many.
type compReader struct {
	st   *compState
	src  *reader
	left int           // uncompressed bytes of the current packet not read yet
	zr   io.ReadCloser // inflating the current packet; nil: stored
	lim  limitedReader // the current packet's compressed bytes
	one  [1]byte
	err  error // sticky: a broken stream stays broken
}

// zlibReaders pools decompressors between packets.
var zlibReaders sync.Pool

// Read fills p from the current packet. An error found once bytes were
// read (the packet's end does not match its header) is returned by the
// next Read: the bytes before it are delivered, as they arrived.
func (r *compReader) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if err != nil {
		r.err = err
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

func (r *compReader) read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for r.left == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	if r.zr == nil {
		n, err := r.src.Read(p)
		r.left -= n
		if n > 0 {
			return n, nil
		}
		return 0, midStream(err)
	}
	n, err := r.zr.Read(p)
	r.left -= n
	if r.left == 0 {
		return n, r.finish()
	}
	if n > 0 {
		return n, nil
	}
	if err == io.EOF || err == nil {
		return 0, malformed("compressed packet shorter than announced")
	}
	return 0, midStream(err)
}

// next reads the header of the next compressed packet.
func (r *compReader) next() error {
	h, err := r.src.Peek(compHeaderLen)
	if err != nil {
		if len(h) > 0 {
			return midStream(err)
		}
		return err
	}
	clen := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	ulen := int(h[4]) | int(h[5])<<8 | int(h[6])<<16
	r.st.seq, r.st.fresh = h[3]+1, true
	_, _ = r.src.Discard(compHeaderLen)
	if ulen == 0 {
		r.left = clen // stored
		return nil
	}
	r.lim = limitedReader{src: r.src, n: clen}
	zr, _ := zlibReaders.Get().(io.ReadCloser)
	if zr == nil {
		if zr, err = zlib.NewReader(&r.lim); err != nil {
			return inflateErr(err)
		}
	} else if err = zr.(zlib.Resetter).Reset(&r.lim, nil); err != nil {
		zlibReaders.Put(zr)
		return inflateErr(err)
	}
	r.zr, r.left = zr, ulen
	return nil
}

// finish checks that the packet just read to its announced length ends
// there (zlib's checksum verified, no compressed byte left), and gives
// the decompressor back.
func (r *compReader) finish() error {
	n, err := r.zr.Read(r.one[:])
	zr := r.zr
	r.zr = nil
	switch {
	case n > 0:
		return malformed("compressed packet longer than announced")
	case err != io.EOF:
		return inflateErr(err)
	case r.lim.n > 0:
		return malformed("bytes after the end of a compressed packet")
	}
	zlibReaders.Put(zr)
	return nil
}

func (r *compReader) drop() {
	r.zr = nil // mid-packet, if set: its state is not worth resetting
	r.src.drop()
}

// inflateErr reports a zlib failure as a malformed packet, and a failure
// to read the compressed bytes as that.
func inflateErr(err error) error {
	var re *readFailure
	if errors.As(err, &re) {
		return re.err
	}
	return malformed("compressed packet: " + err.Error())
}

// midStream turns a clean EOF inside a compressed packet into
// io.ErrUnexpectedEOF.
func midStream(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFailure marks an error of the socket under a decompressor, so that it
// is told apart from the decompressor's own complaints.
type readFailure struct{ err error }

func (e *readFailure) Error() string { return e.err.Error() }

// limitedReader reads at most n bytes of src, byte by byte too (an
// io.ByteReader, so the decompressor reads src's buffer without a buffer
// of its own).
type limitedReader struct {
	src *reader
	n   int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n == 0 {
		return 0, io.EOF
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.src.Read(p)
	l.n -= n
	if err != nil {
		err = &readFailure{midStream(err)}
	}
	return n, err
}

func (l *limitedReader) ReadByte() (byte, error) {
	if l.n == 0 {
		return 0, io.EOF
	}
	b, err := l.src.ReadByte()
	if err != nil {
		return 0, &readFailure{midStream(err)}
	}
	l.n--
	return b, nil
}
