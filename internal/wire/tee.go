package wire

// Tee collects a copy of the packets of one response as the proxy sends
// them to a client, for the query cache: each packet as a 3-byte
// little-endian payload length followed by the payload. It stops growing
// at Max bytes (Over is set, and the copy is worthless), and never holds
// a packet of MaxPayloadLen or more (a response with such a row is not
// cached).
type Tee struct {
	Buf  []byte
	Max  int
	Over bool
}

// Reset empties the tee for a response of at most max bytes, keeping its
// buffer.
func (t *Tee) Reset(max int) {
	t.Buf, t.Max, t.Over = t.Buf[:0], max, false
}

// Add copies one whole payload.
func (t *Tee) Add(p []byte) {
	t.start(len(p))
	t.more(p)
}

// start begins a packet of n payload bytes.
func (t *Tee) start(n int) {
	if t.Over {
		return
	}
	if n >= MaxPayloadLen || len(t.Buf)+3+n > t.Max {
		t.Over = true
		return
	}
	t.Buf = append(t.Buf, byte(n), byte(n>>8), byte(n>>16))
}

// more appends payload bytes of the packet begun by start.
func (t *Tee) more(p []byte) {
	if !t.Over {
		t.Buf = append(t.Buf, p...)
	}
}

// EachPacket calls f with every payload of a Tee's Buf, in order, and stops
// at f's first error. A malformed buffer ends the walk with ErrMalformed.
func EachPacket(buf []byte, f func(p []byte) error) error {
	for len(buf) > 0 {
		if len(buf) < 3 {
			return ErrMalformed
		}
		n := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16
		if len(buf) < 3+n {
			return ErrMalformed
		}
		if err := f(buf[3 : 3+n]); err != nil {
			return err
		}
		buf = buf[3+n:]
	}
	return nil
}
