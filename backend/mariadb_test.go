package backend

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The tests below run against a real MariaDB started by scripts/backends.sh
// (through internal/testenv), with two users created here:
// sl_a / pw_a and sl_b / pw_b, and the databases sl_db1, sl_db2.

var (
	mariadbOnce sync.Once
	mariadbErr  error
)

func mariadb(t *testing.T) testenv.Backend {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := exec.LookPath("/usr/sbin/mariadbd"); err != nil {
			t.Skip("mariadbd is not installed")
		}
	}
	if testing.Short() {
		t.Skip("needs a MariaDB server")
	}
	b := testenv.Backends(t, 1)[0]
	mariadbOnce.Do(func() { mariadbErr = setupMariaDB(b) })
	if mariadbErr != nil {
		t.Fatal(mariadbErr)
	}
	return b
}

func setupMariaDB(b testenv.Backend) error {
	r := NewRegistry(FixedOptions(DefaultOptions()), zerologNop())
	defer r.Close()
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: 5}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.Hostgroup(0)[0].Pool().Get(ctx, nil, &Credentials{User: "root", Password: "test"}, &State{Autocommit: true})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS sl_db1", "CREATE DATABASE IF NOT EXISTS sl_db2",
		"CREATE OR REPLACE USER 'sl_a'@'%' IDENTIFIED BY 'pw_a'",
		"CREATE OR REPLACE USER 'sl_b'@'%' IDENTIFIED BY 'pw_b'",
		"GRANT ALL ON *.* TO 'sl_a'@'%'", "GRANT ALL ON *.* TO 'sl_b'@'%'",
	} {
		if err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func testRegistry(t *testing.T, b testenv.Backend, maxConns int, mod func(*Options)) (*Registry, *Server) {
	t.Helper()
	o := DefaultOptions()
	o.ConnectTimeout = 3 * time.Second
	if mod != nil {
		mod(&o)
	}
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 1, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: maxConns}})
	return r, r.Hostgroup(1)[0]
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func queryRow(t *testing.T, c *BackendConn, q string) []string {
	t.Helper()
	res, err := c.Query(ctx10(t), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("%s: %d rows", q, len(res.Rows))
	}
	out := make([]string, len(res.Rows[0]))
	for i, v := range res.Rows[0] {
		out[i] = v.String
		if !v.Valid {
			out[i] = "NULL"
		}
	}
	return out
}

func TestMariaDBLoginClearAndStage1(t *testing.T) {
	b := mariadb(t)
	for _, deprecateEOF := range []bool{true, false} {
		_, s := testRegistry(t, b, 10, func(o *Options) { o.DeprecateEOF = deprecateEOF })
		ctx := ctx10(t)
		for name, cred := range map[string]*Credentials{
			"clear":  {User: "sl_a", Password: "pw_a"},
			"stage1": {User: "sl_a", Stage1: wire.Stage1([]byte("pw_a"))},
		} {
			c, err := s.Pool().Get(ctx, nil, cred, &State{Schema: "sl_db1", Autocommit: true})
			if err != nil {
				t.Fatalf("%s login: %v", name, err)
			}
			if c.DeprecateEOF() != deprecateEOF {
				t.Fatalf("DEPRECATE_EOF negotiated %v, asked %v", c.DeprecateEOF(), deprecateEOF)
			}
			row := queryRow(t, c, "SELECT CURRENT_USER(), DATABASE(), NULL, CONNECTION_ID()")
			if row[0] != "sl_a@%" || row[1] != "sl_db1" || row[2] != "NULL" {
				t.Fatalf("%s: %v", name, row)
			}
			// Several result sets in one statement need MULTI_RESULTS.
			if err := c.Exec(ctx, "SELECT 1 UNION SELECT 2"); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
		}
	}
	_, s := testRegistry(t, b, 10, nil)
	_, err := s.Pool().Get(ctx10(t), nil, &Credentials{User: "sl_a", Password: "wrong"}, &State{Autocommit: true})
	if e, ok := IsSQLError(err); !ok || e.Code != 1045 || !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = s.Pool().Get(ctx10(t), nil, &Credentials{User: "sl_a", Password: "pw_a"}, &State{Schema: "no_such_db", Autocommit: true})
	if e, ok := IsSQLError(err); !ok || e.Code != 1049 {
		t.Fatalf("unknown schema: %v", err)
	}
	if s.Status() != StatusOnline || s.Stats().ConnERR != 2 || s.Stats().ConnUsed != 0 {
		t.Fatalf("refused logins must not shun: %v %+v", s.Status(), s.Stats())
	}
}

