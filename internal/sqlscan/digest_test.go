package sqlscan

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// digestVector is one line of testdata/digest_vectors.json: a query, the
// digest stage it is checked at, and the expected digest text. The
// expectations are ProxySQL's observable behaviour (the stages of
// mysql_query_digest_and_first_comment_2, as its digest stage tests define
// them), recorded as plain input/output facts.
//
// Modes: s1 = first stage only; s2 = first two stages; s3 = all stages with
// groups_grouping_limit=0; s4 = all stages; dr = all stages with
// no_digits; full = all stages with the options in Opts over the "full"
// defaults (max_query_length 2048, grouping_limit 3, groups_grouping_limit 0).
type digestVector struct {
	Query string `json:"query"`
	Mode  string `json:"mode"`
	Opts  struct {
		MaxQueryLength      *int  `json:"max_query_length"`
		GroupingLimit       *int  `json:"grouping_limit"`
		GroupsGroupingLimit *int  `json:"groups_grouping_limit"`
		NoDigits            *bool `json:"no_digits"`
		KeepComment         *bool `json:"keep_comment"`
		ReplaceNull         *bool `json:"replace_null"`
	} `json:"opts"`
	Want string `json:"want"`
}

// harnessOptions are the options the stage vectors assume.
func harnessOptions() Options {
	return Options{
		MaxQueryLength:      65000,
		ReplaceNull:         true,
		GroupingLimit:       3,
		GroupsGroupingLimit: 1,
		MaxDigestLength:     2048,
	}
}

func stageDigest(opts Options, q string, stages int) string {
	var d Digest
	return string(digestTextStages(&opts, &d, []byte(q), 0, stages))
}

func TestDigestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/digest_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []digestVector
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		o, stages := harnessOptions(), 4
		switch v.Mode {
		case "s1":
			stages = 1
		case "s2":
			stages = 2
		case "s3":
			o.GroupsGroupingLimit = 0
		case "s4":
		case "dr":
			o.NoDigits = true
		case "full":
			o.MaxQueryLength, o.GroupingLimit, o.GroupsGroupingLimit = 2048, 3, 0
			if p := v.Opts.MaxQueryLength; p != nil {
				o.MaxQueryLength = *p
			}
			if p := v.Opts.GroupingLimit; p != nil {
				o.GroupingLimit = *p
			}
			if p := v.Opts.GroupsGroupingLimit; p != nil {
				o.GroupsGroupingLimit = *p
			}
			if p := v.Opts.NoDigits; p != nil {
				o.NoDigits = *p
			}
			if p := v.Opts.KeepComment; p != nil {
				o.KeepComment = *p
			}
			if p := v.Opts.ReplaceNull; p != nil {
				o.ReplaceNull = *p
			}
		default:
			t.Fatalf("vector %d: unknown mode %q", i, v.Mode)
		}
		if got := stageDigest(o, v.Query, stages); got != v.Want {
			t.Errorf("vector %d (%s):\n query %q\n got  %q\n want %q", i, v.Mode, v.Query, got, v.Want)
		}
	}
	if len(vecs) < 300 {
		t.Fatalf("only %d vectors loaded", len(vecs))
	}
}

// Hashes published by ProxySQL users (stats_mysql_query_digest and events
// log excerpts) pin the hash function and the default options together.
func TestKnownProxySQLHashes(t *testing.T) {
	cases := []struct {
		query, text, hash string
	}{
		{"select @@version_comment limit 1", "select @@version_comment limit ?", "0x226CD90D52A2BA0B"},
		{"SELECT @@HOSTNAME as hostname", "SELECT @@HOSTNAME as hostname", "0xF8F780C47A8D1D82"},
		{"select USER()", "select USER()", "0x594F2C744B698066"},
		{"INSERT INTO testdb.t1 VALUES(1,'a',3.5)", "INSERT INTO testdb.t1 VALUES(?,?,?)", "0x447DBFBC0B483620"},
		{"SELECT * FROM object", "SELECT * FROM object", "0xDDA8CA732A4BBD3B"},
		{"insert into test.t(id) values(42)", "insert into test.t(id) values(?)", "0x68D0B3544BA3210A"},
		{"select * from db0.tbl_0", "select * from db0.tbl_0", "0xA132AEDEC5932600"},
	}
	for _, c := range cases {
		h, text := DigestString(c.query, DefaultOptions())
		if text != c.text || FormatHash(h) != c.hash {
			t.Errorf("%q: got %s %q, want %s %q", c.query, FormatHash(h), text, c.hash, c.text)
		}
	}
}

