package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gmclient "github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	if err := e.admin().Ping(); err != nil {
		t.Fatalf("admin:admin: %v", err)
	}
	if err := e.db("stats", "stats").Ping(); err != nil {
		t.Fatalf("stats:stats: %v", err)
	}
	checkMyErr(t, "wrong password", e.db("admin", "nope").Ping(), 1045,
		"ProxySQL Error: Access denied for user 'admin'@'127.0.0.1' (using password: YES)")
	checkMyErr(t, "unknown user", e.db("root", "root").Ping(), 1045, "Access denied for user 'root'")
	checkMyErr(t, "no password", e.db("admin", "").Ping(), 1045, "(using password: NO)")
}

func TestAdminOnlyLocal(t *testing.T) {
	e := newEnv(t)
	// A client that seems to come from 10.1.2.3, over a pipe to the server.
	gomysql.RegisterDialContext("admintest", func(ctx context.Context, addr string) (net.Conn, error) {
		cli, srv := net.Pipe()
		go e.srv.serveConn(fakeRemote{Conn: srv, remote: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}})
		return cli, nil
	})
	for _, user := range []string{"admin", "stats"} {
		db, err := sql.Open("mysql", user+":"+user+"@admintest(x)/?timeout=5s")
		if err != nil {
			t.Fatal(err)
		}
		checkMyErr(t, user+" from remote", db.Ping(), 1040, "User '"+user+"' can only connect locally")
		db.Close()
	}
	// Any other admin user may connect from anywhere.
	adm := e.admin()
	mustExec(t, adm, "SET admin-admin_credentials='admin:admin;radmin:radmin'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	db, err := sql.Open("mysql", "radmin:radmin@admintest(x)/?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatalf("radmin from remote: %v", err)
	}
}

func TestCredentialsFollowRuntime(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "SET admin-admin_credentials='admin:admin;ops:s3cret'")
	// MEMORY only: not yet.
	checkMyErr(t, "before LOAD", e.db("ops", "s3cret").Ping(), 1045, "Access denied")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	ops := e.db("ops", "s3cret")
	if err := ops.Ping(); err != nil {
		t.Fatalf("after LOAD: %v", err)
	}
	if got := scalar(t, ops, "SELECT DATABASE()"); got != "admin" {
		t.Errorf("DATABASE() = %q", got)
	}
	mustExec(t, adm, "SET admin-stats_credentials='stats:stats;watch:w'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	watch := e.db("watch", "w")
	if got := scalar(t, watch, "SELECT DATABASE()"); got != "stats" {
		t.Errorf("stats DATABASE() = %q", got)
	}
}

// TestEveryAliasOnTheWire runs every LOAD/SAVE alias of every module through
// a real client and checks each one answers OK.
func TestEveryAliasOnTheWire(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	for cmd := range loadSaveCommands {
		for _, q := range []string{cmd, strings.ToLower(cmd) + " ;"} {
			if _, err := adm.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	}
}

func TestLoadSaveRoundTrip(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	before, _ := strconv.Atoi(checksumVersion(t, adm, "mysql_servers"))

	mustExec(t, adm, "INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, '10.0.0.1', 3306), (2, '10.0.0.2', 3306)")
	mustExec(t, adm, "LOAD MYSQL SERVERS TO RUNTIME")
	rt := e.app.Runtime()
	if len(rt.Servers) != 2 || rt.Servers[0].Hostname != "10.0.0.1" {
		t.Fatalf("runtime servers: %+v", rt.Servers)
	}
	v1, _ := strconv.Atoi(checksumVersion(t, adm, "mysql_servers"))
	if v1 != before+1 {
		t.Errorf("checksum version %d after LOAD, want %d", v1, before+1)
	}
	mustExec(t, adm, "load mysql servers from memory")
	v2, _ := strconv.Atoi(checksumVersion(t, adm, "mysql_servers"))
	if v2 != v1+1 {
		t.Errorf("checksum version %d after second LOAD, want %d", v2, v1+1)
	}
	if n := scalar(t, adm, "SELECT COUNT(*) FROM runtime_mysql_servers"); n != "2" {
		t.Errorf("runtime_mysql_servers has %s rows", n)
	}

	// MEMORY → DISK, wipe MEMORY, DISK → MEMORY.
	mustExec(t, adm, "SAVE MYSQL SERVERS TO DISK")
	if n := scalar(t, adm, "SELECT COUNT(*) FROM disk.mysql_servers"); n != "2" {
		t.Errorf("disk has %s servers", n)
	}
	mustExec(t, adm, "DELETE FROM mysql_servers")
	mustExec(t, adm, "LOAD MYSQL SERVERS FROM DISK")
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers"); n != "2" {
		t.Errorf("memory has %s servers after LOAD FROM DISK", n)
	}

	// RUNTIME → MEMORY brings runtime back over a changed MEMORY.
	mustExec(t, adm, "UPDATE mysql_servers SET weight=7")
	mustExec(t, adm, "SAVE MYSQL SERVERS TO MEMORY")
	if w := scalar(t, adm, "SELECT DISTINCT weight FROM mysql_servers"); w != "1" {
		t.Errorf("weight %s after SAVE TO MEMORY, want runtime's 1", w)
	}

	// Variables report rows for DISK copies, tables do not.
	r := mustExec(t, adm, "SAVE MYSQL VARIABLES TO DISK")
	if n, _ := r.RowsAffected(); n == 0 {
		t.Error("SAVE MYSQL VARIABLES TO DISK reported 0 rows")
	}
	r = mustExec(t, adm, "SAVE MYSQL SERVERS TO DISK")
	if n, _ := r.RowsAffected(); n != 0 {
		t.Errorf("SAVE MYSQL SERVERS TO DISK reported %d rows, want 0", n)
	}

	// The global checksum moves with the loads.
	g1 := scalar(t, adm, "SELECT GLOBAL_CHECKSUM()")
	mustExec(t, adm, "LOAD MYSQL SERVERS TO RUNTIME")
	if g2 := scalar(t, adm, "SELECT GLOBAL_CHECKSUM()"); g2 == g1 {
		t.Errorf("GLOBAL_CHECKSUM unchanged after LOAD: %s", g1)
	}
	cols, rows := queryRows(t, adm, "CHECKSUM DISK MYSQL SERVERS")
	if fmt.Sprint(cols) != "[table checksum]" || len(rows) != 1 || rows[0][0] != "MYSQL SERVERS" || !strings.HasPrefix(rows[0][1], "0x") {
		t.Errorf("CHECKSUM: %v %v", cols, rows)
	}
	_, mem := queryRows(t, adm, "CHECKSUM MEM MYSQL SERVERS")
	if mem[0][1] != rows[0][1] {
		t.Errorf("MEMORY and DISK checksums differ after SAVE: %s vs %s", mem[0][1], rows[0][1])
	}
}

