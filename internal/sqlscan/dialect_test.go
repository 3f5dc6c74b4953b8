package sqlscan

import (
	"bytes"
	"strings"
	"testing"
)

// Characters whose second byte is a backslash: 縗 in gbk (BF 5C), 功 in
// big5 (A5 5C), 表 in sjis and cp932 (95 5C); and one whose second byte is
// a backtick, in gbk (81 60).
const (
	gbk5C  = "\xbf\x5c"
	big55C = "\xa5\x5c"
	sjis5C = "\x95\x5c"
	gbk60  = "\x81\x60"
)

func TestCharsetDialect(t *testing.T) {
	for cs, want := range map[string]Dialect{"gbk": mbGBK, "GBK": mbGBK, "big5": mbBig5, "sjis": mbSJIS, "cp932": mbSJIS,
		"utf8mb4": 0, "latin1": 0, "ujis": 0, "euckr": 0, "gb2312": 0, "": 0} {
		if got := CharsetDialect(cs); got != want {
			t.Errorf("CharsetDialect(%q) = %v, want %v", cs, got, want)
		}
	}
	for _, c := range []struct {
		d    Dialect
		q    string
		want int
	}{
		{mbGBK, gbk5C, 2}, {mbGBK, gbk60, 2}, {mbGBK, "\xbf\x27", 1}, {mbGBK, "\xff\x5c", 1}, {mbGBK, "\xbf", 1},
		{mbBig5, big55C, 2}, {mbBig5, "\x81\x5c", 1}, {mbBig5, "\xa5\x80", 1},
		{mbSJIS, sjis5C, 2}, {mbSJIS, "\xe0\x5c", 2}, {mbSJIS, "\xa0\x5c", 1}, {mbSJIS, "\x95\xfd", 1},
		{0, gbk5C, 1}, {NoBackslashEscapes, gbk5C, 1},
	} {
		if got := c.d.charLen([]byte(c.q), 0); got != c.want {
			t.Errorf("%v.charLen(%q) = %d, want %d", c.d, c.q, got, c.want)
		}
	}
}

