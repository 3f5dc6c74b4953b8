package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestStatsHistory: with the admin timer's intervals at 1 s, a known
// workload shows up in stats_history.mysql_connections (Questions), the
// process's CPU and memory in system_cpu and system_memory, the query
// cache counters in mysql_query_cache; SAVE MYSQL DIGEST TO DISK moves the
// digests into history_mysql_query_digest (and empties the live table),
// admin-stats_mysql_query_digest_to_disk does it on its own, and the
// history is in the datadir's sluice_stats.db and survives a restart.
// (Hour aggregation and trimming: storage.TestRecordHistoryHourAndTrim.)
func TestStatsHistory(t *testing.T) {
	s, _ := multiplexSetup(t, 10, `
		SET admin-stats_mysql_connections=1;
		SET admin-stats_system_cpu=1;
		SET admin-stats_system_memory=1;
		SET admin-stats_mysql_query_cache=1;
		LOAD ADMIN VARIABLES TO RUNTIME;`)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "", "")
	ctx := context.Background()
	const n = 25
	for i := 0; i < n; i++ {
		var v int
		if err := db.QueryRowContext(ctx, "SELECT 7 + "+strconv.Itoa(i)).Scan(&v); err != nil || v != 7+i {
			t.Fatalf("query %d: %v (%d)", i, err, v)
		}
	}
	questions := adminInt(t, s, "SELECT variable_value FROM stats_mysql_global WHERE variable_name='Questions'")
	if questions < n {
		t.Fatalf("Questions %d after %d queries", questions, n)
	}

	// A sample taken after the workload carries its Questions.
	var row []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		rows := adminRows(t, s, "SELECT timestamp, Questions, Client_Connections_created, Client_Connections_connected, Server_Connections_created FROM stats_history.mysql_connections ORDER BY timestamp DESC LIMIT 1")
		if len(rows) == 1 {
			if q, _ := strconv.ParseInt(rows[0][1], 10, 64); q >= questions {
				row = rows[0]
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if row == nil {
		t.Fatalf("no mysql_connections sample with Questions >= %d", questions)
	}
	ts, _ := strconv.ParseInt(row[0], 10, 64)
	if now := time.Now().Unix(); ts > now || ts < now-60 {
		t.Fatalf("sample timestamp %d, now %d", ts, now)
	}
	if created, _ := strconv.Atoi(row[2]); created < 1 {
		t.Fatalf("Client_Connections_created %s", row[2])
	}
	if created, _ := strconv.Atoi(row[4]); created < 1 {
		t.Fatalf("Server_Connections_created %s", row[4])
	}
	t.Logf("mysql_connections sample: timestamp=%s Questions=%s (stats_mysql_global had %d) Client_Connections_created=%s connected=%s Server_Connections_created=%s",
		row[0], row[1], questions, row[2], row[3], row[4])

	// CPU ticks only grow; memory is non-zero and consistent.
	cpu := adminRows(t, s, "SELECT COUNT(*), MIN(tms_utime + tms_stime), MAX(tms_utime + tms_stime) FROM stats_history.system_cpu")
	if c, _ := strconv.Atoi(cpu[0][0]); c < 1 {
		t.Fatalf("system_cpu rows: %v", cpu)
	}
	if bad := adminInt(t, s, "SELECT COUNT(*) FROM stats_history.system_cpu a JOIN stats_history.system_cpu b ON b.timestamp > a.timestamp WHERE b.tms_utime < a.tms_utime OR b.tms_stime < a.tms_stime"); bad != 0 {
		t.Fatalf("%d system_cpu samples went backwards", bad)
	}
	mem := adminRows(t, s, "SELECT allocated, resident, mapped FROM stats_history.system_memory ORDER BY timestamp DESC LIMIT 1")
	alloc, _ := strconv.ParseInt(mem[0][0], 10, 64)
	resident, _ := strconv.ParseInt(mem[0][1], 10, 64)
	mapped, _ := strconv.ParseInt(mem[0][2], 10, 64)
	if alloc <= 0 || mapped < alloc || resident <= 0 {
		t.Fatalf("system_memory allocated=%d resident=%d mapped=%d", alloc, resident, mapped)
	}
	t.Logf("system_cpu: %v (rows, min ticks, max ticks); system_memory: allocated=%d resident=%d mapped=%d", cpu[0], alloc, resident, mapped)
	if c := adminInt(t, s, "SELECT COUNT(*) FROM stats_history.mysql_query_cache"); c < 1 {
		t.Fatalf("mysql_query_cache rows: %d", c)
	}

	// SAVE MYSQL DIGEST TO DISK: affected rows = digests moved.
	live := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest")
	adb := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
	res, err := adb.ExecContext(ctx, "SAVE MYSQL DIGEST TO DISK")
	if err != nil {
		t.Fatal(err)
	}
	moved, _ := res.RowsAffected()
	if moved != live || moved < 1 {
		t.Fatalf("SAVE MYSQL DIGEST TO DISK moved %d digests, the live table had %d", moved, live)
	}
	if c := adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_query_digest"); c != 0 {
		t.Fatalf("stats_mysql_query_digest has %d rows after the save", c)
	}
	hash, _ := sluiceDigest(t, "SELECT 7 + 1")
	cnt := adminInt(t, s, "SELECT SUM(count_star) FROM stats_history.history_mysql_query_digest WHERE digest='"+hash+"' AND username='sbtest'")
	if cnt != n {
		t.Fatalf("history_mysql_query_digest count_star for %s: %d, want %d", hash, cnt, n)
	}
	t.Logf("SAVE MYSQL DIGEST TO DISK: %d digests moved, count_star of SELECT ? + ? = %d", moved, cnt)

	// The timer does it too.
	admin(t, s, "SET admin-stats_mysql_query_digest_to_disk=1; LOAD ADMIN VARIABLES TO RUNTIME")
	if _, err := db.ExecContext(ctx, "SELECT 99"); err != nil {
		t.Fatal(err)
	}
	hash99, _ := sluiceDigest(t, "SELECT 99")
	var dumped int64
	deadline = time.Now().Add(15 * time.Second)
	for dumped == 0 && time.Now().Before(deadline) {
		dumped = adminInt(t, s, "SELECT COUNT(*) FROM stats_history.history_mysql_query_digest WHERE digest='"+hash99+"'")
		time.Sleep(200 * time.Millisecond)
	}
	if dumped == 0 {
		t.Fatal("admin-stats_mysql_query_digest_to_disk=1 did not save the digest of SELECT 99")
	}
	admin(t, s, "SET admin-stats_mysql_query_digest_to_disk=0; LOAD ADMIN VARIABLES TO RUNTIME")

	// On disk, private, and kept across a restart.
	fi, err := os.Stat(filepath.Join(s.Datadir, "sluice_stats.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sluice_stats.db: %v %v", fi, err)
	}
	before := adminInt(t, s, "SELECT COUNT(*) FROM stats_history.history_mysql_query_digest")
	s.Restart()
	if after := adminInt(t, s, "SELECT COUNT(*) FROM stats_history.history_mysql_query_digest"); after < before {
		t.Fatalf("history_mysql_query_digest: %d rows before the restart, %d after", before, after)
	}
	if c := adminInt(t, s, "SELECT COUNT(*) FROM stats_history.mysql_connections WHERE timestamp <= "+row[0]); c < 1 {
		t.Fatal("mysql_connections samples lost across the restart")
	}
	t.Logf("sluice_stats.db: %d bytes, %d digest rows kept across a restart", fi.Size(), before)
}
