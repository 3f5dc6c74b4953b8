package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// DefaultMaxPayload is the largest logical payload ReadPacket assembles by
// default: ProxySQL's mysql-max_allowed_packet default (64 MiB).
const DefaultMaxPayload = 64 << 20

// Conn is one MySQL protocol connection (client or server side) with
// buffered I/O and the packet sequence counter.
//
// A Conn belongs to one goroutine: none of its methods may be called
// concurrently, except that another goroutine may interrupt a blocked read or
// write with NetConn().Close() or a deadline. Writes are buffered; nothing
// reaches the socket before Flush (or before the 16 KiB buffer fills).
type Conn struct {
	nc         net.Conn
	out        io.Writer // what the buffered writer writes to (writeTarget)
	br         *reader
	bw         *bufio.Writer
	seq        uint8
	maxPayload atomic.Int64 // SetMaxPayload: another goroutine may change it (a LOAD)
	big        *[]byte      // pooled buffer behind the last ReadPacket result, if any
	hdr        [4]byte
	scratch    []byte // WriteOK/WriteERR/WriteEOF build their payloads here
	// MetaFollows: the client negotiated MARIADB_CLIENT_CACHE_METADATA, so
	// the result sets the proxy builds itself carry the "metadata follows"
	// byte (always 1) after their column count.
	MetaFollows bool
	bytesIn     uint64
	bytesOut    uint64
	// torn: a packet forwarded to this Conn was cut short (its source
	// failed after its header went out): nothing more can be written
	// that the peer would read as a packet.
	torn bool
	comp *compState   // the compressed protocol, once started
	lim  *limitWriter // the write limit, when one is set

	// bufs is where the bytes of the buffers the Conn holds are counted
	// (nil: nowhere); bufHeld is what it counts for this Conn now, bufRead
	// whether that includes the read buffer, bufShard the gauge's shard.
	bufs     *BufferGauge
	bufHeld  int64
	bufRead  bool
	bufShard uint8
}

// BufferGauge is the bytes of the read, write and large-packet buffers a
// class of connections holds now: stats_mysql_global's
// mysql_frontend_buffers_bytes and mysql_backend_buffers_bytes (ProxySQL
// sums its data streams' queues likewise). A Conn counted in one updates it
// only when what it holds changes — a buffer taken or given back, an atomic
// add on one of the gauge's shards (the Conn's) — never on a read or write
// that takes nothing; reading the gauge sums the shards.
type BufferGauge struct {
	shards [bufShards]struct {
		n atomic.Int64
		_ [56]byte // one shard per cache line
	}
}

const bufShards = 16

// Bytes returns the bytes counted now.
func (g *BufferGauge) Bytes() int64 {
	var n int64
	for i := range g.shards {
		n += g.shards[i].n.Load()
	}
	return n
}

var (
	// FrontendBuffers counts the buffers of client connections
	// (NewClientConn).
	FrontendBuffers BufferGauge
	// BackendBuffers counts those of the connections a backend pool opened
	// (CountBuffers).
	BackendBuffers BufferGauge
	// bufShardSeq spreads Conns over the gauges' shards.
	bufShardSeq atomic.Uint32
)

// CountBuffers counts the buffers c holds in g from now on (and those it
// holds already). Owner goroutine only.
func (c *Conn) CountBuffers(g *BufferGauge) {
	if c.bufs != nil && c.bufHeld != 0 {
		c.bufs.shards[c.bufShard].n.Add(-c.bufHeld)
	}
	c.bufs, c.bufHeld = g, 0
	c.bufShard = uint8(bufShardSeq.Add(1) % bufShards)
	c.countBuffers()
}

// BufferBytes returns the bytes of buffers c held when it last took or
// gave one back, as counted in its gauge (0 when it is counted in none).
// Readable by whoever owns c, or holds it as the pool does its idle
// connections.
func (c *Conn) BufferBytes() int64 { return c.bufHeld }

// countBuffers brings c's count in its gauge to what it holds now.
func (c *Conn) countBuffers() {
	if c.bufs == nil {
		return
	}
	var n int
	c.bufRead = false
	if c.br != nil && c.br.buf != nil {
		n += cap(*c.br.buf)
		c.bufRead = true
	}
	if c.bw != nil {
		n += c.bw.Size()
	}
	if c.big != nil {
		n += cap(*c.big)
	}
	if c.comp != nil && c.comp.r.src.buf != nil {
		n += cap(*c.comp.r.src.buf)
	}
	if d := int64(n) - c.bufHeld; d != 0 {
		c.bufs.shards[c.bufShard].n.Add(d)
		c.bufHeld = int64(n)
	}
}

