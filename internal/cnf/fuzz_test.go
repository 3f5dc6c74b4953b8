package cnf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives Format: Parse(Format(x)) succeeds, equals x, and formats to the
// same text again. The seed corpus in testdata/fuzz/FuzzParse holds inputs
// that once broke this and runs with every `go test`.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"proxysql-style.cnf", "reference-9.1.cnf"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "a=1", "a=(1,,2,)", `a="\x41\q\"" "b"`, "a=[1, 0x10, 010]", "a=.;b=-.e5", "*=TRUE",
		"g={h={i=(1,[2.5],{j=\"k\"})}}", "a=5LL b=0xFFFFFFFFFFFFFFFFL", "a=1 /* x", "a=\"\n\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := Parse(data)
		if err != nil {
			return
		}
		text := Format(root)
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Format(x)) failed: %v\ninput: %q\nformatted: %q", err, data, text)
		}
		if !back.Equal(root) {
			t.Fatalf("Parse(Format(x)) != x\ninput: %q\nformatted: %q\n got %s\nwant %s", data, text, dump(back), dump(root))
		}
		if again := Format(back); !bytes.Equal(again, text) {
			t.Fatalf("Format is not stable\nfirst: %q\nsecond: %q", text, again)
		}
	})
}
