package sqlscan

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// av is a compact expected assignment: kind, name, value, collate.
type av struct {
	kind          AssignKind
	name, value   string
	collate       string
	next          bool
	literalPrefix string // optional check of Literal
}

func TestParseSetTracked(t *testing.T) {
	cases := []struct {
		q    string
		want []av
	}{
		// setparser_test.cpp, sql_mode
		{"SET @@sql_mode = 'TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL", literalPrefix: "'TRADITIONAL'"}}},
		{"SET SESSION sql_mode = 'TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"SET @@session.sql_mode = 'TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"SET @@local.sql_mode = 'TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"SET sql_mode = 'TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"SET SQL_MODE   ='TRADITIONAL'", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"SET SQL_MODE  = \"TRADITIONAL\"", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL", literalPrefix: `"TRADITIONAL"`}}},
		{"SET SQL_MODE  = TRADITIONAL", []av{{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"set session sql_mode = 'ONLY_FULL_GROUP_BY'", []av{{kind: AssignVariable, name: "sql_mode", value: "ONLY_FULL_GROUP_BY"}}},
		{"SET sql_mode = 'NO_ZERO_DATE,STRICT_ALL_TABLES,ONLY_FULL_GROUP_BY'", []av{{kind: AssignVariable, name: "sql_mode", value: "NO_ZERO_DATE,STRICT_ALL_TABLES,ONLY_FULL_GROUP_BY"}}},
		{"SET sql_mode=''", []av{{kind: AssignVariable, name: "sql_mode", value: ""}}},
		// time_zone
		{"SET @@time_zone = 'Europe/Paris'", []av{{kind: AssignVariable, name: "time_zone", value: "Europe/Paris"}}},
		{"SET @@time_zone = '+00:00'", []av{{kind: AssignVariable, name: "time_zone", value: "+00:00"}}},
		{"SET @@time_zone = \"+00:00\"", []av{{kind: AssignVariable, name: "time_zone", value: "+00:00"}}},
		// session_track_gtids
		{"SET @@session_track_gtids = OWN_GTID", []av{{kind: AssignVariable, name: "session_track_gtids", value: "OWN_GTID"}}},
		{"SET SESSION session_track_gtids = ALL_GTIDS", []av{{kind: AssignVariable, name: "session_track_gtids", value: "ALL_GTIDS"}}},
		// character_set_results
		{"SET @@character_set_results = utf8", []av{{kind: AssignVariable, name: "character_set_results", value: "utf8"}}},
		{"SET character_set_results = NULL", []av{{kind: AssignVariable, name: "character_set_results", value: "NULL"}}},
		{"SET session character_set_results = NULL", []av{{kind: AssignVariable, name: "character_set_results", value: "NULL"}}},
		// names
		{"SET NAMES utf8", []av{{kind: AssignNames, name: "names", value: "utf8"}}},
		{"SET NAMES 'utf8'", []av{{kind: AssignNames, name: "names", value: "utf8"}}},
		{"SET NAMES \"utf8\"", []av{{kind: AssignNames, name: "names", value: "utf8"}}},
		{"SET NAMES utf8 COLLATE unicode_ci", []av{{kind: AssignNames, name: "names", value: "utf8", collate: "unicode_ci"}}},
		{"SET NAMES utf8mb4 COLLATE utf8mb4_general_ci", []av{{kind: AssignNames, name: "names", value: "utf8mb4", collate: "utf8mb4_general_ci"}}},
		{"set names 'utf8mb4' collate 'utf8mb4_bin';", []av{{kind: AssignNames, name: "names", value: "utf8mb4", collate: "utf8mb4_bin"}}},
		{"SET CHARACTER SET latin1", []av{{kind: AssignCharset, name: "charset", value: "latin1"}}},
		{"SET CHARSET 'utf8'", []av{{kind: AssignCharset, name: "charset", value: "utf8"}}},
		// various
		{"SET @@SESSION.SQL_SELECT_LIMIT= DEFAULT", []av{{kind: AssignVariable, name: "sql_select_limit", value: "DEFAULT"}}},
		{"SET SESSION SQL_SELECT_LIMIT   = 1234", []av{{kind: AssignVariable, name: "sql_select_limit", value: "1234"}}},
		{"SET sql_auto_is_null = OFF", []av{{kind: AssignVariable, name: "sql_auto_is_null", value: "OFF"}}},
		{"SET @@sql_safe_updates = ON", []av{{kind: AssignVariable, name: "sql_safe_updates", value: "ON"}}},
		{"SET sql_log_bin=0", []av{{kind: AssignVariable, name: "sql_log_bin", value: "0"}}},
		{"SET long_query_time = 1.5", []av{{kind: AssignVariable, name: "long_query_time", value: "1.5"}}},
		{"SET auto_increment_increment := -1", []av{{kind: AssignVariable, name: "auto_increment_increment", value: "-1"}}},
		{"SET `time_zone` = 'UTC'", []av{{kind: AssignVariable, name: "time_zone", value: "UTC"}}},
		// autocommit
		{"SET autocommit=0", []av{{kind: AssignAutocommit, name: "autocommit", value: "0"}}},
		{"set autocommit = ON", []av{{kind: AssignAutocommit, name: "autocommit", value: "1"}}},
		{"SET @@autocommit='off'", []av{{kind: AssignAutocommit, name: "autocommit", value: "0"}}},
		{"SET AUTOCOMMIT=true", []av{{kind: AssignAutocommit, name: "autocommit", value: "1"}}},
		// transaction characteristics
		{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", []av{{kind: AssignIsolation, name: "transaction_isolation", value: "READ-COMMITTED"}}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", []av{{kind: AssignIsolation, name: "transaction_isolation", value: "SERIALIZABLE", next: true}}},
		{"set session transaction read only", []av{{kind: AssignAccessMode, name: "transaction_read_only", value: "READ ONLY"}}},
		{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE", []av{
			{kind: AssignIsolation, name: "transaction_isolation", value: "REPEATABLE-READ"},
			{kind: AssignAccessMode, name: "transaction_read_only", value: "READ WRITE"}}},
		{"SET @@session.transaction_isolation='read-uncommitted'", []av{{kind: AssignIsolation, name: "transaction_isolation", value: "READ-UNCOMMITTED"}}},
		{"SET tx_isolation = 'REPEATABLE-READ'", []av{{kind: AssignIsolation, name: "transaction_isolation", value: "REPEATABLE-READ"}}},
		{"SET SESSION tx_read_only = 1", []av{{kind: AssignAccessMode, name: "transaction_read_only", value: "READ ONLY"}}},
		// ignored (reg_test_3184)
		{"SET @@wait_timeout = 2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET @@wait_timeout=2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET @@SESSION.wait_timeout = 2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET @@SESSION.wait_timeout=2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET wait_timeout = 2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET SESSION wait_timeout=2147483", []av{{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		{"SET net_read_timeout=600, interactive_timeout=60", []av{
			{kind: AssignIgnored, name: "net_read_timeout", value: "600"},
			{kind: AssignIgnored, name: "interactive_timeout", value: "60"}}},
		// multiple
		{"SET time_zone = 'Europe/Paris', sql_mode = 'TRADITIONAL'", []av{
			{kind: AssignVariable, name: "time_zone", value: "Europe/Paris"},
			{kind: AssignVariable, name: "sql_mode", value: "TRADITIONAL"}}},
		{"set character_set_results=null,names latin7,character_set_client='utf8mb4'", []av{
			{kind: AssignVariable, name: "character_set_results", value: "null"},
			{kind: AssignNames, name: "names", value: "latin7"},
			{kind: AssignVariable, name: "character_set_client", value: "utf8mb4"}}},
		{"SET @@SESSION.sql_mode = '', @@SESSION.auto_increment_increment = 2, @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483", []av{
			{kind: AssignVariable, name: "sql_mode", value: ""},
			{kind: AssignVariable, name: "auto_increment_increment", value: "2"},
			{kind: AssignVariable, name: "sql_auto_is_null", value: "0"},
			{kind: AssignIgnored, name: "wait_timeout", value: "2147483"}}},
		// executable comments and trailing noise
		{"/*!40101 SET NAMES utf8 */", []av{{kind: AssignNames, name: "names", value: "utf8"}}},
		{"/*!40014 SET FOREIGN_KEY_CHECKS=0 */;", []av{{kind: AssignVariable, name: "foreign_key_checks", value: "0"}}},
		{"  SET /* c */ time_zone = 'UTC' ; ", []av{{kind: AssignVariable, name: "time_zone", value: "UTC"}}},
	}
	for _, c := range cases {
		st := ParseSet([]byte(c.q), 0)
		if st.Outcome != SetTracked {
			t.Errorf("%q: outcome %v (%s), want tracked", c.q, st.Outcome, st.Reason)
			continue
		}
		if len(st.Assignments) != len(c.want) {
			t.Errorf("%q: %d assignments %+v, want %d", c.q, len(st.Assignments), st.Assignments, len(c.want))
			continue
		}
		for i, w := range c.want {
			a := st.Assignments[i]
			if a.Kind != w.kind || a.Name != w.name || a.Value != w.value || a.Collate != w.collate || a.NextTransaction != w.next {
				t.Errorf("%q[%d]: got %+v, want %+v", c.q, i, a, w)
			}
			if w.literalPrefix != "" && !strings.HasPrefix(a.Literal, w.literalPrefix) {
				t.Errorf("%q[%d]: literal %q", c.q, i, a.Literal)
			}
		}
	}
}

func TestParseSetLock(t *testing.T) {
	cases := []string{
		"SET @x = 1",
		"SET @ApplicationName='app'",
		"SET @x=1, time_zone='+00:00'",
		"SET time_zone='+00:00', @x=1",
		"SET @CG_ZEROTIME = NOW() - INTERVAL 150 YEAR,@CG_FUTURETIME = NOW() + INTERVAL 5 YEAR",
		"SET sql_mode=(SELECT CONCAT(@@sql_mode, ',X'))",
		"SET sql_mode = CONCAT(@@sql_mode, ',STRICT')",
		"set sql_mode = IFNULL(NULL,\"STRICT_TRANS_TABLES\")",
		"SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ', STRICT_ALL_TABLES'), ', NO_AUTO_VALUE_ON_ZERO')",
		"SET SQL_MODE=IFNULL(@OLD_SQL_MODE,'')",
		"SET @@time_zone = @OLD_TIME_ZONE",
		"SET SQL_SELECT_LIMIT= @old_sql_select_limit",
		"SET GLOBAL wait_timeout=10",
		"SET @@global.sql_mode='TRADITIONAL'",
		"SET PERSIST max_connections=10",
		"SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET insert_id=5",
		"SET SESSION completion_type=2",
		"SET some_unknown_variable = 1",
		"SET autocommit=2",
		"SET tx_isolation='CHAOS'",
		"SET PASSWORD = 'secret'",
		"SET PASSWORD FOR 'u'@'h' = 'x'",
		"SET ROLE ALL",
		"SET",
		"SET time_zone=",
		"SET time_zone='UTC',",
		"SET time_zone='unterminated",
		"SET NAMES",
		"SET NAMES 'utf8 COLLATE 'unicode_ci'",
		"SET TRANSACTION ISOLATION LEVEL SOMETIMES",
		"SET x=1 y=2",
	}
	for _, q := range cases {
		st := ParseSet([]byte(q), 0)
		if st.Outcome != SetLock || st.Reason == "" {
			t.Errorf("%q: outcome %v reason %q, want lock", q, st.Outcome, st.Reason)
		}
	}
}

func TestParseSetNotSet(t *testing.T) {
	for _, q := range []string{"SELECT 1", "SETTINGS", "", "  ", "/* SET x=1 */ SELECT 1", "UPDATE t SET a=1"} {
		if st := ParseSet([]byte(q), 0); st.Outcome != SetNotSet {
			t.Errorf("%q: %v", q, st.Outcome)
		}
	}
}

func TestAssignmentSQLRoundTrip(t *testing.T) {
	cases := map[string]string{
		"SET NAMES utf8mb4 COLLATE utf8mb4_general_ci":           "SET NAMES utf8mb4 COLLATE utf8mb4_general_ci",
		"SET CHARACTER SET latin1":                               "SET CHARACTER SET latin1",
		"set autocommit=off":                                     "SET autocommit=0",
		"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET TRANSACTION READ ONLY":                              "SET TRANSACTION READ ONLY",
		"SET @@session.sql_mode = 'STRICT_ALL_TABLES'":           "SET sql_mode='STRICT_ALL_TABLES'",
		"SET time_zone=\"+01:00\"":                               "SET time_zone=\"+01:00\"",
		"SET tx_isolation='read-committed'":                      "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	}
	for in, want := range cases {
		st := ParseSet([]byte(in), 0)
		if st.Outcome != SetTracked || len(st.Assignments) != 1 {
			t.Fatalf("%q: %+v", in, st)
		}
		got := st.Assignments[0].SQL()
		if got != want {
			t.Errorf("%q: SQL %q, want %q", in, got, want)
		}
		again := ParseSet([]byte(got), 0)
		if again.Outcome != SetTracked || !reflect.DeepEqual(stripLiteral(again.Assignments), stripLiteral(st.Assignments)) {
			t.Errorf("%q: replay %q parses to %+v", in, got, again)
		}
	}
}

func stripLiteral(as []Assignment) []Assignment {
	out := make([]Assignment, len(as))
	for i, a := range as {
		a.Literal = ""
		out[i] = a
	}
	return out
}

func TestTrackedVariableTable(t *testing.T) {
	for i := 1; i < len(trackedVariables); i++ {
		if trackedVariables[i-1] >= trackedVariables[i] {
			t.Fatalf("trackedVariables not sorted at %q", trackedVariables[i])
		}
	}
	for i := 1; i < len(ignoredVariables); i++ {
		if ignoredVariables[i-1] >= ignoredVariables[i] {
			t.Fatalf("ignoredVariables not sorted at %q", ignoredVariables[i])
		}
	}
	if !IsTrackedVariable("sql_mode") || IsTrackedVariable("wait_timeout") || !IsIgnoredVariable("wait_timeout") {
		t.Errorf("lookup broken")
	}
	if len(TrackedVariables()) != len(trackedVariables) {
		t.Errorf("TrackedVariables copy")
	}
}

// TestParseSetUserVariables: a SET with user variables locks (it runs on a
// backend), but its other assignments are parsed, so a statement of user
// variables and tracked variables only loses nothing when the session
// records those and captures the user variables.
func TestParseSetUserVariables(t *testing.T) {
	for _, c := range []struct {
		q        string
		only     bool
		tracked  int
		userVars int
	}{
		{"SET @x = 1", true, 0, 1},
		{"SET @x := (SELECT COUNT(*) FROM t WHERE a IN (1,2)), @y = 'a,b'", true, 0, 2},
		{"SET @x=1, time_zone='+00:00'", true, 1, 1},
		{"SET time_zone='+00:00', @x=1", true, 1, 1},
		{"SET @CG_ZEROTIME = NOW() - INTERVAL 150 YEAR,@CG_FUTURETIME = NOW() + INTERVAL 5 YEAR", true, 0, 2},
		{"SET @`my var` = 1 /* c */, @'q' = 2", true, 0, 2},
		{"SET @x = 1, sql_mode = CONCAT(@@sql_mode, ',X')", false, 0, 1},
		{"SET @x = 1, GLOBAL wait_timeout = 1", false, 0, 1},
		{"SET @x", false, 0, 1},
		{"SET @x = (1", false, 0, 1},
		{"SET @x = 'unterminated", false, 0, 1},
	} {
		st := ParseSet([]byte(c.q), 0)
		if st.Outcome != SetLock {
			t.Errorf("%q: outcome %v, want lock", c.q, st.Outcome)
			continue
		}
		var tracked, uv int
		for _, a := range st.Assignments {
			switch a.Kind {
			case AssignUserVariable:
				uv++
			case AssignVariable, AssignNames, AssignCharset, AssignAutocommit, AssignIsolation, AssignAccessMode:
				tracked++
			}
		}
		if st.UserVariablesOnly() != c.only || (c.only && (tracked != c.tracked || uv != c.userVars)) {
			t.Errorf("%q: user variables only %v (reason %q), %d tracked, %d user variables; want %v, %d, %d",
				c.q, st.UserVariablesOnly(), st.Reason, tracked, uv, c.only, c.tracked, c.userVars)
		}
	}
}

// TestParseSetComputed: tracked variables set to expressions of system
// variables (Connector/J's connect statement) are SetLock with Computed,
// every other assignment parsed; a user variable anywhere, or an untracked
// variable, is not Computed.
func TestParseSetComputed(t *testing.T) {
	for _, c := range []struct {
		q        string
		computed bool
		kinds    []AssignKind
	}{
		{"set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')", true, []AssignKind{AssignAutocommit, AssignComputed}},
		{"SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'ONLY_FULL_GROUP_BY', ''), time_zone = '+00:00'", true, []AssignKind{AssignComputed, AssignVariable}},
		{"SET sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'STRICT_TRANS_TABLES')", true, []AssignKind{AssignComputed}},
		{"SET sql_mode = @old_mode", false, nil},
		{"SET sql_mode = CONCAT(@@sql_mode, ',X'), @x = 1", false, nil},
		// WordPress: an ignored variable's expression is ignored too.
		{"SET @@session.time_zone = '+01:00', @@session.sql_mode = REPLACE(REPLACE(@@sql_mode, 'ONLY_FULL_GROUP_BY', ''), 'ANSI', ''), " +
			"@@session.wait_timeout = GREATEST(CONVERT(COALESCE(@@wait_timeout, 0), SIGNED), 60), NAMES utf8mb4 COLLATE utf8mb4_unicode_520_ci",
			true, []AssignKind{AssignVariable, AssignComputed, AssignIgnored, AssignNames}},
		{"SET innodb_lock_wait_timeout = 1 + 1", true, []AssignKind{AssignComputed}}, // tracked: read back
	} {
		st := ParseSet([]byte(c.q), 0)
		if st.Computed != c.computed || st.Outcome != SetLock {
			t.Errorf("%q: outcome %v computed %v (%s)", c.q, st.Outcome, st.Computed, st.Reason)
			continue
		}
		if c.kinds == nil {
			continue
		}
		var kinds []AssignKind
		for _, a := range st.Assignments {
			kinds = append(kinds, a.Kind)
		}
		if fmt.Sprint(kinds) != fmt.Sprint(c.kinds) {
			t.Errorf("%q: kinds %v, want %v", c.q, kinds, c.kinds)
		}
	}
}

func TestParseSetIgnoredExpressionAndStatement(t *testing.T) {
	if st := ParseSet([]byte("SET wait_timeout = GREATEST(100, 60)"), 0); st.Outcome != SetTracked || st.Assignments[0].Kind != AssignIgnored {
		t.Errorf("ignored variable with an expression: %+v", st)
	}
	if st := ParseSet([]byte("SET wait_timeout = @w"), 0); st.Outcome != SetLock {
		t.Errorf("ignored variable reading a user variable: %+v", st)
	}
	for _, q := range []string{"SET STATEMENT max_statement_time=1 FOR SELECT 1", "set statement sql_mode='' for update t set a=1"} {
		if st := ParseSet([]byte(q), 0); st.Outcome != SetNotSet {
			t.Errorf("%q: %+v, want not a session SET", q, st)
		}
	}
}
