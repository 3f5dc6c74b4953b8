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
		// The plugin name is not the password; what follows BY/AS is.
		{"CREATE USER u IDENTIFIED WITH 'caching_sha2_password' BY 'pw'", "CREATE USER u IDENTIFIED WITH 'caching_sha2_password' BY '***'"},
		{"ALTER USER u IDENTIFIED WITH mysql_native_password AS '*94BDCEBE'", "ALTER USER u IDENTIFIED WITH mysql_native_password AS '***'"},
		{"CREATE USER u IDENTIFIED VIA 'ed25519' USING PASSWORD('pw')", "CREATE USER u IDENTIFIED VIA 'ed25519' USING PASSWORD('***')"},
		{"CREATE USER u IDENTIFIED VIA mysql_native_password USING '*94BDCEBE'", "CREATE USER u IDENTIFIED VIA mysql_native_password USING '***'"},
		// The current password given to REPLACE.
		{"ALTER USER u IDENTIFIED BY 'new' REPLACE 'old' RETAIN CURRENT PASSWORD", "ALTER USER u IDENTIFIED BY '***' REPLACE '***' RETAIN CURRENT PASSWORD"},
		{"REPLACE INTO t VALUES ('keep')", "REPLACE INTO t VALUES ('keep')"},
		// Replication passwords.
		{"CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='pw'", "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='***'"},
		{"change replication source to source_password = \"pw\"", "change replication source to source_password = \"***\""},
		{"SELECT 'x' FROM t WHERE passwords = 'keep'", "SELECT 'x' FROM t WHERE passwords = 'keep'"},
	} {
		if got := string(MaskPasswords([]byte(c.in), 0)); got != c.want {
			t.Errorf("MaskPasswords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	q := []byte("SELECT c FROM sbtest1 WHERE id=42")
	if n := testing.AllocsPerRun(100, func() { MaskPasswords(q, 0) }); n != 0 {
		t.Errorf("%v allocations without a password", n)
	}
}

func FuzzMaskPasswords(f *testing.F) {
	for _, s := range []string{"SET PASSWORD = PASSWORD('x')", "CREATE USER u IDENTIFIED BY 'p'", "/* PASSWORD 'x", "'", "PASSWORD \"a\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := string(MaskPasswords([]byte(q), 0))
		if !strings.Contains(strings.ToUpper(q), "PASSWORD") && !strings.Contains(strings.ToUpper(q), "IDENTIFIED") && out != q {
			t.Fatalf("changed a statement without PASSWORD or IDENTIFIED: %q -> %q", q, out)
		}
		// A masked literal becomes 5 bytes and takes at least its opening
		// quote: at most 4 more bytes per quote character.
		if quotes := strings.Count(q, "'") + strings.Count(q, `"`); len(out) > len(q)+4*quotes {
			t.Fatalf("grew by more than 4 bytes per quote: %q -> %q", q, out)
		}
	})
}
