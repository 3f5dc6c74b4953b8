package monitor

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
)

// TestLagDecide walks the state machine of one server.
func TestLagDecide(t *testing.T) {
	on, lagged, shunned := backend.StatusOnline, backend.StatusShunnedReplicationLag, backend.StatusShunned
	for _, c := range []struct {
		name                      string
		st                        backend.Status
		lag, maxLag, count, thres int
		wantCount                 int
		want                      lagAction
	}{
		{"within the limit", on, 2, 2, 0, 1, 0, lagKeep},
		{"over the limit, count 1", on, 3, 2, 0, 1, 1, lagShun},
		{"over, first of three", on, 3, 2, 0, 3, 1, lagKeep},
		{"over, second of three", on, 9, 2, 1, 3, 2, lagKeep},
		{"over, third of three", on, 9, 2, 2, 3, 3, lagShun},
		{"back within resets the count", on, 1, 2, 2, 3, 0, lagKeep},
		{"not a replica resets the count", on, lagNotReplica, 2, 2, 3, 0, lagKeep},
		{"max 0 never shuns", on, 1000, 0, 0, 1, 0, lagKeep},
		{"lagged, still over", lagged, 3, 2, 1, 1, 1, lagKeep},
		{"lagged, back at the limit", lagged, 2, 2, 1, 1, 0, lagRecover},
		{"lagged, not a replica any more", lagged, lagNotReplica, 2, 1, 1, 0, lagRecover},
		{"ping-shunned: untouched", shunned, 100, 2, 0, 1, 0, lagKeep},
		{"ping-shunned: no recovery", shunned, 0, 2, 0, 1, 0, lagKeep},
	} {
		count, act := lagDecide(c.st, c.lag, c.maxLag, c.count, c.thres)
		if count != c.wantCount || act != c.want {
			t.Errorf("%s: got count %d action %d, want %d %d", c.name, count, act, c.wantCount, c.want)
		}
	}
}

func slaveResult(cols []string, row ...sql.NullString) *backend.Result {
	r := &backend.Result{Columns: cols}
	if row != nil {
		r.Rows = [][]sql.NullString{row}
	}
	return r
}

func TestParseSlaveStatus(t *testing.T) {
	cols := []string{"Slave_IO_State", "Seconds_Behind_Master", "Last_Error"}
	v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	null := sql.NullString{}
	o := DefaultOptions()
	o.SlaveLagWhenNullHG = map[int]int{7: 5}
	for _, c := range []struct {
		name     string
		res      *backend.Result
		want     slaveStatus
		lag, lg7 int
		err      bool
	}{
		{"not a replica", slaveResult(cols), slaveStatus{}, lagNotReplica, lagNotReplica, false},
		{"no such column", slaveResult([]string{"x"}, v("1")), slaveStatus{}, lagNotReplica, lagNotReplica, false},
		{"lag", slaveResult(cols, v(""), v("12"), v("")), slaveStatus{replica: true, lag: 12}, 12, 12, false},
		{"NULL", slaveResult(cols, v(""), null, v("")), slaveStatus{replica: true, null: true}, 60, 5, false},
		{"garbage", slaveResult(cols, v(""), v("x"), v("")), slaveStatus{}, 0, 0, true},
	} {
		got, err := parseSlaveStatus(c.res)
		if (err != nil) != c.err {
			t.Errorf("%s: error %v", c.name, err)
			continue
		}
		if err != nil {
			continue
		}
		if got != c.want || got.lagOf(&o, 1) != c.lag || got.lagOf(&o, 7) != c.lg7 {
			t.Errorf("%s: got %+v (lag %d, hostgroup 7: %d), want %+v (%d, %d)",
				c.name, got, got.lagOf(&o, 1), got.lagOf(&o, 7), c.want, c.lag, c.lg7)
		}
	}
}

