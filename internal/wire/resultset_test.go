package wire

import (
	"bytes"
	"database/sql"
	"net"
	"testing"
)

// captureConn is a Conn whose writes finish() returns.
func captureConn(t *testing.T) (c *Conn, finish func() []byte) {
	t.Helper()
	a, b := net.Pipe()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := b.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	c = NewConn(a)
	return c, func() []byte {
		c.Close()
		<-done
		b.Close()
		return out.Bytes()
	}
}

func packets(t *testing.T, raw []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(raw) > 0 {
		if len(raw) < 4 {
			t.Fatalf("truncated header")
		}
		n := int(raw[0]) | int(raw[1])<<8 | int(raw[2])<<16
		out = append(out, raw[4:4+n])
		raw = raw[4+n:]
	}
	return out
}

// TestWriteResultSet checks the layout of both protocols in both EOF
// dialects, byte for byte where it matters: column definition, NULL, the
// binary row's bitmap and LONGLONG encoding, the terminators' status.
func TestWriteResultSet(t *testing.T) {
	id := Column{Name: "CONNECTION_ID()", Type: TypeLongLong, Flags: FlagNotNull | FlagUnsigned | FlagBinary, Charset: 63, Length: 21}
	cols := []Column{id, TextColumn("s")}
	rows := [][]sql.NullString{{{String: "258", Valid: true}, {}}}
	wantDef := []byte{3, 'd', 'e', 'f', 0, 0, 0, 15}
	wantDef = append(wantDef, "CONNECTION_ID()"...)
	wantDef = append(wantDef, 15)
	wantDef = append(wantDef, "CONNECTION_ID()"...)
	wantDef = append(wantDef, 0x0c, 63, 0, 21, 0, 0, 0, TypeLongLong, 0xa1, 0, 0, 0, 0)
	for _, depr := range []bool{false, true} {
		for _, bin := range []bool{false, true} {
			c, finish := captureConn(t)
			var err error
			if bin {
				err = c.WriteBinaryResultSet(cols, rows, depr, StatusAutocommit|StatusMoreResultsExists)
			} else {
				err = c.WriteResultSet(cols, rows, depr, StatusAutocommit|StatusMoreResultsExists)
			}
			if err == nil {
				err = c.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			ps := packets(t, finish())
			want := 5 // count, 2 definitions, row, terminator
			if !depr {
				want++ // EOF after the definitions
			}
			if len(ps) != want {
				t.Fatalf("depr=%v bin=%v: %d packets, want %d", depr, bin, len(ps), want)
			}
			if !bytes.Equal(ps[0], []byte{2}) || !bytes.Equal(ps[1], wantDef) {
				t.Fatalf("count/definition: % x / % x", ps[0], ps[1])
			}
			row := ps[len(ps)-2]
			if bin {
				// header, bitmap (2 columns + offset 2 → 1 byte; column 1 NULL → bit 3), 8-byte 258.
				if wantRow := []byte{0, 0x08, 2, 1, 0, 0, 0, 0, 0, 0}; !bytes.Equal(row, wantRow) {
					t.Fatalf("binary row % x, want % x", row, wantRow)
				}
			} else if wantRow := []byte{3, '2', '5', '8', 0xfb}; !bytes.Equal(row, wantRow) {
				t.Fatalf("text row % x, want % x", row, wantRow)
			}
			if !depr {
				if _, st, _ := ParseTerminator(ps[3]); st != StatusAutocommit {
					t.Fatalf("EOF after definitions has status %#x: MORE_RESULTS must not be there", st)
				}
			}
			term := ps[len(ps)-1]
			if _, st, err := ParseTerminator(term); err != nil || st != StatusAutocommit|StatusMoreResultsExists {
				t.Fatalf("terminator % x: status %#x %v", term, st, err)
			}
		}
	}
}
