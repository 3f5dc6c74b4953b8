package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// AppendLenEncInt appends a length-encoded integer.
func AppendLenEncInt(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	default:
		return append(b, 0xfe, byte(n), byte(n>>8), byte(n>>16), byte(n>>24),
			byte(n>>32), byte(n>>40), byte(n>>48), byte(n>>56))
	}
}

// AppendLenEncString appends a length-encoded string.
func AppendLenEncString(b []byte, s string) []byte {
	return append(AppendLenEncInt(b, uint64(len(s))), s...)
}

// AppendLenEncBytes appends a length-encoded byte string.
func AppendLenEncBytes(b, s []byte) []byte {
	return append(AppendLenEncInt(b, uint64(len(s))), s...)
}

// ReadLenEncInt decodes a length-encoded integer at the start of b. isNull is
// set for the 0xFB (NULL) marker. ok is false when b is too short or starts
// with 0xFF, which is not a valid length-encoded integer.
func ReadLenEncInt(b []byte) (n uint64, isNull bool, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, false, b, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), false, b[1:], true
	case c == 0xfb:
		return 0, true, b[1:], true
	case c == 0xfc:
		if len(b) < 3 {
			return 0, false, b, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), false, b[3:], true
	case c == 0xfd:
		if len(b) < 4 {
			return 0, false, b, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, false, b[4:], true
	case c == 0xfe:
		if len(b) < 9 {
			return 0, false, b, false
		}
		return binary.LittleEndian.Uint64(b[1:]), false, b[9:], true
	}
	return 0, false, b, false
}

// ReadLenEncString decodes a length-encoded string at the start of b. The
// result aliases b.
func ReadLenEncString(b []byte) (s []byte, isNull bool, rest []byte, ok bool) {
	n, isNull, rest, ok := ReadLenEncInt(b)
	if !ok || isNull {
		return nil, isNull, rest, ok
	}
	if uint64(len(rest)) < n {
		return nil, false, b, false
	}
	return rest[:n], false, rest[n:], true
}

// readNulString returns the bytes before the first NUL and what follows it.
// Without a NUL, the whole of b is the string (several clients omit the last
// terminator of a handshake packet).
func readNulString(b []byte) (s, rest []byte) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// OK is a parsed OK packet (protocol 4.1, no session tracking).
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	Info         []byte // human-readable info, without its length; aliases the packet
}