func TestApplyRejected(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, apply) VALUES (1, 1, '^SELECT', 1)")
	mustExec(t, adm, "LOAD MYSQL QUERY RULES TO RUNTIME")
	ver := checksumVersion(t, adm, "mysql_query_rules")
	old := e.app.Runtime()

	mustExec(t, adm, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, apply) VALUES (2, 1, '(', 1)")
	e.app.setReject(errors.New("mysql_query_rules rule_id=2: invalid match_digest"))
	wantErr(t, adm, "LOAD MYSQL QUERY RULES TO RUNTIME", 1045, "mysql_query_rules rule_id=2: invalid match_digest")
	e.app.setReject(nil)

	if e.app.Runtime() != old {
		t.Error("runtime changed by a refused LOAD")
	}
	if v := checksumVersion(t, adm, "mysql_query_rules"); v != ver {
		t.Errorf("checksum version %s after refused LOAD, want %s", v, ver)
	}
	if n := scalar(t, adm, "SELECT COUNT(*) FROM runtime_mysql_query_rules"); n != "1" {
		t.Errorf("runtime_mysql_query_rules has %s rows, want 1", n)
	}
	// The port keeps serving.
	if got := scalar(t, adm, "SELECT 1+1"); got != "2" {
		t.Errorf("SELECT 1+1 = %s", got)
	}
}

func TestConstraintViolation(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	wantErr(t, adm, "INSERT INTO mysql_servers (hostgroup_id, hostname, port, status) VALUES (1, 'bad', 3306, 'BOGUS')",
		1045, "ProxySQL Admin Error: CHECK constraint failed")
	wantErr(t, adm, "SELECT * FROM no_such_table", 1045, "ProxySQL Admin Error: no such table: no_such_table")
	wantErr(t, adm, "LOAD MYSQL SERVER TO RUNTIME", 1045, "ProxySQL Admin Error: near \"LOAD\": syntax error")
	// Still serving, and the bad row is nowhere.
	mustExec(t, adm, "SAVE MYSQL SERVERS TO DISK")
	if n := scalar(t, adm, "SELECT COUNT(*) FROM disk.mysql_servers WHERE hostname='bad'"); n != "0" {
		t.Errorf("bad row reached DISK")
	}
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers WHERE hostname='bad'"); n != "0" {
		t.Errorf("bad row in MEMORY")
	}
}

func TestSet(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	r := mustExec(t, adm, "SET mysql-eventslog_format=2")
	if n, _ := r.RowsAffected(); n != 1 {
		t.Errorf("SET affected %d rows, want 1", n)
	}
	mustExec(t, adm, "set mysql-eventslog_filename = 'proxysql_queries.log';")
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-eventslog_filename'"); v != "proxysql_queries.log" {
		t.Errorf("eventslog_filename = %q", v)
	}
	wantErr(t, adm, "SET mysql-eventslog_filename=bare", 1045, "ProxySQL Admin Error: no such column: bare")
	wantErr(t, adm, "SET mysql-init_connect='SET x=1'", 1045,
		"ERROR: Global variable 'mysql-init_connect' is not configurable using SET command. You must run UPDATE global_variables")

	// An unknown variable is an OK carrying a message.
	c := e.raw("admin", "admin")
	if info, want := okInfo(t, c, "SET mysql-no_such_thing=1"), "ERROR: Unknown global variable: 'mysql-no_such_thing'."; info != want {
		t.Errorf("info = %q, want %q", info, want)
	}
	if info := okInfo(t, c, "SET foo=1"); info != "ERROR: Unknown global variable: 'foo'." {
		t.Errorf("SET foo: %q", info)
	}

	// Client noise is answered with OK and changes nothing.
	for _, q := range []string{"SET NAMES utf8mb4", "SET autocommit=1", "BEGIN", "COMMIT", "USE main",
		"/*!40101 SET NAMES utf8 */", "LOCK TABLES mysql_servers WRITE", "UNLOCK TABLES", "SET SQL_SAFE_UPDATES=1",
		// Transaction statements with more words, by prefix as in ProxySQL
		// (mysqli's read-only begin, mariadb-dump --single-transaction).
		"START TRANSACTION READ ONLY", "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */", "BEGIN WORK",
		"COMMIT WORK", "COMMIT AND NO CHAIN", "ROLLBACK WORK", "ROLLBACK TO SAVEPOINT sp"} {
		mustExec(t, adm, q)
	}

	// LOAD puts valid values live.
	mustExec(t, adm, "LOAD MYSQL VARIABLES TO RUNTIME")
	if v := e.app.Runtime().MySQLVars["mysql-eventslog_format"]; v != "2" {
		t.Errorf("runtime eventslog_format = %q", v)
	}
}

