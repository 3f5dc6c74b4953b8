package wire

import (
	"io"
	"time"
)

// throttleWindow is the period over which a write limit is enforced: a
// tenth of the per-second budget may go out in each, as ProxySQL's
// MySQL_Session::writeout does (mysql-throttle_max_bytes_per_second_to_client).
const throttleWindow = 100 * time.Millisecond

// limitWriter passes writes to out at no more than rate bytes per second,
// sleeping between windows. It sits right above the socket (below the
// compressed protocol), so what it counts is what crosses the network.
type limitWriter struct {
	out   io.Writer
	rate  int64     // bytes per second, > 0
	start time.Time // of the current window
	sent  int64     // bytes written in it
}

func (l *limitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		budget := max(l.rate/10, 1)
		now := time.Now()
		if now.Sub(l.start) >= throttleWindow {
			l.start, l.sent = now, 0
		}
		if l.sent >= budget {
			time.Sleep(l.start.Add(throttleWindow).Sub(now))
			continue
		}
		k := min(int64(len(p)), budget-l.sent)
		n, err := l.out.Write(p[:k])
		written += n
		l.sent += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// SetWriteLimit limits the bytes this Conn sends to bytesPerSec, counted on
// the wire (after compression), in windows of 100 ms; 0 lifts the limit.
// The session calls it before each command with the runtime's value, so
// an unlimited connection pays one comparison. Anything buffered is sent
// first, under the old limit.
func (c *Conn) SetWriteLimit(bytesPerSec int64) error {
	if c.lim == nil {
		if bytesPerSec <= 0 {
			return nil
		}
	} else if bytesPerSec > 0 {
		c.lim.rate = bytesPerSec
		return nil
	}
	if c.br == nil {
		return ErrClosed
	}
	if err := c.Flush(); err != nil {
		return err
	}
	sock := c.out
	if c.comp != nil {
		sock = c.comp.w.out
	}
	if c.lim != nil {
		sock = c.lim.out
		c.lim = nil
	}
	next := sock
	if bytesPerSec > 0 {
		c.lim = &limitWriter{out: sock, rate: bytesPerSec}
		next = c.lim
	}
	if c.comp != nil {
		c.comp.w.out = next
		return nil
	}
	c.out = next
	if c.bw != nil {
		c.bw.Reset(next)
	}
	return nil
}
