package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gmclient "github.com/go-mysql-org/go-mysql/client"
	gmmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// testApplier is the proxy as the tests see it: it records every snapshot
// it is given and can be told to refuse the next ones.
type testApplier struct {
	mu        sync.Mutex
	rt        *config.Snapshot
	applied   []config.Module
	reject    error // Apply fails with this while set
	flushes   int
	shutdown  chan struct{}
	killed    []uint64
	refreshed []string
	commands  []string
	truncated []string
}

// TruncateStats records TRUNCATE of the digest tables.
func (a *testApplier) TruncateStats(table string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.truncated = append(a.truncated, table)
	return true, nil
}

func (a *testApplier) RefreshTables(names []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshed = append(a.refreshed, names...)
	return nil
}

// ProxySQLCommand takes FLUSH QUERY CACHE, and refuses PAUSE as a proxy
// that is paused already; it has no other command.
func (a *testApplier) ProxySQLCommand(cmd string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.commands = append(a.commands, cmd)
	if cmd == "PAUSE" {
		return true, CommandRefusal("ProxySQL MySQL module is already paused, impossible to pause")
	}
	return cmd == "FLUSH QUERY CACHE", nil
}

func newTestApplier() *testApplier { return &testApplier{shutdown: make(chan struct{}, 1)} }

func (a *testApplier) Apply(m config.Module, snap *config.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reject != nil {
		return a.reject
	}
	a.rt = snap
	a.applied = append(a.applied, m)
	return nil
}

func (a *testApplier) Runtime() *config.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rt
}

func (a *testApplier) FlushLogs() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushes++
	return nil
}

func (a *testApplier) Shutdown() {
	select {
	case a.shutdown <- struct{}{}:
	default:
	}
}

func (a *testApplier) KillSession(id uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.killed = append(a.killed, id)
	return id == 42
}

func (a *testApplier) setReject(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reject = err
}

// env is one admin server on a real Store in a temp datadir.
type env struct {
	t     *testing.T
	dir   string
	store *storage.Store
	app   *testApplier
	srv   *Server
	addr  string // host:port of the TCP listener
	cnf   string // config file path
}

// testConfig is a small proxysql.cnf for LOAD … FROM CONFIG.
const testConfig = `
datadir="/tmp"
admin_variables=
{
	admin_credentials="admin:admin"
	mysql_ifaces="127.0.0.1:0"
}
mysql_variables=
{
	threads=4
	max_connections=2048
}
mysql_servers =
(
	{ address="10.0.0.1" , port=3306 , hostgroup=1, max_connections=100 },
	{ address="10.0.0.2" , port=3306 , hostgroup=2 }
)
mysql_users:
(
	{ username = "app", password = "secret", default_hostgroup = 1, active = 1 }
)
mysql_query_rules:
(
	{ rule_id=1, active=1, match_digest="^SELECT", destination_hostgroup=2, apply=1 }
)
`