func TestLoadVariablesChecks(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	// Out of range: refused, and MEMORY is put back to the runtime value.
	mustExec(t, adm, "UPDATE global_variables SET variable_value='0' WHERE variable_name='mysql-max_connections'")
	mustExec(t, adm, "UPDATE global_variables SET variable_value='3' WHERE variable_name='mysql-eventslog_format'")
	// A name Sluice does not know (a typo: monitor_user for
	// monitor_username) is kept in MEMORY and warned about.
	mustExec(t, adm, "INSERT INTO global_variables VALUES ('mysql-monitor_user', 'mon')")
	// ProxySQL's older name of a variable it renamed: the warning names the new one.
	mustExec(t, adm, "INSERT INTO global_variables VALUES ('mysql-ping_interval_server', '10000')")
	// The LOAD says so in its warnings, not only in the log.
	c, err := adm.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(context.Background(), "LOAD MYSQL VARIABLES TO RUNTIME"); err != nil {
		t.Fatal(err)
	}
	var warned []string
	rows, err := c.QueryContext(context.Background(), "SHOW WARNINGS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var level, code, msg string
		if err := rows.Scan(&level, &code, &msg); err != nil {
			t.Fatal(err)
		}
		warned = append(warned, msg)
	}
	rows.Close()
	c.Close()
	if len(warned) != 4 || !strings.Contains(warned[0], `mysql-eventslog_format with value "3". Resetting to current "1"`) ||
		!strings.Contains(warned[1], `mysql-max_connections with value "0". Resetting to current "10000"`) ||
		warned[2] != "Unknown global variable mysql-monitor_user: kept in MEMORY, not used by Sluice" ||
		warned[3] != "Unknown global variable mysql-ping_interval_server: kept in MEMORY, not used by Sluice (ProxySQL renamed it: mysql-ping_interval_server_msec, in milliseconds)" {
		t.Errorf("LOAD with two bad values and an unknown name warns %q", warned)
	}
	if n := scalar(t, adm, "SELECT count(*) FROM runtime_global_variables WHERE variable_name='mysql-monitor_user'"); n != "0" {
		t.Errorf("the unknown variable is in runtime_global_variables (%s rows): RUNTIME lists what runs", n)
	}
	rt := e.app.Runtime()
	if v := rt.MySQLVars["mysql-max_connections"]; v != "10000" {
		t.Errorf("runtime max_connections = %q, want 10000", v)
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-max_connections'"); v != "10000" {
		t.Errorf("MEMORY max_connections = %q, want reset to 10000", v)
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-eventslog_format'"); v != "1" {
		t.Errorf("MEMORY eventslog_format = %q, want reset to 1", v)
	}
	// Set-once: stays in MEMORY, runtime keeps the old value.
	mustExec(t, adm, "SET mysql-threads=8")
	mustExec(t, adm, "LOAD MYSQL VARIABLES TO RUNTIME")
	if v := e.app.Runtime().MySQLVars["mysql-threads"]; v != "4" {
		t.Errorf("runtime threads = %q, want 4", v)
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-threads'"); v != "8" {
		t.Errorf("MEMORY threads = %q, want 8", v)
	}
	// A boolean runs, and shows in RUNTIME, as true or false whatever
	// spelling MEMORY has (ProxySQL's runtime_global_variables).
	mustExec(t, adm, "SET mysql-multiplexing=0")
	mustExec(t, adm, "SET mysql-have_compress='TRUE'")
	mustExec(t, adm, "LOAD MYSQL VARIABLES TO RUNTIME")
	for name, want := range map[string]string{"mysql-multiplexing": "false", "mysql-have_compress": "true"} {
		if v := scalar(t, adm, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='"+name+"'"); v != want {
			t.Errorf("runtime %s = %q, want %q", name, v, want)
		}
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-multiplexing'"); v != "0" {
		t.Errorf("MEMORY multiplexing = %q, want 0 as set", v)
	}
	// A deleted variable comes back with its runtime value.
	mustExec(t, adm, "DELETE FROM global_variables WHERE variable_name='mysql-server_version'")
	mustExec(t, adm, "LOAD MYSQL VARIABLES TO RUNTIME")
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-server_version'"); v != "8.0.11" {
		t.Errorf("MEMORY server_version = %q after delete+LOAD", v)
	}
	if v := e.app.Runtime().MySQLVars["mysql-server_version"]; v != "8.0.11" {
		t.Errorf("runtime server_version = %q", v)
	}
	// Read-only: admin-version cannot change.
	mustExec(t, adm, "UPDATE global_variables SET variable_value='9.9' WHERE variable_name='admin-version'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	def, _ := config.LookupVar("admin-version")
	if v := e.app.Runtime().AdminVars["admin-version"]; v != def.Default {
		t.Errorf("runtime admin-version = %q", v)
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='admin-version'"); v != def.Default {
		t.Errorf("MEMORY admin-version = %q", v)
	}
}

func TestStatsUser(t *testing.T) {
	e := newEnv(t)
	st := e.db("stats", "stats")
	if _, rows := queryRows(t, st, "SELECT * FROM stats_mysql_global"); rows == nil {
		// An empty table is fine; the point is that it is readable.
		t.Log("stats_mysql_global is empty")
	}
	wantErr(t, st, "INSERT INTO stats_mysql_global VALUES ('x', 'y')", 1045, "ProxySQL Admin Error:")
	wantErr(t, st, "SELECT * FROM mysql_users", 1045, "no such table: mysql_users")
	wantErr(t, st, "SELECT * FROM disk.global_variables", 1045, "no such table")
	wantErr(t, st, "PRAGMA query_only=OFF", 1045, "Command not allowed")
	wantErr(t, st, "ATTACH DATABASE ':memory:' AS x", 1045, "Command not allowed")
	wantErr(t, st, "LOAD MYSQL SERVERS TO RUNTIME", 1045, "syntax error")
	wantErr(t, st, "SET mysql-threads=2", 1045, "attempt to write a readonly database") // its global_variables is the stats schema's
	_, tables := queryRows(t, st, "SHOW TABLES")
	if len(tables) == 0 {
		t.Error("SHOW TABLES is empty for stats")
	}
	for _, r := range tables {
		if !strings.HasPrefix(r[0], "stats") && !strings.HasPrefix(r[0], "global") {
			t.Errorf("stats user sees table %s", r[0])
		}
	}
	if _, rows := queryRows(t, st, "SHOW CHARSET"); len(rows) < 40 {
		t.Errorf("stats SHOW CHARSET: %d rows", len(rows))
	}
	if got := scalar(t, st, "SELECT 1"); got != "1" {
		t.Errorf("SELECT 1 = %q", got)
	}
}

