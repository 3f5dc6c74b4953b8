package wire

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"testing"
)

// TestWriteResultSetAdminBytes checks a whole text result set as the admin
// port sends it (every column a TextColumn), byte for byte, in both EOF
// dialects: the column definition is the one ProxySQL's admin sends, NULL is
// 0xFB, the EOF after the definitions drops MORE_RESULTS_EXISTS and the
// terminator keeps it.
func TestWriteResultSetAdminBytes(t *testing.T) {
	cols := []Column{TextColumn("a"), TextColumn("bc")}
	rows := [][]sql.NullString{
		{{String: "1", Valid: true}, {}},
		{{String: "", Valid: true}, {String: "xyz", Valid: true}},
	}
	status := StatusAutocommit | StatusMoreResultsExists
	def := func(name string) []byte {
		p := []byte{3, 'd', 'e', 'f', 0, 0, 0, byte(len(name))}
		p = append(p, name...)
		p = append(p, byte(len(name)))
		p = append(p, name...)
		// fixed fields: charset 33, length 0xffff, VAR_STRING, flags 0, decimals 0, filler
		return append(p, 0x0c, 33, 0, 0xff, 0xff, 0, 0, 0xfd, 0, 0, 0, 0, 0)
	}
	for _, depr := range []bool{false, true} {
		t.Run(fmt.Sprint("deprecateEOF=", depr), func(t *testing.T) {
			var want [][]byte
			want = append(want, []byte{2}, def("a"), def("bc"))
			if !depr {
				want = append(want, []byte{0xfe, 0, 0, 0x02, 0x00}) // EOF: no warnings, autocommit only
			}
			want = append(want, []byte{1, '1', 0xfb}, []byte{0, 3, 'x', 'y', 'z'})
			if depr {
				want = append(want, []byte{0xfe, 0, 0, 0x0a, 0x00, 0, 0}) // OK terminator: affected 0, id 0, status, warnings
			} else {
				want = append(want, []byte{0xfe, 0, 0, 0x0a, 0x00})
			}
			var buf bytes.Buffer
			c := writerConn(&buf)
			c.SetSeq(1)
			if err := c.WriteResultSet(cols, rows, depr, status); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 0 {
				t.Fatal("WriteResultSet flushed")
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			var stream []byte
			for i, p := range want {
				stream = append(stream, header(len(p), byte(i+1))...)
				stream = append(stream, p...)
			}
			if !bytes.Equal(buf.Bytes(), stream) {
				t.Fatalf("stream\n got % x\nwant % x", buf.Bytes(), stream)
			}
			if c.Seq() != byte(len(want)+1) {
				t.Fatalf("sequence %d after %d packets", c.Seq(), len(want))
			}
		})
	}
}

// TestWriteResultSetAllocs: rows cost nothing beyond the Conn's scratch
// buffer, whatever their number.
func TestWriteResultSetAllocs(t *testing.T) {
	cols := []Column{TextColumn("k"), TextColumn("v")}
	rows := make([][]sql.NullString, 1000)
	for i := range rows {
		rows[i] = []sql.NullString{{String: fmt.Sprint(i), Valid: true}, {}}
	}
	c := writerConn(io.Discard)
	allocs := testing.AllocsPerRun(20, func() {
		c.ResetSeq()
		if err := c.WriteResultSet(cols, rows, false, StatusAutocommit); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per result set of %d rows", allocs, len(rows))
	}
}