// noteRead counts the read buffer a read just took (it is taken inside
// the reader, when bytes arrive, and kept until Idle or Close).
func (c *Conn) noteRead() {
	if c.bufs != nil && !c.bufRead {
		c.countBuffers()
	}
}

// NewConn wraps nc, taking a reader and a writer from the package pools.
// Close returns them.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, out: writeTarget(nc), br: newReader(nc, BufferSize)}
	c.maxPayload.Store(DefaultMaxPayload)
	return c
}

// NewClientConn is NewConn for the proxy's side of a client connection: a
// smaller read buffer (ClientReadBufferSize), since what a client sends is
// commands.
func NewClientConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, out: writeTarget(nc), br: newReader(nc, ClientReadBufferSize)}
	c.maxPayload.Store(DefaultMaxPayload)
	c.bufs, c.bufShard = &FrontendBuffers, uint8(bufShardSeq.Add(1)%bufShards)
	return c
}

// writer returns the buffered writer, taking one from the pool when the
// Conn has none (it is taken on the first write and given back by Idle).
func (c *Conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(c.out)
		c.countBuffers()
	}
	return c.bw
}

// Idle gives the buffers back to their pools when nothing is waiting in
// them: a session calls it before it blocks for the next command, so an idle
// client holds no write buffer, and on a socket no read buffer either (the
// next read takes one when bytes arrive). The next write or read takes them
// again (pool hits, no allocation). The slice returned by the last
// ReadPacket is invalid after Idle.
func (c *Conn) Idle() {
	if c.bw != nil && c.bw.Buffered() == 0 {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
	if c.br != nil {
		c.releaseBig()
		c.br.release()
		if c.comp != nil && c.br.Buffered() == 0 {
			c.comp.r.src.release()
		}
	}
	c.countBuffers()
}

// NetConn returns the underlying connection (for deadlines, addresses, or
// for another goroutine to interrupt this one by closing it).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the socket and returns the buffers to their pools. It must be
// called by the goroutine that owns the Conn; calling it twice is harmless.
// Unflushed writes are discarded.
func (c *Conn) Close() error {
	if c.br == nil {
		return nil
	}
	err := c.nc.Close()
	c.br.drop()
	c.br = nil
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
	c.releaseBig()
	c.endCompressed()
	c.countBuffers()
	return err
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool { return c.br == nil }

// Seq returns the sequence id the next packet will carry (or must carry).
func (c *Conn) Seq() uint8 { return c.seq }

// SetSeq sets the sequence id of the next packet.
func (c *Conn) SetSeq(s uint8) { c.seq = s }

// ResetSeq starts a new command: the next packet has sequence id 0. On a
// compressed connection the compressed sequence restarts too, and what an
// earlier command left buffered is sent first, in its own compressed
// packet (a write error stays with the writer for the next Flush).
func (c *Conn) ResetSeq() {
	c.seq = 0
	if c.comp != nil {
		if c.bw != nil && c.bw.Buffered() > 0 {
			_ = c.bw.Flush()
		}
		c.comp.seq = 0
	}
}

// SetMaxPayload sets the largest payload ReadPacket assembles; it may be
// called while another goroutine reads. Setting the value it has already
// costs a load, not a store (the session sets it before every command).
func (c *Conn) SetMaxPayload(n int) {
	if c.maxPayload.Load() != int64(n) {
		c.maxPayload.Store(int64(n))
	}
}

// SetDeadline sets the read and write deadlines of the socket.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the socket.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the socket.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Buffered returns how many bytes were received and not read yet; a
// non-zero value after a command means the peer pipelined another one.
func (c *Conn) Buffered() int {
	if c.br == nil {
		return 0
	}
	return c.br.Buffered()
}

// BytesRead and BytesWritten count bytes of packets (headers included)
// read from and written to this Conn. Owner goroutine only.
func (c *Conn) BytesRead() uint64 { return c.bytesIn }

// BytesWritten: see BytesRead. A nil Conn (a session without a client)
// wrote nothing.
func (c *Conn) BytesWritten() uint64 {
	if c == nil {
		return 0
	}
	return c.bytesOut
}

// Torn reports whether a packet forwarded to c was cut short: its source
// failed mid-packet, and what follows on c would be read as the rest of
// that packet (a client waits for bytes that never come). Such a Conn can
// only be closed. A nil Conn is not torn.
func (c *Conn) Torn() bool { return c != nil && c.torn }

func (c *Conn) releaseBig() {
	if c.big != nil {
		putBig(c.big)
		c.big = nil
		c.countBuffers()
	}
}

func readErr(err error) error {
	if errors.Is(err, ErrRead) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRead, err)
}

func writeErr(err error) error {
	if errors.Is(err, ErrWrite) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrWrite, err)
}

