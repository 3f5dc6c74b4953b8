package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// loadHJSON reads the subset of HJSON ProxySQL's vector files use: JSON
// plus whole-line "//" comments.
func loadHJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// stringList accepts either a JSON string or an array of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = []string{one}
	return nil
}

type mzDef struct {
	DigestMaxSize       *int    `json:"digest_max_size"`
	GroupingLimit       *int    `json:"grouping_limit"`
	GroupsGroupingLimit *int    `json:"groups_grouping_limit"`
	ReplaceDigits       *int    `json:"replace_digits"`
	KeepComment         *bool   `json:"keep_comment"`
	ReplaceNull         *bool   `json:"replace_null"`
	Digest              *string `json:"digest"`
}

type mzList []mzDef

func (m *mzList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var l []mzDef
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*m = l
		return nil
	}
	var one mzDef
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*m = []mzDef{one}
	return nil
}

type vectorDef struct {
	Q  stringList `json:"q"`
	S1 *string    `json:"s1"`
	S2 *string    `json:"s2"`
	S3 *string    `json:"s3"`
	S4 *string    `json:"s4"`
	DR *string    `json:"dr"`
	MZ mzList     `json:"mz"`
}

// harnessOptions are the globals of test_mysql_query_digests_stages-t.cpp.
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
	return string(digestTextStages(&opts, &d, []byte(q), stages))
}

func TestRegularTokenizerVectors(t *testing.T) {
	var defs []vectorDef
	loadHJSON(t, "testdata/regular_tokenizer_digests.hjson", &defs)
	checks := 0
	for i, def := range defs {
		for _, q := range def.Q {
			name := fmt.Sprintf("%d/%.40q", i, q)
			check := func(stage string, got, want string) {
				t.Helper()
				checks++
				if got != want {
					t.Errorf("%s %s:\n query %q\n got  %q\n want %q", name, stage, q, got, want)
				}
			}
			if def.S1 != nil {
				check("s1", stageDigest(harnessOptions(), q, 1), *def.S1)
			}
			if def.S2 != nil && *def.S2 != "" {
				check("s2", stageDigest(harnessOptions(), q, 2), *def.S2)
			}
			if def.S3 != nil && *def.S3 != "" {
				o := harnessOptions()
				o.GroupsGroupingLimit = 0
				check("s3", stageDigest(o, q, 4), *def.S3)
			}
			if def.S4 != nil && *def.S4 != "" {
				check("s4", stageDigest(harnessOptions(), q, 4), *def.S4)
			}
			if def.DR != nil && *def.DR != "" {
				o := harnessOptions()
				o.NoDigits = true
				check("dr", stageDigest(o, q, 4), *def.DR)
			}
			for j, mz := range def.MZ {
				// Defaults of process_mz_test_def. Its lowercase setting is
				// never applied (it restores the backup instead), so it is
				// ignored here too.
				o := harnessOptions()
				o.MaxQueryLength = 2048
				o.GroupingLimit = 3
				o.GroupsGroupingLimit = 0
				if mz.DigestMaxSize != nil {
					o.MaxQueryLength = *mz.DigestMaxSize
				}
				if mz.GroupingLimit != nil {
					o.GroupingLimit = *mz.GroupingLimit
				}
				if mz.GroupsGroupingLimit != nil {
					o.GroupsGroupingLimit = *mz.GroupsGroupingLimit
				}
				if mz.ReplaceDigits != nil {
					o.NoDigits = *mz.ReplaceDigits != 0
				}
				if mz.KeepComment != nil {
					o.KeepComment = *mz.KeepComment
				}
				if mz.ReplaceNull != nil {
					o.ReplaceNull = *mz.ReplaceNull
				}
				if mz.Digest != nil {
					check(fmt.Sprintf("mz[%d]", j), stageDigest(o, q, 4), *mz.Digest)
				}
			}
		}
	}
	if checks < 200 {
		t.Fatalf("only %d checks ran; the vector file did not load as expected", checks)
	}
	t.Logf("%d digest checks", checks)
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
	NewDigester(o).Digest(&a, []byte(long))
	NewDigester(o).Digest(&b, []byte(long[:len(long)-8]+"y FROM t"))
	if len(a.Text) <= 2048 {
		t.Fatalf("digest text unexpectedly short: %d", len(a.Text))
	}
	if a.Hash != b.Hash {
		t.Errorf("queries differing after 2048 bytes of digest must hash the same")
	}
	o.MaxDigestLength = 65000
	NewDigester(o).Digest(&a, []byte(long))
	NewDigester(o).Digest(&b, []byte(long[:len(long)-8]+"y FROM t"))
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
		NewDigester(DefaultOptions()).Digest(&d, []byte(c.q))
		if string(d.FirstComment) != c.want {
			t.Errorf("%q: first comment %q, want %q", c.q, d.FirstComment, c.want)
		}
	}
	// The buffer is reused and reset between calls.
	var d Digest
	g := NewDigester(DefaultOptions())
	g.Digest(&d, []byte("SELECT /* a=1 */ 1"))
	g.Digest(&d, []byte("SELECT 1"))
	if len(d.FirstComment) != 0 {
		t.Errorf("stale first comment %q", d.FirstComment)
	}
}

func TestDigestReusesBuffers(t *testing.T) {
	g := NewDigester(DefaultOptions())
	var d Digest
	q := []byte("SELECT /* c */ a, b FROM t WHERE id IN (1,2,3,4,5) AND s = 'x'")
	g.Digest(&d, q)
	allocs := testing.AllocsPerRun(100, func() { g.Digest(&d, q) })
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
		g.Digest(&d, []byte(c.q))
		if d.Kind != c.want {
			t.Errorf("%q: kind %v, want %v", c.q, d.Kind, c.want)
		}
	}
	if len(AllKinds()) != int(numKinds) || KindUnknown.String() != "UNKNOWN" || KindLockTable.String() != "LOCK_TABLE" {
		t.Errorf("kind table inconsistent")
	}
}

func TestOptionsFromVars(t *testing.T) {
	vars := map[string]string{
		"mysql-query_digests_lowercase":             "true",
		"mysql-query_digests_grouping_limit":        "5",
		"mysql-query_digests_groups_grouping_limit": "bogus",
		"mysql-query_digests_max_digest_length":     "4096",
	}
	o := OptionsFromVars(func(n string) string { return vars[n] })
	want := DefaultOptions()
	want.Lowercase = true
	want.GroupingLimit = 5
	want.MaxDigestLength = 4096
	if o != want {
		t.Errorf("got %+v want %+v", o, want)
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
		g.Digest(&d, queries[i%len(queries)])
	}
}
