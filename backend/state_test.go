package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/wire"
)

func TestStateFingerprint(t *testing.T) {
	base := State{Schema: "db", Collation: 45, Autocommit: true,
		Vars: []Var{{"sql_mode", "SET sql_mode='ANSI'"}, {"time_zone", "SET time_zone='+00:00'"}}}
	variants := []func(*State){
		func(s *State) { s.Schema = "db2" },
		func(s *State) { s.Collation = 8 },
		func(s *State) { s.Names = "SET NAMES latin1" },
		func(s *State) { s.Autocommit = false },
		func(s *State) { s.MultiStatements = true },
		func(s *State) { s.Caps = wire.ClientFoundRows },
		func(s *State) { s.Vars = s.Vars[:1] },
		func(s *State) { s.Vars = []Var{{"sql_mode", "SET sql_mode=''"}, s.Vars[1]} },
		// Field boundaries matter: moving a byte between fields changes it.
		func(s *State) { s.Schema = "d"; s.Names = "b" },
	}
	fp := base.Fingerprint()
	if c := base.Clone(); c.Fingerprint() != fp || !c.Equal(&base) {
		t.Fatal("clone differs")
	}
	seen := map[uint64]int{fp: -1}
	for i, f := range variants {
		s := base.Clone()
		f(&s)
		if s.Equal(&base) {
			t.Fatalf("variant %d equal to base", i)
		}
		h := s.Fingerprint()
		if j, dup := seen[h]; dup {
			t.Fatalf("variant %d has the fingerprint of %d", i, j)
		}
		seen[h] = i
	}
	allocs := testing.AllocsPerRun(100, func() { _ = base.Fingerprint() })
	if allocs != 0 {
		t.Fatalf("Fingerprint allocates %.0f", allocs)
	}
}

func TestVarsSubsetAndQuality(t *testing.T) {
	a := Var{"a", "SET a=1"}
	b := Var{"b", "SET b=1"}
	b2 := Var{"b", "SET b=2"}
	c := Var{"c", "SET c=1"}
	cases := []struct {
		have, want []Var
		ok         bool
	}{
		{nil, nil, true}, {nil, []Var{a}, true}, {[]Var{a}, []Var{a, b}, true},
		{[]Var{b}, []Var{a, b, c}, true}, {[]Var{a, c}, []Var{a, b, c}, true},
		// A changed value needs only a SET, never a reset (which would also
		// end an open transaction: mariadb-dump --single-transaction).
		{[]Var{a}, nil, false}, {[]Var{b}, []Var{b2}, true}, {[]Var{a, c}, []Var{a, b}, false},
	}
	for i, tc := range cases {
		if VarsSubset(tc.have, tc.want) != tc.ok {
			t.Fatalf("case %d: VarsSubset(%v, %v) != %v", i, tc.have, tc.want, tc.ok)
		}
	}

	want := State{Schema: "x", Collation: 45, Autocommit: true, Vars: []Var{a, b}}
	mk := func(user string, st State, known uint8) *BackendConn {
		c := &BackendConn{cred: Credentials{User: user}, state: st, known: known}
		c.fp = st.Fingerprint()
		return c
	}
	fp := want.Fingerprint()
	if q := mk("u", want.Clone(), knownAll).quality("u", &want, fp, nil); q != QualityPerfect {
		t.Fatalf("same state: %v", q)
	}
	if q := mk("u", want.Clone(), knownAutocommit).quality("u", &want, fp, nil); q != QualitySync {
		t.Fatalf("unknown charset: %v", q)
	}
	if q := mk("u", State{Schema: "y", Vars: []Var{a}}, knownAll).quality("u", &want, fp, nil); q != QualitySync {
		t.Fatalf("subset state: %v", q)
	}
	if q := mk("u", State{Vars: []Var{c}}, knownAll).quality("u", &want, fp, nil); q != QualityChangeUser {
		t.Fatalf("extra variable: %v", q)
	}
	if q := mk("v", want.Clone(), knownAll).quality("u", &want, fp, nil); q != QualityChangeUser {
		t.Fatalf("other user: %v", q)
	}
	fr := want.Clone()
	fr.Caps = wire.ClientFoundRows
	if q := mk("u", fr, knownAll).quality("u", &want, fp, nil); q != QualityNone {
		t.Fatalf("found rows: %v", q)
	}
}

