package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestGroupReplicationHostgroups: Sluice's monitor runs ProxySQL's Group
// Replication check (SELECT viable_candidate, read_only,
// transactions_behind FROM sys.gr_member_routing_candidate_status) against
// three real MariaDB servers. MariaDB has no Group Replication, so each
// server's sys.gr_member_routing_candidate_status is a view over a table
// the test sets — the members' answers are chosen, the path (monitor
// connections, ProxySQL's query, the placement, the routing) is real.
// Placement as ProxySQL's: the read_only=NO member writes, read_only
// members read, a member that is not a viable candidate goes offline, one
// behind by more than max_transactions_behind for
// mysql-monitor_groupreplication_max_transactions_behind_count checks in a
// row too, until it catches up; a new primary takes the writer hostgroup
// and the application's writes follow it.
func TestGroupReplicationHostgroups(t *testing.T) {
	bs := testenv.Backends(t, 3)
	for _, b := range bs {
		testenv.MustCLI(t, b.Port, "root", "test", `CREATE DATABASE IF NOT EXISTS sluice_gr;
			CREATE OR REPLACE TABLE sluice_gr.member (viable_candidate VARCHAR(3), read_only VARCHAR(3), transactions_behind INT);
			INSERT INTO sluice_gr.member VALUES ('YES', 'YES', 0);
			CREATE DATABASE IF NOT EXISTS sys;
			CREATE OR REPLACE VIEW sys.gr_member_routing_candidate_status AS SELECT * FROM sluice_gr.member`)
		t.Cleanup(func() {
			testenv.CLI(t, b.Port, "root", "test", "DROP VIEW IF EXISTS sys.gr_member_routing_candidate_status; DROP DATABASE IF EXISTS sluice_gr")
		})
	}
	set := func(i int, viable, ro string, behind int) {
		t.Helper()
		testenv.MustCLI(t, bs[i].Port, "root", "test",
			fmt.Sprintf("UPDATE sluice_gr.member SET viable_candidate='%s', read_only='%s', transactions_behind=%d", viable, ro, behind))
	}
	set(0, "YES", "NO", 0) // the primary

	dir := t.TempDir()
	adminPort, dataPort := testenv.FreePort(t), testenv.FreePort(t)
	s := testenv.StartWithMonitor(t, testenv.WriteConfig(t, dir, adminPort, dataPort, ""), dir, adminPort, dataPort)
	admin(t, s, fmt.Sprintf(`
		SET mysql-monitor_username='root'; SET mysql-monitor_password='test';
		SET mysql-monitor_groupreplication_healthcheck_interval=200; SET mysql-monitor_ping_interval=1000;
		LOAD MYSQL VARIABLES TO RUNTIME;
		INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES
			(10, '127.0.0.1', %d), (10, '127.0.0.1', %d), (10, '127.0.0.1', %d);
		INSERT INTO mysql_group_replication_hostgroups(writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup,
			active, max_writers, writer_is_also_reader, max_transactions_behind) VALUES (10, 11, 12, 13, 1, 1, 0, 100);
		INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 10);
		LOAD MYSQL USERS TO RUNTIME;`, bs[0].Port, bs[1].Port, bs[2].Port))
	if w := testenv.MustCLI(t, s.AdminPort, "admin", "admin", "LOAD MYSQL SERVERS TO RUNTIME", "-N", "--show-warnings"); strings.Contains(w, "Warning") {
		t.Fatalf("a Group Replication row warns at LOAD: %s", w)
	}
	layout := func() string {
		out := admin(t, s, "SELECT port, GROUP_CONCAT(hostgroup_id) FROM (SELECT port, hostgroup_id FROM runtime_mysql_servers "+
			"ORDER BY port, hostgroup_id) GROUP BY port ORDER BY port")
		r := strings.NewReplacer(strconv.Itoa(bs[0].Port), "a", strconv.Itoa(bs[1].Port), "b", strconv.Itoa(bs[2].Port), "c", "\t", ":", "\n", " ")
		return strings.TrimSpace(r.Replace(out))
	}
	await := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := layout()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: hostgroups %q, want %q\n%s\n%s", what, got, want, admin(t, s, "SELECT * FROM runtime_mysql_servers"), s.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	writerPort := func() int {
		t.Helper()
		var port int
		if err := db.QueryRow("SELECT @@port").Scan(&port); err != nil {
			t.Fatalf("a query through the writer hostgroup: %v", err)
		}
		return port
	}

	await("the primary writes, the secondaries read", "a:10 b:12 c:12")
	if p := writerPort(); p != bs[0].Port {
		t.Fatalf("writes went to port %d, want the primary's %d", p, bs[0].Port)
	}
	// A new primary (the old one a secondary now).
	set(0, "YES", "YES", 0)
	set(1, "YES", "NO", 0)
	await("a new primary", "a:12 b:10 c:12")
	if p := writerPort(); p != bs[1].Port {
		t.Fatalf("after the switch writes went to port %d, want %d", p, bs[1].Port)
	}
	// A member out of the primary partition, then back.
	set(2, "NO", "YES", 0)
	await("a member not viable", "a:12 b:10 c:13")
	set(2, "YES", "YES", 0)
	await("the member back", "a:12 b:10 c:12")
	// A secondary far behind: out after three checks, back when caught up.
	set(2, "YES", "YES", 5000)
	await("a lagging member", "a:12 b:10 c:13")
	set(2, "YES", "YES", 3)
	await("caught up", "a:12 b:10 c:12")
	// The log has ProxySQL's columns and the member's answers.
	if out := admin(t, s, fmt.Sprintf("SELECT viable_candidate, read_only, MAX(transactions_behind) FROM monitor.mysql_server_group_replication_log WHERE port=%d", bs[2].Port)); !strings.HasPrefix(strings.TrimSpace(out), "YES\tYES\t5000") {
		t.Fatalf("monitor.mysql_server_group_replication_log: %q", out)
	}
}
