package cluster

import (
	"os"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestSelfName: this node finds itself in proxysql_servers by an address
// or by a host name (its own, or one that resolves to a local address, as
// tutorials write proxysql-1), so the equal-epoch rule knows its name.
func TestSelfName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skip("no host name")
	}
	snap := func(ifaces string, rows ...config.ProxySQLServer) *config.Snapshot {
		return &config.Snapshot{AdminVars: map[string]string{"admin-mysql_ifaces": ifaces}, ProxySQLServers: rows}
	}
	for _, c := range []struct {
		snap *config.Snapshot
		want string // host of the row found, "" for none
	}{
		{snap("127.0.0.1:6032", config.ProxySQLServer{Hostname: "127.0.0.1", Port: 6032}), "127.0.0.1"},
		{snap("127.0.0.1:6032", config.ProxySQLServer{Hostname: "localhost", Port: 6032}), "localhost"},
		{snap("0.0.0.0:6032", config.ProxySQLServer{Hostname: "node-b.invalid", Port: 6032},
			config.ProxySQLServer{Hostname: host, Port: 6032}), host},
		{snap("127.0.0.1:6032", config.ProxySQLServer{Hostname: host, Port: 6033}), ""},
		{snap("127.0.0.1:6032", config.ProxySQLServer{Hostname: "node-b.invalid", Port: 6032}), ""},
	} {
		got := selfName(c.snap)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%v: found %s:%d, want none", c.snap.ProxySQLServers, got.host, got.port)
		case c.want != "" && (got == nil || got.host != c.want):
			t.Errorf("%v: found %v, want %s", c.snap.ProxySQLServers, got, c.want)
		}
	}
}