func TestReadOnlyMode(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "PROXYSQL READONLY")
	if v := scalar(t, adm, "SELECT @@global.read_only"); v != "1" {
		t.Errorf("@@global.read_only = %s", v)
	}
	_, rows := queryRows(t, adm, "SHOW GLOBAL VARIABLES LIKE 'read_only'")
	if len(rows) != 1 || rows[0][1] != "ON" {
		t.Errorf("SHOW GLOBAL VARIABLES LIKE 'read_only': %v", rows)
	}
	wantErr(t, adm, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'h')", 1045, "readonly")
	wantErr(t, adm, "SAVE MYSQL SERVERS TO DISK", 1045, "readonly")
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers"); n != "0" {
		t.Errorf("read-only insert landed: %s rows", n)
	}
	// Reads still work, config tables included.
	if _, rows := queryRows(t, adm, "SELECT variable_name, variable_value FROM global_variables"); len(rows) == 0 {
		t.Error("read-only admin cannot read global_variables")
	}
	if _, rows := queryRows(t, adm, "SHOW MYSQL VARIABLES"); len(rows) == 0 {
		t.Error("read-only admin: SHOW MYSQL VARIABLES is empty")
	}
	wantErr(t, adm, "SET mysql-threads=8", 1045, "attempt to write a readonly database")
	mustExec(t, adm, "PROXYSQL READWRITE")
	mustExec(t, adm, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'h')")

	// admin-read_only at runtime does the same.
	mustExec(t, adm, "SET admin-read_only='true'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	wantErr(t, adm, "DELETE FROM mysql_servers", 1045, "readonly")
	mustExec(t, adm, "PROXYSQL READWRITE")
	mustExec(t, adm, "DELETE FROM mysql_servers")
	// PROXYSQL READWRITE changed RUNTIME, as in ProxySQL; MEMORY keeps 'true'.
	if v := scalar(t, adm, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-read_only'"); v != "false" {
		t.Errorf("runtime admin-read_only after PROXYSQL READWRITE = %q", v)
	}
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='admin-read_only'"); v != "true" {
		t.Errorf("MEMORY admin-read_only after PROXYSQL READWRITE = %q", v)
	}
}

func TestProxySQLCommands(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "PROXYSQL FLUSH LOGS")
	e.app.mu.Lock()
	flushes := e.app.flushes
	e.app.mu.Unlock()
	if flushes != 1 {
		t.Errorf("FlushLogs called %d times", flushes)
	}
	wantErr(t, adm, "PROXYSQL RESTART", 1045, "PROXYSQL RESTART is not supported by Sluice")
	// A module of a feature Sluice lacks is refused by name, not as a
	// syntax error; the known modules go on working.
	wantErr(t, adm, "LOAD SQLITESERVER VARIABLES TO RUNTIME", 1045, "LOAD SQLITESERVER VARIABLES is not supported by Sluice")
	wantErr(t, adm, "save  pgsql query rules to disk", 1045, "SAVE PGSQL QUERY RULES is not supported by Sluice")
	wantErr(t, adm, "LOAD COREDUMP TO RUNTIME", 1045, "LOAD COREDUMP is not supported by Sluice")
	wantErr(t, adm, "LOAD DEBUG FROM DISK", 1045, "LOAD DEBUG is not supported by Sluice")
	wantErr(t, adm, "LOAD DEBUGGING TO RUNTIME", 1045, "syntax error")
	mustExec(t, adm, "LOAD MYSQL VARIABLES TO RUNTIME")
	if _, err := adm.Exec("PROXYSQL PAUSE"); err == nil || !strings.HasSuffix(err.Error(), ": ProxySQL MySQL module is already paused, impossible to pause") {
		t.Errorf("a Commander's refusal: %v; want ProxySQL's words, no prefix", err)
	}
	mustExec(t, adm, "PROXYSQL FLUSH QUERY CACHE")
	wantErr(t, adm, "PROXYSQL START", 1045, "ProxySQL already started")
	wantErr(t, adm, "PROXYSQL FOO", 1045, "syntax error")
	wantErr(t, adm, "KILL CONNECTION 7", 1045, "Unknown thread id: 7")
	mustExec(t, adm, "KILL CONNECTION 42")
	mustExec(t, adm, "LOGENTRY hello from the test")
	wantErr(t, adm, "LOAD MYSQL USER bad!name TO RUNTIME", 1045, "Invalid name bad!name")

	mustExec(t, adm, "PROXYSQL SHUTDOWN")
	select {
	case <-e.app.shutdown:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown not called")
	}
}

func TestLoadOneUser(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('u1', 'p1', 1), ('u2', 'p2', 1)")
	mustExec(t, adm, "LOAD MYSQL USER u1 TO RUNTIME")
	var names []string
	for _, u := range e.app.Runtime().Users {
		names = append(names, u.Username)
	}
	if fmt.Sprint(names) != "[u1]" {
		t.Errorf("runtime users %v, want [u1]", names)
	}
}

