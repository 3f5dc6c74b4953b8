package sqlscan

import (
	"bytes"
	"math/rand/v2"
	"testing"

	spooky "github.com/dgryski/go-spooky"
)

func fuzzOptions(flags, gl, ggl uint8, maxLen uint16) Options {
	o := DefaultOptions()
	o.Lowercase = flags&1 != 0
	o.ReplaceNull = flags&2 != 0
	o.NoDigits = flags&4 != 0
	o.KeepComment = flags&8 != 0
	o.GroupingLimit = int(gl % 16)
	o.GroupsGroupingLimit = int(ggl % 16)
	if flags&16 == 0 {
		o.MaxQueryLength = int(maxLen % 4096)
	}
	o.MaxDigestLength = int(maxLen%3000) + 1
	return o
}

var digestSeeds = []string{
	"SELECT 1",
	"select /* c */ 1",
	"/*!40101 SET NAMES utf8 */;",
	"SELECT * FROM t WHERE id IN (1,2,3,4,5,6,7,8,9,10)",
	"INSERT INTO t VALUES (1,'a',NULL),(2,'b',NULL),(3,'c',NULL),(4,'d',NULL)",
	"select 'unterminated",
	"select \"a\\\"b\"",
	"# only a comment",
	"-- ",
	"--",
	"/*",
	"/*!",
	"/**/",
	"1",
	"'",
	"0x",
	"1e",
	"select 1.1e-9, -2, +3, 0xFF",
	"SELECT a# c\n  FROM t",
	"SELECT\t\n a\r\n",
	"  ;;  ",
	"INSERT INTO db.table (col1,col2,col3) VALUES (1.23234, 9.92381, 8.00)",
	"SELECT /* keep_comment */ 1.1E+9",
	"SELECT nUlL, NULL8, null",
	"(((((((((?,?,?,?,?)",
	"?,?,?,?,?,?,?,?",
	"),...,(?,?,?,...),(?,?,?,...)",
}

// FuzzDigest checks that the tokenizer never panics, never writes past the
// digest buffer ProxySQL allocates (min(len, max_query_length)), keeps the
// first comment within FIRST_COMMENT_MAX_LENGTH, and is deterministic even
// when the Digest's buffers hold a previous query.
func FuzzDigest(f *testing.F) {
	for i, s := range digestSeeds {
		f.Add([]byte(s), uint8(i), uint8(3), uint8(10), uint16(65000))
		f.Add([]byte(s), uint8(0xff), uint8(1), uint8(1), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags, gl, ggl uint8, maxLen uint16) {
		o := fuzzOptions(flags, gl, ggl, maxLen)
		g := NewDigester(o)
		var fresh Digest
		g.Digest(&fresh, data, 0)

		dMax := len(data)
		if dMax > o.MaxQueryLength {
			dMax = o.MaxQueryLength
		}
		if len(fresh.Text) > dMax {
			t.Fatalf("digest %d bytes exceeds buffer %d: %q -> %q", len(fresh.Text), dMax, data, fresh.Text)
		}
		if len(fresh.FirstComment) > firstCommentMaxLength-1 {
			t.Fatalf("first comment %d bytes", len(fresh.FirstComment))
		}
		if bytes.IndexByte(fresh.Text, 0) >= 0 {
			t.Fatalf("NUL inside digest text")
		}
		n := len(fresh.Text)
		if n > o.MaxDigestLength {
			n = o.MaxDigestLength
		}
		if fresh.Hash != spooky.Hash64(fresh.Text[:n]) {
			t.Fatalf("hash mismatch")
		}

		// Reuse a Digest whose buffers hold a longer, different query.
		var used Digest
		g.Digest(&used, []byte("SELECT /* stale comment */ 'x', 123, col FROM stale_table WHERE a IN (1,2,3,4,5,6)"+string(data)), 0)
		g.Digest(&used, data, 0)
		if !bytes.Equal(used.Text, fresh.Text) || used.Hash != fresh.Hash ||
			!bytes.Equal(used.FirstComment, fresh.FirstComment) || used.Kind != fresh.Kind {
			t.Fatalf("not deterministic:\n %q %q\n %q %q", fresh.Text, fresh.FirstComment, used.Text, used.FirstComment)
		}
	})
}

var setSeeds = []string{
	"set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')", "SET sql_mode = REPLACE(@@sql_mode, 'X', ''), @a = 1",
	"SET NAMES utf8mb4 COLLATE utf8mb4_general_ci",
	"SET @@session.sql_mode='TRADITIONAL'",
	"SET sql_mode=(SELECT CONCAT(@@sql_mode, ',X'))",
	"SET autocommit=0",
	"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY",
	"SET @x=1",
	"SET GLOBAL wait_timeout=1",
	"/*!40101 SET character_set_client = utf8 */;",
	"SET time_zone='+00:00', wait_timeout=10, NAMES 'utf8'",
	"SET `sql_mode`=\"a\\\"b\"",
	"SET x='",
	"SET (",
	"SET @@",
	"SET @'a b'=1",
	"SET CHARACTER SET",
}