func TestAssignment(t *testing.T) {
	for in, want := range map[string]string{
		"SET sql_mode='ANSI'":                       "sql_mode='ANSI'",
		"set  NAMES utf8mb4 COLLATE utf8mb4_bin":    "NAMES utf8mb4 COLLATE utf8mb4_bin",
		"SET CHARACTER SET latin1":                  "CHARACTER SET latin1",
		"SET @@session.time_zone = '+01:00'":        "@@session.time_zone = '+01:00'",
		"SET SESSION TRANSACTION ISOLATION LEVEL x": "",
		"SET TRANSACTION READ ONLY":                 "",
		"SET GLOBAL x=1":                            "",
		"SELECT 1":                                  "",
	} {
		got, ok := assignment(in)
		if (want == "") == ok || got != want {
			t.Fatalf("assignment(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	if !IsIdent("utf8mb4_0900_ai_ci") || IsIdent("x y") || IsIdent("") || IsIdent("a'") {
		t.Fatal("isIdent")
	}
	if n, cs, ok := collationName(8); !ok || n != "latin1_swedish_ci" || cs != "latin1" {
		t.Fatalf("collation 8: %s %s", n, cs)
	}
}

func TestCountsAsConnectError(t *testing.T) {
	for code, counts := range map[uint16]bool{1045: false, 1044: false, 1049: false, 1226: false, 1040: true, 1129: true, 2013: true} {
		err := errors.Join(ErrAuth, &wire.SQLError{Code: code})
		if countsAsConnectError(err) != counts {
			t.Fatalf("code %d: counts=%v", code, !counts)
		}
	}
	if !countsAsConnectError(errors.New("connection refused")) {
		t.Fatal("network errors count")
	}
}

// testOptions holds the options of each test registry, so a test can
// change them as a LOAD would (setTestOptions).
var testOptions sync.Map // *Registry → *atomic.Pointer[Options]

func newTestRegistry(t *testing.T, o Options) *Registry {
	t.Helper()
	p := new(atomic.Pointer[Options])
	p.Store(&o)
	r := NewRegistry(p.Load, zerolog.Nop())
	testOptions.Store(r, p)
	t.Cleanup(func() { r.Close(); testOptions.Delete(r) })
	return r
}

func setTestOptions(r *Registry, o Options) {
	p, _ := testOptions.Load(r)
	p.(*atomic.Pointer[Options]).Store(&o)
}

func TestReconcileKeepsServers(t *testing.T) {
	r := newTestRegistry(t, DefaultOptions())
	cfg := []config.Server{
		{HostgroupID: 1, Hostname: "a", Port: 1, Weight: 1, MaxConnections: 10, Status: "ONLINE"},
		{HostgroupID: 1, Hostname: "b", Port: 1, Weight: 1, MaxConnections: 10},
		{HostgroupID: 2, Hostname: "a", Port: 1, Weight: 5, MaxConnections: 10},
	}
	r.Reconcile(cfg)
	hg1 := r.Hostgroup(1)
	if len(hg1) != 2 || len(r.Hostgroup(2)) != 1 || len(r.Servers()) != 3 || r.Hostgroup(3) != nil {
		t.Fatalf("hostgroups: %d %d %d", len(hg1), len(r.Hostgroup(2)), len(r.Servers()))
	}
	a1, b1 := hg1[0], hg1[1]
	if a1 == r.Hostgroup(2)[0] {
		t.Fatal("same host:port in two hostgroups must be two servers")
	}
	a1.CountQuery(time.Millisecond)

	cfg2 := []config.Server{
		{HostgroupID: 1, Hostname: "a", Port: 1, Weight: 7, MaxConnections: 3, MaxLatencyMs: 20, Comment: "x"},
		{HostgroupID: 1, Hostname: "c", Port: 1, Weight: 1, MaxConnections: 10, Status: "OFFLINE_SOFT"},
	}
	r.Reconcile(cfg2)
	if len(hg1) != 2 || hg1[1] != b1 {
		t.Fatal("the old hostgroup slice was modified in place")
	}
	got := r.Hostgroup(1)
	if len(got) != 2 || got[0] != a1 {
		t.Fatal("server a was not kept")
	}
	if a1.Weight() != 7 || a1.MaxConnections() != 3 || a1.MaxLatencyMs() != 20 || a1.Comment() != "x" || a1.Stats().Queries != 1 {
		t.Fatalf("server a not updated in place: %+v", a1.Stats())
	}
	if b1.Status() != StatusOfflineHard || r.Lookup(b1.Key()) != nil {
		t.Fatalf("removed server b: %v", b1.Status())
	}
	if got[1].Status() != StatusOfflineSoft || got[1].Healthy() {
		t.Fatal("OFFLINE_SOFT server is healthy")
	}
	if r.Lookup(Key{1, "a", 1}) != a1 || len(r.Hostgroup(2)) != 0 {
		t.Fatal("Lookup / removed hostgroup")
	}
}

func TestShunAndLazyRecovery(t *testing.T) {
	o := DefaultOptions()
	o.ShunOnFailures = 3
	o.ShunRecoveryTime = time.Second
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "h", Port: 1, Weight: 1, MaxConnections: 1}})
	s := r.Hostgroup(0)[0]
	now := time.Now()
	denied := errors.Join(ErrAuth, &wire.SQLError{Code: 1045})
	for range 5 {
		s.connectFailed(denied, now, o.shunThreshold())
	}
	if s.Status() != StatusOnline {
		t.Fatal("access denied must not shun")
	}
	// The proxy out of file descriptors says nothing of the server.
	emfile := fmt.Errorf("%w: h:1: %w", ErrConnect, &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)})
	for range 5 {
		s.connectFailed(emfile, now, o.shunThreshold())
	}
	if s.Status() != StatusOnline {
		t.Fatal("the proxy's own EMFILE shunned the server")
	}
	refused := errors.New("connection refused")
	s.connectFailed(refused, now, o.shunThreshold())
	s.connectFailed(refused, now.Add(time.Second), o.shunThreshold()) // a new second restarts the count
	s.connectFailed(refused, now.Add(time.Second), o.shunThreshold())
	if s.Status() != StatusOnline {
		t.Fatal("errors spread over two seconds shunned the server")
	}
	if n := s.connectFailed(refused, now.Add(time.Second), o.shunThreshold()); n != 3 || s.Status() != StatusShunned {
		t.Fatalf("not shunned after 3 errors in one second: %d %v", n, s.Status())
	}
	// A threshold of 0 or 1 (shun_on_failures=0, connect_retries=0) shuns
	// at the second error of a second, as ProxySQL: never at the first,
	// and 0 does not turn shunning off.
	for _, th := range []int{0, 1} {
		r2 := newTestRegistry(t, o)
		r2.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "h", Port: 1, Weight: 1, MaxConnections: 1}})
		s2 := r2.Hostgroup(0)[0]
		s2.connectFailed(refused, now, th)
		if s2.Status() != StatusOnline {
			t.Fatalf("threshold %d: shunned at the first error", th)
		}
		if s2.connectFailed(refused, now, th); s2.Status() != StatusShunned {
			t.Fatalf("threshold %d: not shunned at the second error", th)
		}
	}
	if s.Healthy() {
		t.Fatal("shunned server healthy before its recovery time")
	}
	s.lastErrorNanos.Store(time.Now().Add(-2 * time.Second).UnixNano())
	if !s.Healthy() || s.Status() != StatusOnline {
		t.Fatal("no lazy unshun after the recovery time")
	}
	// A server shunned by the configuration does not come back by itself.
	s.SetStatus(StatusShunned)
	s.lastErrorNanos.Store(0)
	if s.Healthy() {
		t.Fatal("admin SHUNNED recovered")
	}
	// A reload with the same configured status keeps an automatic shun.
	s.SetStatus(StatusOnline)
	s.Shun(time.Now())
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "h", Port: 1, Weight: 2, MaxConnections: 1}})
	if s.Status() != StatusShunned {
		t.Fatal("reload revived an auto-shunned server")
	}
	if st := s.Stats(); st.ConnERR != 14 || st.Errors != 4 {
		t.Fatalf("counters %+v", st)
	}
}