func TestDigestDefaults(t *testing.T) {
	cases := []struct{ q, want string }{
		// replace_null defaults to false.
		{"SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a IS NULL"},
		// groups_grouping_limit 10 by default.
		{"INSERT INTO t VALUES (1,2),(3,4)", "INSERT INTO t VALUES (?,?),(?,?)"},
		{"SELECT * FROM t WHERE id IN (1,2,3,4,5,6,7,8,9,10)", "SELECT * FROM t WHERE id IN (?,?,?,...)"},
		{"select   *\n\tfrom  t ;", "select * from t"},
		{"  SELECT 1;;  ", "SELECT ?"},
		{"/*!40101 SET NAMES utf8 */", "SET NAMES utf8"},
		{"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;", "SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT"},
		{"SELECT 0x1F, 1e10, -5, 'x''y', \"z\"", "SELECT ?,?,?,?,?"},
		{"SELECT col1, t_25 FROM table_25", "SELECT col1,t_25 FROM table_25"},
		{"", ""},
		{";", ";"},
		{"SELECT a# trailing\n  FROM t", "SELECT a FROM t"},
		{"SELECT a -- c\n  FROM t", "SELECT a FROM t"},
	}
	for _, c := range cases {
		_, got := DigestString(c.q, DefaultOptions())
		if got != c.want {
			t.Errorf("%q: got %q want %q", c.q, got, c.want)
		}
	}
}

func TestDigestOptions(t *testing.T) {
	o := DefaultOptions()
	o.Lowercase = true
	if _, got := DigestString("SELECT Col FROM T WHERE x='A'", o); got != "select col from t where x=?" {
		t.Errorf("lowercase: %q", got)
	}
	o = DefaultOptions()
	o.ReplaceNull = true
	if _, got := DigestString("SELECT NULL, null8", o); got != "SELECT ?,null8" {
		t.Errorf("replace_null: %q", got)
	}
	o = DefaultOptions()
	o.NoDigits = true
	if _, got := DigestString("SELECT col1 FROM t2", o); got != "SELECT col? FROM t?" {
		t.Errorf("no_digits: %q", got)
	}
	o = DefaultOptions()
	o.KeepComment = true
	if _, got := DigestString("SELECT /* keep */ 1", o); got != "SELECT /* keep */ ?" {
		t.Errorf("keep_comment: %q", got)
	}
	o = DefaultOptions()
	o.GroupingLimit = 0
	if _, got := DigestString("SELECT * FROM t WHERE id IN (1,2,3,4,5)", o); got != "SELECT * FROM t WHERE id IN (?,?,?,?,?)" {
		t.Errorf("grouping_limit=0: %q", got)
	}
	o = DefaultOptions()
	o.GroupsGroupingLimit = 2
	if _, got := DigestString("INSERT INTO t VALUES (1,2,3,4,5),(1,2,3,4,5),(1,2,3,4,5),(5,6,7,8,9)", o); got != "INSERT INTO t VALUES (?,?,?,...),(?,?,?,...),..." {
		t.Errorf("groups_grouping_limit=2: %q", got)
	}
}

func TestMaxDigestLengthHash(t *testing.T) {
	long := "SELECT " + strings.Repeat("abcdefghij,", 300) + "x FROM t"
	o := DefaultOptions()
	var a, b Digest
	NewDigester(o).Digest(&a, []byte(long), 0)
	NewDigester(o).Digest(&b, []byte(long[:len(long)-8]+"y FROM t"), 0)
	if len(a.Text) <= 2048 {
		t.Fatalf("digest text unexpectedly short: %d", len(a.Text))
	}
	if a.Hash != b.Hash {
		t.Errorf("queries differing after 2048 bytes of digest must hash the same")
	}
	o.MaxDigestLength = 65000
	NewDigester(o).Digest(&a, []byte(long), 0)
	NewDigester(o).Digest(&b, []byte(long[:len(long)-8]+"y FROM t"), 0)
	if a.Hash == b.Hash {
		t.Errorf("with a larger max_digest_length the hashes must differ")
	}
}

func TestMaxQueryLengthTruncates(t *testing.T) {
	o := DefaultOptions()
	o.MaxQueryLength = 20
	_, got := DigestString("SELECT aaaaaaaaaa, bbbbbbbbbb, cccccccccc FROM t", o)
	if len(got) > 20 || !strings.HasPrefix(got, "SELECT aaaaaaaaaa,") {
		t.Errorf("got %q", got)
	}
}

