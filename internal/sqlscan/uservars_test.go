package sqlscan

import (
	"reflect"
	"testing"
)

func TestUserVarNames(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"SET @v = 1", []string{"v"}},
		{"SET @A=1, @b := @a + 1", []string{"a", "b"}},
		{"SELECT @@session.sql_mode, @@port, @x", []string{"x"}},
		{"SELECT '@not', \"@nor\", `@neither`, @yes -- @comment\n", []string{"yes"}},
		{"SELECT /* @c */ @`my var`, @'q''x', @\"d\"", []string{"my var", "q'x", "d"}},
		{"SELECT 1 INTO @out", []string{"out"}},
		{"SELECT a FROM t WHERE b = 'x\\'@y'", nil},
		{"SELECT @", nil},
		{"SELECT @a.b, @_$1", []string{"a.b", "_$1"}},
		{"# @hash\nSELECT 1", nil},
	} {
		if got := UserVarNames([]byte(c.q), 0, nil); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.q, got, c.want)
		}
	}
	if !MayAssignUserVars(KindSet, []byte("SET @x=1")) || !MayAssignUserVars(KindSelect, []byte("SELECT @x := 1")) ||
		!MayAssignUserVars(KindSelect, []byte("SELECT 1 INTO @x")) || MayAssignUserVars(KindSelect, []byte("SELECT @x")) {
		t.Error("MayAssignUserVars")
	}
}

func FuzzUserVarNames(f *testing.F) {
	for _, s := range []string{"SET @v=1", "SELECT @`a``b`", "@'", "@@", "/*", "'\\", "@\"x\"\"y\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		names := UserVarNames([]byte(q), 0, nil)
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("%q: %q twice", q, n)
			}
			seen[n] = true
		}
	})
}
