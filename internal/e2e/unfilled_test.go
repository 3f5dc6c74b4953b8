package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestUnfilledTablesWarn (issue 9 item 5): every table of the stats,
// monitor and stats_history schemas is read through the admin port. The
// ones naming a feature Sluice does not implement (stats_mysql_gtid_executed,
// the Cluster and client-host-cache tables, Aurora
// monitor logs, MyHGM history, …) answer an empty result with a warning
// that names the table and says why; every other table answers without
// one.
func TestUnfilledTablesWarn(t *testing.T) {
	s := startFresh(t, "")
	db := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var tables []string
	for _, schema := range []string{"stats", "monitor", "stats_history"} {
		rows, err := conn.QueryContext(ctx, "SELECT name FROM "+schema+".sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, schema+"."+n)
		}
		rows.Close()
	}
	if len(tables) < 50 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	warned := 0
	for _, tb := range tables {
		var count int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tb).Scan(&count); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		var msgs []string
		rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var level, code, msg string
			if err := rows.Scan(&level, &code, &msg); err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, msg)
		}
		rows.Close()
		bare := tb[strings.IndexByte(tb, '.')+1:]
		if len(msgs) == 0 {
			continue
		}
		warned++
		if len(msgs) != 1 || !strings.Contains(msgs[0], bare) || count != 0 {
			t.Errorf("%s: %d rows, warnings %q", tb, count, msgs)
		}
		if strings.HasSuffix(tb, "stats_mysql_gtid_executed") && !strings.Contains(msgs[0], "gtid_binlog_pos") {
			t.Errorf("stats_mysql_gtid_executed warning %q does not say what to read on MariaDB", msgs[0])
		}
		t.Logf("%s: %s", tb, msgs[0])
	}
	for _, must := range []string{"stats.stats_mysql_gtid_executed", "stats.stats_proxysql_message_metrics",
		"monitor.mysql_server_aws_aurora_log", "stats_history.myhgm_connections", "stats_history.mysql_connections_day"} {
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+must).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var w int
		if err := conn.QueryRowContext(ctx, "SHOW COUNT(*) WARNINGS").Scan(&w); err != nil {
			t.Fatal(err)
		}
		if w != 1 {
			t.Errorf("%s: %d warnings, want 1", must, w)
		}
	}
	// Filled tables carry no warning.
	for _, filled := range []string{"stats.stats_mysql_global", "stats_history.mysql_connections", "stats.stats_mysql_errors",
		"stats.stats_proxysql_servers_metrics"} { // ProxySQL Cluster (internal/cluster) fills it
		if _, err := conn.ExecContext(ctx, "SELECT * FROM "+filled); err != nil {
			t.Fatal(err)
		}
		var w int
		if err := conn.QueryRowContext(ctx, "SHOW COUNT(*) WARNINGS").Scan(&w); err != nil {
			t.Fatal(err)
		}
		if w != 0 {
			t.Errorf("%s: %d warnings, want 0", filled, w)
		}
	}
	t.Logf("%d tables read, %d answered empty with a warning", len(tables), warned)
}
