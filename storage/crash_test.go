package storage

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

const crashChildEnv = "SLUICE_STORAGE_CRASH_CHILD"

// crashRows is how many servers generation g saves: the count changes with
// the generation, so a save cut in half shows as a wrong count too.
func crashRows(g int) int { return 200 + g%157 }

// TestCrashConsistency kills a process in the middle of SAVE MYSQL SERVERS
// TO DISK, over and over, and checks after each kill that DISK holds exactly
// one generation of the module, complete, and no older than the last save the
// child reported as done.
func TestCrashConsistency(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	deadline := time.Now().Add(12 * time.Second)
	lastSaved := -1
	kills := 0
	for kills < 15 && time.Now().Before(deadline) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashConsistency$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var saved atomic.Int64
		saved.Store(-1)
		first := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				g, ok := strings.CutPrefix(sc.Text(), "saved ")
				if !ok {
					continue
				}
				n, _ := strconv.Atoi(g)
				if saved.Swap(int64(n)) == -1 {
					close(first)
				}
			}
		}()
		select {
		case <-first:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child never saved")
		}
		time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		kills++
		reported := int(saved.Load())

		gen := checkDiskGeneration(t, dir)
		if gen < reported {
			t.Fatalf("kill %d: DISK has generation %d, but the child had reported %d saved", kills, gen, reported)
		}
		if gen < lastSaved {
			t.Fatalf("kill %d: DISK went back from generation %d to %d", kills, lastSaved, gen)
		}
		lastSaved = gen
	}
	if kills == 0 {
		t.Fatal("no kill happened")
	}
	t.Logf("%d kills, last generation on DISK %d", kills, lastSaved)
}

// checkDiskGeneration opens the datadir and returns the one generation DISK
// holds, failing the test if the servers module is a mix or incomplete.
func checkDiskGeneration(t *testing.T, dir string) int {
	t.Helper()
	s, _, err := Open(Options{Datadir: dir})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	rows := mustRows(t, s, "SELECT comment, count(*) FROM disk.mysql_servers GROUP BY comment "+
		"UNION ALL SELECT 'hg:' || comment, count(*) FROM disk.mysql_replication_hostgroups GROUP BY comment")
	if len(rows) != 2 {
		t.Fatalf("DISK is not one whole generation of the servers module: %v", strs(rows))
	}
	gen, err := strconv.Atoi(strings.TrimPrefix(rows[0][0].String, "gen-"))
	if err != nil {
		t.Fatalf("bad comment %q", rows[0][0].String)
	}
	if n, _ := strconv.Atoi(rows[0][1].String); n != crashRows(gen) {
		t.Fatalf("generation %d has %d servers on DISK, want %d", gen, n, crashRows(gen))
	}
	if rows[1][0].String != "hg:gen-"+strconv.Itoa(gen) {
		t.Fatalf("servers at generation %d but replication hostgroups at %q", gen, rows[1][0].String)
	}
	return gen
}

// crashChild saves new generations of MYSQL SERVERS to DISK until killed,
// printing "saved <g>" after each save returns. It gives up after 30 s in
// case its parent died.
func crashChild(dir string) {
	s, _, err := Open(Options{Datadir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	gen := 0
	if res, err := s.Query(context.Background(), "SELECT comment FROM disk.mysql_servers LIMIT 1", false); err == nil && len(res.Rows) == 1 {
		gen, _ = strconv.Atoi(strings.TrimPrefix(res.Rows[0][0].String, "gen-"))
	}
	stop := time.Now().Add(30 * time.Second)
	for time.Now().Before(stop) {
		gen++
		var b strings.Builder
		b.WriteString("DELETE FROM main.mysql_servers; DELETE FROM main.mysql_replication_hostgroups; ")
		b.WriteString("INSERT INTO main.mysql_servers (hostgroup_id, hostname, port, comment) VALUES ")
		for i := 0; i < crashRows(gen); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%d, 'host-%d.example', %d, 'gen-%d')", i%7, i, 3306+i, gen)
		}
		fmt.Fprintf(&b, "; INSERT INTO main.mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (0, 1, 'gen-%d')", gen)
		if _, err := s.Query(context.Background(), b.String(), false); err != nil {
			fmt.Fprintln(os.Stderr, "child memory write:", err)
			os.Exit(2)
		}
		if _, err := s.MemoryToDisk(config.ModMySQLServers); err != nil {
			fmt.Fprintln(os.Stderr, "child save:", err)
			os.Exit(2)
		}
		fmt.Printf("saved %d\n", gen)
	}
	os.Exit(0)
}