// midPacket turns a clean EOF inside a packet into io.ErrUnexpectedEOF.
func midPacket(err error) error {
	if err == io.EOF {
		return readErr(io.ErrUnexpectedEOF)
	}
	return readErr(err)
}

// readHeader consumes one packet header, checks and advances the sequence id,
// and returns the payload length.
func (c *Conn) readHeader() (int, error) {
	if c.br == nil {
		return 0, ErrClosed
	}
	h, err := c.br.Peek(4)
	if err != nil {
		if len(h) > 0 {
			return 0, midPacket(err)
		}
		return 0, readErr(err)
	}
	c.noteRead()
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	seq := h[3]
	_, _ = c.br.Discard(4)
	if seq != c.seq && c.comp == nil {
		want := c.seq
		c.seq = seq + 1 // an answer (ERR 1156) follows what the peer sent
		return 0, fmt.Errorf("%w: got %d, want %d", ErrBadSequence, seq, want)
	}
	c.seq = seq + 1
	c.bytesIn += uint64(4 + n)
	return n, nil
}

// writeHeader buffers a packet header with the next sequence id.
func (c *Conn) writeHeader(n int) error {
	if c.comp != nil && c.comp.fresh {
		c.seq, c.comp.fresh = c.comp.seq, false
	}
	c.hdr = [4]byte{byte(n), byte(n >> 8), byte(n >> 16), c.seq}
	if _, err := c.writer().Write(c.hdr[:]); err != nil {
		return writeErr(err)
	}
	c.seq++
	c.bytesOut += uint64(4 + n)
	return nil
}

// PeekHeader returns the payload length and the first payload byte of the
// next packet without consuming anything (first is 0 for an empty payload).
// It blocks until the header (and first byte) arrive. Like every read, it
// invalidates the slice returned by the previous ReadPacket.
func (c *Conn) PeekHeader() (length int, first byte, err error) {
	if c.br == nil {
		return 0, 0, ErrClosed
	}
	c.releaseBig()
	h, err := c.br.Peek(4)
	if err != nil {
		if len(h) > 0 {
			return 0, 0, midPacket(err)
		}
		return 0, 0, readErr(err)
	}
	c.noteRead()
	length = int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if length == 0 {
		return 0, 0, nil
	}
	h, err = c.br.Peek(5)
	if err != nil {
		return 0, 0, midPacket(err)
	}
	return length, h[4], nil
}

// PeekResultEnd looks ahead, consuming nothing, for the terminator of the
// result set whose rows come next on a CLIENT_DEPRECATE_EOF connection (an
// OK with the 0xFE header) and returns its status flags. It waits for what
// the server is sending only while the rows so far fit in the read buffer:
// found is false when the result set is larger than that, or ends in an
// ERR. The rows and the terminator stay unread. Like every read, it
// invalidates the slice returned by the previous ReadPacket.
func (c *Conn) PeekResultEnd() (status uint16, found bool, err error) {
	if c.br == nil {
		return 0, false, ErrClosed
	}
	c.releaseBig()
	off := 0
	for {
		h, err := c.br.Peek(off + 5)
		if err == errBufferFull {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, midPacket(err)
		}
		c.noteRead()
		length := int(h[off]) | int(h[off+1])<<8 | int(h[off+2])<<16
		if length == 0 || length == MaxPayloadLen {
			// Not a row of a result set that fits (a row of 16 MiB and
			// more goes on in the next packets, whatever their first
			// byte).
			return 0, false, nil
		}
		switch first := h[off+4]; {
		case first == HeaderERR:
			return 0, false, nil
		case IsTerminator(first, length):
			p, err := c.br.Peek(off + 4 + length)
			if err == errBufferFull {
				return 0, false, nil
			}
			if err != nil {
				return 0, false, midPacket(err)
			}
			st, ok := TerminatorStatus(p[off+4:])
			return st, ok, nil
		}
		off += 4 + length
	}
}

