package config

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateReplicationLagSettings: the pt-heartbeat lag check, which
// Sluice does not implement, is refused rather than ignored, and a
// hostgroup's monitor_slave_lag_when_null must be an integer.
func TestValidateReplicationLagSettings(t *testing.T) {
	vars := func(v string) *Snapshot {
		return &Snapshot{MySQLVars: map[string]string{"mysql-monitor_replication_lag_use_percona_heartbeat": v}}
	}
	if err := vars("").Validate(ModMySQLVariables); err != nil {
		t.Errorf("empty heartbeat table refused: %v", err)
	}
	err := vars("percona.heartbeat").Validate(ModMySQLVariables)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not implemented") {
		t.Errorf("heartbeat table accepted or wrong error: %v", err)
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
