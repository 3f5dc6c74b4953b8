package eventlog

import (
	"encoding/binary"
	"math"
	"time"
	"unicode/utf8"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// backendUsed mirrors ProxySQL, which records a backend (hid and server) only
// when the session had a backend connection with a non-empty address.
func (e *Event) backendUsed() bool { return e.HostgroupID >= 0 && e.Server != "" }

// unixMicro converts t to the microsecond timestamps ProxySQL writes; a zero
// or pre-1970 time becomes 0 rather than wrapping around as an unsigned value.
func unixMicro(t time.Time) uint64 {
	us := t.UnixMicro()
	if us < 0 {
		return 0
	}
	return uint64(us)
}

// appendJSON appends one format-2 line (write_query_format_2_json). ProxySQL
// builds an nlohmann::json object, whose keys live in a std::map, so dump()
// writes them in byte order; the keys below are in that order. The line is
// compact (dump(-1)), not ASCII-escaped, and ends with '\n'.
//
// Presence rules, from the same function and MySQL_Logger::log_request:
//   - client_stmt_id only for COM_STMT_PREPARE and COM_STMT_EXECUTE;
//   - hostgroup_id is -1 and server absent when no backend was used;
//   - rows_affected only when the response was an OK packet, last_insert_id
//     only then and only when it is not 0;
//   - rows_sent always: log_request calls set_rows_sent unconditionally, so a
//     statement answered with OK logs "rows_sent":0.
func appendJSON(b []byte, e *Event) []byte {
	start, end := unixMicro(e.Start), unixMicro(e.End)
	used := e.backendUsed()

	b = append(b, `{"client":`...)
	b = appendJSONString(b, e.Client)
	if e.Type.isStmt() {
		b = append(b, `,"client_stmt_id":`...)
		b = appendUint(b, uint64(e.ClientStmtID))
	}
	b = append(b, `,"digest":"0x`...)
	b = appendHex16(b, e.Digest)
	b = append(b, `","duration_us":`...)
	var dur uint64
	if end > start {
		dur = end - start
	}
	b = appendUint(b, dur)
	b = append(b, `,"endtime":"`...)
	b = appendLocalTime(b, end)
	b = append(b, `","endtime_timestamp_us":`...)
	b = appendUint(b, end)
	b = append(b, `,"event":"`...)
	b = append(b, e.Type.String()...)
	b = append(b, `","hostgroup_id":`...)
	if used {
		b = appendInt(b, int64(e.HostgroupID))
	} else {
		b = append(b, "-1"...)
	}
	if e.HasRowsAffected && e.LastInsertID != 0 {
		b = append(b, `,"last_insert_id":`...)
		b = appendUint(b, e.LastInsertID)
	}
	b = append(b, `,"query":`...)
	b = appendJSONString(b, e.Query)
	if e.HasRowsAffected {
		b = append(b, `,"rows_affected":`...)
		b = appendUint(b, e.RowsAffected)
	}
	b = append(b, `,"rows_sent":`...)
	b = appendUint(b, e.RowsSent)
	b = append(b, `,"schemaname":`...)
	b = appendJSONString(b, e.Schemaname)
	if used {
		b = append(b, `,"server":`...)
		b = appendJSONString(b, e.Server)
	}
	b = append(b, `,"starttime":"`...)
	b = appendLocalTime(b, start)
	b = append(b, `","starttime_timestamp_us":`...)
	b = appendUint(b, start)
	b = append(b, `,"thread_id":`...)
	b = appendUint(b, e.ThreadID)
	b = append(b, `,"username":`...)
	b = appendJSONString(b, e.Username)
	b = append(b, "}\n"...)
	return b
}

// appendAudit encodes an audit event as ProxySQL's write_auth does: one
// JSON object per line, keys in order (nlohmann::json sorts them),
// creation_time and duration on close events only, server_addr and
// extra_info only when set; time in local time with milliseconds.
func appendAudit(b []byte, e *Event) []byte {
	at := unixMicro(e.Start)
	b = append(b, `{"client_addr":`...)
	b = appendJSONString(b, e.Client)
	closeEvent := e.Audit == AuditClientClose || e.Audit == AuditAdminClose
	if closeEvent && !e.Created.IsZero() {
		created := unixMicro(e.Created)
		b = append(b, `,"creation_time":"`...)
		n := len(b)
		b = appendLocalTime(b, created)
		b = b[:n+len("2006-01-02 15:04:05.000")] // milliseconds
		b = append(b, `","duration":"`...)
		var d uint64
		if at > created {
			d = at - created
		}
		b = appendUint(b, d/1000)
		b = append(b, '.')
		b = appendPad(b, int(d%1000), 3)
		b = append(b, `ms"`...)
	}
	b = append(b, `,"event":"`...)
	b = append(b, e.Audit...)
	b = append(b, '"')
	if e.ExtraInfo != "" {
		b = append(b, `,"extra_info":`...)
		b = appendJSONString(b, e.ExtraInfo)
	}
	b = append(b, `,"proxy_addr":`...)
	b = appendJSONString(b, e.ProxyAddr)
	b = append(b, `,"schemaname":`...)
	b = appendJSONString(b, e.Schemaname)
	if e.Server != "" {
		b = append(b, `,"server_addr":`...)
		b = appendJSONString(b, e.Server)
	}
	if e.SSL {
		b = append(b, `,"ssl":true`...)
	} else {
		b = append(b, `,"ssl":false`...)
	}
	b = append(b, `,"thread_id":`...)
	b = appendUint(b, e.ThreadID)
	b = append(b, `,"time":"`...)
	n := len(b)
	b = appendLocalTime(b, at)
	b = b[:n+len("2006-01-02 15:04:05.000")] // milliseconds
	b = append(b, `","timestamp":`...)
	b = appendUint(b, at/1000)
	b = append(b, `,"username":`...)
	b = appendJSONString(b, e.Username)
	b = append(b, "}\n"...)
	return b
}

const hexUpper = "0123456789ABCDEF"
const hexLower = "0123456789abcdef"

// appendHex16 writes v as 16 upper-case hex digits (printf "%016llX").
func appendHex16(b []byte, v uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexUpper[(v>>uint(shift))&0xF])
	}
	return b
}