// ReadPacket reads one logical packet and returns its payload, assembling
// 0xFFFFFF continuation packets (up to SetMaxPayload; a longer packet is
// consumed and discarded, and ErrPacketTooLarge returned, so the stream stays
// usable).
//
// The payload is valid until the next read, peek or forward on this Conn
// (it aliases the read buffer or a pooled buffer); the caller may modify it
// but must copy whatever it keeps.
func (c *Conn) ReadPacket() ([]byte, error) {
	c.releaseBig()
	n, err := c.readHeader()
	if err != nil {
		return nil, err
	}
	if int64(n) > c.maxPayload.Load() {
		// Refused before anything is allocated: a peer announcing 16 MiB
		// over the limit costs a discard, not a buffer.
		return nil, c.discardRest(n)
	}
	if n < MaxPayloadLen && n <= c.br.Size() {
		p, err := c.br.Peek(n)
		if err != nil {
			return nil, midPacket(err)
		}
		_, _ = c.br.Discard(n)
		return p, nil
	}
	// Big packets are read into pooled buffers that grow as the bytes
	// arrive, so a peer announcing 16 MiB and sending nothing makes us hold
	// 64 KiB, not 16 MiB.
	c.big = getBig(min(n, bigClasses[0]))
	*c.big = (*c.big)[:0]
	c.countBuffers()
	for {
		if int64(len(*c.big)+n) > c.maxPayload.Load() {
			return nil, c.discardRest(n)
		}
		if err := c.readAppend(n); err != nil {
			return nil, err
		}
		if n < MaxPayloadLen {
			return *c.big, nil
		}
		if n, err = c.readHeader(); err != nil {
			return nil, err
		}
	}
}

// readAppend reads n payload bytes onto the end of *c.big, moving to a
// bigger pooled buffer (at most double the current one) when it is full.
func (c *Conn) readAppend(n int) error {
	for n > 0 {
		b := *c.big
		if len(b) == cap(b) {
			nb := getBig(min(len(b)+n, 2*cap(b)))
			*nb = append((*nb)[:0], b...)
			putBig(c.big)
			c.big = nb
			b = *nb
			c.countBuffers()
		}
		k := min(n, cap(b)-len(b))
		if _, err := io.ReadFull(c.br, b[len(b):len(b)+k]); err != nil {
			return midPacket(err)
		}
		*c.big = b[:len(b)+k]
		n -= k
	}
	return nil
}

// discardRest skips a payload of n bytes whose header was read, and every
// continuation packet after it, then reports ErrPacketTooLarge.
func (c *Conn) discardRest(n int) error {
	for {
		if _, err := c.br.Discard(n); err != nil {
			return midPacket(err)
		}
		if n < MaxPayloadLen {
			return ErrPacketTooLarge
		}
		var err error
		if n, err = c.readHeader(); err != nil {
			return err
		}
	}
}

// SkipPacket consumes one logical packet without keeping it, and returns its
// first byte and total payload length.
func (c *Conn) SkipPacket() (first byte, length int, err error) {
	c.releaseBig()
	for {
		n, err := c.readHeader()
		if err != nil {
			return first, length, err
		}
		if length == 0 && n > 0 {
			p, err := c.br.Peek(1)
			if err != nil {
				return first, length, midPacket(err)
			}
			first = p[0]
		}
		if _, err := c.br.Discard(n); err != nil {
			return first, length, midPacket(err)
		}
		length += n
		if n < MaxPayloadLen {
			return first, length, nil
		}
	}
}

// ForwardPacket copies one logical packet from c to dst: it checks the
// sequence id on c, re-stamps the header with dst's sequence id, and streams
// the payload straight from c's read buffer into dst's write buffer, chunk by
// chunk, continuation packets included. Nothing is allocated and nothing
// beyond the two 16 KiB buffers is held in memory, whatever the size.
// dst is not flushed. It returns the first payload byte (0 if empty) and the
// total payload length. Errors wrap ErrRead (c failed) or ErrWrite (dst
// failed).
func (c *Conn) ForwardPacket(dst *Conn) (first byte, length int, err error) {
	return c.forward(dst, nil)
}

// ForwardPacketTee is ForwardPacket that also copies the packet into tee
// (the query cache collecting a response).
func (c *Conn) ForwardPacketTee(dst *Conn, tee *Tee) (first byte, length int, err error) {
	return c.forward(dst, tee)
}

func (c *Conn) forward(dst *Conn, tee *Tee) (first byte, length int, err error) {
	c.releaseBig()
	if dst.br == nil {
		return 0, 0, ErrClosed
	}
	for {
		n, err := c.readHeader()
		if err != nil {
			// A continuation that never came: the packet is cut short.
			dst.torn = dst.torn || length > 0
			return first, length, err
		}
		if length == 0 && n > 0 {
			p, err := c.br.Peek(1)
			if err != nil {
				return first, length, midPacket(err)
			}
			first = p[0]
		}
		if err := dst.writeHeader(n); err != nil {
			return first, length, err
		}
		if tee != nil {
			tee.start(n)
		}
		if err := copyN(dst.bw, c.br, n, tee); err != nil {
			dst.torn = true
			return first, length, err
		}
		length += n
		if n < MaxPayloadLen {
			return first, length, nil
		}
	}
}

