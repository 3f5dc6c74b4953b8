package admin

import (
	"slices"
	"testing"
)

func TestParseTruncate(t *testing.T) {
	cases := map[string]string{
		"TRUNCATE stats_mysql_query_digest":                   "stats_mysql_query_digest",
		"truncate table stats_mysql_query_digest_reset":       "stats_mysql_query_digest_reset",
		"TRUNCATE TABLE stats.stats_mysql_query_digest":       "stats_mysql_query_digest",
		"TRUNCATE `stats`.`stats_mysql_query_digest_reset`":   "stats_mysql_query_digest_reset",
		"TRUNCATE TABLE STATS.STATS_MYSQL_QUERY_DIGEST":       "stats_mysql_query_digest",
		"TRUNCATE TABLE main.stats_mysql_query_digest":        "",
		"TRUNCATE TABLE stats_mysql_connection_pool":          "",
		"TRUNCATE TABLE mysql_servers":                        "",
		"TRUNCATE stats_mysql_query_digest; DELETE FROM x":    "",
		"TRUNCATEstats_mysql_query_digest":                    "",
		"SELECT 'TRUNCATE stats_mysql_query_digest'":          "",
		"TRUNCATE TABLE stats_mysql_query_digest_reset_other": "",
	}
	for q, want := range cases {
		got, ok := parseTruncate(normalize(q))
		if ok != (want != "") || ok && got != want {
			t.Errorf("%q: got %q %v, want %q", q, got, ok, want)
		}
	}
}

func TestTruncateDigest(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	for _, tbl := range []string{"stats_mysql_query_digest", "stats_mysql_query_digest_reset"} {
		mustExec(t, adm, "INSERT INTO stats."+tbl+" VALUES (1, 'db', 'u', '', '0x0000000000000001', 'SELECT ?', 1, 1, 1, 1, 1, 1, 0, 1)")
	}
	e.app.mu.Lock()
	e.app.refreshed = nil
	e.app.mu.Unlock()
	mustExec(t, adm, "TRUNCATE TABLE stats.stats_mysql_query_digest;")
	e.app.mu.Lock()
	truncated, refreshed := slices.Clone(e.app.truncated), slices.Clone(e.app.refreshed)
	e.app.mu.Unlock()
	for _, tbl := range []string{"stats_mysql_query_digest", "stats_mysql_query_digest_reset"} {
		if n := scalar(t, adm, "SELECT COUNT(*) FROM stats."+tbl); n != "0" {
			t.Errorf("%s has %s rows after TRUNCATE", tbl, n)
		}
	}
	if !slices.Equal(truncated, []string{"stats_mysql_query_digest"}) {
		t.Fatalf("the proxy was asked to truncate %q", truncated)
	}
	if slices.Contains(refreshed, "stats_mysql_query_digest") {
		t.Error("TRUNCATE refreshed the digest table before emptying it")
	}
	// A stats session is read-only: its TRUNCATE goes to SQLite, which
	// does not know the statement.
	if _, _, err := tryQuery(e.db("stats", "stats"), "TRUNCATE stats_mysql_query_digest"); err == nil {
		t.Error("a stats session truncated the digest table")
	}
	// Other tables are not intercepted.
	if _, _, err := tryQuery(adm, "TRUNCATE TABLE mysql_servers"); err == nil {
		t.Error("TRUNCATE TABLE mysql_servers succeeded")
	}
}
