package wire

import "testing"

func TestSetTerminatorStatus(t *testing.T) {
	eof := AppendEOF(nil, 3, StatusAutocommit|StatusInTrans)
	SetTerminatorStatus(eof, StatusAutocommit, 0)
	if w, st, err := ParseTerminator(eof); err != nil || w != 3 || st != StatusInTrans {
		t.Fatalf("EOF: %d %#x %v", w, st, err)
	}
	ok := AppendOKTerminator(nil, 300, 70000, StatusAutocommit|StatusMoreResultsExists, 2)
	SetTerminatorStatus(ok, StatusAutocommit, 0)
	if w, st, err := ParseTerminator(ok); err != nil || w != 2 || st != StatusMoreResultsExists {
		t.Fatalf("OK: %d %#x %v", w, st, err)
	}
	SetTerminatorStatus(ok, StatusAutocommit, StatusAutocommit)
	if _, st, _ := ParseTerminator(ok); st != StatusMoreResultsExists|StatusAutocommit {
		t.Fatalf("set back: %#x", st)
	}
	for _, p := range [][]byte{nil, {0xFE}, {0x00, 0xFC}, {0x00, 1, 2}} {
		SetTerminatorStatus(p, StatusAutocommit, 0) // short or malformed: left alone, no panic
	}
}
