package e2e

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestKillDuringSave kills sluice with SIGKILL, at random moments, while a
// client keeps rewriting the MYSQL SERVERS module and saving it to disk.
// After every restart DISK must hold exactly one whole version: every row
// of every table of the module from the same generation.
func TestKillDuringSave(t *testing.T) {
	const rounds, rowsPerGen = 8, 20
	s := startFresh(t, "")
	var lastSaved int64 // the newest generation whose SAVE returned OK
	for round := 0; round < rounds; round++ {
		db := testenv.DB(t, s.AdminPort, "admin", "admin", "", "")
		db.SetMaxOpenConns(1)
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for gen := int64(round*100000 + 1); !stop.Load(); gen++ {
				if err := writeGeneration(db, gen, rowsPerGen); err != nil {
					return // sluice was killed under us
				}
				atomic.StoreInt64(&lastSaved, gen)
			}
		}()
		time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
		s.Kill()
		stop.Store(true)
		<-done
		db.Close()

		s.Restart()
		out := admin(t, s, `SELECT 'servers', comment, COUNT(*) FROM disk.mysql_servers GROUP BY comment
			UNION ALL SELECT 'replication', comment, COUNT(*) FROM disk.mysql_replication_hostgroups GROUP BY comment`)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if out == "" || len(lines) != 2 {
			t.Fatalf("round %d: DISK holds a mix of versions (or none):\n%s", round, out)
		}
		var gens [2]string
		for i, l := range lines {
			f := strings.Split(l, "\t")
			gens[i] = f[1]
			want := fmt.Sprint(rowsPerGen)
			if f[0] == "replication" {
				want = "1"
			}
			if f[2] != want {
				t.Fatalf("round %d: %s has %s rows of %s, want %s:\n%s", round, f[0], f[2], f[1], want, out)
			}
		}
		if gens[0] != gens[1] {
			t.Fatalf("round %d: tables of one module saved from different generations: %v", round, gens)
		}
		var g int64
		fmt.Sscanf(gens[0], "gen %d", &g)
		if saved := atomic.LoadInt64(&lastSaved); g < saved {
			t.Fatalf("round %d: DISK has generation %d but generation %d was acknowledged as saved", round, g, saved)
		}
		t.Logf("round %d: DISK holds generation %d whole", round, g)
	}
}

func writeGeneration(db *sql.DB, gen int64, rows int) error {
	c := fmt.Sprintf("gen %d", gen)
	if _, err := db.Exec("DELETE FROM mysql_servers"); err != nil {
		return err
	}
	if _, err := db.Exec("DELETE FROM mysql_replication_hostgroups"); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, '127.0.0.1', %d, '%s')", i%3, 20000+i, c)
	}
	if _, err := db.Exec(b.String()); err != nil {
		return err
	}
	if _, err := db.Exec(fmt.Sprintf("INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup, comment) VALUES (0, 1, '%s')", c)); err != nil {
		return err
	}
	_, err := db.Exec("SAVE MYSQL SERVERS TO DISK")
	return err
}