// TestReplLagAction applies check results to the servers of one address
// in two hostgroups with different limits: the counts are per server,
// NULL counts as monitor_slave_lag_when_null (per hostgroup when set), a
// server that is not a replica comes back, a status set meanwhile by
// someone else is not overwritten.
func TestReplLagAction(t *testing.T) {
	reg := backend.NewRegistry(backend.FixedOptions(backend.DefaultOptions()), zerologNop())
	defer reg.Close()
	reg.Reconcile([]config.Server{
		{HostgroupID: 1, Hostname: "127.0.0.1", Port: 1, Weight: 1, MaxConnections: 10, MaxReplicationLag: 2},
		{HostgroupID: 2, Hostname: "127.0.0.1", Port: 1, Weight: 1, MaxConnections: 10, MaxReplicationLag: 10},
		{HostgroupID: 3, Hostname: "127.0.0.1", Port: 1, Weight: 1, MaxConnections: 10},
	})
	s1, s2, s3 := reg.Hostgroup(1)[0], reg.Hostgroup(2)[0], reg.Hostgroup(3)[0]
	m := &Monitor{reg: reg, log: zerologNop()}
	tg := &monTarget{host: "127.0.0.1", port: 1, addr: s1.Addr()}
	o := DefaultOptions()
	o.ReplLagCount = 2
	o.SlaveLagWhenNull = 60
	o.SlaveLagWhenNullHG = map[int]int{2: 5}
	status := func() string {
		return s1.Status().String() + " " + s2.Status().String() + " " + s3.Status().String()
	}
	step := func(st slaveStatus, want string) {
		t.Helper()
		m.replLagAction(tg, &o, st)
		if got := status(); got != want {
			t.Fatalf("after %+v: %s, want %s", st, got, want)
		}
	}
	step(slaveStatus{replica: true, lag: 5}, "ONLINE ONLINE ONLINE")                      // s1: 1 of 2
	step(slaveStatus{replica: true, lag: 5}, "SHUNNED_REPLICATION_LAG ONLINE ONLINE")     // s1: 2 of 2
	step(slaveStatus{replica: true, null: true}, "SHUNNED_REPLICATION_LAG ONLINE ONLINE") // s2: 5 <= 10
	step(slaveStatus{replica: true, lag: 11}, "SHUNNED_REPLICATION_LAG ONLINE ONLINE")    // s2: 1 of 2
	step(slaveStatus{replica: true, lag: 11}, "SHUNNED_REPLICATION_LAG SHUNNED_REPLICATION_LAG ONLINE")
	if s1.Healthy() || s2.Healthy() || !s3.Healthy() {
		t.Fatal("a server shunned for lag is routable, or the unchecked one is not")
	}
	if s1.ReplicationLag() != 11 {
		t.Errorf("recorded lag = %d, want 11", s1.ReplicationLag())
	}
	step(slaveStatus{replica: true, lag: 2}, "ONLINE ONLINE ONLINE")
	step(slaveStatus{replica: true, null: true}, "ONLINE ONLINE ONLINE")                     // s1: 60 > 2, 1 of 2
	step(slaveStatus{replica: true, null: true}, "SHUNNED_REPLICATION_LAG ONLINE ONLINE")    // s1: 2 of 2; s2 takes 5
	step(slaveStatus{}, "ONLINE ONLINE ONLINE")                                              // not a replica any more
	step(slaveStatus{replica: true, lag: 50}, "ONLINE ONLINE ONLINE")                        // counts start again
	s1.SetStatus(backend.StatusOfflineSoft)                                                  // an administrator's choice
	step(slaveStatus{replica: true, lag: 50}, "OFFLINE_SOFT SHUNNED_REPLICATION_LAG ONLINE") // s1 left alone
}

// TestMonitorReplLagNotReplica runs the check against a real MariaDB that
// is not a replica: the log has rows with repl_lag NULL and no error, the
// server stays ONLINE, and one shunned for lag comes back. Setting
// max_replication_lag back to 0 also brings a lag-shunned server back.
func TestMonitorReplLagNotReplica(t *testing.T) {
	b := mariadb(t)
	reg := backend.NewRegistry(backend.FixedOptions(backend.DefaultOptions()), zerologNop())
	defer reg.Close()
	srv := config.Server{HostgroupID: 20, Hostname: b.Host, Port: b.Port, Weight: 1, MaxConnections: 10, MaxReplicationLag: 1}
	reg.Reconcile([]config.Server{srv})
	s := reg.Hostgroup(20)[0]
	s.SetStatus(backend.StatusShunnedReplicationLag)
	o := fastMonitor()
	o.ReplLagInterval = 100 * time.Millisecond
	mon, setOpts := startMonitor(reg, o)
	defer mon.Close()
	waitFor(t, 5*time.Second, "lag log rows and the server back ONLINE", func() bool {
		ok, _ := countErrors(mon.ReplicationLagLog(), b.Port)
		return ok >= 2 && s.Status() == backend.StatusOnline
	})
	for _, e := range mon.ReplicationLagLog() {
		if e.Port == b.Port && (e.ReplLag != -1 || e.Error != "" || e.Success <= 0) {
			t.Errorf("lag log row of a server that is not a replica: %+v", e)
		}
	}

	// Wrong monitor password: failed checks are logged and change nothing.
	s.SetStatus(backend.StatusShunnedReplicationLag)
	bad := o
	bad.Password = "wrong"
	since := time.Now()
	setOpts(bad)
	waitFor(t, 5*time.Second, "failed lag checks in the log", func() bool {
		for _, e := range mon.ReplicationLagLog() {
			if e.Port == b.Port && e.Start.After(since) && strings.HasPrefix(e.Error, "Access denied for user") {
				return true
			}
		}
		return false
	})
	if st := s.Status(); st != backend.StatusShunnedReplicationLag {
		t.Errorf("a failed check changed the status to %s", st)
	}

	// max_replication_lag back to 0: the check stops and the server is
	// brought back.
	srv.MaxReplicationLag = 0
	reg.Reconcile([]config.Server{srv})
	waitFor(t, 5*time.Second, "ONLINE once the lag check is off", func() bool { return s.Status() == backend.StatusOnline })
}