func TestShowCommands(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	mustExec(t, adm, "INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('u1', 'p1', 1)")
	mustExec(t, adm, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'h1')")
	// The black-box checks of ProxySQL's admin_various_commands-t (§11.1).
	for q, min := range map[string]int{
		"SELECT version()":                                 1,
		"select @@version_comment limit 1":                 1,
		"SELECT DATABASE(), USER() LIMIT 1":                1,
		"SHOW GLOBAL VARIABLES LIKE 'version'":             1,
		"SHOW MYSQL USERS":                                 1,
		"SHOW MYSQL SERVERS":                               1,
		"SHOW GLOBAL VARIABLES":                            10,
		"SHOW ADMIN VARIABLES":                             3,
		"SHOW MYSQL VARIABLES":                             3,
		"SHOW VARIABLES":                                   10,
		"SELECT DATABASE()":                                1,
		"SELECT DATABASE() AS name":                        1,
		"SHOW CHARSET":                                     40,
		"SHOW COLLATION":                                   200,
		"sHoW DATABASES":                                   3,
		"SHOW SCHEMAS":                                     3,
		"SHOW TABLES LIKE '%runtime%'":                     5,
		"SHOW TABLES FROM stats":                           5,
		"SHOW TABLES IN monitor":                           1,
		"SHOW TABLES":                                      30,
		"SHOW FULL TABLES":                                 30,
		"SHOW FULL TABLES FROM stats LIKE 'stats_mysql_%'": 5,
		"SHOW VARIABLES LIKE 'mysql-%'":                    3,
		"SHOW VARIABLES LIKE 'max_allowed_packet'":         1,
		"SELECT @@max_allowed_packet":                      1,
		"SELECT @@mysql-threads":                           1,
		"SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@sql_mode": 1,
		"SELECT TIMEDIFF(NOW(), UTC_TIMESTAMP())":          1,
		"SELECT CONNECTION_ID()":                           1,
		"SELECT CURRENT_USER()":                            1,
		"select concat(@@version, ' ', @@version_comment)": 1,
		"SHOW TABLE STATUS LIKE 'mysql_servers'":           1,
		"SHOW FIELDS FROM mysql_servers":                   5,
		"SHOW COLUMNS FROM `mysql_users`":                  5,
		"SHOW CREATE TABLE mysql_servers":                  1,
		"SHOW CREATE TABLE disk.mysql_servers":             1,
		"SHOW WARNINGS":                                    0,
		"SELECT * FROM runtime_checksums_values":           5,
	} {
		cols, rows, err := tryQuery(adm, q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if len(rows) < min {
			t.Errorf("%s: %d rows, want at least %d (cols %v)", q, len(rows), min, cols)
		}
	}
	// SHOW COLUMNS … LIKE filters by name (every column came back); WHERE
	// is refused rather than ignored.
	for q, want := range map[string]int{"SHOW COLUMNS FROM mysql_servers LIKE 'nonexistent_col'": 0,
		"SHOW FULL COLUMNS FROM mysql_servers LIKE 'PORT'": 1, "SHOW FIELDS FROM main.mysql_servers LIKE 'max%'": 3} {
		if _, rows := queryRows(t, adm, q); len(rows) != want {
			t.Errorf("%s: %d rows, want %d", q, len(rows), want)
		}
	}
	// SHOW FULL COLUMNS has MySQL's nine columns (tools scan nine values).
	if cols, rows := queryRows(t, adm, "SHOW FULL COLUMNS FROM mysql_servers LIKE 'hostname'"); fmt.Sprint(cols) != "[Field Type Collation Null Key Default Extra Privileges Comment]" ||
		len(rows) != 1 || fmt.Sprint(rows[0][:5]) != "[hostname varchar utf8mb4_bin NO PRI]" {
		t.Errorf("SHOW FULL COLUMNS: %v %v", cols, rows)
	}
	if _, _, err := tryQuery(adm, "SHOW COLUMNS FROM mysql_servers WHERE Field = 'port'"); err == nil {
		t.Error("SHOW COLUMNS … WHERE answered")
	}
	if cols, rows := queryRows(t, adm, "SHOW FULL TABLES"); len(cols) != 2 || cols[1] != "Table_type" || rows[0][1] != "BASE TABLE" {
		t.Errorf("SHOW FULL TABLES: %v %v", cols, rows[0])
	}
	_, rows := queryRows(t, adm, "SHOW VARIABLES WHERE Variable_name in ('max_allowed_packet','system_time_zone','time_zone','sql_mode')")
	if len(rows) != 4 {
		t.Errorf("Connector/J variables: %v", rows)
	}
	if v := scalar(t, adm, "select @@version_comment limit 1"); v != "(ProxySQL Admin Module)" {
		t.Errorf("version_comment %q", v)
	}
	cols, rows := queryRows(t, adm, "SELECT DATABASE(), USER() LIMIT 1")
	if fmt.Sprint(cols) != "[DATABASE() USER()]" || rows[0][0] != "admin" || rows[0][1] != "admin@127.0.0.1" {
		t.Errorf("DATABASE(), USER(): %v %v", cols, rows)
	}
	cols, _ = queryRows(t, adm, "SHOW CREATE TABLE mysql_servers")
	if fmt.Sprint(cols) != "[table Create Table]" {
		t.Errorf("SHOW CREATE TABLE columns %v", cols)
	}
	_, rows = queryRows(t, adm, "SHOW CREATE TABLE mysql_servers")
	if !strings.HasPrefix(rows[0][1], "CREATE TABLE mysql_servers (\n") {
		t.Errorf("SHOW CREATE TABLE text %q", rows[0][1])
	}
	// NULL survives the trip.
	if v := scalar(t, adm, "SELECT NULL"); v != "NULL" {
		t.Errorf("SELECT NULL = %q", v)
	}
	// SHOW CREATE TABLE works for every table SHOW TABLES lists (§11.1 item 2).
	_, tables := queryRows(t, adm, "SHOW TABLES")
	for _, tr := range tables {
		if _, rows := queryRows(t, adm, "SHOW CREATE TABLE "+tr[0]); len(rows) != 1 {
			t.Errorf("SHOW CREATE TABLE %s: %d rows", tr[0], len(rows))
		}
	}
	wantErr(t, adm, "SHOW FIELDS FROM nope", 1045, "Table does not exist")
}

func TestConfigFile(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	cols, rows := queryRows(t, adm, "SELECT CONFIG FILE")
	if fmt.Sprint(cols) != "[Data]" || len(rows) != 1 {
		t.Fatalf("SELECT CONFIG FILE: %v %d rows", cols, len(rows))
	}
	out := filepath.Join(e.dir, "export.cnf")
	c := e.raw("admin", "admin")
	if info, want := okInfo(t, c, "SAVE CONFIG TO FILE "+out), "File "+out+" is saved."; info != want {
		t.Errorf("info %q, want %q", info, want)
	}
	data, err := os.ReadFile(out)
	if err != nil || string(data) != rows[0][0] {
		t.Errorf("file content differs from SELECT CONFIG FILE (err %v)", err)
	}
	if _, err := c.Execute("SELECT CONFIG INTO OUTFILE " + filepath.Join(e.dir, "no", "such", "dir.cnf")); err == nil ||
		!strings.Contains(err.Error(), "ProxySQL Admin Error:") {
		t.Errorf("bad path: %v", err)
	}
	for _, q := range []string{"SAVE CONFIG TO FILE", "SELECT CONFIG INTO OUTFILE", "save config to file ''"} {
		wantErr(t, adm, q, 1045, "ProxySQL Admin Error: empty file name")
	}

	// LOAD … FROM CONFIG merges the file into MEMORY and counts rows.
	r := mustExec(t, adm, "LOAD MYSQL SERVERS FROM CONFIG")
	if n, _ := r.RowsAffected(); n != 2 {
		t.Errorf("LOAD MYSQL SERVERS FROM CONFIG: %d rows, want 2", n)
	}
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers"); n != "2" {
		t.Errorf("%s servers in MEMORY", n)
	}
	mustExec(t, adm, "LOAD MYSQL USERS FROM CONFIG")
	mustExec(t, adm, "LOAD MYSQL QUERY RULES FROM CONFIG")
	mustExec(t, adm, "LOAD MYSQL VARIABLES FROM CONFIG")
	if v := scalar(t, adm, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-max_connections'"); v != "2048" {
		t.Errorf("max_connections from config = %q", v)
	}

	if err := os.WriteFile(e.cnf, []byte("mysql_servers = ( {"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, adm, "LOAD MYSQL SERVERS FROM CONFIG", 1045, "Unable to open or parse config file "+e.cnf)
	e.srv.mu.Lock() // statements read the config under the admin mutex
	e.srv.cfg.ConfigPath = ""
	e.srv.mu.Unlock()
	wantErr(t, adm, "LOAD MYSQL SERVERS FROM CONFIG", 1045, "Config file unknown")
}

func TestProtocolCommands(t *testing.T) {
	e := newEnv(t)
	c := e.raw("admin", "admin")
	if err := c.Ping(); err != nil {
		t.Errorf("COM_PING: %v", err)
	}
	if err := c.UseDB("whatever"); err != nil {
		t.Errorf("COM_INIT_DB: %v", err)
	}
	if fs, err := c.FieldList("mysql_servers", ""); err != nil || len(fs) != 0 {
		t.Errorf("COM_FIELD_LIST: %v %v", fs, err)
	}
	// COM_STATISTICS answers a status string.
	c.ResetSequence()
	if err := c.WritePacket([]byte{0, 0, 0, 0, mysql.COM_STATISTICS}); err != nil {
		t.Fatal(err)
	}
	data, err := c.ReadPacket()
	if err != nil || !strings.HasPrefix(string(data), "Uptime: ") {
		t.Errorf("COM_STATISTICS: %q %v", data, err)
	}
	// COM_RESET_CONNECTION and COM_CHANGE_USER are unknown on admin.
	for _, cmd := range []byte{mysql.COM_RESET_CONNECTION, mysql.COM_CHANGE_USER} {
		c.ResetSequence()
		if err := c.WritePacket([]byte{0, 0, 0, 0, cmd}); err != nil {
			t.Fatal(err)
		}
		data, err := c.ReadPacket()
		if err != nil || len(data) < 3 || data[0] != mysql.ERR_HEADER || data[1] != 0x17 || data[2] != 0x04 {
			t.Errorf("command %d: %x %v", cmd, data, err)
		}
	}
	// Prepared statements get ProxySQL's ordinary error (1045, 28000,
	// "Command not supported"): 1047/08S01 made PDO and Connector/J
	// drop the connection as broken.
	for _, cmd := range []byte{mysql.COM_STMT_PREPARE, mysql.COM_STMT_EXECUTE} {
		c.ResetSequence()
		if err := c.WritePacket([]byte{0, 0, 0, 0, cmd, 'x'}); err != nil {
			t.Fatal(err)
		}
		data, err := c.ReadPacket()
		if err != nil || len(data) < 3 || data[0] != mysql.ERR_HEADER || data[1] != 0x15 || data[2] != 0x04 ||
			!strings.Contains(string(data), "#28000Command not supported") {
			t.Errorf("command %d: %q %v", cmd, data, err)
		}
	}
	// COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA get no reply, by the
	// protocol: the next command's answer is its own.
	for _, pkt := range [][]byte{{0, 0, 0, 0, mysql.COM_STMT_CLOSE, 1, 0, 0, 0}, {0, 0, 0, 0, mysql.COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 0, 0, 'x'}} {
		c.ResetSequence()
		if err := c.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
	}
	// An empty packet is an unknown command, and the session goes on.
	c.ResetSequence()
	if err := c.WritePacket([]byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if data, err := c.ReadPacket(); err != nil || len(data) < 3 || data[0] != mysql.ERR_HEADER {
		t.Errorf("empty packet: %x %v", data, err)
	}
	// Still serving.
	if r, err := c.Execute("SELECT 42"); err != nil {
		t.Errorf("after unknown commands: %v", err)
	} else if v, _ := r.GetInt(0, 0); v != 42 {
		t.Errorf("SELECT 42 after COM_STMT_CLOSE answered %d", v)
	}
	// A query ends at a NUL byte, as SQLite reads ProxySQL's C string:
	// the statement after it used to run.
	adm := e.admin()
	mustExec(t, adm, "INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (7, 'nul.example', 3306)")
	multi := e.raw("admin", "admin", mysql.CLIENT_MULTI_STATEMENTS)
	_, _ = multi.ExecuteMultiple("SELECT 1\x00; DELETE FROM mysql_servers WHERE hostgroup_id = 7", func(*mysql.Result, error) {})
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers WHERE hostgroup_id = 7"); n != "1" {
		t.Errorf("the statement after a NUL byte ran: %s rows left", n)
	}
	// Without multi-statements, a text of two statements is refused whole
	// (SQLite ran both; ProxySQL runs the first and drops the rest); one
	// statement with a trailing ';' or comment is one statement.
	if _, err := adm.Exec("UPDATE mysql_servers SET port = 3307 WHERE hostgroup_id = 7; DELETE FROM mysql_servers WHERE hostgroup_id = 7"); err == nil ||
		!strings.Contains(err.Error(), "multi-statements") {
		t.Errorf("two statements without multi-statements: %v", err)
	}
	if n := scalar(t, adm, "SELECT COUNT(*) || ':' || MAX(port) FROM mysql_servers WHERE hostgroup_id = 7"); n != "1:3306" {
		t.Errorf("after the refused text: %s, want the row unchanged", n)
	}
	if n := scalar(t, adm, "SELECT COUNT(*) FROM mysql_servers WHERE hostgroup_id = 7; -- one statement"); n != "1" {
		t.Errorf("a statement with a trailing comment: %s", n)
	}
	// A packet out of sequence is answered 1156 before the close, as on
	// the data port and MariaDB (it was closed without a word).
	c.ResetSequence()
	if _, err := c.Conn.Conn.Write([]byte{9, 0, 0, 5, mysql.COM_QUERY, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'}); err != nil {
		t.Fatal(err)
	}
	c.Sequence = 6 // the answer follows what was sent
	if data, err := c.ReadPacket(); err != nil || len(data) < 3 || data[0] != mysql.ERR_HEADER || data[1] != 0x84 || data[2] != 0x04 {
		t.Errorf("a packet out of sequence: %x %v, want ERR 1156", data, err)
	}
}

func TestMultiStatements(t *testing.T) {
	e := newEnv(t)
	run := func(c *gmclient.Conn, q string) (results []string, err error) {
		_, xerr := c.ExecuteMultiple(q, func(r *mysql.Result, rerr error) {
			switch {
			case rerr != nil:
				err = rerr
			case r.Resultset != nil && len(r.Values) > 0:
				results = append(results, string(r.Values[0][0].AsString()))
			default:
				results = append(results, fmt.Sprintf("ok:%d", r.AffectedRows))
			}
		})
		if err == nil {
			err = xerr
		}
		return results, err
	}
	// Negotiated at login.
	c := e.raw("admin", "admin", mysql.CLIENT_MULTI_STATEMENTS)
	got, err := run(c, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'a'); "+
		"INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'b'); LOAD MYSQL SERVERS TO RUNTIME; SELECT 7")
	if err != nil || fmt.Sprint(got) != "[ok:1 ok:1 ok:0 7]" {
		t.Errorf("batch: %v %v", got, err)
	}
	if n := len(e.app.Runtime().Servers); n != 2 {
		t.Errorf("%d servers at runtime", n)
	}
	// An error stops the batch.
	got, err = run(c, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'c'); SELECT * FROM nope; "+
		"INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'd')")
	if err == nil || !strings.Contains(err.Error(), "no such table: nope") || fmt.Sprint(got) != "[ok:1]" {
		t.Errorf("failing batch: %v %v", got, err)
	}
	if n := scalar(t, e.admin(), "SELECT COUNT(*) FROM mysql_servers WHERE hostname IN ('c','d')"); n != "1" {
		t.Errorf("%s rows of c/d, want 1", n)
	}

	// Switched on with COM_SET_OPTION.
	c2 := e.raw("admin", "admin")
	c2.ResetSequence()
	if err := c2.WritePacket([]byte{0, 0, 0, 0, mysql.COM_SET_OPTION, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if data, err := c2.ReadPacket(); err != nil || data[0] != mysql.EOF_HEADER {
		t.Fatalf("COM_SET_OPTION: %x %v", data, err)
	}
	got, err = run(c2, "SELECT 1; SELECT 2")
	if err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Errorf("after COM_SET_OPTION: %v %v", got, err)
	}
}

func TestListenUnixAndReconcile(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "admin.sock")
	adm := e.admin()
	mustExec(t, adm, "SET admin-mysql_ifaces='127.0.0.1:0;"+sock+"'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	if n := len(e.srv.Addrs()); n != 2 {
		t.Fatalf("%d listeners after LOAD, want 2", n)
	}
	db, err := sql.Open("mysql", "admin:admin@unix("+sock+")/?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := scalar(t, db, "SELECT USER()"); got != "admin@localhost" {
		t.Errorf("USER() over the socket = %q", got)
	}
	// A LOAD of an interface that cannot be bound fails, and RUNTIME and
	// the listeners stay as they were.
	before := scalar(t, adm, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-mysql_ifaces'")
	mustExec(t, adm, "SET admin-mysql_ifaces='127.0.0.1:0;127.0.0.1:99999'")
	wantErr(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME", 1045, "admin-mysql_ifaces")
	if got := scalar(t, adm, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-mysql_ifaces'"); got != before {
		t.Errorf("runtime admin-mysql_ifaces after the failed LOAD = %q, want %q", got, before)
	}
	if n := len(e.srv.Addrs()); n != 2 {
		t.Errorf("%d listeners after the failed LOAD, want the 2 it had", n)
	}
	// The same port on a wider address (127.0.0.1:P → 0.0.0.0:P) is a
	// change the old listener would block: it is closed first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, ifaces := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("127.0.0.1:%d", port)} {
		mustExec(t, adm, "SET admin-mysql_ifaces='"+ifaces+"'")
		mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
		if got := e.srv.Addrs(); len(got) != 1 || got[0].(*net.TCPAddr).Port != port {
			t.Fatalf("after LOAD of %s the admin listens on %v", ifaces, got)
		}
	}
	mustExec(t, adm, "SET admin-mysql_ifaces='127.0.0.1:0;"+sock+"'")
	mustExec(t, adm, "LOAD ADMIN VARIABLES TO RUNTIME")
	// A bad interface is refused and nothing is closed.
	if err := e.srv.Listen("127.0.0.1:0;" + filepath.Join(e.dir, "no", "dir", "x.sock")); err == nil {
		t.Error("Listen on a bad socket path succeeded")
	}
	if n := len(e.srv.Addrs()); n != 2 {
		t.Errorf("%d listeners after a failed Listen, want the 2 it had", n)
	}
	if err := e.srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file still there: %v", err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	if err := adm.Ping(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a client connected")
	}
	if err := e.srv.Listen("127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

func TestRefreshLiveTables(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	queryRows(t, adm, "SELECT * FROM stats_mysql_global")
	queryRows(t, adm, "SELECT * FROM stats.stats_mysql_connection_pool")
	queryRows(t, adm, "SHOW PROCESSLIST")
	e.app.mu.Lock()
	got := fmt.Sprint(e.app.refreshed)
	e.app.mu.Unlock()
	if want := "[stats_mysql_global stats_mysql_connection_pool stats_mysql_processlist]"; got != want {
		t.Errorf("refreshed %s, want %s", got, want)
	}
}

func TestTLS(t *testing.T) {
	e := newEnv(t)
	cert := selfSigned(t)
	srv := New(Config{Store: e.store, Applier: e.app, Log: e.srv.log, TLS: func() *tls.Config { return &tls.Config{Certificates: []tls.Certificate{cert}} }})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	db, err := sql.Open("mysql", "admin:admin@tcp("+srv.Addrs()[0].String()+")/?tls=skip-verify&timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := scalar(t, db, "SELECT @@have_ssl"); got != "YES" {
		t.Errorf("@@have_ssl = %q", got)
	}
	if got := scalar(t, db, "SELECT COUNT(*) FROM mysql_servers"); got != "0" {
		t.Errorf("count = %q", got)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice-admin-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestSilentSocketsCannotLockAdminOut: a flood of sockets that never log
// in fills the admin port's bound; the oldest of them make room, so an
// operator still logs in. Only logged-in sessions at the bound refuse a
// new connection with 1040. Before, 512 silent sockets locked every
// operator out until they timed out.
func TestSilentSocketsCannotLockAdminOut(t *testing.T) {
	e := newEnv(t)
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for i := 0; i < maxAdminConns+20; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	time.Sleep(100 * time.Millisecond)
	if err := e.admin().Ping(); err != nil {
		t.Fatalf("admin login while %d sockets sit silent: %v", len(silent), err)
	}
	// The oldest silent sockets were closed to make room.
	buf := make([]byte, 512)
	_ = silent[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, err := silent[0].Read(buf); err != nil {
			break // the handshake, then EOF: closed
		}
	}
	e.srv.lmu.Lock()
	live := e.srv.live
	e.srv.lmu.Unlock()
	if live > maxAdminConns {
		t.Fatalf("%d live admin connections, bound %d", live, maxAdminConns)
	}
}

// TestReconcileCharsetAtStart: at start the values before are the built-in
// defaults, so a proxysql.cnf that sets only mysql-default_charset keeps it
// and gets its default collation (the collation used to win and throw the
// character set away), and one that sets only the collation gets its
// character set.
func TestReconcileCharsetAtStart(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		cs, coll, wantCS, wantColl string
	}{
		{"latin1", "utf8_general_ci", "latin1", "latin1_swedish_ci"},
		{"utf8", "utf8mb4_unicode_ci", "utf8mb4", "utf8mb4_unicode_ci"},
		{"utf8mb4", "utf8mb4_general_ci", "utf8mb4", "utf8mb4_general_ci"},
	} {
		next := map[string]string{"mysql-default_charset": c.cs, "mysql-default_collation_connection": c.coll}
		e.srv.reconcileCharset(next, nil)
		if next["mysql-default_charset"] != c.wantCS || next["mysql-default_collation_connection"] != c.wantColl {
			t.Errorf("start with %s / %s: got %s / %s, want %s / %s", c.cs, c.coll,
				next["mysql-default_charset"], next["mysql-default_collation_connection"], c.wantCS, c.wantColl)
		}
	}
}

// TestSetLogRedactsAndBounds: a SET that carries a password anywhere — in
// another case, in a second assignment — is not logged whole (it was: the
// check looked for "password" in the first name only, case-sensitively),
// and what an admin command logs is bounded (a 1 MiB value was logged
// whole).
func TestSetLogRedactsAndBounds(t *testing.T) {
	var logs testenv.SyncBuffer
	e := newEnvLog(t, zerolog.New(&logs))
	adm := e.admin()
	for _, q := range []string{
		"SET mysql-Monitor_Password='SECRET2'",
		"SET mysql-monitor_username='monitor', mysql-monitor_password='SECRET3'",
		"SET mysql-monitor_username='x' /* the password is SECRET4 */",
	} {
		_, _ = adm.Exec(q) // the second is an SQLite error, as in ProxySQL
	}
	if _, err := adm.Exec("SET mysql-server_version='" + strings.Repeat("v", 1<<20) + "'"); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"SECRET2", "SECRET3", "SECRET4"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %s", secret)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
		}
	}
	if !strings.Contains(out, "Received") {
		t.Errorf("nothing logged:\n%s", out)
	}
}

