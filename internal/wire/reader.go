package wire

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// errBufferFull is returned by Peek when more bytes are asked for than the
// buffer holds (as bufio.ErrBufferFull).
var errBufferFull = errors.New("wire: peek larger than the read buffer")

// reader is the buffered reader behind a Conn: the Peek/Discard/Read subset
// of bufio.Reader that the packet code uses, with one thing bufio cannot do:
// its buffer can be handed back to a pool while the connection waits.
//
// On a socket (raw != nil) a read takes the buffer inside the callback of
// syscall.RawConn.Read, around the read(2) itself: when read(2) says
// EAGAIN the buffer goes back to the pool before the goroutine parks in the
// netpoller. A session waiting for its client's next command therefore
// holds no read buffer, at the cost of two pool operations per wait and no
// extra system call. Without raw (a TLS connection, net.Pipe in tests) the
// buffer is taken before the read and held across the wait, as bufio does.
type reader struct {
	pool *sync.Pool // of *[]byte, all of length size
	buf  *[]byte    // nil while released
	size int
	r, w int
	src  io.Reader
	raw  syscall.RawConn

	// rawRead's results, and the method value given to raw.Read (built
	// once, so a read allocates nothing).
	dst   []byte // nil: read into the buffer
	rn    int
	rerr  error
	rawFn func(fd uintptr) bool

	// pend is the outcome of a read made by Conn.FlushAwait that brought
	// no byte (an error, io.EOF): the next read returns it.
	pend error
}

var (
	bufPool      = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, ClientReadBufferSize); return &b }}
)

func newReader(src io.Reader, size int) *reader {
	rd := &reader{size: size, pool: &bufPool}
	if size == ClientReadBufferSize {
		rd.pool = &smallBufPool
	}
	rd.rawFn = rd.rawRead
	rd.Reset(src)
	return rd
}

// Reset points the reader at src, dropping anything buffered. A src that is
// a socket (syscall.Conn) is read through its RawConn.
func (rd *reader) Reset(src io.Reader) {
	rd.r, rd.w, rd.pend = 0, 0, nil
	rd.src, rd.raw = src, rawConnOf(src)
}

// Size is the buffer's size.
func (rd *reader) Size() int { return rd.size }

// Buffered is how many received bytes were not consumed yet.
func (rd *reader) Buffered() int { return rd.w - rd.r }

// release gives the buffer back to the pool if it holds nothing unread and
// the next read can take one back only when bytes arrive (raw). It reports
// whether the buffer was released.
func (rd *reader) release() bool {
	if rd.buf == nil || rd.r != rd.w || rd.raw == nil {
		return false
	}
	rd.drop()
	return true
}

// drop gives the buffer back unconditionally (Close).
func (rd *reader) drop() {
	if rd.buf != nil {
		rd.pool.Put(rd.buf)
		rd.buf = nil
	}
	rd.r, rd.w = 0, 0
}

// Peek returns the next n bytes without consuming them. The slice is valid
// until the next read or release.
func (rd *reader) Peek(n int) ([]byte, error) {
	if n > rd.size {
		return nil, errBufferFull
	}
	for rd.w-rd.r < n {
		if err := rd.fill(); err != nil {
			if rd.buf == nil {
				return nil, err
			}
			return (*rd.buf)[rd.r:rd.w], err
		}
	}
	return (*rd.buf)[rd.r : rd.r+n], nil
}

// Discard skips the next n bytes, reading as many as needed.
func (rd *reader) Discard(n int) (int, error) {
	remain := n
	for {
		skip := min(rd.w-rd.r, remain)
		rd.r += skip
		remain -= skip
		if remain == 0 {
			return n, nil
		}
		if err := rd.fill(); err != nil {
			return n - remain, err
		}
	}
}

// Read reads into p (io.Reader): buffered bytes first; a read at least as
// large as the buffer goes straight from the socket into p.
func (rd *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rd.r == rd.w {
		if len(p) >= rd.size {
			return rd.readInto(p)
		}
		if err := rd.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*rd.buf)[rd.r:rd.w])
	rd.r += n
	return n, nil
}

// ReadByte reads one byte (io.ByteReader).
func (rd *reader) ReadByte() (byte, error) {
	if rd.r == rd.w {
		if err := rd.fill(); err != nil {
			return 0, err
		}
	}
	b := (*rd.buf)[rd.r]
	rd.r++
	return b, nil
}

// fill reads once more into the buffer (taking one if released), after
// moving unread bytes to its start. It returns an error only if no byte
// arrived.
func (rd *reader) fill() error {
	if rd.buf != nil && rd.r > 0 {
		copy(*rd.buf, (*rd.buf)[rd.r:rd.w])
		rd.w -= rd.r
		rd.r = 0
	}
	if rd.buf != nil && rd.w == rd.size {
		return errBufferFull
	}
	_, err := rd.readInto(nil)
	return err
}

// readInto reads from the source into dst, or into the free end of the
// buffer when dst is nil (advancing w). n == 0 always comes with an error.
func (rd *reader) readInto(dst []byte) (int, error) {
	if err := rd.pend; err != nil {
		rd.pend = nil
		return 0, err
	}
	if rd.raw == nil {
		if dst == nil && rd.buf == nil {
			rd.buf = rd.pool.Get().(*[]byte)
		}
		for range 100 {
			var n int
			var err error
			if dst != nil {
				n, err = rd.src.Read(dst)
			} else {
				n, err = rd.src.Read((*rd.buf)[rd.w:])
				rd.w += n
			}
			if n > 0 {
				return n, nil
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	rd.dst, rd.rn, rd.rerr = dst, 0, nil
	if err := rd.raw.Read(rd.rawFn); err != nil {
		rd.dst = nil
		return 0, err
	}
	rd.dst = nil
	n, err := rd.rn, rd.rerr
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// rawRead is the RawConn.Read callback: one read(2), with the buffer taken
// only for its duration when nothing has arrived. It returns false to wait
// for readability.
func (rd *reader) rawRead(fd uintptr) bool {
	p := rd.dst
	took := false
	if p == nil {
		if rd.buf == nil {
			rd.buf = rd.pool.Get().(*[]byte)
			took = true
		}
		p = (*rd.buf)[rd.w:]
	}
	for {
		n, err := readFD(fd, p)
		switch err {
		case 0:
			if rd.dst == nil {
				rd.w += n
			}
			rd.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if took {
				rd.pool.Put(rd.buf)
				rd.buf = nil
			}
			return false
		default:
			if took {
				rd.pool.Put(rd.buf)
				rd.buf = nil
			}
			rd.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
			return true
		}
	}
}