func TestMariaDBPoolReuse(t *testing.T) {
	b := mariadb(t)
	_, s := testRegistry(t, b, 10, nil)
	ctx := ctx10(t)
	cred := &Credentials{User: "sl_a", Password: "pw_a"}
	want := &State{Schema: "sl_db1", Collation: 45, Autocommit: true}
	c1, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	id := c1.ThreadID()
	s.Pool().Put(c1)
	if s.Pool().Free() != 1 || s.Pool().Used() != 0 {
		t.Fatalf("free %d used %d", s.Pool().Free(), s.Pool().Used())
	}
	c2, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil || c2.ThreadID() != id {
		t.Fatalf("connection not reused: %v", err)
	}
	// A second concurrent request opens a second connection.
	c3, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil || c3.ThreadID() == id {
		t.Fatalf("second connection: %v", err)
	}
	s.Pool().Put(c2)
	s.Pool().Put(c3)
	st := s.Stats()
	if st.ConnOK != 2 || st.ConnFree != 2 || st.ConnUsed != 0 || st.MaxConnUsed != 2 || st.BytesRecv == 0 || st.BytesSent == 0 {
		t.Fatalf("stats %+v", st)
	}
	// A broken connection is not pooled.
	c4, _ := s.Pool().Get(ctx, nil, cred, want)
	c4.MarkBroken()
	s.Pool().Put(c4)
	if s.Pool().Free() != 1 {
		t.Fatalf("broken connection pooled: free %d", s.Pool().Free())
	}
}

func TestMariaDBMaxConnectionsWait(t *testing.T) {
	b := mariadb(t)
	_, s := testRegistry(t, b, 2, nil)
	cred := &Credentials{User: "sl_a", Password: "pw_a"}
	want := &State{Autocommit: true}
	ctx := ctx10(t)
	c1, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	start := time.Now()
	_, err = s.Pool().Get(short, nil, cred, want)
	cancel()
	if !errors.Is(err, ErrPoolFull) || time.Since(start) < 140*time.Millisecond {
		t.Fatalf("got %v after %v, want ErrPoolFull at the deadline", err, time.Since(start))
	}
	// A waiter gets the connection another session returns.
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.Pool().Put(c1)
	}()
	c3, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil || c3.ThreadID() != c1.ThreadID() {
		t.Fatalf("waiter: %v", err)
	}
	// A closed connection frees its slot too.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = c2.Close()
	}()
	c4, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	if s.Stats().MaxConnUsed != 2 {
		t.Fatalf("max_connections exceeded: %+v", s.Stats())
	}
	_ = c3.Close()
	_ = c4.Close()
	if s.Stats().ConnUsed != 0 {
		t.Fatalf("slots leaked: %+v", s.Stats())
	}
}