func TestFirstComment(t *testing.T) {
	cases := []struct{ q, want string }{
		{"SELECT /* hostgroup=2;query_timeout=3300 */ 1", " hostgroup=2;query_timeout=3300 "},
		{"/*hostgroup=1*/ SELECT 1 /* second */", "hostgroup=1"},
		{"SELECT /*!40001 SQL_NO_CACHE */ 1", "40001 SQL_NO_CACHE "},
		{"SELECT /*\tmulti\nline*/ 1", " multi line"},
		{"SELECT 1", ""},
	}
	for _, c := range cases {
		var d Digest
		NewDigester(DefaultOptions()).Digest(&d, []byte(c.q), 0)
		if string(d.FirstComment) != c.want {
			t.Errorf("%q: first comment %q, want %q", c.q, d.FirstComment, c.want)
		}
	}
	// The buffer is reused and reset between calls.
	var d Digest
	g := NewDigester(DefaultOptions())
	g.Digest(&d, []byte("SELECT /* a=1 */ 1"), 0)
	g.Digest(&d, []byte("SELECT 1"), 0)
	if len(d.FirstComment) != 0 {
		t.Errorf("stale first comment %q", d.FirstComment)
	}
}

func TestDigestReusesBuffers(t *testing.T) {
	g := NewDigester(DefaultOptions())
	var d Digest
	q := []byte("SELECT /* c */ a, b FROM t WHERE id IN (1,2,3,4,5) AND s = 'x'")
	g.Digest(&d, q, 0)
	allocs := testing.AllocsPerRun(100, func() { g.Digest(&d, q, 0) })
	if allocs != 0 {
		t.Errorf("Digest allocates %.1f times per call on a warm Digest", allocs)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		q    string
		want StmtKind
	}{
		{"SELECT 1", KindSelect},
		{"(SELECT 1) UNION (SELECT 2)", KindSelect},
		{"select * from t for update", KindSelectForUpdate},
		{"INSERT INTO t VALUES (1)", KindInsert},
		{"update t set a=1", KindUpdate},
		{"DELETE FROM t", KindDelete},
		{"REPLACE INTO t VALUES (1)", KindReplace},
		{"SET NAMES utf8", KindSet},
		{"USE db", KindUse},
		{"BEGIN", KindBegin},
		{"START TRANSACTION READ ONLY", KindStartTransaction},
		{"COMMIT", KindCommit},
		{"ROLLBACK", KindRollback},
		{"ROLLBACK WORK", KindRollback},
		{"ROLLBACK TO SAVEPOINT s1", KindRollbackSavepoint},
		{"SAVEPOINT s1", KindSavepoint},
		{"RELEASE SAVEPOINT s1", KindReleaseSavepoint},
		{"LOCK TABLES t WRITE", KindLockTable},
		{"UNLOCK TABLES", KindUnlockTables},
		{"PREPARE s FROM 'SELECT 1'", KindPrepare},
		{"EXECUTE s", KindExecute},
		{"DEALLOCATE PREPARE s", KindDeallocate},
		{"DROP PREPARE s", KindDeallocate},
		{"SHOW TABLES", KindShow},
		{"SHOW TABLE STATUS", KindShowTableStatus},
		{"CREATE TEMPORARY TABLE t (a int)", KindCreateTemporary},
		{"CREATE TABLE t (a int)", KindCreateTable},
		{"CREATE OR REPLACE VIEW v AS SELECT 1", KindCreateView},
		{"CREATE UNIQUE INDEX i ON t(a)", KindCreateIndex},
		{"DROP TABLE t", KindDropTable},
		{"DROP DATABASE d", KindDropDatabase},
		{"ALTER ONLINE TABLE t ADD c int", KindAlterTable},
		{"ALTER VIEW v AS SELECT 1", KindAlterView},
		{"ANALYZE LOCAL TABLE t", KindAnalyzeTable},
		{"KILL QUERY 5", KindKill},
		{"TRUNCATE TABLE t", KindTruncateTable},
		{"TRUNCATE t", KindTruncateTable},
		{"CALL p()", KindCall},
		{"EXPLAIN SELECT 1", KindExplain},
		{"DESC t", KindDescribe},
		{"FLUSH TABLES WITH READ LOCK", KindFlush},
		{"RESET MASTER", KindResetMaster},
		{"CHANGE MASTER TO MASTER_HOST='x'", KindChangeMaster},
		{"GRANT ALL ON *.* TO u", KindGrant},
		{"DO 1", KindUnknown},
		{"", KindUnknown},
		{"/*!40101 SET NAMES utf8 */", KindSet},
		{"  /* c */ select 1", KindSelect},
	}
	g := NewDigester(DefaultOptions())
	for _, c := range cases {
		var d Digest
		g.Digest(&d, []byte(c.q), 0)
		if d.Kind != c.want {
			t.Errorf("%q: kind %v, want %v", c.q, d.Kind, c.want)
		}
	}
	if len(AllKinds()) != int(numKinds) || KindUnknown.String() != "UNKNOWN" || KindLockTable.String() != "LOCK_TABLE" {
		t.Errorf("kind table inconsistent")
	}
}

