package sqlscan

import (
	"bytes"
	"testing"
)

func TestNextStatement(t *testing.T) {
	cases := []struct {
		q    string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1;", []string{"SELECT 1", ""}},
		{"SELECT 'a;b'; SELECT \"c;\\\"d\"; SELECT `e;f`", []string{"SELECT 'a;b'", " SELECT \"c;\\\"d\"", " SELECT `e;f`"}},
		{"SELECT 1 -- x; y\n; SELECT 2", []string{"SELECT 1 -- x; y\n", " SELECT 2"}},
		{"SELECT 1 # x; y\n; SELECT 2", []string{"SELECT 1 # x; y\n", " SELECT 2"}},
		{"SELECT 1 /* ; */; SELECT 2", []string{"SELECT 1 /* ; */", " SELECT 2"}},
		{"SELECT 1 /* ; ", []string{"SELECT 1 /* ; "}},
		{"SELECT 1--1; SELECT 2", []string{"SELECT 1--1", " SELECT 2"}},
		{"SELECT 'unterminated;", []string{"SELECT 'unterminated;"}},
	}
	for _, c := range cases {
		var got []string
		for rest := []byte(c.q); rest != nil; {
			var stmt []byte
			stmt, rest = NextStatement(rest, 0)
			got = append(got, string(stmt))
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: %q, want %q", c.q, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: %q, want %q", c.q, got, c.want)
				break
			}
		}
	}
}

func TestMultiStatementChangesState(t *testing.T) {
	cases := []struct {
		q    string
		want bool
	}{
		{"SET time_zone = '+07:00'", false},
		{"USE d1", false},
		{"SET time_zone = '+07:00';", false},
		{"SELECT 1; SELECT 2", false},
		{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);", false},
		{"BEGIN; UPDATE t SET a = 1; COMMIT", false},
		{"CREATE TABLE t (a INT); DROP TABLE t", false},
		{"SELECT 'x; SET a = 1'; SELECT 2", false},
		{"SELECT 1; /* just a comment */ ; ", false},
		{"SELECT 1; SET time_zone = '+07:00'", true},
		{"SELECT 1; set names latin1", true},
		{"USE d1; SELECT 1", true},
		{"SELECT 1; USE `d;1`", true},
		{"SELECT 1;\n-- comment\nuse d1", true},
		{"SELECT 1; /*!40101 SET NAMES utf8 */", true},
		{"SELECT 1; /*M!100100 SET sql_mode = '' */", true},
		{"SELECT 1; /*!40101 SELECT 2 */", false},
		{"SELECT 1; CREATE TEMPORARY TABLE t (a INT)", true},
		{"SELECT 1; PREPARE s FROM 'SELECT 1'", true},
		{"SELECT 1; LOCK TABLES t READ", true},
		{"SELECT 1; HANDLER t OPEN", true},
		{"SELECT 1; (SELECT 2)", false},
		{"SELECT 1; XA START 'x'", true},
		{"SELECT 1; 42", true},
	}
	for _, c := range cases {
		if got := HiddenStateChange([]byte(c.q), 0, true); got != c.want {
			t.Errorf("%q: %v, want %v", c.q, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		HiddenStateChange([]byte("SELECT 1; SELECT 2; /*!40101 SET NAMES utf8 */"), 0, true)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzStatements: the splitter gives back every byte of its input (the
// statements and their separators), never panics, and the state check
// never panics.
func FuzzStatements(f *testing.F) {
	for _, s := range []string{"SELECT 1; SET a = 1", "SELECT '\\';' ; USE d", "/* ; */ -- ;\n# ;\n;", "/*!40101 SET x=1*/;SELECT 1", "`a;`;\"b;\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		HiddenStateChange(q, 0, true)
		var joined []byte
		for rest := q; rest != nil; {
			var stmt []byte
			stmt, rest = NextStatement(rest, 0)
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

func TestStoredProgramNotMultiStatement(t *testing.T) {
	for q, want := range map[string]bool{
		"CREATE PROCEDURE p() BEGIN SET @x = 1; SELECT 1; END":                                                false,
		"CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN SET time_zone = '+01:00'; END":                 false,
		"CREATE OR REPLACE DEFINER = 'a'@'%' TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET @y = 2; END": false,
		"CREATE FUNCTION f() RETURNS INT BEGIN SET @z = 3; RETURN 1; END":                                     false,
		"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN SET @a = 1; END":                                     false,
		"CREATE TABLE event (a INT); SET @x = 1":                                                              true,
		"CREATE TEMPORARY TABLE procedure_log (a INT); SELECT 1":                                              true,
		"SELECT 1; SET time_zone = '+01:00'":                                                                  true,
	} {
		if got := HiddenStateChange([]byte(q), 0, true); got != want {
			t.Errorf("HiddenStateChange(%q, 0, true) = %v, want %v", q, got, want)
		}
	}
}

func TestUnwrapExecComment(t *testing.T) {
	const floor = 101106 // every server MariaDB 10.11.6 or later
	for q, want := range map[string]string{
		"/*M!100100 SET @@MAX_STATEMENT_TIME=0.000000 */": " SET @@MAX_STATEMENT_TIME=0.000000 ",
		"/*M!100100 SET WAIT_TIMEOUT=DEFAULT */;":         " SET WAIT_TIMEOUT=DEFAULT ",
		"/*M! SET a=1 */":               " SET a=1 ",
		"/*!40101 SET NAMES utf8mb4 */": " SET NAMES utf8mb4 ",
		"/*!101106 SET x=1 */":          " SET x=1 ",
		"/*M!110000 SET x=1 */":         "", // a version not every server has
		"/*!80000 SET x=1 */":           "", // MySQL's: MariaDB skips it
		"/*M!100100 SET x=1 */ SET y=2": "", // more than the comment
		"SET x=1":                       "",
		"/*M!100100 SET x=1 /* c */ */": "",
	} {
		got, ok := UnwrapExecComment([]byte(q), floor)
		if ok != (want != "") || string(got) != want {
			t.Errorf("UnwrapExecComment(%q) = %q %v, want %q", q, got, ok, want)
		}
	}
	if _, ok := UnwrapExecComment([]byte("/*M!100100 SET x=1 */"), 0); ok {
		t.Error("unwrapped with the servers unknown")
	}
}
