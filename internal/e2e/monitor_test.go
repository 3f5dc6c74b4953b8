package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestMonitorShunsDeadServer runs sluice with its monitor and short
// intervals. With no client traffic at all, a server behind a relay that is
// cut shows SHUNNED in runtime_mysql_servers within a few seconds (the
// pings found it dead), monitor.mysql_server_ping_log shows the failed
// pings and the connect log the checks; a live server in a replication
// writer hostgroup with read_only=0 is copied into the reader hostgroup
// (mysql-monitor_writer_is_also_reader).
func TestMonitorShunsDeadServer(t *testing.T) {
	bs := testenv.Backends(t, 2)
	r := testenv.NewRelay(t, bs[0].Addr())
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := testenv.WriteConfig(t, dir, adminPort, dataPort, "")
	s := testenv.StartWithMonitor(t, cfg, dir, adminPort, dataPort)
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_ping_interval=200; SET mysql-monitor_ping_timeout=500;
		SET mysql-monitor_connect_interval=500; SET mysql-monitor_connect_timeout=500;
		SET mysql-monitor_read_only_interval=200;
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', %d), (2, '127.0.0.1', %d);
		INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup) VALUES (2, 3);
		LOAD MYSQL SERVERS TO RUNTIME;`, r.Port(), bs[1].Port))

	// Bounded polling of an admin query until want(out) holds.
	poll := func(what, q string, timeout time.Duration, want func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			out := admin(t, s, q)
			if want(out) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after %v; last answer %q\n%s", what, timeout, out, s.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	poll("successful pings of the relay-backed server",
		fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_ping_log WHERE port=%d AND ping_error IS NULL AND ping_success_time_us>0", r.Port()),
		5*time.Second, func(out string) bool { return out != "0\n" })
	poll("the writer copied into the reader hostgroup",
		fmt.Sprintf("SELECT hostgroup_id, status FROM runtime_mysql_servers WHERE port=%d ORDER BY hostgroup_id", bs[1].Port),
		5*time.Second, func(out string) bool { return out == "2\tONLINE\n3\tONLINE\n" })
	// A LOAD MYSQL SERVERS puts the servers back in the hostgroups of
	// mysql_servers; the monitor's last read_only verdict applies again at
	// once, not at the next check (a minute away here).
	admin(t, s, "SET mysql-monitor_read_only_interval=60000; LOAD MYSQL VARIABLES TO RUNTIME")
	time.Sleep(300 * time.Millisecond)
	admin(t, s, "LOAD MYSQL SERVERS TO RUNTIME")
	poll("the reader hostgroup right after LOAD MYSQL SERVERS",
		fmt.Sprintf("SELECT hostgroup_id, status FROM runtime_mysql_servers WHERE port=%d ORDER BY hostgroup_id", bs[1].Port),
		2*time.Second, func(out string) bool { return out == "2\tONLINE\n3\tONLINE\n" })

	cut := time.Now()
	r.Cut()
	poll("the cut server SHUNNED without traffic",
		fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE port=%d", r.Port()),
		5*time.Second, func(out string) bool { return out == "SHUNNED\n" })
	t.Logf("SHUNNED %v after the cut", time.Since(cut).Round(time.Millisecond))
	if !strings.Contains(s.Output(), "missed 3 heartbeats, shunning it") {
		t.Errorf("no shunning log line in the output:\n%s", s.Output())
	}

	// Unqualified, as runbooks and proxysql-status (--database=monitor)
	// read it: the same live table (it was the copy of the last query
	// that named monitor.).
	failed := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM mysql_server_ping_log WHERE port=%d AND ping_error IS NOT NULL", r.Port()))
	if failed == "0\n" || failed == "1\n" || failed == "2\n" {
		t.Errorf("ping log failures for the cut server = %q, want at least 3", failed)
	}
	if got := admin(t, s, fmt.Sprintf("SELECT status FROM runtime_mysql_servers WHERE port=%d AND hostgroup_id=2", bs[1].Port)); got != "ONLINE\n" {
		t.Errorf("the live server's status = %q, want ONLINE", got)
	}
	conn := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_connect_log WHERE port=%d AND connect_error IS NULL", bs[1].Port))
	if conn == "0\n" {
		t.Error("no successful row in monitor.mysql_server_connect_log for the live server")
	}
	ro := admin(t, s, fmt.Sprintf("SELECT DISTINCT read_only FROM monitor.mysql_server_read_only_log WHERE port=%d AND error IS NULL", bs[1].Port))
	if ro != "0\n" {
		t.Errorf("read_only log for the live server = %q, want 0", ro)
	}
}

// TestReadOnlyTimeoutDemotesWriter: a writer of a replication hostgroup
// that freezes (SIGSTOP: its port accepts, nothing answers) fails
// mysql-monitor_read_only_max_timeout_count read_only checks in a row and
// is taken for read_only=1, as ProxySQL does: it leaves the writer
// hostgroup. Thawed, its next check puts it back.
func TestReadOnlyTimeoutDemotesWriter(t *testing.T) {
	t.Parallel() // own servers, mostly waiting: see doc.go
	own := testenv.OwnBackends(t, 1)
	b := own.Backends[0]
	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	s := testenv.StartWithMonitor(t, testenv.WriteConfig(t, dir, adminPort, dataPort, ""), dir, adminPort, dataPort)
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_read_only_interval=200; SET mysql-monitor_read_only_timeout=300;
		SET mysql-monitor_read_only_max_timeout_count=3; SET mysql-monitor_ping_interval=60000;
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (2, '127.0.0.1', %d);
		INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup) VALUES (2, 3);
		LOAD MYSQL SERVERS TO RUNTIME;`, b.Port))
	hostgroups := fmt.Sprintf("SELECT GROUP_CONCAT(hostgroup_id) FROM (SELECT hostgroup_id FROM runtime_mysql_servers WHERE port=%d ORDER BY hostgroup_id)", b.Port)
	await := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := strings.TrimSpace(admin(t, s, hostgroups))
			if out == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: hostgroups %q, want %q\n%s", what, out, want, s.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	await("a writer, also a reader", "2,3")
	own.Signal(t, 0, syscall.SIGSTOP)
	frozen := time.Now()
	await("frozen writer", "3")
	took := time.Since(frozen)
	own.Signal(t, 0, syscall.SIGCONT)
	await("thawed writer", "2,3")
	if !strings.Contains(s.Output(), "Assuming read_only=1") {
		t.Errorf("no log line for the timeouts:\n%s", s.Output())
	}
	if n := admin(t, s, fmt.Sprintf("SELECT COUNT(*) FROM monitor.mysql_server_read_only_log WHERE port=%d AND error IS NOT NULL", b.Port)); n == "0\n" || n == "1\n" || n == "2\n" {
		t.Errorf("%q failed read_only checks logged, want at least 3", n)
	}
	// stats_mysql_global counts them too.
	counts := admin(t, s, "SELECT Variable_Name, Variable_Value FROM stats_mysql_global WHERE Variable_Name LIKE 'MySQL_Monitor_read_only_check_%' ORDER BY 1")
	var errs, oks int
	if _, err := fmt.Sscanf(counts, "MySQL_Monitor_read_only_check_ERR\t%d\nMySQL_Monitor_read_only_check_OK\t%d\n", &errs, &oks); err != nil || errs < 3 || oks < 2 {
		t.Errorf("MySQL_Monitor_read_only_check_ERR/OK: %q (%v)", counts, err)
	}
	t.Logf("frozen writer out of the writer hostgroup %v after SIGSTOP, back after SIGCONT", took.Round(10*time.Millisecond))
}