// TestDriverEscapingRoundTrips: a value a driver escapes itself (here
// go-sql-driver's interpolateParams, as pymysql, PDO's emulated prepares
// and Connector/J's client-side statements do) reaches SQLite as written:
// the admin's replies say NO_BACKSLASH_ESCAPES, so a quote is doubled, not
// backslash-escaped (a syntax error), and a backslash is not doubled (a
// rule's `\b` was stored as `\\b`).
func TestDriverEscapingRoundTrips(t *testing.T) {
	e := newEnv(t)
	db := e.db("admin", "admin", "interpolateParams=true")
	for _, v := range []string{`back\slash`, `^SELECT .* FOR UPDATE\b`, `it's`, `dq"x`, `\'; DELETE FROM mysql_servers; --`} {
		if _, err := db.Exec("REPLACE INTO mysql_query_rules(rule_id, active, match_digest) VALUES (?, 1, ?)", 77, v); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		var got string
		if err := db.QueryRow("SELECT match_digest FROM mysql_query_rules WHERE rule_id = ?", 77).Scan(&got); err != nil || got != v {
			t.Errorf("stored %q, read back %q (%v)", v, got, err)
		}
	}
}

// TestRunawayQueryEndsWithItsClient: a statement that never ends (a
// recursive CTE) is interrupted when its client closes the connection; it
// held the admin's statement lock for ever, every other session's
// statements waiting behind it.
func TestRunawayQueryEndsWithItsClient(t *testing.T) {
	e := newEnv(t)
	// go-sql-driver closes the connection when the query's context ends,
	// as a client that gives up does.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var n int
	if err := e.db("admin", "admin").QueryRowContext(ctx, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT COUNT(*) FROM n").Scan(&n); err == nil {
		t.Fatal("the runaway query ended")
	}
	done := make(chan error, 1)
	go func() {
		var one int
		done <- e.admin().QueryRow("SELECT 1").Scan(&one)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the admin still waits on the runaway query of a client that left")
	}
}
