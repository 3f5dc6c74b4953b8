package monitor

import (
	"database/sql"
	"testing"

	"github.com/sluice-proxy/sluice/backend"
)

// parseGR reads ProxySQL's three columns; a NULL keeps the pessimistic
// value, and grVerdict places the member: not viable → offline, lagging
// for enough checks → offline, read_only → reader, else writer.
func TestGroupReplicationVerdict(t *testing.T) {
	ns := func(v string, ok bool) sql.NullString { return sql.NullString{String: v, Valid: ok} }
	cases := []struct {
		row     []sql.NullString
		lagging int
		want    galeraRole
	}{
		{[]sql.NullString{ns("YES", true), ns("NO", true), ns("0", true)}, 0, galeraWriter},
		{[]sql.NullString{ns("YES", true), ns("YES", true), ns("7", true)}, 0, galeraReader},
		{[]sql.NullString{ns("NO", true), ns("NO", true), ns("0", true)}, 0, galeraOffline},
		{[]sql.NullString{ns("", false), ns("", false), ns("", false)}, 0, galeraOffline},  // NULLs: not viable
		{[]sql.NullString{ns("YES", true), ns("", false), ns("", false)}, 0, galeraReader}, // NULL read_only: read-only
		{[]sql.NullString{ns("yes", true), ns("YES", true), ns("500", true)}, 2, galeraReader},
		{[]sql.NullString{ns("YES", true), ns("YES", true), ns("500", true)}, 3, galeraOffline},
		{[]sql.NullString{ns("YES", true), ns("NO", true), ns("500", true)}, 3, galeraWriter}, // the primary is never taken out for lag
	}
	for i, c := range cases {
		st, err := parseGR(&backend.Result{Rows: [][]sql.NullString{c.row}})
		if err != nil {
			t.Fatal(err)
		}
		if got, why := grVerdict(st, 100, c.lagging, 3); got != c.want {
			t.Errorf("case %d: %+v lagging %d: role %d (%s), want %d", i, st, c.lagging, got, why, c.want)
		}
	}
	if _, err := parseGR(&backend.Result{}); err == nil {
		t.Error("no row: no error")
	}
}
