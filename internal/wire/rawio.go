package wire

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Socket reads and writes bypass the runtime's system-call bookkeeping.
//
// The socket is non-blocking, so read(2) and write(2) return at once:
// with data, a partial write, or EAGAIN (then the goroutine waits in the
// netpoller as usual, through syscall.RawConn). A plain syscall.Read or
// net.Conn.Write marks the goroutine's P as "in a system call" for the
// duration, and under load a write that wakes the peer often gets the
// thread descheduled by the kernel inside the call: the runtime's sysmon
// then sees a P stuck in a system call, hands it to another thread
// (futex wake-ups, thread switches) and keeps polling every 20 µs. The
// profile under sysbench showed that churn (sysmon, handoffp, usleep)
// as a large part of the proxy's CPU per query. A raw system call keeps
// the P: nothing to hand off, nothing for sysmon to watch.

// readFD is one read(2) of fd into p (len(p) > 0).
func readFD(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

// rawWriter is the io.Writer behind a socket Conn's buffered writer: each
// Write is write(2) calls in a RawConn.Write callback until p is out,
// waiting for writability on EAGAIN. Deadlines and a concurrent Close work
// as with net.Conn.Write.
type rawWriter struct {
	raw syscall.RawConn
	nc  net.Conn // for error messages

	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.write, built once: a Write allocates nothing

	// await, set by Conn.FlushAwait for one Write, is the same socket's
	// reader: the write is made inside RawConn.Read and the answer's first
	// bytes are read into it (writeAwait).
	await       *reader
	afn         func(fd uintptr) bool // w.awaitStep, built once
	sent, short bool
}

// rawConnOf is the RawConn of a socket (a syscall.Conn), nil for anything
// else (TLS, net.Pipe): the one test of whether reads and writes take the
// raw path.
func rawConnOf(v any) syscall.RawConn {
	sc, ok := v.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeTarget is where a Conn's writes go: a rawWriter on a socket, nc
// itself otherwise.
func writeTarget(nc net.Conn) io.Writer {
	raw := rawConnOf(nc)
	if raw == nil {
		return nc
	}
	w := &rawWriter{raw: raw, nc: nc}
	w.fn = w.write
	w.afn = w.awaitStep
	return w
}

func (w *rawWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.await != nil {
		return w.writeAwait(p)
	}
	w.p, w.n, w.err = p, 0, nil
	err := w.raw.Write(w.fn)
	return w.done(err)
}

// done ends a Write: the bytes written and the error, if any.
func (w *rawWriter) done(err error) (int, error) {
	n := w.n
	w.p = nil
	if err == nil {
		err = w.err
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: w.nc.LocalAddr().Network(), Source: w.nc.LocalAddr(), Addr: w.nc.RemoteAddr(), Err: err}
	}
	return n, nil
}

// writeAwait writes a request and waits for its answer without first
// reading in vain. A read right after a write almost always finds nothing
// (the peer has not answered yet): read(2) says EAGAIN, and only then does
// the goroutine wait. RawConn.Read cannot simply wait first: it clears the
// socket's readiness before calling back, so bytes that arrived before
// that (and whose readiness the netpoller had already seen) would go
// unnoticed. Writing the request inside the RawConn.Read callback puts the
// clearing before the request: every byte of the answer arrives after it,
// and waiting first is safe. The caller (Conn.FlushAwait) makes sure the
// peer owes nothing else. A write that cannot finish at once (a full
// socket buffer) is finished the ordinary way, and the answer then is read
// the ordinary way too. Whatever the wait and the first read bring goes
// to the reader: bytes into its buffer, an error or EOF as its next read's
// result, so a failure after the request went out is never taken for a
// failed write.
func (w *rawWriter) writeAwait(p []byte) (int, error) {
	rd := w.await
	w.p, w.n, w.err, w.sent, w.short = p, 0, nil, false, false
	rd.dst, rd.rn, rd.rerr = nil, 0, nil
	err := w.raw.Read(w.afn)
	if !w.sent {
		if err == nil && w.err == nil && w.short {
			err = w.raw.Write(w.fn)
		}
		return w.done(err)
	}
	switch {
	case err != nil:
		rd.pend = err
	case rd.rerr != nil:
		rd.pend, rd.rerr = rd.rerr, nil
	case rd.rn == 0:
		rd.pend = io.EOF
	}
	w.p = nil
	return len(p), nil
}

// awaitStep is writeAwait's RawConn.Read callback: first the request
// (false: wait for the answer), then one read of it.
func (w *rawWriter) awaitStep(fd uintptr) bool {
	if w.sent {
		return w.await.rawRead(fd)
	}
	if !w.write(fd) {
		w.short = true // EAGAIN part-way: finish with raw.Write
		return true
	}
	if w.err != nil {
		return true
	}
	w.sent = true
	return false
}

// write is the RawConn.Write callback; false waits for writability.
func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.p) {
		rest := w.p[w.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		switch e {
		case 0:
			w.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// PeekResult is what a non-blocking look at a socket found.
type PeekResult uint8

const (
	PeekUnknown PeekResult = iota // not a plain socket (TLS), or the look failed
	PeekEmpty                     // open, nothing waiting
	PeekData                      // bytes waiting
	PeekClosed                    // the peer closed or reset the connection
)

// Peek looks at the socket under nc without blocking or consuming, and
// without the read lock a reader holds. Only what the kernel says for
// certain counts: a connection that is not a plain socket (TLS, whose
// records the proxy cannot read around) is PeekUnknown.
func Peek(nc net.Conn) PeekResult {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return PeekUnknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return PeekUnknown
	}
	r := PeekUnknown
	var b [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil && n == 0:
			r = PeekClosed // end of stream
		case err == nil:
			r = PeekData
		case err == syscall.EAGAIN:
			r = PeekEmpty
		case err != syscall.EINTR:
			r = PeekClosed // reset
		}
	})
	return r
}
