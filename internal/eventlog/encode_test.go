package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

func TestMain(m *testing.M) {
	// A fixed zone east of UTC makes the local-time fields differ from the
	// UTC ones, so the tests notice a formatter that ignores the zone.
	time.Local = time.FixedZone("TEST", 2*3600+30*60)
	os.Exit(m.Run())
}

var (
	t0 = time.Date(2024, 10, 14, 8, 59, 58, 123456000, time.UTC)
	t1 = t0.Add(2*time.Second + 7*time.Microsecond) // crosses a minute and an hour
)

func baseEvent() *Event {
	return &Event{
		Type:        ComQuery,
		ThreadID:    42,
		Username:    "root",
		Schemaname:  "test",
		Client:      "127.0.0.1:50001",
		HostgroupID: 1,
		Server:      "10.0.0.5:9030",
		Start:       t0,
		End:         t1,
		Digest:      0x0A1B2C3D4E5F6071,
		Query:       "SELECT 1",
	}
}

func TestJSONExactLine(t *testing.T) {
	e := baseEvent()
	e.RowsSent, e.HasRowsSent = 1, true
	got := string(appendJSON(nil, e))
	want := `{"client":"127.0.0.1:50001","digest":"0x0A1B2C3D4E5F6071","duration_us":2000007,` +
		`"endtime":"2024-10-14 11:30:00.123463","endtime_timestamp_us":1728896400123463,` +
		`"event":"COM_QUERY","hostgroup_id":1,"query":"SELECT 1","rows_sent":1,"schemaname":"test",` +
		`"server":"10.0.0.5:9030","starttime":"2024-10-14 11:29:58.123456",` +
		`"starttime_timestamp_us":1728896398123456,"thread_id":42,"username":"root"}` + "\n"
	if got != want {
		t.Fatalf("line mismatch\n got: %s\nwant: %s", got, want)
	}
}

// keysOf decodes a line and returns its keys in file order.
func keysOf(t *testing.T, line []byte) ([]string, map[string]any) {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	var keys []string
	tok := json.NewDecoder(bytes.NewReader(line))
	depth := 0
	expectKey := false
	for {
		tk, err := tok.Token()
		if err != nil {
			break
		}
		switch v := tk.(type) {
		case json.Delim:
			if v == '{' {
				depth++
				expectKey = true
			} else if v == '}' {
				depth--
			}
			continue
		case string:
			if depth == 1 && expectKey {
				keys = append(keys, v)
				expectKey = false
				continue
			}
		}
		expectKey = true
	}
	return keys, m
}

func TestJSONPresenceRules(t *testing.T) {
	type check struct {
		name    string
		mod     func(e *Event)
		present []string
		absent  []string
		values  map[string]string
	}
	cases := []check{
		{
			name:    "OK packet with insert id",
			mod:     func(e *Event) { e.HasRowsAffected, e.RowsAffected, e.LastInsertID = true, 3, 77 },
			present: []string{"rows_affected", "last_insert_id", "rows_sent", "server"},
			absent:  []string{"client_stmt_id"},
			values:  map[string]string{"rows_affected": "3", "last_insert_id": "77", "rows_sent": "0", "hostgroup_id": "1"},
		},
		{
			name:    "OK packet, rows_affected 0, no insert id",
			mod:     func(e *Event) { e.HasRowsAffected = true },
			present: []string{"rows_affected"},
			absent:  []string{"last_insert_id"},
			values:  map[string]string{"rows_affected": "0"},
		},
		{
			name:    "result set",
			mod:     func(e *Event) { e.HasRowsSent, e.RowsSent = true, 12 },
			present: []string{"rows_sent"},
			absent:  []string{"rows_affected", "last_insert_id"},
			values:  map[string]string{"rows_sent": "12"},
		},
		{
			name:   "insert id without an OK packet is not logged",
			mod:    func(e *Event) { e.LastInsertID = 5 },
			absent: []string{"rows_affected", "last_insert_id"},
		},
		{
			name:    "no backend (cache hit, OK_msg)",
			mod:     func(e *Event) { e.HostgroupID, e.Server = -1, "" },
			present: []string{"hostgroup_id"},
			absent:  []string{"server"},
			values:  map[string]string{"hostgroup_id": "-1"},
		},
		{
			name:    "prepare",
			mod:     func(e *Event) { e.Type, e.ClientStmtID = ComStmtPrepare, 9 },
			present: []string{"client_stmt_id"},
			values:  map[string]string{"event": "COM_STMT_PREPARE", "client_stmt_id": "9"},
		},
		{
			name:    "execute",
			mod:     func(e *Event) { e.Type, e.ClientStmtID = ComStmtExecute, 0 },
			present: []string{"client_stmt_id"},
			values:  map[string]string{"event": "COM_STMT_EXECUTE", "client_stmt_id": "0"},
		},
		{
			name:   "empty strings stay present",
			mod:    func(e *Event) { e.Username, e.Schemaname, e.Client, e.Query = "", "", "", "" },
			values: map[string]string{"username": "", "schemaname": "", "client": "", "query": ""},
		},
	}
	always := []string{"client", "digest", "duration_us", "endtime", "endtime_timestamp_us", "event",
		"hostgroup_id", "query", "rows_sent", "schemaname", "starttime", "starttime_timestamp_us", "thread_id", "username"}
	for _, c := range cases {
		e := baseEvent()
		c.mod(e)
		keys, m := keysOf(t, appendJSON(nil, e))
		for i := 1; i < len(keys); i++ {
			if keys[i-1] >= keys[i] {
				t.Errorf("%s: keys not in nlohmann (sorted) order: %v", c.name, keys)
			}
		}
		for _, k := range append(always, c.present...) {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: key %q missing", c.name, k)
			}
		}
		for _, k := range c.absent {
			if _, ok := m[k]; ok {
				t.Errorf("%s: key %q present", c.name, k)
			}
		}
		for k, v := range c.values {
			if got := fmt.Sprint(m[k]); got != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, v)
			}
		}
	}
}

