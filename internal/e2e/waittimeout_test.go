package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// slowReader gives n lines "i,slow", one every gap.
type slowReader struct {
	n, i int
	gap  time.Duration
	buf  []byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.i == r.n {
			return 0, io.EOF
		}
		time.Sleep(r.gap)
		r.i++
		r.buf = []byte(fmt.Sprintf("%d,slow\n", r.i))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// TestClientLimitsFollowLoad: mysql-max_allowed_packet and
// mysql-wait_timeout act on clients as the runtime has them now.
//   - A query larger than max_allowed_packet gets 1153 and the session
//     goes on; the bound was fixed at 64 MiB whatever the variable said.
//   - A LOAD that lowers wait_timeout closes the clients idle longer than
//     the new value; one that raises it keeps those the old value would
//     have closed. A session used to keep the deadline of its last command.
//   - A LOAD DATA LOCAL upload that lasts longer than wait_timeout is not
//     idle time: it completes.
func TestClientLimitsFollowLoad(t *testing.T) {
	bs := testenv.Backends(t, 1)
	s := startFresh(t, "")
	routeTo(t, s, 0, bs[0].Port)
	table := fmt.Sprintf("sbtest.wt_%d", time.Now().UnixNano())
	backendSQL(t, bs[0], fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(20))", table))
	defer backendSQL(t, bs[0], "DROP TABLE IF EXISTS "+table)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := testenv.DB(t, s.DataPort, "sbtest", "sbtest", "sbtest", "")
	admin(t, s, "SET mysql-max_allowed_packet=1048576; LOAD MYSQL VARIABLES TO RUNTIME")
	c := connOf(t, db)
	big := "SELECT LENGTH('" + strings.Repeat("x", 2<<20) + "')"
	var me *mysql.MySQLError
	if _, err := c.ExecContext(ctx, big); !errors.As(err, &me) || me.Number != 1153 {
		t.Fatalf("a 2 MiB query under a 1 MiB mysql-max_allowed_packet: %v, want 1153", err)
	}
	var n int
	if err := c.QueryRowContext(ctx, "SELECT LENGTH('"+strings.Repeat("x", 512<<10)+"')").Scan(&n); err != nil || n != 512<<10 {
		t.Fatalf("the session after the refusal: %d %v", n, err)
	}
	admin(t, s, "SET mysql-max_allowed_packet=67108864; LOAD MYSQL VARIABLES TO RUNTIME")
	if err := c.QueryRowContext(ctx, big).Scan(&n); err != nil || n != 2<<20 {
		t.Fatalf("the 2 MiB query with the default bound: %d %v", n, err)
	}
	c.Close()

	// Lowered: idle sessions older than the new value are closed.
	idle := connOf(t, db)
	if err := idle.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	admin(t, s, "SET mysql-wait_timeout=1000; LOAD MYSQL VARIABLES TO RUNTIME")
	deadline := time.Now().Add(5 * time.Second)
	for adminInt(t, s, "SELECT COUNT(*) FROM stats_mysql_processlist") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a client idle 1.5 s is still there 5 s after wait_timeout was lowered to 1 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Raised: a session armed under 1 s survives 2 s once it is 8 h.
	keep := connOf(t, db)
	if err := keep.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	admin(t, s, "SET mysql-wait_timeout=28800000; LOAD MYSQL VARIABLES TO RUNTIME")
	time.Sleep(2 * time.Second)
	if err := keep.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("a client idle 2 s after wait_timeout was raised to 8 h: %v", err)
	}

	// An upload longer than wait_timeout completes.
	admin(t, s, `SET mysql-wait_timeout=1000; SET mysql-enable_load_data_local_infile='true'; LOAD MYSQL VARIABLES TO RUNTIME`)
	mysql.RegisterReaderHandler("wtslow", func() io.Reader { return &slowReader{n: 5, gap: 400 * time.Millisecond} })
	defer mysql.DeregisterReaderHandler("wtslow")
	up := connOf(t, db)
	if _, err := up.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::wtslow' INTO TABLE %s FIELDS TERMINATED BY ','", table)); err != nil {
		t.Fatalf("a 2 s upload under a 1 s wait_timeout: %v", err)
	}
	if got := strings.TrimSpace(backendSQL(t, bs[0], "SELECT COUNT(*) FROM "+table)); got != "5" {
		t.Fatalf("rows loaded: %s, want 5", got)
	}
}