func TestOptionsOverrides(t *testing.T) {
	o := DefaultOptions()
	o.FreeConnectionsPct, o.InitConnect, o.ShunRecoveryTime = 30, "SET @x=1", 3*time.Second
	o.Hostgroups = map[int]HostgroupOptions{4: {FreeConnectionsPct: 50, InitConnect: "SET @y=2"}}
	if o.freePct(4) != 50 || o.freePct(1) != 30 || o.initConnect(4) != "SET @y=2" || o.initConnect(1) != "SET @x=1" {
		t.Fatal("hostgroup overrides")
	}
	if o.shunThreshold() != 5 || o.shunWait() != 3*time.Second {
		t.Fatal("shun settings")
	}
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }

func TestSyncAnyStateNoIO(t *testing.T) {
	// A connection with a schema and a charset serves a session that asks
	// for neither without any round trip (the conn has no socket: I/O would
	// fail).
	c := &BackendConn{cred: Credentials{User: "u"}, known: knownAll, srv: &Server{},
		state: State{Schema: "db", Collation: 45, Autocommit: true, Vars: []Var{{"a", "SET a=1"}}}}
	c.fp = c.state.Fingerprint()
	want := &State{Autocommit: true, Vars: []Var{{"a", "SET a=1"}}}
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Sync(context.Background(), nil, &Credentials{User: "u"}, want); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("no-op Sync allocates %.0f", allocs)
	}
}

