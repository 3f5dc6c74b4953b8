package sqlscan

import (
	"strings"
	"testing"
)

func TestMaskPasswords(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SET PASSWORD = PASSWORD('s3cret')", "SET PASSWORD = PASSWORD('***')"},
		{"SET PASSWORD FOR 'app'@'%' = 'x'", "SET PASSWORD FOR 'app'@'%' = '***'"},
		{"CREATE USER 'u'@'%' IDENTIFIED BY 'pw1', 'v'@'%' IDENTIFIED BY \"pw2\"", "CREATE USER 'u'@'%' IDENTIFIED BY '***', 'v'@'%' IDENTIFIED BY \"***\""},
		{"ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('a''b')", "ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('***')"},
		{"GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '*ABCDEF'", "GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '***'"},
		{"set password='it\\'s'; SELECT 'keep'", "set password='***'; SELECT 'keep'"},
		{"SELECT 'password' /* PASSWORD 'x' */ , 'y'", "SELECT 'password' /* PASSWORD 'x' */ , 'y'"},
		{"SELECT `password`, 'v' FROM t", "SELECT `password`, 'v' FROM t"},
		{"SELECT 1", "SELECT 1"},
		{"PASSWORD('unterminated", "PASSWORD('***'"},
	} {
		if got := string(MaskPasswords([]byte(c.in))); got != c.want {
			t.Errorf("MaskPasswords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	q := []byte("SELECT c FROM sbtest1 WHERE id=42")
	if n := testing.AllocsPerRun(100, func() { MaskPasswords(q) }); n != 0 {
		t.Errorf("%v allocations without a password", n)
	}
}

func FuzzMaskPasswords(f *testing.F) {
	for _, s := range []string{"SET PASSWORD = PASSWORD('x')", "CREATE USER u IDENTIFIED BY 'p'", "/* PASSWORD 'x", "'", "PASSWORD \"a\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := string(MaskPasswords([]byte(q)))
		if !strings.Contains(strings.ToUpper(q), "PASSWORD") && !strings.Contains(strings.ToUpper(q), "IDENTIFIED") && out != q {
			t.Fatalf("changed a statement without PASSWORD or IDENTIFIED: %q -> %q", q, out)
		}
		if len(out) > len(q)+5 {
			t.Fatalf("grew by more than one literal's worth: %q -> %q", q, out)
		}
	})
}