func appendUint(b []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		if v == math.MinInt64 {
			return append(b, "9223372036854775808"...)
		}
		v = -v
	}
	return appendUint(b, uint64(v))
}

// appendPad writes v with at least width digits, zero padded.
func appendPad(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || len(tmp)-i < width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

// appendLocalTime writes a microsecond epoch timestamp as ProxySQL does:
// strftime("%Y-%m-%d %H:%M:%S") in local time, then ".%06u".
func appendLocalTime(b []byte, us uint64) []byte {
	t := time.Unix(int64(us/1e6), 0)
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendPad(b, year, 4)
	b = append(b, '-', byte('0'+month/10), byte('0'+month%10),
		'-', byte('0'+day/10), byte('0'+day%10),
		' ', byte('0'+hour/10), byte('0'+hour%10),
		':', byte('0'+minute/10), byte('0'+minute%10),
		':', byte('0'+sec/10), byte('0'+sec%10), '.')
	return appendPad(b, int(us%1e6), 6)
}

// appendJSONString writes s as a JSON string the way nlohmann::json's
// dump(-1, ' ', false, error_handler_t::replace) does: '"' and '\\' and the
// control characters get short escapes (\b \f \n \r \t) or \u00xx with lower
// case hex; everything else, including DEL and valid UTF-8, is copied as is.
// Each maximal ill-formed UTF-8 subsequence becomes one U+FFFD, and the byte
// that broke a sequence is read again as the start of the next one — that is
// what nlohmann's Hoehrmann decoder with the replace handler produces.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&0xF])
			}
			i++
			start = i
			continue
		}
		n, ok := utf8Seq(s, i)
		if !ok {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			start = i + n
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// utf8Seq checks the UTF-8 sequence starting at s[i] (s[i] >= 0x80) against
// the well-formed byte table of Unicode §3.9 (Table 3-7). It returns the
// sequence length and true when it is well formed; otherwise the number of
// bytes to replace with a single U+FFFD: 1 for a bad lead byte, the length of
// the valid prefix when a later byte breaks it (that byte is then decoded
// again), or everything up to the end of s for a truncated sequence.
func utf8Seq(s string, i int) (int, bool) {
	c := s[i]
	size := 0
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		size = 2
	case c == 0xE0:
		size, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		size = 3
	case c == 0xED:
		size, hi = 3, 0x9F
	case c == 0xF0:
		size, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		size = 4
	case c == 0xF4:
		size, hi = 4, 0x8F
	default:
		return 1, false
	}
	for k := 1; k < size; k++ {
		if i+k >= len(s) {
			return k, false
		}
		d := s[i+k]
		if k == 1 {
			if d < lo || d > hi {
				return 1, false
			}
		} else if d < 0x80 || d > 0xBF {
			return k, false
		}
	}
	return size, true
}

