package admin

import (
	"strings"
	"testing"
	"time"
)

// FuzzStatementParsers feeds arbitrary statements to every parser of the
// intercept chain: none may panic, and the grammar must agree with its own
// table.
func FuzzStatementParsers(f *testing.F) {
	for cmd := range loadSaveCommands {
		f.Add(cmd)
	}
	for _, s := range []string{
		"SELECT @@version_comment limit 1", "SELECT DATABASE(), USER() LIMIT 1",
		"SHOW VARIABLES WHERE Variable_name in ('a','b')", "SET mysql-threads = 4;",
		"select 'a;b'; select `c`", "/*!40101 SET NAMES utf8 */", "SHOW TABLES LIKE '%run\\_time%'",
		"LOAD MYSQL USER bob TO RUNTIME", "SELECT 'x", "-- c\n#d\n/* e", "%a%a%a%a%a%a%a%a%a%a%a%a%a%b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n := normalize(q)
		if normalize(n) != n {
			t.Fatalf("normalize not idempotent on %q", q)
		}
		if ls, ok := parseLoadSave(n); ok {
			if loadSaveCommands[asciiUpper(n)] != ls {
				t.Fatalf("%q parsed as %v, table says %v", n, ls, loadSaveCommands[asciiUpper(n)])
			}
		}
		if len(asciiUpper(q)) != len(q) {
			t.Fatal("asciiUpper changed the length")
		}
		for _, st := range splitStatements(q) {
			if !strings.Contains(q, st) {
				t.Fatalf("statement %q is not part of %q", st, q)
			}
		}
		parseSelectList(n)
		variablesInList(n)
		identifiers(q)
		isReadOnlySQL(q)
		statsForbidden(q)
		// The stats session's rewrite only ever names stats.global_variables.
		if r := statsGlobalVariables(q); statsForbidden(r) != "" && statsForbidden(q) == "" {
			t.Fatalf("the rewrite of %q names a forbidden table: %q", q, r)
		}
		liveTables(n)
		start := time.Now()
		likeMatch(q, strings.Repeat("a", 64))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("likeMatch took %v", d)
		}
	})
}
