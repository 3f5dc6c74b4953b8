package etcdsync

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

func seenOf(s *Syncer, m config.Module) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mods[m].seen
}

func newSyncer(t *testing.T, target *Target, name string, n *node, log *testenv.SyncBuffer) *Syncer {
	t.Helper()
	s, err := New(Config{Target: target, Name: name, Store: n.store, Log: zerolog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCASConflict: with a real etcd, node B runs an old revision of MYSQL
// SERVERS (its sync loop is held back: the test drives it) while node A
// writes a new one. B's LOAD loses the compare-and-swap: the client gets
// an ERR naming the winner and its revision, and B's loop re-reads the key
// and applies A's version through ImportModule — B's RUNTIME and MEMORY
// then equal A's, with equal runtime checksums. B's next LOAD, made on top
// of the winner, succeeds and reaches A. A never re-applies its own
// writes (no echo).
func TestCASConflict(t *testing.T) {
	e := testenv.StartEtcd(t, 25430)
	target := &Target{Endpoints: []string{"http://" + e.Addr()}, Prefix: fmt.Sprintf("/unit-%d", time.Now().UnixNano()), SaveToDisk: true}
	a, b := newNode(t), newNode(t)
	logA := &testenv.SyncBuffer{}
	sa := newSyncer(t, target, "node-a", a, logA)
	sa.Start(a.adm, 10*time.Second)
	a.adm.SetPublisher(sa)
	if d := sa.Degraded(); d != "" {
		t.Fatalf("A after start: %s", d)
	}
	sb := newSyncer(t, target, "node-b", b, &testenv.SyncBuffer{})
	sb.imp = b.adm
	if _, err := sb.fullSync(); err != nil {
		t.Fatal(err)
	}
	b.adm.SetPublisher(sb)
	m := config.ModMySQLServers
	seenB := seenOf(sb, m)
	if seenB == 0 {
		t.Fatal("B has no revision of MYSQL SERVERS after its first sync")
	}

	a.exec(t, "INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (1, '10.1.1.1', 3306, 'from-a')", "LOAD MYSQL SERVERS TO RUNTIME")
	revA := seenOf(sa, m)
	if revA <= seenB {
		t.Fatalf("A's write has revision %d, B saw %d", revA, seenB)
	}

	b.exec(t, "INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (2, '10.2.2.2', 3306, 'from-b')")
	_, err := b.db.Exec("LOAD MYSQL SERVERS TO RUNTIME")
	if err == nil {
		t.Fatal("B's LOAD on a stale revision succeeded")
	}
	for _, want := range []string{"1045", "lost to another node", fmt.Sprintf("revision %d", revA), "written by node-a", fmt.Sprintf("ran revision %d", seenB)} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("B's LOAD error %q lacks %q", err, want)
		}
	}
	t.Logf("the loser's ERR: %v", err)
	// Until its loop runs, B runs its own (losing) version; etcd has A's.
	if got := b.rows(t, "SELECT comment FROM runtime_mysql_servers"); got != "from-b\n" {
		t.Fatalf("B's runtime before the re-read: %q", got)
	}
	var req config.Module
	select {
	case req = <-sb.resync:
	case <-time.After(5 * time.Second):
		t.Fatal("the lost LOAD did not ask the loop to re-read the module")
	}
	if req != m {
		t.Fatalf("re-read asked for %s", req)
	}
	if err := sb.reread(req); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT * FROM runtime_mysql_servers",
		"SELECT * FROM main.mysql_servers",
		"SELECT checksum FROM runtime_checksums_values WHERE name='mysql_servers'",
	} {
		if x, y := a.rows(t, q), b.rows(t, q); x != y {
			t.Fatalf("%s after the re-read: A\n%s\nB\n%s", q, x, y)
		}
	}
	// save_to_disk: B saved the winner.
	if x, y := a.rows(t, "SELECT * FROM main.mysql_servers"), b.rows(t, "SELECT * FROM disk.mysql_servers"); x != y {
		t.Fatalf("B's DISK\n%s\nA's MEMORY\n%s", y, x)
	}
	if got := seenOf(sb, m); got != revA {
		t.Fatalf("B runs revision %d, want A's %d", got, revA)
	}

	// B's next LOAD is on top of the winner: it wins, and A applies it.
	b.exec(t, "UPDATE mysql_servers SET weight=3", "LOAD MYSQL SERVERS TO RUNTIME")
	deadline := time.Now().Add(10 * time.Second)
	for a.rows(t, "SELECT weight FROM runtime_mysql_servers") != "3\n" {
		if time.Now().After(deadline) {
			t.Fatal("A did not apply B's winning LOAD")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The key's revision is the one both nodes run; the value names B.
	cli, err := clientv3.New(clientv3.Config{Endpoints: target.Endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), sa.key(m))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v", sa.key(m), err)
	}
	v, _, err := Decode(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Kvs[0].ModRevision
	if v.Writer != "node-b" || seenOf(sb, m) != rev {
		t.Fatalf("etcd: writer %s revision %d; B runs %d", v.Writer, rev, seenOf(sb, m))
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		seen := seenOf(sa, m)
		if seen == rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A runs revision %d, etcd has %d", seen, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No echo: A applied B's write once and none of its own.
	applied := 0
	for _, l := range strings.Split(logA.String(), "\n") {
		if strings.Contains(l, "applied the module from etcd") && strings.Contains(l, `"module":"MYSQL SERVERS"`) {
			applied++
			if strings.Contains(l, `"writer":"node-a"`) {
				t.Fatalf("A re-applied its own write: %s", l)
			}
		}
	}
	if applied != 1 {
		t.Fatalf("A applied MYSQL SERVERS from etcd %d times, want 1 (B's write):\n%s", applied, logA.String())
	}
}
