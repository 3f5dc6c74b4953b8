package rules

import (
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

// FuzzMatch: a client's query text, digested as the session does, through
// a rule set with digest and pattern rules, a global and a first-match
// rewrite, flag chains and the first-comment annotations
// (/* hostgroup=2;query_timeout=100;min_gtid=…;… */) in every
// first-comment-parsing mode, then the multiplexing flags. No panic; the
// rewrite stays within what the template can add per match; annotation
// values are taken only as documented.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM t WHERE id=42",
		"/* hostgroup=2;query_timeout=100;query_retries=1;cache_ttl=5000 */ SELECT 1",
		"/* max_lag_ms=250 ; min_gtid=3E11FA47-71CA-11E1-9E33-C80AA9429562:23 */ SELECT a FROM t",
		"/*min_epoch_ms=1700000000000;create_new_connection=1;mirror=7;query_delay=9*/ UPDATE t SET a=1",
		"/* hostgroup=-1;;=;==;hostgroup=99999999999999999999999 */ select 1",
		"SET @x := 1, SESSION sql_log_bin=0",
		"select sleep(1) /* not first */ -- tail\n",
		"INSERT INTO t VALUES ('secret', 0x00ff)",
		"\x00SELECT 1",
	} {
		for mode := range 4 {
			f.Add([]byte(s), byte(mode))
		}
	}
	rs := []config.QueryRule{
		qr(1, matchDigest(`^SELECT .* FROM t WHERE id=\?`), flagOUT(5)),
		qr(2, flagIN(5), matchPattern(`id=(\d+)`), replacePattern(`id=\1 AND 1=1`), dest(10)),
		qr(3, matchPattern(`(?i)sleep\((\d+)\)`), replacePattern(`sleep(0)`), mods("CASELESS,GLOBAL"), dest(11), apply()),
		qr(4, matchDigest(`^UPDATE`), negate(), func(r *config.QueryRule) { r.Multiplex = ni(2) }),
		qr(5, matchPattern(`secret`), func(r *config.QueryRule) { r.ErrorMsg = ns("no") }, apply()),
		qr(6, user("app"), schema("shop"), dest(20), apply()),
	}
	digesters := []*sqlscan.Digester{sqlscan.NewDigester(sqlscan.DefaultOptions())}
	keep := ParseKeepVars(DefaultKeepMultiplexingVariables)
	f.Fuzz(func(t *testing.T, text []byte, mode byte) {
		set, err := Compile(rs, nil, CompileOptions{FirstCommentParsing: int(mode & 3), Iterations: int(mode>>2) & 1})
		if err != nil {
			t.Fatal(err)
		}
		var d sqlscan.Digest
		digesters[0].Digest(&d, text, 0)
		q := &Query{
			User: "app", Schema: "shop", ClientAddr: "10.0.0.7", ProxyAddr: "127.0.0.1", ProxyPort: 6033,
			DigestHash: d.Hash, DigestText: d.Text, FirstComment: d.FirstComment, Text: text,
			NextQueryFlagIN: -1, MirrorFlagOUT: -1, MirrorHostgroup: -1, NowMs: 1_700_000_000_500,
			StmtExecute: mode&8 != 0,
		}
		var dec Decision
		set.Match(q, &dec)
		if dec.Rewritten {
			if q.StmtExecute {
				t.Fatalf("an EXECUTE was rewritten")
			}
			// At most "sleep(0)" or " AND 1=1" added per byte of input.
			if len(dec.NewQuery) > 16*(len(text)+1) {
				t.Fatalf("rewrite grew %d bytes to %d", len(text), len(dec.NewQuery))
			}
		}
		if dec.MaxLagMs != Unset && (dec.MaxLagMs < 0 || dec.MaxLagMs > 600000) {
			t.Fatalf("max_lag_ms %d outside 0..600000", dec.MaxLagMs)
		}
		if dec.MinGTID != "" && !validGTID([]byte(dec.MinGTID)) {
			t.Fatalf("invalid min_gtid accepted: %q", dec.MinGTID)
		}
		var st *sqlscan.SetStatement
		if sqlscan.HasPrefixFold(d.Text, "SET ") {
			s := sqlscan.ParseSet(text, 0)
			st = &s
		}
		for _, legacy := range []bool{false, true} {
			_ = UpdateFlags(0, &d, &FlagContext{Multiplex: dec.Multiplex, LegacySetAlgorithm: legacy, Set: st, InTransaction: true, Keep: keep})
		}
	})
}