// copyN moves n bytes from r to w through r's buffer. Unlike io.CopyN (or
// bufio.Writer.ReadFrom, which hands a LimitedReader to net.TCPConn and ends
// up allocating a 32 KiB copy buffer), it never allocates.
func copyN(w *bufio.Writer, r *reader, n int, tee *Tee) error {
	for n > 0 {
		b := r.Buffered()
		if b == 0 {
			if _, err := r.Peek(1); err != nil {
				return midPacket(err)
			}
			b = r.Buffered()
		}
		k := min(b, n)
		p, _ := r.Peek(k)
		if _, err := w.Write(p); err != nil {
			return writeErr(err)
		}
		if tee != nil {
			tee.more(p)
		}
		_, _ = r.Discard(k)
		n -= k
	}
	return nil
}

// WritePacket buffers payload as one logical packet, splitting it into
// 0xFFFFFF-byte packets (plus a final, possibly empty one) when needed.
// Call Flush to send.
func (c *Conn) WritePacket(payload []byte) error {
	if c.br == nil {
		return ErrClosed
	}
	for {
		n := min(len(payload), MaxPayloadLen)
		if err := c.writeHeader(n); err != nil {
			return err
		}
		if _, err := c.bw.Write(payload[:n]); err != nil {
			return writeErr(err)
		}
		payload = payload[n:]
		if n < MaxPayloadLen {
			return nil
		}
	}
}

// Flush sends buffered packets.
func (c *Conn) Flush() error {
	if c.br == nil {
		return ErrClosed
	}
	if c.bw == nil {
		return nil // nothing written since Idle
	}
	if err := c.bw.Flush(); err != nil {
		return writeErr(err)
	}
	return nil
}

// FlushAwait is Flush for a request the peer answers next, with nothing
// else owed: on a socket the request is written and the answer waited for
// without the read that would find nothing yet (rawWriter.writeAwait), and
// its first bytes are buffered for the next read. Errors after the request
// went out are the next read's, as with Flush. Elsewhere (TLS, pipes,
// bytes already buffered) it is Flush.
func (c *Conn) FlushAwait() error {
	if c.br == nil {
		return ErrClosed
	}
	if c.bw == nil {
		return nil
	}
	w, ok := c.out.(*rawWriter)
	if !ok || c.br.raw == nil || c.br.Buffered() > 0 || c.br.pend != nil {
		return c.Flush()
	}
	c.br.r, c.br.w = 0, 0 // nothing unread: the answer goes to the buffer's start
	w.await = c.br
	err := c.bw.Flush()
	w.await = nil
	if err != nil {
		return writeErr(err)
	}
	return nil
}

// WriteOK buffers an OK packet (header 0x00).
func (c *Conn) WriteOK(affected, insertID uint64, status, warnings uint16, info string) error {
	c.scratch = AppendOK(c.scratch[:0], affected, insertID, status, warnings, info)
	return c.WritePacket(c.scratch)
}

// WriteERR buffers an ERR packet.
func (c *Conn) WriteERR(code uint16, sqlState, msg string) error {
	c.scratch = AppendERR(c.scratch[:0], code, sqlState, msg)
	return c.WritePacket(c.scratch)
}

// WriteError buffers e as an ERR packet.
func (c *Conn) WriteError(e *SQLError) error { return c.WriteERR(e.Code, e.State, e.Message) }

// WriteEOF buffers an EOF packet (for clients without CLIENT_DEPRECATE_EOF).
func (c *Conn) WriteEOF(warnings, status uint16) error {
	c.scratch = AppendEOF(c.scratch[:0], warnings, status)
	return c.WritePacket(c.scratch)
}

// WriteResultEnd buffers the end of a result set: an EOF packet, or with
// CLIENT_DEPRECATE_EOF an OK packet with the 0xFE header.
func (c *Conn) WriteResultEnd(deprecateEOF bool, warnings, status uint16) error {
	if deprecateEOF {
		c.scratch = AppendOKTerminator(c.scratch[:0], 0, 0, status, warnings)
	} else {
		c.scratch = AppendEOF(c.scratch[:0], warnings, status)
	}
	return c.WritePacket(c.scratch)
}