// FuzzSetParse checks that ParseSet never panics, is deterministic, and
// that every tracked assignment replays (Assignment.SQL) to an equivalent
// tracked assignment.
func FuzzSetParse(f *testing.F) {
	for _, s := range setSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st := ParseSet(data, 0)
		st2 := ParseSet(data, 0)
		if st.Outcome != st2.Outcome || len(st.Assignments) != len(st2.Assignments) {
			t.Fatalf("not deterministic")
		}
		if st.Outcome == SetLock && st.Reason == "" {
			t.Fatalf("lock without reason")
		}
		if st.Computed {
			n := 0
			for _, a := range st.Assignments {
				switch a.Kind {
				case AssignComputed:
					n++
				case AssignUserVariable, AssignUnsupported:
					t.Fatalf("%q: computed with %+v", data, a)
				}
			}
			if st.Outcome != SetLock || n == 0 {
				t.Fatalf("%q: computed, outcome %v, %d computed assignments", data, st.Outcome, n)
			}
		}
		if st.Outcome != SetTracked {
			return
		}
		for _, a := range st.Assignments {
			if a.Kind == AssignUnsupported {
				t.Fatalf("tracked statement with unsupported assignment %+v", a)
			}
			sql := a.SQL()
			re := ParseSet([]byte(sql), 0)
			if re.Outcome != SetTracked || len(re.Assignments) != 1 {
				t.Fatalf("%q: replay %q -> %v %s", data, sql, re.Outcome, re.Reason)
			}
			b := re.Assignments[0]
			if b.Kind != a.Kind || b.Name != a.Name || b.Value != a.Value || b.Collate != a.Collate || b.NextTransaction != a.NextTransaction {
				t.Fatalf("%q: replay %q -> %+v, want %+v", data, sql, b, a)
			}
		}
	})
}

// fastAlphabet is what FuzzFastDigest maps its input onto, so that most
// generated queries are ones the fast path answers: name bytes that matter
// to numbers (e, x, digits), every white space, the accepted operators, and
// a few bytes it must refuse.
const fastAlphabet = "aAeExXfF0123456789000    \t\n\r..,,(()*;;=<>_$`!@:|+-/%''\"\\"

// listAlphabet makes lists and groups for stages 3 and 4.
const listAlphabet = "1,2,3,4,,,(())..  1234'ae-+"

// refusedBytes (outside strings) are mixed in for one input in two.
const refusedBytes = "#?\x00\x80"

var fastDigestSeeds = []string{
	"SELECT c FROM sbtest1 WHERE id=4242",
	"SELECT c FROM sbtest1 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
	"x=12a", "x=1a.5", "x=1.", "x=1a.", "SELECT 1;", " \t 5", "a * 5", "5 * a", "IN (1, 2)",
	"t.col", "0x1F", "0X1g", "1.5e3", "`1a`", "( 1 )", "a ,b", "f( x )", ";", " ; ", "1", "12",
	"select 1 , 2 , 3", "a...b", "x IN (1,2,3,4,5", "SELECT * FROM t LIMIT 10, 20",
	"'a'", "x='a''b'", `x="a\"b"`, `'\\'`, `'\\\''`, ", '", "'a", "'", "1'a'2", "'a'1", "a='x' and b = 'y' ;",
	"a - b", "x = -5", "y=k+1", "1e-5", "1E+5x", "- 1", "+-1", "a+ -1", ") - 1", "? - 1", "a/b", "a %2",
}

// FuzzFastDigest checks the fast path against the staged tokenizer: where
// fastDigestText answers, its text must be the tokenizer's.
func FuzzFastDigest(f *testing.F) {
	for _, s := range append(fastDigestSeeds, digestSeeds...) {
		f.Add([]byte(s), uint8(0), uint8(3), uint8(10), uint16(65000))
		f.Add([]byte(s), uint8(1), uint8(1), uint8(1), uint16(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags, gl, ggl uint8, maxLen uint16) {
		if flags&32 == 0 {
			flags &^= 2 | 4 | 8 // mostly without the options the fast path refuses
		}
		o := fuzzOptions(flags, gl, ggl, maxLen)
		checkFastDigest(t, &o, data)
		alphabet := fastAlphabet
		if flags&64 != 0 {
			alphabet += refusedBytes
		}
		mapped := make([]byte, len(data))
		for i, b := range data {
			mapped[i] = alphabet[int(b)%len(alphabet)]
		}
		checkFastDigest(t, &o, mapped)
	})
}

func checkFastDigest(t *testing.T, o *Options, q []byte) {
	t.Helper()
	var fast, slow Digest
	got, ok := fastDigestText(o, &fast, q, 0)
	if !ok {
		return
	}
	want := digestText(o, &slow, q, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("%q (%+v): fast path %q, tokenizer %q", q, *o, got, want)
	}
}

// TestFastDigestRandom is FuzzFastDigest's check over a fixed set of
// random queries from the accepted bytes, so that every `go test` compares
// the two paths on more than the seeds.
func TestFastDigestRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 1))
	answered := 0
	const n = 20000
	for i := range n {
		alphabet := fastAlphabet
		if i%4 == 0 {
			alphabet = listAlphabet
		}
		q := make([]byte, 1+rng.IntN(60))
		for j := range q {
			q[j] = alphabet[rng.IntN(len(alphabet))]
		}
		o := DefaultOptions()
		o.Lowercase = i%2 == 1
		var d Digest
		if _, ok := fastDigestText(&o, &d, q, 0); ok {
			answered++
		}
		checkFastDigest(t, &o, q)
	}
	if answered < n/4 {
		t.Errorf("fast path answered %d of %d random queries; the comparison covers too little", answered, n)
	}
	t.Logf("fast path answered %d of %d", answered, n)
}
