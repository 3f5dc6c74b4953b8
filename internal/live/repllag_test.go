package live

import (
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestMonitorReplLagOptions: the lag variables at ProxySQL's defaults and
// as set, and the per-hostgroup monitor_slave_lag_when_null.
func TestMonitorReplLagOptions(t *testing.T) {
	o := monitorOptions(&config.Snapshot{})
	if o.ReplLagInterval != 10*time.Second || o.ReplLagTimeout != time.Second || o.ReplLagCount != 1 ||
		o.SlaveLagWhenNull != 60 || o.SlaveLagWhenNullHG != nil {
		t.Errorf("defaults: %+v", o)
	}
	o = monitorOptions(&config.Snapshot{
		MySQLVars: map[string]string{
			"mysql-monitor_replication_lag_interval": "250", "mysql-monitor_replication_lag_timeout": "400",
			"mysql-monitor_replication_lag_count": "3", "mysql-monitor_slave_lag_when_null": "0",
		},
		HostgroupAttributes: []config.HostgroupAttributes{
			{HostgroupID: 1, HostgroupSettings: `{"monitor_slave_lag_when_null": 7}`},
			{HostgroupID: 2, HostgroupSettings: `{"monitor_slave_lag_when_null": -1}`},
			{HostgroupID: 3, HostgroupSettings: `{"handle_warnings": 1}`},
		},
	})
	if o.ReplLagInterval != 250*time.Millisecond || o.ReplLagTimeout != 400*time.Millisecond || o.ReplLagCount != 3 ||
		o.SlaveLagWhenNull != 0 || len(o.SlaveLagWhenNullHG) != 1 || o.SlaveLagWhenNullHG[1] != 7 {
		t.Errorf("set: %+v", o)
	}
}
