package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestProxySQLInternalSession: PROXYSQL INTERNAL SESSION on the data port
// answers one row, session_info, a JSON document with ProxySQL's keys:
// the session id CONNECTION_ID() returns, no backend between statements of
// a multiplexed session, and inside a transaction the connection it keeps
// (its server thread id is the one the server reports) with the
// transaction counted. Another PROXYSQL INTERNAL command gets ProxySQL's
// 1064.
func TestProxySQLInternalSession(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	ctx := context.Background()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "compress=true")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type doc struct {
		ThreadSessionID    uint64 `json:"thread_session_id"`
		Autocommit         bool   `json:"autocommit"`
		ActiveTransactions int    `json:"active_transactions"`
		Client             struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userinfo"`
		} `json:"client"`
		Conn struct {
			Status struct {
				Compression bool `json:"compression"`
				Transaction bool `json:"transaction"`
			} `json:"status"`
		} `json:"conn"`
		Backends []*struct {
			HostgroupID int `json:"hostgroup_id"`
			Conn        struct {
				MultiplexDisabled bool `json:"MultiplexDisabled"`
				MySQL             struct {
					Port     int    `json:"port"`
					ThreadID uint64 `json:"thread_id"`
				} `json:"mysql"`
			} `json:"conn"`
		} `json:"backends"`
	}
	read := func() doc {
		t.Helper()
		var raw string
		if err := conn.QueryRowContext(ctx, "PROXYSQL INTERNAL SESSION").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d doc
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("session_info is not JSON: %v\n%s", err, raw)
		}
		return d
	}
	var id uint64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	d := read()
	if d.ThreadSessionID != id || d.Client.UserInfo.Username != "sbtest" || !d.Autocommit || !d.Conn.Status.Compression ||
		d.ActiveTransactions != 0 || len(d.Backends) != 0 {
		t.Fatalf("idle multiplexed session: %+v", d)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var thread uint64
	// The server evaluates this one (only the bare statement is the proxy's).
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID() + 0").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	d = read()
	if d.ActiveTransactions != 1 || !d.Conn.Status.Transaction || len(d.Backends) != 1 || d.Backends[0] == nil {
		t.Fatalf("in a transaction: %+v", d)
	}
	if be := d.Backends[0]; be.HostgroupID != 0 || be.Conn.MySQL.ThreadID != thread || be.Conn.MySQL.Port != b.Port || !be.Conn.MultiplexDisabled {
		t.Fatalf("backend in a transaction: %+v (server thread %d)", *be, thread)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if d = read(); d.ActiveTransactions != 0 || len(d.Backends) != 0 {
		t.Fatalf("after COMMIT: %+v", d)
	}
	_, err = conn.ExecContext(ctx, "PROXYSQL INTERNAL NOTHING")
	if err == nil || err.Error() != "Error 1064 (42000): Unknown PROXYSQL INTERNAL command" {
		t.Fatalf("unknown internal command: %v", err)
	}
}