// AppendOK appends an OK packet payload (header 0x00). A non-empty info
// message follows the warnings as a length-encoded string, as MySQL's
// net_send_ok, MariaDB and ProxySQL write it with or without
// CLIENT_SESSION_TRACK, and as libmysqlclient, libmariadb and mysqlnd read
// it (the protocol documentation's string<EOF> is not what clients parse:
// libmariadb rejects it as a malformed packet). An empty info adds nothing.
func AppendOK(buf []byte, affected, insertID uint64, status, warnings uint16, info string) []byte {
	buf = append(buf, HeaderOK)
	buf = AppendLenEncInt(buf, affected)
	buf = AppendLenEncInt(buf, insertID)
	buf = append(buf, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
	if info == "" {
		return buf
	}
	return AppendLenEncString(buf, info)
}

// AppendOKTerminator appends the OK packet that ends a result set when
// CLIENT_DEPRECATE_EOF is in effect: an OK with the 0xFE header.
func AppendOKTerminator(buf []byte, affected, insertID uint64, status, warnings uint16) []byte {
	buf = append(buf, HeaderEOF)
	buf = AppendLenEncInt(buf, affected)
	buf = AppendLenEncInt(buf, insertID)
	return append(buf, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
}

// ParseOK parses an OK packet, header 0x00 or (DEPRECATE_EOF terminator) 0xFE.
func ParseOK(p []byte) (OK, error) {
	var ok OK
	if len(p) < 1 || (p[0] != HeaderOK && p[0] != HeaderEOF) {
		return ok, malformed("not an OK packet")
	}
	var good bool
	rest := p[1:]
	if ok.AffectedRows, _, rest, good = ReadLenEncInt(rest); !good {
		return ok, malformed("OK affected rows")
	}
	if ok.LastInsertID, _, rest, good = ReadLenEncInt(rest); !good {
		return ok, malformed("OK last insert id")
	}
	if len(rest) < 4 {
		// Pre-4.1 servers stop here; Sluice requires 4.1, but a short
		// OK is still an OK.
		if len(rest) >= 2 {
			ok.Status = binary.LittleEndian.Uint16(rest)
		}
		return ok, nil
	}
	ok.Status = binary.LittleEndian.Uint16(rest)
	ok.Warnings = binary.LittleEndian.Uint16(rest[2:])
	ok.Info = rest[4:]
	// The info is a length-encoded string (see AppendOK); a server that
	// wrote it raw is taken as it is.
	if info, _, tail, good := ReadLenEncString(ok.Info); good && len(tail) == 0 {
		ok.Info = info
	}
	return ok, nil
}

// AppendERR appends an ERR packet payload (protocol 4.1, with SQL state).
// A sqlState that is not five bytes long is replaced by "HY000".
func AppendERR(buf []byte, code uint16, sqlState, msg string) []byte {
	if len(sqlState) != 5 {
		sqlState = "HY000"
	}
	buf = append(buf, HeaderERR, byte(code), byte(code>>8), '#')
	buf = append(buf, sqlState...)
	return append(buf, msg...)
}

// ParseERR parses an ERR packet.
func ParseERR(p []byte) (*SQLError, error) {
	if len(p) < 3 || p[0] != HeaderERR {
		return nil, malformed("not an ERR packet")
	}
	e := &SQLError{Code: binary.LittleEndian.Uint16(p[1:]), State: "HY000"}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	if len(rest) > MaxErrMessage {
		// A real server's messages fit; a longer one is a broken or
		// hostile peer, and every copy the proxy keeps (logs, monitor
		// tables, stats) would hold it whole.
		rest = rest[:MaxErrMessage]
		for len(rest) > MaxErrMessage-utf8.UTFMax && !utf8.Valid(rest) {
			rest = rest[:len(rest)-1]
		}
	}
	e.Message = string(rest)
	return e, nil
}

// MaxErrMessage is the longest error message ParseERR keeps: MariaDB's and
// MySQL's MYSQL_ERRMSG_SIZE, the buffer libmysqlclient copies it into.
const MaxErrMessage = 512

// AppendEOF appends an EOF packet payload.
func AppendEOF(buf []byte, warnings, status uint16) []byte {
	return append(buf, HeaderEOF, byte(warnings), byte(warnings>>8), byte(status), byte(status>>8))
}

// IsEOF reports whether p is an EOF packet: 0xFE and shorter than 9 bytes
// (a longer 0xFE payload is a row or a DEPRECATE_EOF OK).
func IsEOF(p []byte) bool { return len(p) > 0 && len(p) < 9 && p[0] == HeaderEOF }

// IsOK reports whether p is an OK packet with the 0x00 header.
func IsOK(p []byte) bool { return len(p) > 0 && p[0] == HeaderOK }

// IsERR reports whether p is an ERR packet.
func IsERR(p []byte) bool { return len(p) > 0 && p[0] == HeaderERR }

// IsTerminator reports whether a packet inside a result set (after the
// column definitions) ends it, given its first byte and length as returned
// by PeekHeader: an EOF packet, or with CLIENT_DEPRECATE_EOF an OK packet
// with the 0xFE header. A row starts with 0xFE only when its first value is
// at least 2^24 bytes, so its length is never below 0xFFFFFF. ERR packets
// also end a result set; check them separately with HeaderERR.
func IsTerminator(first byte, length int) bool {
	return first == HeaderEOF && length < MaxPayloadLen
}

// ParseEOF returns the warnings and status flags of an EOF packet.
func ParseEOF(p []byte) (warnings, status uint16, ok bool) {
	if !IsEOF(p) {
		return 0, 0, false
	}
	if len(p) >= 5 {
		warnings = binary.LittleEndian.Uint16(p[1:])
		status = binary.LittleEndian.Uint16(p[3:])
	}
	return warnings, status, true
}

// isEOFLayout tells an EOF packet (exactly 5 bytes in protocol 4.1, 1 byte
// before it) from a DEPRECATE_EOF OK terminator (at least 7 bytes); both
// start with 0xFE and both are shorter than 9 bytes at their smallest.
func isEOFLayout(p []byte) bool { return len(p) > 0 && len(p) <= 5 && p[0] == HeaderEOF }

// ParseTerminator returns the warnings and status flags of a result set
// terminator, EOF or DEPRECATE_EOF OK alike.
func ParseTerminator(p []byte) (warnings, status uint16, err error) {
	if isEOFLayout(p) {
		w, s, _ := ParseEOF(p)
		return w, s, nil
	}
	ok, err := ParseOK(p)
	if err != nil {
		return 0, 0, err
	}
	return ok.Warnings, ok.Status, nil
}

// terminatorStatusAt is the offset of the status flags in a result set
// terminator (EOF, or OK with CLIENT_DEPRECATE_EOF), or -1 when p is too
// short to hold them.
func terminatorStatusAt(p []byte) int {
	at := 3 // EOF: header, warnings, status
	if !isEOFLayout(p) {
		if len(p) == 0 {
			return -1
		}
		_, _, rest, ok := ReadLenEncInt(p[1:]) // affected rows
		if !ok {
			return -1
		}
		if _, _, rest, ok = ReadLenEncInt(rest); !ok { // insert id
			return -1
		}
		at = len(p) - len(rest)
	}
	if at+2 > len(p) {
		return -1
	}
	return at
}

// TerminatorStatus returns the status flags of a result set terminator
// without allocating; ok is false when p cannot hold them.
func TerminatorStatus(p []byte) (status uint16, ok bool) {
	at := terminatorStatusAt(p)
	if at < 0 {
		return 0, false
	}
	return uint16(p[at]) | uint16(p[at+1])<<8, true
}

// SetTerminatorStatus rewrites, in place, the bits of mask in the status
// of a result set terminator (EOF, or OK with CLIENT_DEPRECATE_EOF) to
// those of status. A packet it cannot parse is left alone.
func SetTerminatorStatus(p []byte, mask, status uint16) {
	at := terminatorStatusAt(p)
	if at < 0 {
		return
	}
	st := uint16(p[at]) | uint16(p[at+1])<<8
	st = st&^mask | status&mask
	p[at], p[at+1] = byte(st), byte(st>>8)
}

// EOFToOK converts a result set terminator into the form a
// CLIENT_DEPRECATE_EOF client expects (OK with the 0xFE header), appending to
// buf. An OK terminator is copied unchanged.
func EOFToOK(buf, p []byte) ([]byte, error) {
	if !isEOFLayout(p) {
		if _, err := ParseOK(p); err != nil {
			return buf, err
		}
		return append(buf, p...), nil
	}
	w, s, _ := ParseEOF(p)
	return AppendOKTerminator(buf, 0, 0, s, w), nil
}

// OKToEOF converts a result set terminator into the EOF packet a client
// without CLIENT_DEPRECATE_EOF expects, appending to buf. An EOF is copied
// unchanged.
func OKToEOF(buf, p []byte) ([]byte, error) {
	if isEOFLayout(p) {
		return append(buf, p...), nil
	}
	ok, err := ParseOK(p)
	if err != nil {
		return buf, err
	}
	return AppendEOF(buf, ok.Warnings, ok.Status), nil
}