// TestUnshunEarly: ProxySQL's desperate pass (#531). An automatically
// shunned server stays out for the recovery time when others can serve
// (Healthy), but a hostgroup with no usable server tries it again after a
// tenth of that (UnshunEarly); a server the configuration shunned never
// comes back by itself.
func TestUnshunEarly(t *testing.T) {
	o := DefaultOptions()
	o.ShunRecoveryTime = 5 * time.Second
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "h", Port: 1, Weight: 1, MaxConnections: 1}})
	s := r.Hostgroup(0)[0]
	s.Shun(time.Now())
	if s.UnshunEarly() || s.Healthy() {
		t.Fatal("a server shunned a moment ago came back")
	}
	s.lastErrorNanos.Store(time.Now().Add(-600 * time.Millisecond).UnixNano()) // past 5 s / 10
	if s.Healthy() {
		t.Fatal("Healthy brought the server back before its recovery time")
	}
	if !s.UnshunEarly() || s.Status() != StatusOnline {
		t.Fatalf("no early unshun after a tenth of the recovery time: %v", s.Status())
	}
	s.SetStatus(StatusShunned)
	s.lastErrorNanos.Store(0)
	if s.UnshunEarly() {
		t.Fatal("a server shunned by the configuration came back")
	}
}

// TestShunRecoveryZero: mysql-shun_recovery_time_sec=0 turns off the
// recovery with time, as in ProxySQL's get_random_MySrvC: only the
// desperate pass (no other server to pick) brings the server back. It was
// taken as 1 s.
func TestShunRecoveryZero(t *testing.T) {
	o := DefaultOptions()
	o.ShunOnFailures = 2
	o.ShunRecoveryTime = 0
	r := newTestRegistry(t, o)
	r.Reconcile([]config.Server{{HostgroupID: 0, Hostname: "h", Port: 1, Weight: 1, MaxConnections: 1}})
	s := r.Hostgroup(0)[0]
	now := time.Now()
	refused := errors.New("connection refused")
	s.connectFailed(refused, now, o.shunThreshold())
	s.connectFailed(refused, now, o.shunThreshold())
	if s.Status() != StatusShunned {
		t.Fatal("not shunned")
	}
	s.lastErrorNanos.Store(now.Add(-time.Minute).UnixNano())
	if s.Healthy() {
		t.Fatal("back ONLINE with time, recovery time 0")
	}
	if !s.UnshunEarly() || s.Status() != StatusOnline {
		t.Fatal("the desperate pass did not bring it back")
	}
}

func TestMariaDBVersion(t *testing.T) {
	for v, want := range map[string]int64{
		"10.11.6-MariaDB-0+deb12u1": 101106,
		"5.5.5-10.11.19-MariaDB":    101119,
		"11.4.2-MariaDB-log":        110402,
		"8.0.36":                    -1,
		"5.7.44-log":                -1,
	} {
		if got := MariaDBVersion(v); got != want {
			t.Errorf("MariaDBVersion(%q) = %d, want %d", v, got, want)
		}
	}
}