// TestMonitorOffWarned: replication or cluster hostgroups with no monitor
// to act on them (--no-monitor, or mysql-monitor_enabled=false) are warned
// at the LOAD that makes it so: servers would stay in their hostgroups
// whatever their read_only.
func TestMonitorOffWarned(t *testing.T) {
	const setup = `INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (10, '127.0.0.1', 23307);
		INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup) VALUES (10, 20);
		LOAD MYSQL SERVERS TO RUNTIME; SHOW WARNINGS`
	if out := admin(t, startFresh(t, ""), setup); !strings.Contains(out, "the monitor is off (--no-monitor)") {
		t.Errorf("--no-monitor: LOAD MYSQL SERVERS warnings %q", out)
	}
	s := startIn(t, t.TempDir(), "", true)
	if out := admin(t, s, setup); strings.Contains(out, "monitor is off") {
		t.Errorf("monitor on: LOAD MYSQL SERVERS warned %q", out)
	}
	if out := admin(t, s, "SET mysql-monitor_enabled='false'; LOAD MYSQL VARIABLES TO RUNTIME; SHOW WARNINGS"); !strings.Contains(out, "the monitor is off (mysql-monitor_enabled=false)") {
		t.Errorf("mysql-monitor_enabled=false: LOAD MYSQL VARIABLES warnings %q", out)
	}
}

// TestMonitorLogDelete: an operator's DELETE on a monitor log (after fixing
// the monitor password, say) removes the rows for good, as on ProxySQL,
// whose logs are real tables: before, the proxy's in-memory log brought
// them back at the next read.
func TestMonitorLogDelete(t *testing.T) {
	s := startIn(t, t.TempDir(), "", true)
	admin(t, s, `SET mysql-monitor_ping_interval=200; SET mysql-monitor_connect_interval=200; LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', 23307), (0, '127.0.0.1', 23308);
		LOAD MYSQL SERVERS TO RUNTIME`)
	for _, log := range []string{"mysql_server_ping_log", "mysql_server_connect_log"} {
		count := func(where string) int {
			var n int
			fmt.Sscan(admin(t, s, "SELECT COUNT(*) FROM monitor."+log+where), &n)
			return n
		}
		deadline := time.Now().Add(10 * time.Second)
		for count("") < 4 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no rows after 10 s", log)
			}
			time.Sleep(100 * time.Millisecond)
		}
		last := strings.TrimSpace(admin(t, s, "SELECT MAX(time_start_us) FROM monitor."+log+" WHERE port=23307"))
		// One server's rows up to now, then every row.
		admin(t, s, "DELETE FROM monitor."+log+" WHERE port=23307 AND time_start_us <= "+last)
		if n := count(" WHERE port=23307 AND time_start_us <= " + last); n != 0 {
			t.Fatalf("%s: %d deleted rows came back", log, n)
		}
		if n := count(" WHERE port=23308"); n == 0 {
			t.Fatalf("%s: the other server's rows went too", log)
		}
		last = strings.TrimSpace(admin(t, s, "SELECT MAX(time_start_us) FROM monitor."+log))
		admin(t, s, "DELETE FROM monitor."+log)
		if n := count(" WHERE time_start_us <= " + last); n != 0 {
			t.Fatalf("%s: %d rows came back after DELETE of all", log, n)
		}
	}
}
