package etcdsync

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// manualSyncer is a Syncer whose loop the test drives (fullSync, apply).
func manualSyncer(t *testing.T, target *Target, name string, n *node) *Syncer {
	t.Helper()
	s := newSyncer(t, target, name, n, &testenv.SyncBuffer{})
	s.imp = n.adm
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.fullSync()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first full sync: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.adm.SetPublisher(s)
	return s
}

// TestStaleReadNeverRollsBack: a full read made before a LOAD on this node
// wrote a newer revision (the two race at start-up or after a reconnection)
// must not put the older value back: the node keeps the LOAD it wrote.
func TestStaleReadNeverRollsBack(t *testing.T) {
	e := testenv.StartEtcd(t, 25432)
	target := &Target{Endpoints: []string{"http://" + e.Addr()}, Prefix: fmt.Sprintf("/unit-stale-%d", time.Now().UnixNano()), SaveToDisk: true}
	n := newNode(t)
	s := manualSyncer(t, target, "node-a", n)
	m := config.ModMySQLServers

	cli, err := clientv3.New(clientv3.Config{Endpoints: target.Endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	old, err := cli.Get(t.Context(), s.key(m))
	if err != nil || len(old.Kvs) != 1 {
		t.Fatalf("get %s: %v", s.key(m), err)
	}
	n.exec(t, "INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (1, '10.9.9.9', 3306, 'newer')", "LOAD MYSQL SERVERS TO RUNTIME")
	seen := seenOf(s, m)
	if seen <= old.Kvs[0].ModRevision {
		t.Fatalf("LOAD wrote revision %d, the key was at %d", seen, old.Kvs[0].ModRevision)
	}
	s.apply(m, old.Kvs[0].Value, old.Kvs[0].ModRevision)
	if got := n.rows(t, "SELECT comment FROM runtime_mysql_servers"); got != "newer\n" {
		t.Fatalf("runtime after a stale read was applied: %q, want the LOAD's row", got)
	}
	if got := seenOf(s, m); got != seen {
		t.Fatalf("node runs revision %d after the stale read, want %d", got, seen)
	}
}

// TestRefusedValueKeepsRevision: a value the node cannot apply (another
// tool wrote garbage to the key) leaves it running its previous revision,
// and stats_sluice_cluster.revision says so; the CAS of its next LOAD
// compares against the key's newest revision all the same.
func TestRefusedValueKeepsRevision(t *testing.T) {
	e := testenv.StartEtcd(t, 25438)
	target := &Target{Endpoints: []string{"http://" + e.Addr()}, Prefix: fmt.Sprintf("/unit-refused-%d", time.Now().UnixNano()), SaveToDisk: true}
	n := newNode(t)
	s := manualSyncer(t, target, "node-a", n)
	m := config.ModMySQLServers
	runs := func() int64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mods[m].runs
	}
	before := runs()
	s.apply(m, []byte("not a module value"), seenOf(s, m)+5)
	if got := runs(); got != before {
		t.Fatalf("revision run after a refused value: %d, want %d", got, before)
	}
	if got := seenOf(s, m); got != before+5 {
		t.Fatalf("newest revision taken in: %d, want %d", got, before+5)
	}
}

// TestEtcdHistoryReset: etcd replaced by a new, empty one on the same
// address (revisions start again at 1). The node notices at its next full
// read, writes its modules to the new etcd, and its next LOAD's
// compare-and-swap (on the new revision) succeeds.
func TestEtcdHistoryReset(t *testing.T) {
	e := testenv.StartEtcd(t, 25434)
	target := &Target{Endpoints: []string{"http://" + e.Addr()}, Prefix: "/unit-reset", SaveToDisk: true}
	n := newNode(t)
	log := &testenv.SyncBuffer{}
	s := newSyncer(t, target, "node-a", n, log)
	s.imp = n.adm
	if _, err := s.fullSync(); err != nil {
		t.Fatal(err)
	}
	n.adm.SetPublisher(s)
	for i := range 5 {
		n.exec(t, fmt.Sprintf("INSERT OR REPLACE INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (1, '10.9.9.9', 3306, 'load-%d')", i),
			"LOAD MYSQL SERVERS TO RUNTIME")
	}
	before := seenOf(s, config.ModMySQLServers)

	e.Kill(t)
	fresh := testenv.StartEtcd(t, 25434) // a new data directory: an empty etcd
	_ = fresh
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.fullSync()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("full sync on the new etcd: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "older than one this node saw") {
		t.Fatalf("the reset was not logged:\n%s", log.String())
	}
	after := seenOf(s, config.ModMySQLServers)
	if after == 0 || after >= before {
		t.Fatalf("node runs revision %d of the new etcd (was %d on the old one)", after, before)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: target.Endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), s.key(config.ModMySQLServers))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the node's module is not in the new etcd: %v", err)
	}
	v, _, err := Decode(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	tab := v.Tables["mysql_servers"]
	ci := slices.Index(tab.Columns, "comment")
	if ci < 0 || len(tab.Rows) != 1 || tab.Rows[0][ci] == nil || *tab.Rows[0][ci] != "load-4" {
		t.Fatalf("new etcd holds mysql_servers %v / %d rows, want the node's last LOAD (comment load-4)", tab.Columns, len(tab.Rows))
	}
	n.exec(t, "UPDATE mysql_servers SET weight=5", "LOAD MYSQL SERVERS TO RUNTIME")
	if got := seenOf(s, config.ModMySQLServers); got <= after {
		t.Fatalf("LOAD after the reset: node runs revision %d, want more than %d", got, after)
	}
}

