package router

import (
	"strings"
	"testing"
)

func TestPlainInsertID(t *testing.T) {
	for _, c := range []struct {
		q, name string
		ok      bool
	}{
		{"SELECT LAST_INSERT_ID()", "LAST_INSERT_ID()", true},
		{"select last_insert_id() limit 1;", "last_insert_id()", true},
		{"  SELECT\t@@identity  ", "@@identity", true},
		{"SELECT @@IDENTITY LIMIT 1", "@@IDENTITY", true},
		{"SELECT LAST_INSERT_ID() LIMIT 2", "", false},
		{"SELECT LAST_INSERT_ID(5)", "", false},
		{"SELECT LAST_INSERT_ID() + 1", "", false},
		{"SELECT LAST_INSERT_ID(), 1", "", false},
		{"SELECT @@identity FROM dual", "", false},
		{"INSERT INTO t VALUES (LAST_INSERT_ID())", "", false},
		{"", "", false},
		{"SELECT LAST_INSERT_ID()" + strings.Repeat(" ", 200), "", false}, // long: not split
	} {
		name, ok := plainInsertID([]byte(c.q))
		if ok != c.ok || string(name) != c.name {
			t.Errorf("plainInsertID(%q) = %q, %v; want %q, %v", c.q, name, ok, c.name, c.ok)
		}
	}
}

func TestMentionsInsertID(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT LAST_INSERT_ID()":                     true,
		"select * from t where id=last_insert_id()":   true,
		"INSERT INTO c (p) VALUES (LAST_INSERT_ID())": true,
		"SELECT @@identity":                           true,
		"SELECT @@IDENTITY_X":                         true, // as ProxySQL's substring test
		"SELECT last_insert":                          false,
		"SELECT @@identit":                            false,
		"SELECT c FROM sbtest1 WHERE id=?":            false,
		"":                                            false,
	} {
		if got := mentionsInsertID([]byte(q)); got != want {
			t.Errorf("mentionsInsertID(%q) = %v", q, got)
		}
	}
}

// FuzzInsertID: the LAST_INSERT_ID() recognizers never panic, and a plain
// form's name is one of the two expressions, as the client spelled it.
func FuzzInsertID(f *testing.F) {
	for _, s := range []string{"SELECT LAST_INSERT_ID()", "select @@identity limit 1;", "SELECT LAST_INSERT_ID(5)",
		"INSERT INTO t VALUES (LAST_INSERT_ID())", "SELECT\t@@IDENTITY\nLIMIT 1", "", "@@", "l"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		mentions := mentionsInsertID(q)
		name, ok := plainInsertID(q)
		if !ok {
			return
		}
		if !mentions {
			t.Fatalf("%q is a plain form but does not mention the id", q)
		}
		if !strings.EqualFold(string(name), "LAST_INSERT_ID()") && !strings.EqualFold(string(name), "@@IDENTITY") {
			t.Fatalf("%q: name %q", q, name)
		}
		if !strings.Contains(string(q), string(name)) {
			t.Fatalf("%q: name %q is not the client's spelling", q, name)
		}
	})
}
