package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestServerRefusesLargePacket: a server answers a packet over its
// max_allowed_packet with ERR 1153 and closes the connection. The proxy's
// write of the rest then failed, and the client got 1927 "lost connection
// … may not have run" while the server's idle pool was closed and the
// server counted as failing. The client now gets the server's 1153, the
// session goes on, and the pool stays.
func TestServerRefusesLargePacket(t *testing.T) {
	t.Parallel() // own server: see doc.go
	own := testenv.OwnBackends(t, 1)
	testenv.MustCLI(t, own.Backends[0].Port, "root", "test", "SET GLOBAL max_allowed_packet = 1048576")
	s := startIn(t, t.TempDir(), "", false)
	routeTo(t, s, 0, own.Backends[0].Port)
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "maxAllowedPacket=67108864")
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	big := "SELECT LENGTH('" + strings.Repeat("x", 4<<20) + "')"
	for i := range 3 {
		var n int
		err := db.QueryRowContext(ctx, big).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "1153") {
			t.Fatalf("statement %d over the server's max_allowed_packet: %v, want the server's 1153", i, err)
		}
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("after the refused statement: %v", err)
		}
	}
	var errs string
	if err := testenv.DB(t, s.AdminPort, "admin", "admin", "", "").QueryRowContext(ctx,
		"SELECT COALESCE(SUM(count_star), 0) FROM stats_mysql_errors WHERE errno = 2013").Scan(&errs); err != nil {
		t.Fatal(err)
	}
	if errs != "0" {
		t.Errorf("%s lost connections counted against the server", errs)
	}
}