// TestPendingRule: a LOAD made while etcd could not be reached is kept
// (OK with a warning) and resolved at the next full read by the revision
// rule: written when the key is still at the revision the node ran (B's
// servers), lost to the other node's write when the key moved meanwhile
// (B's users: A wrote them first), then B runs A's version.
func TestPendingRule(t *testing.T) {
	e := testenv.StartEtcd(t, 25436)
	target := &Target{Endpoints: []string{"http://" + e.Addr()}, Prefix: fmt.Sprintf("/unit-pending-%d", time.Now().UnixNano()), SaveToDisk: true}
	a, b := newNode(t), newNode(t)
	sa := manualSyncer(t, target, "node-a", a)
	logB := &testenv.SyncBuffer{}
	sb := newSyncer(t, target, "node-b", b, logB)
	sb.imp = b.adm
	if _, err := sb.fullSync(); err != nil {
		t.Fatal(err)
	}
	b.adm.SetPublisher(sb)

	sb.markDown(fmt.Errorf("%w: test partition", errDown)) // as the loop does when etcd stops answering
	for _, q := range []string{
		"INSERT INTO mysql_servers(hostgroup_id, hostname, port, comment) VALUES (1, '10.3.3.3', 3306, 'b-kept')",
		"INSERT INTO mysql_users(username, password, comment) VALUES ('bu', 'p', 'b-kept')",
	} {
		b.exec(t, q)
	}
	for _, mod := range []string{"MYSQL SERVERS", "MYSQL USERS"} {
		conn, err := b.db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(t.Context(), "LOAD "+mod+" TO RUNTIME"); err != nil {
			t.Fatalf("LOAD %s while etcd is unreachable: %v", mod, err)
		}
		var lvl, code, msg string
		if err := conn.QueryRowContext(t.Context(), "SHOW WARNINGS").Scan(&lvl, &code, &msg); err != nil || !strings.Contains(msg, "test partition") {
			t.Fatalf("LOAD %s while etcd is unreachable: warning %q (%v)", mod, msg, err)
		}
		conn.Close()
	}
	rows := sb.StatsRows()
	for _, r := range rows {
		if m := r[0].(string); (m == "MYSQL SERVERS" || m == "MYSQL USERS") && r[6] != 1 {
			t.Fatalf("stats_sluice_cluster %s: pending %v, want 1", m, r[6])
		}
	}
	// Meanwhile A changes the users.
	a.exec(t, "INSERT INTO mysql_users(username, password, comment) VALUES ('au', 'p', 'a-wins')", "LOAD MYSQL USERS TO RUNTIME")

	if _, err := sb.fullSync(); err != nil { // etcd answers again
		t.Fatal(err)
	}
	if got := b.rows(t, "SELECT username, comment FROM runtime_mysql_users WHERE frontend=1"); got != "au\ta-wins\n" {
		t.Fatalf("B's users after the re-read: %q, want A's", got)
	}
	if !strings.Contains(logB.String(), "lost: another node changed the module meanwhile") {
		t.Fatalf("B did not log that its kept users LOAD lost:\n%s", logB.String())
	}
	// B's servers were written: A applies them (A's loop is driven here).
	cli, err := clientv3.New(clientv3.Config{Endpoints: target.Endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), sb.key(config.ModMySQLServers))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get: %v", err)
	}
	if v, _, err := Decode(resp.Kvs[0].Value); err != nil || v.Writer != "node-b" {
		t.Fatalf("etcd's servers after the re-read: %+v (%v), want B's kept LOAD", v, err)
	}
	if _, err := sa.fullSync(); err != nil {
		t.Fatal(err)
	}
	if got := a.rows(t, "SELECT comment FROM runtime_mysql_servers"); got != "b-kept\n" {
		t.Fatalf("A's servers: %q, want B's kept LOAD", got)
	}
	for _, r := range sb.StatsRows() {
		if r[6] != 0 || r[7] != "connected" {
			t.Fatalf("stats_sluice_cluster on B after the re-read: %v", r)
		}
	}
}
