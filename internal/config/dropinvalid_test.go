package config

import (
	"strings"
	"testing"
)

// TestDropInvalid: the start-up load leaves out the rows Validate refuses
// and keeps the rest; a duplicate is the later row's fault; a module whose
// other parts are refused is left whole (Validate's error stands).
func TestDropInvalid(t *testing.T) {
	srv := func(hg int, host string, port int) Server {
		return Server{HostgroupID: hg, Hostname: host, Port: port, Status: "ONLINE", Weight: 1}
	}
	s := &Snapshot{Servers: []Server{srv(0, "db1", 3306), srv(0, "", 3306), srv(1, "db2", 3306), srv(2, "db3", 70000)}}
	why := s.DropInvalid(ModMySQLServers)
	if len(s.Servers) != 2 || s.Servers[0].Hostname != "db1" || s.Servers[1].Hostname != "db2" || len(why) != 2 ||
		!strings.Contains(why[0], "hostname is empty") || !strings.Contains(why[1], "port out of range") {
		t.Errorf("servers kept %+v, why %q", s.Servers, why)
	}
	if err := s.Validate(ModMySQLServers); err != nil {
		t.Errorf("what is kept does not validate: %v", err)
	}

	u := &Snapshot{Users: []User{
		{Username: "a", Frontend: true, Backend: true},
		{Username: "b", Frontend: true, Attributes: `{"default-transaction_isolation":"READ-UNCOMMITED"}`},
		{Username: "a", Frontend: true}, // a second frontend row for a: the later one goes
		{Username: "c", Frontend: true, Backend: true},
	}}
	why = u.DropInvalid(ModMySQLUsers)
	if len(u.Users) != 2 || u.Users[0].Username != "a" || !u.Users[0].Backend || u.Users[1].Username != "c" || len(why) != 2 ||
		!strings.Contains(why[0], "(username='b')") || !strings.Contains(why[1], "duplicate frontend user") {
		t.Errorf("users kept %+v, why %q", u.Users, why)
	}

	// Nothing to drop: nothing said.
	if why := u.DropInvalid(ModMySQLUsers); why != nil {
		t.Errorf("a valid module: %q", why)
	}
	// The hostgroup attributes are refused: no row is to blame, all stay.
	h := &Snapshot{Servers: []Server{srv(0, "db1", 3306)}, HostgroupAttributes: []HostgroupAttributes{{HostgroupID: 0, HostgroupSettings: "[1]"}}}
	if why := h.DropInvalid(ModMySQLServers); why != nil || len(h.Servers) != 1 || h.Validate(ModMySQLServers) == nil {
		t.Errorf("refused attributes: why %q, servers %d", why, len(h.Servers))
	}
	// A variable Validate refuses is dropped (its default applies).
	v := &Snapshot{MySQLVars: map[string]string{"mysql-monitor_replication_lag_use_percona_heartbeat": "a.b.c", "mysql-threads": "4"}}
	if why := v.DropInvalid(ModMySQLVariables); len(why) != 1 || len(v.MySQLVars) != 1 || v.MySQLVars["mysql-threads"] != "4" {
		t.Errorf("variables kept %v, why %q", v.MySQLVars, why)
	}
}
