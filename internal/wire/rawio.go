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
	return w
}

func (w *rawWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.p, w.n, w.err = p, 0, nil
	err := w.raw.Write(w.fn)
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