func TestJSONStringEscaping(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"uo\te`, `"q\"uo\\te"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"del\x7f/slash", "\"del\x7f/slash\""},
		{"héllo ✓ 😀", `"héllo ✓ 😀"`},
		// One U+FFFD per maximal ill-formed subsequence (nlohmann replace).
		{"a\xffb", "\"a\uFFFDb\""},
		{"\xc3(", "\"\uFFFD(\""},
		{"\xe2\x82X", "\"\uFFFDX\""},
		{"end\xe2\x82", "\"end\uFFFD\""},
		{"\xf0\x9f\x98", "\"\uFFFD\""},
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""}, // surrogate: ED rejects A0, then two stray continuations
		{"\xc0\xaf", "\"\uFFFD\uFFFD\""},           // overlong lead C0 is never valid
		{"\xf4\x90\x80\x80", "\"\uFFFD\uFFFD\uFFFD\uFFFD\""},
		{"\xe0\x80", "\"\uFFFD\uFFFD\""},
		{"ok\x80\"", "\"ok\uFFFD\\\"\""},
	}
	for _, c := range cases {
		got := string(appendJSONString(nil, c.in))
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%q: output is not valid JSON: %q", c.in, got)
		}
	}
	// Valid strings survive a JSON round trip unchanged.
	for _, s := range []string{"", "x", "SELECT * FROM t WHERE a='\\n'\t-- ü\x01", strings.Repeat("€", 1000)} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Errorf("round trip %q: got %q, %v", s, back, err)
		}
	}
}

// record is a decoded format-1 record.
type record struct {
	total                          uint64
	typ                            EventType
	threadID                       uint64
	username, schemaname, client   string
	hid                            uint64
	server                         string
	start, end                     uint64
	stmtID                         uint64
	affected, lastID, sent, digest uint64
	query                          string
	consumed                       uint64 // bytes after the length field
}

// readRecord decodes one record field by field, as ProxySQL's
// tools/eventslog_reader_sample.cpp does (the length is read, not trusted).
func readRecord(b []byte) (record, []byte, error) {
	var r record
	if len(b) < 9 {
		return r, nil, errors.New("short record")
	}
	r.total = binary.LittleEndian.Uint64(b)
	p := b[8:]
	n0 := len(p)
	r.typ = EventType(p[0])
	p = p[1:]
	var err error
	num := func() uint64 {
		if err != nil {
			return 0
		}
		if len(p) == 0 {
			err = errors.New("truncated integer")
			return 0
		}
		c := p[0]
		var v uint64
		switch {
		case c < 251:
			v, p = uint64(c), p[1:]
		case c == 0xfc && len(p) >= 3:
			v, p = uint64(p[1])|uint64(p[2])<<8, p[3:]
		case c == 0xfd && len(p) >= 4:
			v, p = uint64(p[1])|uint64(p[2])<<8|uint64(p[3])<<16, p[4:]
		case c == 0xfe && len(p) >= 9:
			v, p = binary.LittleEndian.Uint64(p[1:]), p[9:]
		default:
			err = fmt.Errorf("bad length prefix 0x%x", c)
		}
		return v
	}
	str := func() string {
		l := num()
		if err != nil || uint64(len(p)) < l {
			if err == nil {
				err = errors.New("truncated string")
			}
			return ""
		}
		s := string(p[:l])
		p = p[l:]
		return s
	}
	r.threadID = num()
	r.username = str()
	r.schemaname = str()
	r.client = str()
	r.hid = num()
	if r.hid != noHostgroup {
		r.server = str()
	}
	r.start = num()
	r.end = num()
	if r.typ == ComStmtPrepare || r.typ == ComStmtExecute {
		r.stmtID = num()
	}
	r.affected = num()
	r.lastID = num()
	r.sent = num()
	r.digest = num()
	r.query = str()
	r.consumed = uint64(n0 - len(p))
	return r, p, err
}

func TestBinaryRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 70000) // 0xfd length prefix
	events := []*Event{
		baseEvent(),
		func() *Event {
			e := baseEvent()
			e.HostgroupID, e.Server = -1, ""
			e.HasRowsAffected, e.RowsAffected, e.LastInsertID = true, 300, 1<<40
			e.ThreadID = 70000
			return e
		}(),
		func() *Event {
			e := baseEvent()
			e.Type, e.ClientStmtID, e.RowsSent = ComStmtExecute, 1234, 5
			e.Query = long
			return e
		}(),
		func() *Event {
			e := baseEvent()
			e.Type, e.ClientStmtID = ComStmtPrepare, 7
			e.Username = strings.Repeat("u", 300) // 0xfc length prefix
			return e
		}(),
	}
	var file []byte
	for _, e := range events {
		file = appendBinary(file, e)
	}
	rest := file
	for i, e := range events {
		r, next, err := readRecord(rest)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rest = next
		hid := uint64(noHostgroup)
		if e.backendUsed() {
			hid = uint64(e.HostgroupID)
		}
		var aff, lid uint64
		if e.HasRowsAffected {
			aff, lid = e.RowsAffected, e.LastInsertID
		}
		want := record{
			total: r.total, typ: e.Type, threadID: e.ThreadID, username: e.Username, schemaname: e.Schemaname,
			client: e.Client, hid: hid, server: e.Server, start: uint64(e.Start.UnixMicro()), end: uint64(e.End.UnixMicro()),
			affected: aff, lastID: lid, sent: e.RowsSent, digest: e.Digest, query: e.Query, consumed: r.consumed,
		}
		if e.Type.isStmt() {
			want.stmtID = uint64(e.ClientStmtID)
		}
		if r != want {
			t.Errorf("record %d: got %+v\nwant %+v", i, short(r), short(want))
		}
		// ProxySQL counts client_stmt_id's encoded size even when it does not
		// write it, so a COM_QUERY record claims one byte more than it holds.
		quirk := uint64(0)
		if !e.Type.isStmt() {
			quirk = uint64(wire.LenEncIntSize(uint64(e.ClientStmtID)))
		}
		if r.total != r.consumed+quirk {
			t.Errorf("record %d: length %d, consumed %d (+%d quirk)", i, r.total, r.consumed, quirk)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d trailing bytes", len(rest))
	}
}

func short(r record) record {
	if len(r.query) > 20 {
		r.query = r.query[:20] + "…"
	}
	return r
}

func TestLenenc(t *testing.T) {
	cases := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0}},
		{250, []byte{250}},
		{251, []byte{0xfc, 251, 0}},
		{65535, []byte{0xfc, 0xff, 0xff}},
		{65536, []byte{0xfd, 0, 0, 1}},
		{1<<24 - 1, []byte{0xfd, 0xff, 0xff, 0xff}},
		{1 << 24, []byte{0xfe, 0, 0, 0, 1, 0, 0, 0, 0}},
		{noHostgroup, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, c := range cases {
		got := wire.AppendLenEncInt(nil, c.v)
		if !bytes.Equal(got, c.want) || uint64(wire.LenEncIntSize(c.v)) != uint64(len(c.want)) {
			t.Errorf("%d: got % x (size %d), want % x", c.v, got, uint64(wire.LenEncIntSize(c.v)), c.want)
		}
	}
}

func TestAppendAudit(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 1, 234_567_000, time.Local)
	e := &Event{Audit: AuditClientClose, ThreadID: 7, Username: "app", Schemaname: "db", Client: "127.0.0.1:5000",
		ProxyAddr: "127.0.0.1:6033", Start: start, Created: start.Add(-1500 * time.Millisecond)}
	got := string(appendAudit(nil, e))
	want := `{"client_addr":"127.0.0.1:5000","creation_time":"2026-12-04 09:59:59.734","duration":"1500.000ms","event":"MySQL_Client_Close",` +
		`"proxy_addr":"127.0.0.1:6033","schemaname":"db","ssl":false,"thread_id":7,"time":"2026-12-04 10:00:01.234",` +
		`"timestamp":` + strconv.FormatInt(start.UnixMilli(), 10) + `,"username":"app"}` + "\n"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	e = &Event{Audit: AuditClientConnectERR, Username: "x\"y", Start: start, ExtraInfo: "access denied"}
	m = nil
	if err := json.Unmarshal(appendAudit(nil, e), &m); err != nil || m["extra_info"] != "access denied" || m["username"] != "x\"y" || m["creation_time"] != nil {
		t.Fatalf("%v %v", m, err)
	}
}