func BenchmarkDigest(b *testing.B) {
	queries := [][]byte{
		[]byte("SELECT c FROM sbtest1 WHERE id=4242"),
		[]byte("SELECT DISTINCT c FROM sbtest7 WHERE id BETWEEN 5012 AND 5111 ORDER BY c"),
		[]byte("UPDATE sbtest3 SET k=k+1 WHERE id=7781"),
		[]byte("INSERT INTO sbtest5 (id, k, c, pad) VALUES (0, 5004, '83868641912-28773972837-60736120486-75162659906-27563526494', '67847967377-48000963322-62604785301-91415491898-96926520291')"),
		[]byte("/* hostgroup=2 */ SELECT a, b, c FROM orders WHERE customer_id IN (1,2,3,4,5,6,7,8,9,10) AND status = 'open'"),
	}
	g := NewDigester(DefaultOptions())
	var d Digest
	var n int64
	for _, q := range queries {
		n += int64(len(q))
	}
	b.SetBytes(n / int64(len(queries)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Digest(&d, queries[i%len(queries)], 0)
	}
}

// TestFastDigestTakes pins which queries take the fast path: the common
// shapes must (or the CPU it saves is lost without a failing test), and
// each must give the tokenizer's text.
func TestFastDigestTakes(t *testing.T) {
	o := DefaultOptions()
	for _, q := range []string{
		"SELECT c FROM sbtest1 WHERE id=4242",
		"SELECT c FROM sbtest1 WHERE id = 4242",
		"SELECT c FROM sbtest1 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
		"SELECT SUM(k) FROM sbtest3 WHERE id BETWEEN 1 AND 100",
		"SELECT DISTINCT c FROM sbtest7 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
		"select `a`.`id`, b.name from `a` join b on a.id = b.a_id where a.x >= 10 limit 20;",
		"SELECT 1",
		"COMMIT",
		"SET autocommit=1",
		"UPDATE sbtest1 SET k=k+1 WHERE id=5012",
		"SELECT a IN ('x','y')",
		"SELECT * FROM t WHERE id IN (1, 2, 3, 4, 5, 6) AND (a, b) IN ((1,2),(3,4),(5,6),(7,8)) LIMIT 5",
		"INSERT INTO sbtest5 (id, k, c, pad) VALUES (0, 5004, '83868641912', '67847967377')",
		"SELECT a...b",
		"UPDATE sbtest1 SET c='83868641912-28773972837-60736120486' WHERE id=5012",
		`SELECT id FROM users WHERE email = 'a\'b@example.com' AND name = "O''Brien" AND note = '?#--/*é'`,
		"SELECT a - b, -5, x * -1e-3, y/2, z % 3 FROM t WHERE d > NOW() - INTERVAL 1 DAY",
	} {
		var fast, slow Digest
		got, ok := fastDigestText(&o, &fast, []byte(q), 0)
		if !ok {
			t.Errorf("%q: fast path refused", q)
			continue
		}
		if want := digestText(&o, &slow, []byte(q), 0); !bytes.Equal(got, want) {
			t.Errorf("%q: fast path %q, tokenizer %q", q, got, want)
		}
	}
	for _, q := range []string{
		"SELECT 1 -- c", "SELECT 1 --", "SELECT /* c */ 1", "SELECT 1 # c",
		"SELECT ?", "SELECT \xc3\xa9",
	} {
		var d Digest
		if _, ok := fastDigestText(&o, &d, []byte(q), 0); ok {
			t.Errorf("%q: fast path answered, want the tokenizer", q)
		}
	}
}