// noHostgroup is the hid ProxySQL writes when no backend was used (UINT64_MAX).
const noHostgroup = math.MaxUint64

// appendBinary appends one format-1 record (write_query_format_1): a uint64
// length, the event type byte, then length-encoded integers and strings:
// thread_id, username, schemaname, client, hid (+ server when hid is not
// UINT64_MAX), start_time, end_time, client_stmt_id (PREPARE/EXECUTE only),
// affected_rows, last_insert_id, rows_sent, digest, query.
//
// The length is computed exactly as ProxySQL computes it, which counts the
// encoded client_stmt_id even for COM_QUERY, where the field is not written:
// a COM_QUERY record is one byte shorter than its length says. ProxySQL's own
// reader (tools/eventslog_reader_sample.cpp) parses field by field and never
// uses the length to skip, so files stay readable; Sluice keeps the quirk so
// that any tool that copes with ProxySQL's files copes with Sluice's.
func appendBinary(b []byte, e *Event) []byte {
	hid := uint64(noHostgroup)
	used := e.backendUsed()
	if used {
		hid = uint64(e.HostgroupID)
	}
	var affected, lastID uint64
	if e.HasRowsAffected {
		affected, lastID = e.RowsAffected, e.LastInsertID
	}
	start, end := unixMicro(e.Start), unixMicro(e.End)
	stmtID := uint64(e.ClientStmtID)
	ul, sl, cl, ql := uint64(len(e.Username)), uint64(len(e.Schemaname)), uint64(len(e.Client)), uint64(len(e.Query))

	total := uint64(1)
	total += uint64(wire.LenEncIntSize(e.ThreadID))
	total += uint64(wire.LenEncIntSize(ul)) + ul
	total += uint64(wire.LenEncIntSize(sl)) + sl
	total += uint64(wire.LenEncIntSize(cl)) + cl
	total += uint64(wire.LenEncIntSize(hid))
	if used {
		srv := uint64(len(e.Server))
		total += uint64(wire.LenEncIntSize(srv)) + srv
	}
	total += uint64(wire.LenEncIntSize(start)) + uint64(wire.LenEncIntSize(end))
	total += uint64(wire.LenEncIntSize(stmtID)) // counted for every event type, as in ProxySQL
	total += uint64(wire.LenEncIntSize(affected)) + uint64(wire.LenEncIntSize(lastID)) + uint64(wire.LenEncIntSize(e.RowsSent))
	total += uint64(wire.LenEncIntSize(e.Digest))
	total += uint64(wire.LenEncIntSize(ql)) + ql

	b = binary.LittleEndian.AppendUint64(b, total)
	b = append(b, byte(e.Type))
	b = wire.AppendLenEncInt(b, e.ThreadID)
	b = wire.AppendLenEncInt(b, ul)
	b = append(b, e.Username...)
	b = wire.AppendLenEncInt(b, sl)
	b = append(b, e.Schemaname...)
	b = wire.AppendLenEncInt(b, cl)
	b = append(b, e.Client...)
	b = wire.AppendLenEncInt(b, hid)
	if used {
		b = wire.AppendLenEncInt(b, uint64(len(e.Server)))
		b = append(b, e.Server...)
	}
	b = wire.AppendLenEncInt(b, start)
	b = wire.AppendLenEncInt(b, end)
	if e.Type.isStmt() {
		b = wire.AppendLenEncInt(b, stmtID)
	}
	b = wire.AppendLenEncInt(b, affected)
	b = wire.AppendLenEncInt(b, lastID)
	b = wire.AppendLenEncInt(b, e.RowsSent)
	b = wire.AppendLenEncInt(b, e.Digest)
	b = wire.AppendLenEncInt(b, ql)
	return append(b, e.Query...)
}
