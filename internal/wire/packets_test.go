package wire

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestLenEncMatchesGoMySQL(t *testing.T) {
	for _, n := range []uint64{0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 1<<63 + 5} {
		got := AppendLenEncInt(nil, n)
		want := mysql.AppendLengthEncodedInteger(nil, n)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d: % x, want % x", n, got, want)
		}
		v, isNull, rest, ok := ReadLenEncInt(append(got, 'x'))
		if !ok || isNull || v != n || string(rest) != "x" {
			t.Fatalf("%d: read back %d %v %q %v", n, v, isNull, rest, ok)
		}
	}
	if _, isNull, _, ok := ReadLenEncInt([]byte{0xfb}); !ok || !isNull {
		t.Fatal("0xfb is NULL")
	}
	for _, bad := range [][]byte{{}, {0xff}, {0xfc, 1}, {0xfd, 1, 2}, {0xfe, 1, 2, 3}} {
		if _, _, _, ok := ReadLenEncInt(bad); ok {
			t.Fatalf("% x accepted", bad)
		}
	}
	s := AppendLenEncString(nil, "hello")
	if !bytes.Equal(s, mysql.PutLengthEncodedString([]byte("hello"))) {
		t.Fatalf("lenenc string % x", s)
	}
	if v, _, _, ok := ReadLenEncString(s); !ok || string(v) != "hello" {
		t.Fatal("lenenc string read back")
	}
	if _, _, _, ok := ReadLenEncString([]byte{5, 'a'}); ok {
		t.Fatal("short lenenc string accepted")
	}
}

func TestOKPackets(t *testing.T) {
	// OK from the protocol documentation: 1 row affected, autocommit.
	got := AppendOK(nil, 1, 0, StatusAutocommit, 0, "")
	if want := []byte{0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
	p := AppendOK(nil, 300, 70000, StatusInTrans|StatusAutocommit, 3, "Rows matched: 1")
	ok, err := ParseOK(p)
	if err != nil || ok.AffectedRows != 300 || ok.LastInsertID != 70000 || ok.Status != 3 || ok.Warnings != 3 ||
		string(ok.Info) != "Rows matched: 1" {
		t.Fatalf("%+v %v", ok, err)
	}
	// The info is length-encoded, as MySQL, MariaDB and ProxySQL send it.
	if want := append([]byte{0x00, 0, 0, 2, 0, 0, 0, 4}, "info"...); !bytes.Equal(AppendOK(nil, 0, 0, StatusAutocommit, 0, "info"), want) {
		t.Fatalf("OK with info % x, want % x", AppendOK(nil, 0, 0, StatusAutocommit, 0, "info"), want)
	}
	// An OK whose info a server wrote raw keeps it as it is.
	if ok, err := ParseOK(append([]byte{0x00, 0, 0, 2, 0, 0, 0}, "Rows matched: 1"...)); err != nil || string(ok.Info) != "Rows matched: 1" {
		t.Fatalf("raw info: %q %v", ok.Info, err)
	}
	term := AppendOKTerminator(nil, 0, 0, StatusAutocommit, 1)
	if want := []byte{0xfe, 0, 0, 2, 0, 1, 0}; !bytes.Equal(term, want) {
		t.Fatalf("terminator % x", term)
	}
	// 7 bytes, shorter than 9: IsEOF cannot tell it from an EOF, but
	// ParseTerminator can (EOF is exactly 5 bytes in protocol 4.1).
	if w, s, err := ParseTerminator(term); err != nil || w != 1 || s != StatusAutocommit {
		t.Fatalf("terminator as terminator: %d %d %v", w, s, err)
	}
	if ok, err := ParseOK(term); err != nil || ok.Status != StatusAutocommit || ok.Warnings != 1 {
		t.Fatalf("terminator parse %+v %v", ok, err)
	}
	if _, err := ParseOK([]byte{0xff}); err == nil {
		t.Fatal("ERR parsed as OK")
	}
	if _, err := ParseOK([]byte{0x00, 0xfc}); err == nil {
		t.Fatal("truncated OK accepted")
	}
}

func TestERRPackets(t *testing.T) {
	// ERR 1096 "No tables used" from the protocol documentation.
	doc := []byte{0xff, 0x48, 0x04, 0x23, 0x48, 0x59, 0x30, 0x30, 0x30, 0x4e, 0x6f, 0x20, 0x74, 0x61, 0x62, 0x6c,
		0x65, 0x73, 0x20, 0x75, 0x73, 0x65, 0x64}
	e, err := ParseERR(doc)
	if err != nil || e.Code != 1096 || e.State != "HY000" || e.Message != "No tables used" {
		t.Fatalf("%+v %v", e, err)
	}
	if got := AppendERR(nil, 1096, "HY000", "No tables used"); !bytes.Equal(got, doc) {
		t.Fatalf("% x", got)
	}
	if got := AppendERR(nil, 1, "", "x"); !bytes.Equal(got[3:9], []byte("#HY000")) {
		t.Fatalf("default state % x", got)
	}
	if e.Error() != "ERROR 1096 (HY000): No tables used" {
		t.Fatal(e.Error())
	}
	// Pre-4.1 style ERR without state marker.
	e, err = ParseERR([]byte{0xff, 0x10, 0x04, 'T', 'o', 'o'})
	if err != nil || e.Code != 1040 || e.State != "HY000" || e.Message != "Too" {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestEOFAndTerminators(t *testing.T) {
	eof := AppendEOF(nil, 2, StatusAutocommit|StatusMoreResultsExists)
	if want := []byte{0xfe, 2, 0, 0x0a, 0}; !bytes.Equal(eof, want) {
		t.Fatalf("% x", eof)
	}
	if !IsEOF(eof) || IsEOF(append([]byte{0xfe}, make([]byte, 8)...)) || IsEOF([]byte{0}) {
		t.Fatal("IsEOF")
	}
	w, s, ok := ParseEOF(eof)
	if !ok || w != 2 || s != 0x0a {
		t.Fatal("ParseEOF")
	}
	if !IsTerminator(0xfe, 7) || !IsTerminator(0xfe, 5000) || IsTerminator(0xfe, MaxPayloadLen) || IsTerminator(0, 7) {
		t.Fatal("IsTerminator")
	}
	ok1, err := EOFToOK(nil, eof)
	if err != nil || !bytes.Equal(ok1, AppendOKTerminator(nil, 0, 0, 0x0a, 2)) {
		t.Fatalf("EOFToOK % x %v", ok1, err)
	}
	back, err := OKToEOF(nil, ok1)
	if err != nil || !bytes.Equal(back, eof) {
		t.Fatalf("OKToEOF % x %v", back, err)
	}
	// A terminator with info text (longer than 9 bytes) converts too.
	long := append(AppendOKTerminator(nil, 0, 0, 2, 0), "some info"...)
	if IsEOF(long) {
		t.Fatal("long terminator read as EOF")
	}
	if e, err := OKToEOF(nil, long); err != nil || !bytes.Equal(e, AppendEOF(nil, 0, 2)) {
		t.Fatalf("long OKToEOF % x %v", e, err)
	}
	for _, p := range [][]byte{eof, ok1, long} {
		if w, s, err := ParseTerminator(p); err != nil || (s != 0x0a && s != 2) {
			t.Fatalf("ParseTerminator % x: %d %d %v", p, w, s, err)
		}
	}
	if _, err := OKToEOF(nil, []byte{0xff, 1, 2}); err == nil {
		t.Fatal("ERR converted")
	}
}
