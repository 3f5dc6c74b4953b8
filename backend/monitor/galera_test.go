package monitor

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-proxy/sluice/backend"
)

func TestGaleraVerdict(t *testing.T) {
	ok := GaleraState{Primary: true, LocalState: 4, MaintMode: "DISABLED"}
	with := func(f func(*GaleraState)) GaleraState { s := ok; f(&s); return s }
	for _, tc := range []struct {
		name      string
		st        GaleraState
		maxBehind int
		role      galeraRole
		reason    string
	}{
		{"synced writer", ok, 0, galeraWriter, ""},
		{"synced reader", with(func(s *GaleraState) { s.ReadOnly = true }), 0, galeraReader, ""},
		{"non-primary", with(func(s *GaleraState) { s.Primary = false; s.ReadOnly = true }), 0, galeraOffline, "primary_partition=NO"},
		{"desynced donor", with(func(s *GaleraState) { s.Desync = true; s.LocalState = 2 }), 0, galeraOffline, "wsrep_desync=YES"},
		{"donor that serves", with(func(s *GaleraState) { s.LocalState = 2 }), 0, galeraWriter, ""},
		{"donor that rejects", with(func(s *GaleraState) { s.LocalState = 2; s.DonorRejects = true }), 0, galeraOffline, "wsrep_local_state=2"},
		{"joiner", with(func(s *GaleraState) { s.LocalState = 1 }), 0, galeraOffline, "wsrep_local_state=1"},
		{"rejecting", with(func(s *GaleraState) { s.RejectQueries = true }), 0, galeraOffline, "wsrep_reject_queries=true"},
		{"maintenance", with(func(s *GaleraState) { s.MaintMode = "MAINTENANCE" }), 0, galeraOffline, "pxc_maint_mode=MAINTENANCE"},
		{"reader behind", with(func(s *GaleraState) { s.ReadOnly = true; s.RecvQueue = 11 }), 10, galeraOffline,
			"slave is lagging (wsrep_local_recv_queue=11 > max_transactions_behind=10)"},
		{"reader at the limit", with(func(s *GaleraState) { s.ReadOnly = true; s.RecvQueue = 10 }), 10, galeraReader, ""},
		{"reader, limit 0", with(func(s *GaleraState) { s.ReadOnly = true; s.RecvQueue = 1 }), 0, galeraOffline,
			"slave is lagging (wsrep_local_recv_queue=1 > max_transactions_behind=0)"},
		{"writer behind: writers are not checked for lag", with(func(s *GaleraState) { s.RecvQueue = 500 }), 10, galeraWriter, ""},
	} {
		role, reason := galeraVerdict(tc.st, tc.maxBehind)
		if role != tc.role || reason != tc.reason {
			t.Errorf("%s: %v %q, want %v %q", tc.name, role, reason, tc.role, tc.reason)
		}
	}
}

func TestGaleraPlan(t *testing.T) {
	g := GaleraHostgroup{WriterHostgroup: 10, BackupWriterHostgroup: 11, ReaderHostgroup: 12, OfflineHostgroup: 13, MaxWriters: 1}
	nodes := []galeraNode{
		{host: "db1", port: 3306, weight: 1, role: galeraWriter},
		{host: "db2", port: 3306, weight: 5, role: galeraWriter}, // the heaviest writes
		{host: "db3", port: 3306, weight: 1, role: galeraReader},
		{host: "db4", port: 3306, weight: 9, role: galeraOffline},
		{host: "db5", port: 3306, weight: 1, role: galeraUnknown},
		{host: "db0", port: 3307, weight: 1, role: galeraWriter}, // ties: host, then port, descending
	}
	// No node fit to write: the first in that order that may, writes.
	lone := []galeraNode{
		{host: "db1", port: 3306, weight: 1, role: galeraOffline, lastResort: true},
		{host: "db2", port: 3306, weight: 1, role: galeraOffline},
		{host: "db3", port: 3306, weight: 1, role: galeraReader},
	}
	if got, want := galeraPlan(g, lone), [][]int{{10}, {13}, {12}}; !reflect.DeepEqual(got, want) {
		t.Errorf("last resort: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		wiar, maxWriters int
		want             [][]int
	}{
		{0, 1, [][]int{{11}, {10}, {12}, {13}, nil, {11}}},
		{1, 1, [][]int{{11, 12}, {10, 12}, {12}, {13}, nil, {11, 12}}},
		{2, 1, [][]int{{11, 12}, {10}, {12}, {13}, nil, {11, 12}}},
		{0, 2, [][]int{{10}, {10}, {12}, {13}, nil, {11}}},
		{0, 0, [][]int{{11}, {11}, {12}, {13}, nil, {11}}},
		{0, 5, [][]int{{10}, {10}, {12}, {13}, nil, {10}}},
	} {
		g.WriterIsAlsoReader, g.MaxWriters = tc.wiar, tc.maxWriters
		if got := galeraPlan(g, nodes); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("writer_is_also_reader=%d max_writers=%d: %v, want %v", tc.wiar, tc.maxWriters, got, tc.want)
		}
	}
}

func TestParseGalera(t *testing.T) {
	v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	cols := []string{"wsrep_local_state", "read_only", "wsrep_local_recv_queue", "wsrep_desync", "wsrep_reject_queries",
		"wsrep_sst_donor_rejects_queries", "wsrep_cluster_status", "pxc_maint_mode"}
	res := &backend.Result{Columns: cols, Rows: [][]sql.NullString{{v("4"), v("0"), v("3"), v("OFF"), v("NONE"), v("OFF"), v("Primary"), v("DISABLED")}}}
	st, err := parseGalera(res)
	want := GaleraState{Primary: true, LocalState: 4, RecvQueue: 3, MaintMode: "DISABLED"}
	if err != nil || st != want {
		t.Fatalf("synced node: %+v %v", st, err)
	}
	res.Rows[0] = []sql.NullString{v("2"), v("1"), v("0"), v("ON"), v("ALL"), v("ON"), v("non-Primary"), v("DISABLED")}
	st, err = parseGalera(res)
	want = GaleraState{ReadOnly: true, LocalState: 2, Desync: true, RejectQueries: true, DonorRejects: true, MaintMode: "DISABLED"}
	if err != nil || st != want {
		t.Fatalf("desynced node: %+v %v", st, err)
	}
	// A server without Galera: the status rows are missing, and it is not
	// fit to serve.
	res.Rows[0] = []sql.NullString{{}, v("0"), {}, v("OFF"), v("NONE"), v("OFF"), {}, v("DISABLED")}
	st, err = parseGalera(res)
	if role, why := galeraVerdict(st, 0); err != nil || role != galeraOffline || why != "primary_partition=NO" {
		t.Fatalf("not a Galera node: %+v %v → %v %s", st, err, role, why)
	}
	res.Rows = nil
	if _, err := parseGalera(res); !errors.Is(err, backend.ErrProtocol) {
		t.Fatalf("no row: %v", err)
	}
}