// TestHiddenStateChangeDialect: the server's reading of where a string
// ends decides whether a SET hides in a multi-statement query — by the
// client character set, by sql_mode (which the proxy may not know: every
// backslash reading is tried), and by executable comments not every
// server runs.
func TestHiddenStateChangeDialect(t *testing.T) {
	gbk, big5, sjis := CharsetDialect("gbk"), CharsetDialect("big5"), CharsetDialect("sjis")
	cases := []struct {
		q     string
		d     Dialect
		multi bool
		want  bool
	}{
		{"SELECT '" + gbk5C + "'; SET time_zone='+05:00'", gbk, true, true},
		{"SELECT '" + gbk5C + "'; USE src; SELECT 'x'", gbk, true, true},
		{"SELECT '" + big55C + "'; SET autocommit=0; SELECT 'x'", big5, true, true},
		{"SELECT '" + sjis5C + "'; SET time_zone='+05:00'", sjis, true, true},
		{"SELECT `a" + gbk60 + "`; SET time_zone='+05:00'", gbk, true, true},
		{"SELECT '" + gbk5C + "'; SELECT 2", gbk, true, false},
		// NO_BACKSLASH_ESCAPES and ANSI_QUOTES, known or not.
		{`SELECT 'a\'; SET time_zone='+06:00'`, 0, true, true},
		{`SELECT 'a\'; SET time_zone='+06:00'`, NoBackslashEscapes, true, true},
		{`SELECT 1 AS "a\"; SET time_zone='+05:00'; SELECT 1 AS "x"`, 0, true, true},
		// Read without backslash escapes a SET follows the string: the
		// session keeps its connection rather than risk it.
		{`SELECT 'it\'s; SET x=1'`, 0, true, true},
		{`SELECT 'it''s; SET x=1'`, 0, true, false},
		{`SELECT 'a\\'; SELECT 2`, 0, true, false},
		// Executable comments: /*M! (MariaDB only) and versions some
		// servers skip are read both ways.
		{"/*M!100000 SET time_zone='+04:00' */", 0, false, true},
		{"/*M!100000 USE src */", 0, false, true},
		{"/*!999999 SELECT 1 */ SET time_zone='+02:00'", 0, false, true},
		{"SELECT 1; /*!999999 SELECT 2 */ SET time_zone='+09:00'", 0, true, true},
		{"SELECT 1 /*!50000 , '*/' */; SET time_zone='+08:00'", 0, true, true},
		{"SELECT 1 /*!50700 'x */ ; SET time_zone='+05:00' #'*/", 0, true, true}, // MariaDB skips 50700
		{"/*!50700 SET time_zone='+05:00' */", 0, false, true},
		{"SELECT 1 --\r' \n; SET time_zone='+05:00' #'", 0, true, true}, // "--" and any control byte
		{"SELECT 1 --\x0c' \n; SET time_zone='+05:00' #'", 0, true, true},
		{"SELECT 1 --\x01' \n; SET time_zone='+05:00' #'", 0, true, true},
		{"SELECT /*!80000 SQL_NO_CACHE */ c FROM t", 0, false, false},
		{"SELECT /*M!100000 1, */ 2", 0, false, false},
		{"/*!40101 SET NAMES utf8mb4 */", 0, false, false}, // a tracked SET, parsed as one
		{"SELECT 1", 0, true, false},
		{"SELECT 1; SET time_zone='+01:00'", 0, false, false}, // no multi-statements: a syntax error
	}
	for _, c := range cases {
		if got := HiddenStateChange([]byte(c.q), c.d, c.multi); got != c.want {
			t.Errorf("HiddenStateChange(%q, %v, %v) = %v, want %v", c.q, c.d, c.multi, got, c.want)
		}
	}
	q := []byte("SELECT 'a\\'; SELECT 2; /*M!100000 SELECT 3 */")
	if n := testing.AllocsPerRun(100, func() { HiddenStateChange(q, mbGBK, true) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestDigestDialect: rules and the firewall see what the server runs.
func TestDigestDialect(t *testing.T) {
	g := NewDigester(DefaultOptions())
	for _, c := range []struct {
		q    string
		d    Dialect
		want string
	}{
		{"SELECT '" + gbk5C + "'; DROP TABLE victim; SELECT 'x'", mbGBK, "SELECT ?; DROP TABLE victim; SELECT ?"},
		{"SELECT '" + gbk5C + "', GET_LOCK('lk',0) -- '", mbGBK, "SELECT ?,GET_LOCK(?,?)"},
		{"SELECT '" + gbk5C + "' FROM t WHERE a='b'", mbGBK, "SELECT ? FROM t WHERE a=?"},
		{`SELECT 'a\'; DROP TABLE x; SELECT 'y'`, NoBackslashEscapes, "SELECT ?; DROP TABLE x; SELECT ?"},
		{`SELECT "a\"; DROP TABLE x; SELECT 'y'`, ANSIQuotes, "SELECT ?; DROP TABLE x; SELECT ?"},
		{"/*M!100000 DROP TABLE victim2 */", 0, "DROP TABLE victim2"},
		{"SELECT 1 /*M!100000 UNION SELECT user FROM mysql.user */", 0, "SELECT ? UNION SELECT user FROM mysql.user"},
		{"SELECT 'it''s', 1", mbGBK, "SELECT ?,?"},
		{"SELECT 1 --\x0c' \n; DROP TABLE victim4 #'", 0, "SELECT ? ; DROP TABLE victim4"},
		{"SELECT 1 --\r' \n; DROP TABLE victim5 #'", 0, "SELECT ? ; DROP TABLE victim5"},
	} {
		var dg Digest
		g.Digest(&dg, []byte(c.q), c.d)
		if string(dg.Text) != c.want {
			t.Errorf("digest(%q, %v) = %q, want %q", c.q, c.d, dg.Text, c.want)
		}
	}
	// The zero Dialect is ProxySQL's reading, unchanged.
	var a, b Digest
	q := []byte("SELECT 'a\\'b', \"c\\\"d\" FROM t WHERE x = 1")
	g.Digest(&a, q, 0)
	if string(a.Text) != "SELECT ?,? FROM t WHERE x = ?" {
		t.Errorf("zero Dialect: %q", a.Text)
	}
	g.Digest(&b, q, mbGBK)
	if !bytes.Equal(a.Text, b.Text) || a.Hash != b.Hash {
		t.Errorf("gbk without a multibyte character: %q, want %q", b.Text, a.Text)
	}
}

func TestMaskPasswordsDialect(t *testing.T) {
	q := `CREATE USER IF NOT EXISTS 'u1'@'%' IDENTIFIED BY 'p\', 'u2'@'%' IDENTIFIED BY 'TopSecret42'`
	got := string(MaskPasswords([]byte(q), NoBackslashEscapes))
	if strings.Contains(got, "TopSecret42") {
		t.Errorf("NO_BACKSLASH_ESCAPES: %q", got)
	}
	q = "SET PASSWORD = PASSWORD('" + gbk5C + "'), @x = 'Secret'"
	if got := string(MaskPasswords([]byte(q), mbGBK)); got != "SET PASSWORD = PASSWORD('***'), @x = 'Secret'" {
		t.Errorf("gbk: %q", got)
	}
}

func TestUserVarNamesDialect(t *testing.T) {
	q := []byte("SELECT '" + gbk5C + "', @a := 1 -- '")
	if got := UserVarNames(q, mbGBK, nil); len(got) != 1 || got[0] != "a" {
		t.Errorf("gbk: %q", got)
	}
	if got := UserVarNames([]byte(`SELECT 'x\', @b := 2 -- '`), NoBackslashEscapes, nil); len(got) != 1 || got[0] != "b" {
		t.Errorf("NO_BACKSLASH_ESCAPES: %q", got)
	}
}

func TestParseSetDialect(t *testing.T) {
	if st := ParseSet([]byte("/*M!100000 SET time_zone='+04:00' */"), 0); st.Outcome != SetLock {
		t.Errorf("/*M!: %v", st.Outcome)
	}
	if st := ParseSet([]byte("/*!80000 SET time_zone='+04:00' */"), 0); st.Outcome != SetLock {
		t.Errorf("/*!80000: %v", st.Outcome)
	}
	if st := ParseSet([]byte("/*!40101 SET NAMES utf8mb4 */"), 0); st.Outcome != SetTracked {
		t.Errorf("/*!40101: %v", st.Outcome)
	}
	st := ParseSet([]byte("SET sql_mode='"+gbk5C+"', time_zone='+01:00'"), mbGBK)
	if st.Outcome != SetTracked || len(st.Assignments) != 2 || st.Assignments[0].Value != gbk5C || st.Assignments[1].Value != "+01:00" {
		t.Errorf("gbk: %+v", st)
	}
	st = ParseSet([]byte(`SET sql_mode='a\', time_zone='+01:00'`), NoBackslashEscapes)
	if st.Outcome != SetTracked || len(st.Assignments) != 2 || st.Assignments[0].Value != `a\` {
		t.Errorf("NO_BACKSLASH_ESCAPES: %+v", st)
	}
}

// FuzzDialect: in every Dialect the splitter gives back every byte of its
// input, and nothing that reads SQL panics or (in the zero-alloc
// functions) allocates; the digest of the zero Dialect is the one
// ProxySQL's reading gives.
func FuzzDialect(f *testing.F) {
	for _, s := range []string{"SELECT '" + gbk5C + "'; SET a = 1", `SELECT 'a\'; USE d`, "/*M!100000 SET x=1*/;SELECT 1",
		"SELECT `" + gbk60 + "`; SET x=1", "/*!999999 SELECT 1 */ SET y=2", "SELECT '\xbf"} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(mbGBK|NoBackslashEscapes))
	}
	g := NewDigester(DefaultOptions())
	var dg Digest
	f.Fuzz(func(t *testing.T, q []byte, db uint8) {
		d := Dialect(db) & (modeMask | mbMask)
		HiddenStateChange(q, d, true)
		HiddenStateChange(q, d, false)
		MaskPasswords(q, d)
		UserVarNames(q, d, nil)
		ParseSet(q, d)
		g.Digest(&dg, q, d)
		var joined []byte
		for rest := q; rest != nil; {
			var stmt []byte
			stmt, rest = NextStatement(rest, d)
			joined = append(joined, stmt...)
			if rest != nil {
				joined = append(joined, ';')
			}
		}
		if !bytes.Equal(joined, q) {
			t.Fatalf("split %q, joined back %q", q, joined)
		}
	})
}