func newEnv(t *testing.T) *env {
	return newEnvLog(t, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
}

// newEnvLog is newEnv with the admin's log going to log.
func newEnvLog(t *testing.T, log zerolog.Logger) *env {
	t.Helper()
	dir := t.TempDir()
	st, _, err := storage.Open(storage.Options{Datadir: dir})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if err := st.InitDefaults(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cnfPath := filepath.Join(dir, "proxysql.cnf")
	if err := os.WriteFile(cnfPath, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The admin interface the test listens on, so that LOAD ADMIN VARIABLES
	// TO RUNTIME does not move it to the default 0.0.0.0:6032.
	// In DISK too (and in the config file above): LOAD … FROM DISK or FROM
	// CONFIG followed by a LOAD TO RUNTIME must not bind this machine's
	// 6032 (a test running beside it may hold it, and then that LOAD fails).
	if err := st.SetVariable("admin-mysql_ifaces", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MemoryToDisk(config.ModAdminVariables); err != nil {
		t.Fatal(err)
	}
	app := newTestApplier()
	srv := New(Config{Store: st, Applier: app, ConfigPath: cnfPath, Log: log})
	// Start-up: every module goes to RUNTIME once, as cmd/sluice does.
	for _, m := range config.Modules {
		if err := srv.LoadToRuntime(m); err != nil {
			t.Fatalf("boot load %v: %v", m, err)
		}
	}
	if err := srv.Listen(srv.runtimeVar("admin-mysql_ifaces")); err != nil {
		t.Fatalf("listen: %v", err)
	}
	e := &env{t: t, dir: dir, store: st, app: app, srv: srv, cnf: cnfPath}
	e.addr = srv.Addrs()[0].String()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = st.Close()
	})
	return e
}

// db opens a database/sql handle as user:pass.
func (e *env) db(user, pass string, params ...string) *sql.DB {
	e.t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/?timeout=5s&readTimeout=10s&writeTimeout=10s", user, pass, e.addr)
	for _, p := range params {
		dsn += "&" + p
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	e.t.Cleanup(func() { _ = db.Close() })
	return db
}

// admin is a database/sql handle as admin:admin.
func (e *env) admin() *sql.DB { return e.db("admin", "admin") }

// raw opens a go-mysql client connection (it exposes OK info messages and
// lets a test send any command).
func (e *env) raw(user, pass string, caps ...uint32) *gmclient.Conn {
	e.t.Helper()
	c, err := gmclient.Connect(e.addr, user, pass, "", func(c *gmclient.Conn) error {
		for _, cp := range caps {
			if err := c.SetCapability(cp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("connect %s: %v", user, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustExec(t *testing.T, db *sql.DB, q string) sql.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := db.ExecContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// queryRows runs q and returns its rows as strings ("NULL" for NULL).
func queryRows(t *testing.T, db *sql.DB, q string) ([]string, [][]string) {
	t.Helper()
	cols, rows, err := tryQuery(db, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return cols, rows
}

func tryQuery(db *sql.DB, q string) ([]string, [][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		r := make([]string, len(cols))
		for i, v := range vals {
			r[i] = v.String
			if !v.Valid {
				r[i] = "NULL"
			}
		}
		out = append(out, r)
	}
	return cols, out, rs.Err()
}

// scalar runs q and returns the first column of its only row.
func scalar(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	_, rows := queryRows(t, db, q)
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", q, len(rows))
	}
	return rows[0][0]
}

// wantErr runs q and checks the MySQL error code and that the message
// contains want.
func wantErr(t *testing.T, db *sql.DB, q string, code uint16, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, q)
	checkMyErr(t, q, err, code, want)
}

func checkMyErr(t *testing.T, what string, err error, code uint16, want string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("%s: got %v, want MySQL error %d", what, err, code)
	}
	if me.Number != code || !strings.Contains(me.Message, want) {
		t.Fatalf("%s: got %d %q, want %d containing %q", what, me.Number, me.Message, code, want)
	}
}

// checksumVersion reads runtime_checksums_values.version for name.
func checksumVersion(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	return scalar(t, db, "SELECT version FROM runtime_checksums_values WHERE name='"+name+"'")
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// fakeRemote makes a connection look as if it came from another host.
type fakeRemote struct {
	net.Conn
	remote net.Addr
}

func (f fakeRemote) RemoteAddr() net.Addr { return f.remote }

// okInfo sends q as a COM_QUERY and returns the info message of the OK
// packet that answers it: a length-encoded string after the warnings, as
// ProxySQL sends it (go-mysql's client does not expose it).
func okInfo(t *testing.T, c *gmclient.Conn, q string) string {
	t.Helper()
	c.ResetSequence()
	if err := c.WritePacket(append([]byte{0, 0, 0, 0, gmmysql.COM_QUERY}, q...)); err != nil {
		t.Fatal(err)
	}
	data, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != gmmysql.OK_HEADER {
		t.Fatalf("%s: not an OK packet: %q", q, data)
	}
	pos := 1
	for range 2 {
		_, _, n := gmmysql.LengthEncodedInt(data[pos:])
		pos += n
	}
	info, _, n, err := gmmysql.LengthEncodedString(data[pos+4:])
	if err != nil || pos+4+n != len(data) {
		t.Fatalf("%s: info is not one length-encoded string: %q", q, data[pos+4:])
	}
	return string(info)
}