func TestMariaDBReconcileKeepsConnections(t *testing.T) {
	b := mariadb(t)
	r, s := testRegistry(t, b, 10, nil)
	cred := &Credentials{User: "sl_a", Password: "pw_a"}
	want := &State{Autocommit: true}
	ctx := ctx10(t)
	idle, _ := s.Pool().Get(ctx, nil, cred, want)
	busy, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil {
		t.Fatal(err)
	}
	idleID := idle.ThreadID()
	s.Pool().Put(idle)

	cfg := []config.Server{{HostgroupID: 1, Hostname: b.Host, Port: b.Port, Weight: 9, MaxConnections: 20}}
	r.Reconcile(cfg)
	if r.Hostgroup(1)[0] != s || s.Weight() != 9 || s.Pool().Free() != 1 {
		t.Fatal("reload replaced the server or dropped its idle connection")
	}
	again, err := s.Pool().Get(ctx, nil, cred, want)
	if err != nil || again.ThreadID() != idleID {
		t.Fatalf("idle connection lost across reload: %v", err)
	}
	s.Pool().Put(again)

	// Removal: OFFLINE_HARD, idle closed now, busy closed when returned.
	r.Reconcile(nil)
	if s.Status() != StatusOfflineHard || s.Pool().Free() != 0 || len(r.Servers()) != 0 {
		t.Fatalf("removed server: %v free %d", s.Status(), s.Pool().Free())
	}
	if _, err := s.Pool().Get(ctx, nil, cred, want); !errors.Is(err, ErrServerUnavailable) {
		t.Fatalf("Get on a removed server: %v", err)
	}
	s.Pool().Put(busy)
	if s.Pool().Free() != 0 || s.Stats().ConnUsed != 0 {
		t.Fatal("connection of a removed server went back to the pool")
	}
	// Adding it back makes a fresh server.
	r.Reconcile(cfg)
	if n := r.Hostgroup(1)[0]; n == s || n.Status() != StatusOnline {
		t.Fatal("re-added server")
	}
}

