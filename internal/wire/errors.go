package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. I/O failures are wrapped with ErrRead or ErrWrite (and the
// underlying error, so errors.Is(err, io.EOF) still works) to tell a proxy
// which side of a forward failed.
var (
	ErrRead           = errors.New("wire: read failed")
	ErrWrite          = errors.New("wire: write failed")
	ErrBadSequence    = errors.New("wire: packet out of sequence")
	ErrPacketTooLarge = errors.New("wire: packet larger than the allowed maximum")
	ErrMalformed      = errors.New("wire: malformed packet")
	ErrClosed         = errors.New("wire: connection closed")
	ErrNeedProto41    = errors.New("wire: client does not support protocol 4.1")
)

// SQLError is a MySQL ERR packet: what a server (or the proxy) reports to a
// client.
type SQLError struct {
	Code    uint16
	State   string // five characters, "HY000" when the server sent none
	Message string
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}
