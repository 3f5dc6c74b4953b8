package e2e

import (
	"context"
	"database/sql"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestGracefulStop: on SIGTERM Sluice stops accepting, ends idle sessions
// at once, lets a session finish its open transaction (its COMMIT reaches
// the server), then exits — long before mysql-graceful_close_conn_timeout
// when every transaction ends. A transaction still open at the timeout is
// closed (rolled back by the server). A SIGHUP during the close only
// reopens the log.
func TestGracefulStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit bool
	}{{"commit", true}, {"timeout", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := multiplexSetup(t, 10, "SET mysql-graceful_close_conn_timeout=3; LOAD MYSQL VARIABLES TO RUNTIME;")
			backendSQL(t, b, "CREATE TABLE IF NOT EXISTS sbtest.graceful (a INT); DELETE FROM sbtest.graceful")
			ctx := context.Background()
			idle, trx := dbConn(t, s), dbConn(t, s)
			if _, err := idle.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"BEGIN", "INSERT INTO sbtest.graceful VALUES (1)"} {
				if _, err := trx.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := idle.PingContext(ctx); err == nil {
				t.Error("an idle session survived SIGTERM")
			}
			// A SIGHUP during the close (logrotate, systemctl reload)
			// reopens the log; it used to end the process, cutting the
			// open transaction.
			if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if exited, _ := s.Exited(0); exited {
				t.Fatalf("Sluice exited with a transaction open (SIGHUP during the close)\n%s", s.Output())
			}
			if tc.commit {
				if _, err := trx.ExecContext(ctx, "INSERT INTO sbtest.graceful VALUES (2)"); err != nil {
					t.Fatalf("statement in the open transaction during the graceful close: %v", err)
				}
				if _, err := trx.ExecContext(ctx, "COMMIT"); err != nil {
					t.Fatalf("COMMIT during the graceful close: %v", err)
				}
			}
			if exited, _ := s.Exited(10 * time.Second); !exited {
				t.Fatal("Sluice did not exit")
			}
			took := time.Since(start)
			rows := strings.TrimSpace(backendSQL(t, b, "SELECT COUNT(*) FROM sbtest.graceful"))
			switch {
			case tc.commit && (rows != "2" || took > 2*time.Second):
				t.Fatalf("after COMMIT: %s rows, exited after %v; want 2 rows and an exit right after the COMMIT", rows, took)
			case !tc.commit && (rows != "0" || took < 2500*time.Millisecond):
				t.Fatalf("no COMMIT: %s rows, exited after %v; want 0 rows and an exit at the 3 s timeout", rows, took)
			}
			t.Logf("exited %v after SIGTERM, %s rows committed", took.Round(10*time.Millisecond), rows)
		})
	}
}

// dbConn is one client connection of user sbtest through the data port.
func dbConn(t *testing.T, s *testenv.Sluice) *sql.Conn {
	t.Helper()
	c, err := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestShutdownCommands: PROXYSQL SHUTDOWN and KILL stop at once, as
// ProxySQL's exit() since 2.1 — a session with an open transaction does
// not hold them for mysql-graceful_close_conn_timeout (they used to take
// the graceful path, 15 s here); PROXYSQL SHUTDOWN SLOW is the graceful
// one. The server rolls the transaction back.
func TestShutdownCommands(t *testing.T) {
	bs := testenv.Backends(t, 1)
	for _, cmd := range []string{"PROXYSQL SHUTDOWN", "PROXYSQL KILL"} {
		s := startFresh(t, "")
		routeTo(t, s, 0, bs[0].Port)
		admin(t, s, "SET mysql-graceful_close_conn_timeout=15000; LOAD MYSQL VARIABLES TO RUNTIME;")
		db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
		c, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(context.Background(), "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		// Another session waits on a long query: the stop does not wait
		// for its server to answer (it did, however long the query).
		long := connOf(t, db)
		go long.ExecContext(context.Background(), "DO SLEEP(30)")
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		admin(t, s, cmd)
		if exited, _ := s.Exited(5 * time.Second); !exited {
			t.Fatalf("%s: still running 5 s later with a transaction open and a query running\n%s", cmd, s.Output())
		}
		c.Close()
		t.Logf("%s: exited %v after the command, a transaction open and a query running", cmd, time.Since(start).Round(time.Millisecond))
	}
}

// TestSIGTERMCutsRunningQuery: after mysql-graceful_close_conn_timeout a
// SIGTERM ends the sessions still in a command at once: the process used
// to live until the slowest query's server answered (systemd's
// TimeoutStopSec then killed it).
func TestSIGTERMCutsRunningQuery(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "SET mysql-graceful_close_conn_timeout=1; LOAD MYSQL VARIABLES TO RUNTIME;")
	long := dbConn(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := long.ExecContext(context.Background(), "DO SLEEP(30)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, _ := s.Exited(6 * time.Second); !exited {
		t.Fatalf("still running 6 s after SIGTERM with a 1 s graceful timeout, a 30 s query running\n%s", s.Output())
	}
	if err := <-done; err == nil {
		t.Fatal("the cut query's client got no error")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(10*time.Millisecond))
}