func TestMariaDBStateSync(t *testing.T) {
	b := mariadb(t)
	_, s := testRegistry(t, b, 10, func(o *Options) { o.InitConnect = "SET @sluice_init=42" })
	ctx := ctx10(t)
	credA := &Credentials{User: "sl_a", Password: "pw_a"}
	credB := &Credentials{User: "sl_b", Stage1: wire.Stage1([]byte("pw_b"))}
	want := &State{
		Schema: "sl_db1", Collation: 8, Autocommit: false, MultiStatements: true,
		Vars: []Var{
			{"sql_mode", "SET sql_mode='ANSI_QUOTES'"},
			{"time_zone", "SET time_zone='+01:00'"},
			{"transaction_isolation", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"},
		},
	}
	c, err := s.Pool().Get(ctx, nil, credA, want)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ThreadID()
	check := func(what string, want ...string) {
		t.Helper()
		got := queryRow(t, c, "SELECT DATABASE(), @@autocommit, @@collation_connection, @@sql_mode, @@time_zone, "+
			"@@tx_isolation, CURRENT_USER(), @sluice_init")
		for i, w := range want {
			if w != "*" && got[i] != w {
				t.Fatalf("%s: column %d = %q, want %q (row %v)", what, i, got[i], w, got)
			}
		}
	}
	check("new connection", "sl_db1", "0", "latin1_swedish_ci", "ANSI_QUOTES", "+01:00", "READ-COMMITTED", "sl_a@%", "42")
	if err := c.Exec(ctx, "SELECT 1; SELECT 2"); err != nil {
		t.Fatalf("multi-statements not enabled: %v", err)
	}
	if c.Sync(ctx, nil, credA, want) != nil || c.ThreadID() != id {
		t.Fatal("no-op sync")
	}
	s.Pool().Put(c)

	// Same user, other schema and charset, one more variable: INIT_DB + SET.
	want2 := want.Clone()
	want2.Schema, want2.Collation, want2.Autocommit, want2.MultiStatements = "sl_db2", 0, true, false
	want2.Names = "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"
	want2.Vars = append(want2.Vars, Var{"wait_timeout", "SET wait_timeout=1234"})
	if c, err = s.Pool().Get(ctx, nil, credA, &want2); err != nil || c.ThreadID() != id {
		t.Fatalf("sync on a reused connection: %v", err)
	}
	check("synced", "sl_db2", "1", "utf8mb4_unicode_ci", "ANSI_QUOTES", "+01:00", "READ-COMMITTED", "sl_a@%", "42")
	if row := queryRow(t, c, "SELECT @@wait_timeout"); row[0] != "1234" {
		t.Fatalf("wait_timeout %v", row)
	}
	if err := c.Exec(ctx, "SELECT 1; SELECT 2"); err == nil {
		t.Fatal("multi-statements still on after COM_SET_OPTION off")
	}
	s.Pool().Put(c)

	// Fewer variables than the connection holds: reset, then replay.
	want3 := State{Schema: "sl_db2", Collation: 45, Autocommit: true, Vars: []Var{{"time_zone", "SET time_zone='+02:00'"}}}
	if c, err = s.Pool().Get(ctx, nil, credA, &want3); err != nil || c.ThreadID() != id {
		t.Fatalf("reset path: %v", err)
	}
	check("reset", "sl_db2", "1", "utf8mb4_general_ci", "*", "+02:00", "REPEATABLE-READ", "sl_a@%", "42")
	if row := queryRow(t, c, "SELECT @@sql_mode = @@global.sql_mode"); row[0] != "1" {
		t.Fatal("sql_mode survived the reset")
	}
	s.Pool().Put(c)

	// Another user, known only by SHA1(password): COM_CHANGE_USER.
	if c, err = s.Pool().Get(ctx, nil, credB, &want3); err != nil || c.ThreadID() != id {
		t.Fatalf("change user: %v", err)
	}
	check("change user", "sl_db2", "1", "utf8mb4_general_ci", "*", "+02:00", "*", "sl_b@%", "42")

	// A refused SET leaves the connection usable but marked for a reset.
	bad := want3.Clone()
	bad.Vars = []Var{{"sql_mode", "SET sql_mode='NO_SUCH_MODE'"}}
	err = c.Sync(ctx, nil, credB, &bad)
	if e, ok := IsSQLError(err); !ok || e.Code != 1231 {
		t.Fatalf("bad SET: %v", err)
	}
	if err := c.Sync(ctx, nil, credB, &want3); err != nil {
		t.Fatalf("sync after a refused SET: %v", err)
	}
	check("after refusal", "sl_db2", "1", "utf8mb4_general_ci", "*", "+02:00", "*", "sl_b@%", "42")

	// ResetConnection keeps the schema and drops session state.
	if err := c.Exec(ctx, "SET @u=1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if row := queryRow(t, c, "SELECT DATABASE(), @u, @sluice_init"); row[0] != "sl_db2" || row[1] != "NULL" || row[2] != "42" {
		t.Fatalf("after reset: %v", row)
	}
	if st := c.State(); st.Schema != "sl_db2" || len(st.Vars) != 0 {
		t.Fatalf("state after reset: %+v", st)
	}
	s.Pool().Put(c)
}

func TestMariaDBMaintenance(t *testing.T) {
	b := mariadb(t)
	r, s := testRegistry(t, b, 10, func(o *Options) {
		o.FreeConnectionsPct = 20 // 2 of 10
		o.PingInterval = time.Hour
	})
	ctx := ctx10(t)
	cred := &Credentials{User: "sl_a", Password: "pw_a"}
	var cs []*BackendConn
	for range 4 {
		c, err := s.Pool().Get(ctx, nil, cred, &State{Autocommit: true})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		s.Pool().Put(c)
	}
	// Connections used a moment ago are about to be reused: kept.
	r.maintainOnce(time.Now())
	if s.Pool().Free() != 4 {
		t.Fatalf("trim closed recently used connections: %d free, want 4", s.Pool().Free())
	}
	// Idle for trimIdle: trimmed to free_connections_pct.
	r.maintainOnce(time.Now().Add(trimIdle))
	if s.Pool().Free() != 2 {
		t.Fatalf("trim kept %d free connections, want 2", s.Pool().Free())
	}
	// The most recently returned connections stay.
	c, _ := s.Pool().Get(ctx, nil, cred, &State{Autocommit: true})
	if c.ThreadID() != cs[3].ThreadID() {
		t.Fatal("trim closed the warm connection")
	}
	s.Pool().Put(c)

	// Idle past the ping interval: pinged and kept; a dead one is dropped.
	o := r.Options()
	o.PingInterval = time.Millisecond
	setTestOptions(r, o)
	_, other := testRegistry(t, b, 1, nil)
	killer, err := other.Pool().Get(ctx, nil, &Credentials{User: "root", Password: "test"}, &State{Autocommit: true})
	if err != nil {
		t.Fatal(err)
	}
	victim := cs[2].ThreadID()
	if err := killer.Exec(ctx, "KILL "+itoa(int(victim))); err != nil {
		t.Fatal(err)
	}
	_ = killer.Close()
	time.Sleep(50 * time.Millisecond)
	r.maintainOnce(time.Now().Add(time.Second))
	if s.Pool().Free() != 1 || s.Pool().Used() != 0 {
		t.Fatalf("after pings: free %d used %d", s.Pool().Free(), s.Pool().Used())
	}
	c, _ = s.Pool().Get(ctx, nil, cred, &State{Autocommit: true})
	if c.ThreadID() != cs[3].ThreadID() {
		t.Fatal("the live connection did not survive its ping")
	}
	s.Pool().Put(c)

	// Max age.
	o.PingInterval = time.Hour
	o.ConnectionMaxAge = time.Millisecond
	setTestOptions(r, o)
	r.maintainOnce(time.Now().Add(time.Second))
	if s.Pool().Free() != 0 {
		t.Fatal("connection older than connection_max_age_ms kept")
	}

	// OFFLINE_SOFT: idle connections close, in-use ones finish first.
	o.ConnectionMaxAge = 0
	setTestOptions(r, o)
	busy, _ := s.Pool().Get(ctx, nil, cred, &State{Autocommit: true})
	idle, _ := s.Pool().Get(ctx, nil, cred, &State{Autocommit: true})
	s.Pool().Put(idle)
	r.Reconcile([]config.Server{{HostgroupID: 1, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: 10, Status: "OFFLINE_SOFT"}})
	if s.Pool().Free() != 0 {
		t.Fatal("OFFLINE_SOFT kept idle connections")
	}
	if err := busy.Ping(ctx); err != nil {
		t.Fatal("OFFLINE_SOFT killed a connection in use")
	}
	s.Pool().Put(busy)
	if s.Pool().Free() != 0 || s.Stats().ConnUsed != 0 {
		t.Fatal("connection returned to an OFFLINE_SOFT server was pooled")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// TestMariaDBRefusedChangeUserLogged: a free connection of another user is
// reused with COM_CHANGE_USER; when the server refuses that login, the
// caller gets the server's 1045 (ErrAuth) and the refusal is logged as a
// refused connect is (it used to leave no line).
func TestMariaDBRefusedChangeUserLogged(t *testing.T) {
	b := mariadb(t)
	var logged testenv.SyncBuffer
	o := DefaultOptions()
	o.ConnectTimeout = 3 * time.Second
	r := NewRegistry(FixedOptions(o), zerolog.New(&logged))
	defer r.Close()
	r.Reconcile([]config.Server{{HostgroupID: 1, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: 10}})
	s := r.Hostgroup(1)[0]
	c, err := s.Pool().Get(ctx10(t), nil, &Credentials{User: "sl_a", Password: "pw_a"}, &State{Autocommit: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Pool().Put(c)
	_, err = s.Pool().Get(ctx10(t), nil, &Credentials{User: "sl_b", Password: "wrong"}, &State{Autocommit: true})
	if e, ok := IsSQLError(err); !ok || e.Code != 1045 || !errors.Is(err, ErrAuth) {
		t.Fatalf("refused change of user: %v", err)
	}
	if st := s.Stats(); st.ConnOK != 1 {
		t.Fatalf("the refusal must come from COM_CHANGE_USER on the pooled connection, not a new connect: %+v", st)
	}
	if out := logged.String(); !strings.Contains(out, "backend refused the login") || !strings.Contains(out, `"user":"sl_b"`) ||
		!strings.Contains(out, "1045") {
		t.Fatalf("log:\n%s", out)
	}
}
