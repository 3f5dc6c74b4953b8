package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestReplaceTable(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	cols := []string{"Variable_Name", "Variable_Value"}
	if err := s.ReplaceTable(ctx, "stats_mysql_global", cols, [][]any{{"Questions", "7"}, {"ProxySQL_Uptime", 3}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Query(ctx, "SELECT Variable_Name, Variable_Value FROM stats_mysql_global ORDER BY Variable_Name", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 || res.Rows[0][0].String != "ProxySQL_Uptime" || res.Rows[0][1].String != "3" || res.Rows[1][1].String != "7" {
		t.Fatalf("rows %v", res.Rows)
	}
	// A second call replaces, never appends.
	if err := s.ReplaceTable(ctx, "stats.stats_mysql_global", cols, [][]any{{"Questions", "8"}}); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Query(ctx, "SELECT COUNT(*), MAX(Variable_Value) FROM stats.stats_mysql_global", false)
	if res.Rows[0][0].String != "1" || res.Rows[0][1].String != "8" {
		t.Fatalf("after replace %v", res.Rows)
	}
	// Runtime and monitor tables, NULLs kept.
	if err := s.ReplaceTable(ctx, "runtime_mysql_servers", []string{"hostgroup_id", "hostname", "port", "status"},
		[][]any{{1, "10.0.0.1", 3306, "SHUNNED"}}); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Query(ctx, "SELECT hostgroup_id, hostname, port, status, weight FROM runtime_mysql_servers", false)
	if len(res.Rows) != 1 || res.Rows[0][3].String != "SHUNNED" || res.Rows[0][4].String != "1" {
		t.Fatalf("runtime_mysql_servers %v (weight takes its default)", res.Rows)
	}
	if err := s.ReplaceTable(ctx, "monitor.mysql_server_ping_log", []string{"hostname", "port", "time_start_us", "ping_success_time_us", "ping_error"},
		[][]any{{"h", 1, 10, 5, nil}}); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Query(ctx, "SELECT ping_error FROM monitor.mysql_server_ping_log", false)
	if len(res.Rows) != 1 || res.Rows[0][0].Valid {
		t.Fatalf("ping log %v", res.Rows)
	}
	// Empty rows empty the table.
	if err := s.ReplaceTable(ctx, "stats_mysql_global", cols, nil); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Query(ctx, "SELECT COUNT(*) FROM stats_mysql_global", false)
	if res.Rows[0][0].String != "0" {
		t.Fatalf("count %v", res.Rows)
	}
}

func TestReplaceTableRefuses(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for _, table := range []string{"mysql_servers", "main.mysql_users", "disk.mysql_servers", "global_variables",
		"stats.global_variables", "runtime_checksums_values", "mysql_server_ping_log", "sqlite_master", "x; DROP TABLE y"} {
		err := s.ReplaceTable(ctx, table, []string{"a"}, nil)
		if !errors.Is(err, ErrNotLiveTable) {
			t.Errorf("%s: err = %v, want ErrNotLiveTable", table, err)
		}
	}
	if err := s.ReplaceTable(ctx, "stats_mysql_global", []string{"Variable_Name) --"}, nil); err == nil {
		t.Error("a column name with SQL in it was accepted")
	}
	if err := s.ReplaceTable(ctx, "stats_mysql_global", []string{"Variable_Name", "Variable_Value"}, [][]any{{"x"}}); err == nil {
		t.Error("a short row was accepted")
	}
	// A failing row rolls the whole replacement back.
	cols := []string{"Variable_Name", "Variable_Value"}
	if err := s.ReplaceTable(ctx, "stats_mysql_global", cols, [][]any{{"a", "1"}}); err != nil {
		t.Fatal(err)
	}
	err := s.ReplaceTable(ctx, "stats_mysql_global", cols, [][]any{{"b", "1"}, {"b", "2"}}) // primary key clash
	var se *SQLError
	if !errors.As(err, &se) {
		t.Fatalf("duplicate key: err = %v, want *SQLError", err)
	}
	res, _ := s.Query(ctx, "SELECT Variable_Name FROM stats_mysql_global", false)
	if len(res.Rows) != 1 || res.Rows[0][0].String != "a" {
		t.Fatalf("after a failed replace the table holds %v, want the old row", res.Rows)
	}
}

func BenchmarkReplaceDigestTable(b *testing.B) {
	s, _, err := Open(Options{Datadir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cols := []string{"hostgroup", "schemaname", "username", "client_address", "digest", "digest_text", "count_star",
		"first_seen", "last_seen", "sum_time", "min_time", "max_time", "sum_rows_affected", "sum_rows_sent"}
	rows := make([][]any, 10000)
	for i := range rows {
		rows[i] = []any{1, "db", "u", "", fmt.Sprintf("0x%016X", i), "SELECT ? FROM t", 1, 2, 3, 4, 5, 6, 7, 8}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.ReplaceTable(context.Background(), "stats_mysql_query_digest", cols, rows); err != nil {
			b.Fatal(err)
		}
	}
}
