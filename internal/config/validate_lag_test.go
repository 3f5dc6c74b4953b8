package config

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateReplicationLagSettings: the pt-heartbeat table is a table
// name and nothing else (it is written into the monitor's query), and a
// hostgroup's monitor_slave_lag_when_null must be an integer.
func TestValidateReplicationLagSettings(t *testing.T) {
	vars := func(v string) *Snapshot {
		return &Snapshot{MySQLVars: map[string]string{"mysql-monitor_replication_lag_use_percona_heartbeat": v}}
	}
	if err := vars("").Validate(ModMySQLVariables); err != nil {
		t.Errorf("empty heartbeat table refused: %v", err)
	}
	for _, ok := range []string{"percona.heartbeat", "heartbeat", "`percona`.`heart_beat`", "db$1.hb_2"} {
		if err := vars(ok).Validate(ModMySQLVariables); err != nil {
			t.Errorf("heartbeat table %q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"percona.heartbeat; DROP TABLE x", "a.b.c", " percona.heartbeat", "p.h WHERE 1", "(SELECT 1)", "a-b"} {
		err := vars(bad).Validate(ModMySQLVariables)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a table name") {
			t.Errorf("heartbeat table %q: %v", bad, err)
		}
	}

	hs := func(v string) *Snapshot {
		return &Snapshot{HostgroupAttributes: []HostgroupAttributes{{HostgroupID: 3, HostgroupSettings: v}}}
	}
	for _, ok := range []string{"", `{}`, `{"monitor_slave_lag_when_null": 5}`, `{"monitor_slave_lag_when_null": -1, "handle_warnings": 1}`} {
		if err := hs(ok).Validate(ModMySQLServers); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{`[1]`, `{"monitor_slave_lag_when_null": "5"}`, `{"monitor_slave_lag_when_null": 1.5}`, `{"monitor_slave_lag_when_null": 604801}`} {
		if err := hs(bad).Validate(ModMySQLServers); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// TestValidateHostnameBound: a hostname longer than any DNS name or socket
// path is refused at LOAD, and the error quotes only its start (a 20 000
// byte hostname went into every log line about the server, three times).
func TestValidateHostnameBound(t *testing.T) {
	srv := func(h string) *Snapshot {
		return &Snapshot{Servers: []Server{{HostgroupID: 0, Hostname: h, Port: 3306, Status: "ONLINE", Weight: 1}}}
	}
	for _, ok := range []string{"db1.example.com", strings.Repeat("a", 255), "/var/lib/mysql/mysql.sock"} {
		if err := srv(ok).Validate(ModMySQLServers); err != nil {
			t.Errorf("hostname of %d bytes refused: %v", len(ok), err)
		}
	}
	err := srv(strings.Repeat("h", 20000)).Validate(ModMySQLServers)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "longer than 255") || len(err.Error()) > 300 {
		t.Errorf("a 20 000 byte hostname: %.400v", err)
	}
}
