package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordHistoryHourAndTrim follows ProxySQL's stats_history keeping on
// explicit timestamps: samples of one hour are aggregated into _hour once a
// sample of a later hour arrives (counters by MAX, connected by AVG), raw
// rows older than 7 days and hour rows older than 365 days go.
func TestRecordHistoryHourAndTrim(t *testing.T) {
	s, dir := openTemp(t)
	ctx := context.Background()
	base := int64(1_700_000_000) / 3600 * 3600 // an hour boundary
	vals := func(connected, questions int64) []int64 {
		v := make([]int64, len(HistoryColumns(HistMySQLConnections)))
		v[1] = connected // Client_Connections_connected
		v[9] = questions // Questions
		return v
	}
	for i, c := range []struct{ connected, questions int64 }{{2, 10}, {4, 30}, {6, 60}} {
		if err := s.RecordHistory(ctx, HistMySQLConnections, base+int64(i)*60, vals(c.connected, c.questions)); err != nil {
			t.Fatal(err)
		}
	}
	if n := scalar(t, s, "SELECT count(*) FROM stats_history.mysql_connections_hour"); n != "0" {
		t.Fatalf("hour rows before the hour is complete: %s", n)
	}
	// The next hour's first sample aggregates the previous hour.
	if err := s.RecordHistory(ctx, HistMySQLConnections, base+3600, vals(8, 100)); err != nil {
		t.Fatal(err)
	}
	got := mustRows(t, s, "SELECT timestamp, Client_Connections_connected, Questions FROM stats_history.mysql_connections_hour")
	if len(got) != 1 || got[0][0].String != itoa(int(base)) || got[0][1].String != "4" || got[0][2].String != "60" {
		t.Fatalf("hour row %v, want [%d 4 60] (AVG connected, MAX Questions)", got, base)
	}
	t.Logf("mysql_connections_hour after 4 samples: %v", got)
	// A sample 8 days later trims the raw rows of the first hour and
	// aggregates the second one.
	later := base + 8*86400
	if err := s.RecordHistory(ctx, HistMySQLConnections, later, vals(1, 200)); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, s, "SELECT count(*) FROM stats_history.mysql_connections"); n != "1" {
		t.Fatalf("raw rows after a sample 8 days later: %s, want 1 (7 days kept)", n)
	}
	if n := scalar(t, s, "SELECT count(*) FROM stats_history.mysql_connections_hour"); n != "2" {
		t.Fatalf("hour rows: %s, want 2", n)
	}
	// 366 days later the hour rows of a year ago go.
	if err := s.RecordHistory(ctx, HistMySQLConnections, base+366*86400, vals(1, 300)); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, s, "SELECT count(*) FROM stats_history.mysql_connections_hour WHERE timestamp < "+itoa(int(base+366*86400-HistoryHourRetention))); n != "0" {
		t.Fatalf("hour rows older than 365 days: %s", n)
	}

	// system_cpu aggregates by SUM, system_memory by AVG.
	for i := int64(0); i < 2; i++ {
		if err := s.RecordHistory(ctx, HistSystemCPU, base+i*60, []int64{10, 5}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordHistory(ctx, HistSystemMemory, base+i*60, []int64{100 * (i + 1), 2, 3, 4, 5, 6}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordHistory(ctx, HistSystemCPU, base+3600, []int64{1, 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordHistory(ctx, HistSystemMemory, base+3600, []int64{1, 1, 1, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if v := scalar(t, s, "SELECT tms_utime || ',' || tms_stime FROM stats_history.system_cpu_hour"); v != "20,10" {
		t.Fatalf("system_cpu_hour %s, want 20,10 (SUM)", v)
	}
	if v := scalar(t, s, "SELECT allocated FROM stats_history.system_memory_hour"); v != "150" {
		t.Fatalf("system_memory_hour allocated %s, want 150 (AVG)", v)
	}

	// Bad calls are refused.
	if err := s.RecordHistory(ctx, "history_mysql_query_digest", base, nil); err == nil {
		t.Fatal("RecordHistory on a table it does not sample succeeded")
	}
	if err := s.RecordHistory(ctx, HistSystemCPU, base, []int64{1}); err == nil {
		t.Fatal("RecordHistory with too few values succeeded")
	}

	// Digests are appended with their dump_time.
	row := []any{1, "test", "app", "", "0x0000000000000001", "SELECT ?", int64(5), int64(1), int64(2), int64(30), int64(1), int64(10), int64(0), int64(5)}
	if err := s.SaveDigests(ctx, base, [][]any{row, row}); err != nil {
		t.Fatal(err)
	}
	if v := scalar(t, s, "SELECT count(*) || ',' || MIN(dump_time) || ',' || SUM(count_star) FROM stats_history.history_mysql_query_digest"); v != "2,"+itoa(int(base))+",10" {
		t.Fatalf("history_mysql_query_digest %s", v)
	}

	// The history is in the datadir's stats file and survives a reopen;
	// a client may not attach that file a second time.
	if _, err := s.Query(ctx, "ATTACH DATABASE '"+filepath.Join(dir, StatsFile)+"' AS again", false); err == nil || !strings.Contains(err.Error(), "history database") {
		t.Fatalf("ATTACH of the stats file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, StatsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stats file: %v %v", fi, err)
	}
	s.Close()
	s2, _, err := Open(Options{Datadir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := scalar(t, s2, "SELECT count(*) FROM stats_history.history_mysql_query_digest"); n != "2" {
		t.Fatalf("digest history after reopen: %s rows", n)
	}
	if n := scalar(t, s2, "SELECT count(*) FROM stats_history.system_cpu"); n != "3" {
		t.Fatalf("system_cpu after reopen: %s rows", n)
	}
}
