package stats

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

func query(hg int, schema, user, client, sql string, d time.Duration) *Query {
	hash, text := sqlscan.DigestString(sql, sqlscan.DefaultOptions())
	return &Query{
		Kind: sqlscan.Classify([]byte(text)), Hostgroup: hg, Schema: schema, User: user, ClientAddr: client,
		Digest: hash, DigestText: []byte(text), Duration: d, End: time.Unix(1700000000, 0),
	}
}

func findRow(rows []DigestRow, hg int, user string) *DigestRow {
	for i := range rows {
		if rows[i].Hostgroup == hg && rows[i].User == user {
			return &rows[i]
		}
	}
	return nil
}

// rec is a Collector with the options its queries are recorded under (in
// the proxy they come from the runtime of each command).
type rec struct {
	*Collector
	o Options
}

func newRec(o Options) *rec { return &rec{Collector: New(), o: o} }

func (r *rec) RecordQuery(hint uint64, q *Query) { r.Collector.RecordQuery(hint, &r.o, q) }

func TestDigestAggregates(t *testing.T) {
	c := newRec(DefaultOptions())
	q := query(1, "db", "app", "10.0.0.1", "SELECT * FROM t WHERE id = 1", 300*time.Microsecond)
	q.RowsSent = 1
	c.RecordQuery(1, q)
	q.Duration, q.End, q.RowsSent = 100*time.Microsecond, time.Unix(1700000005, 0), 2
	c.RecordQuery(2, q)
	q.Duration, q.RowsSent, q.RowsAffected = 900*time.Microsecond, 0, 7
	c.RecordQuery(3, q)

	rows := c.Digests().Snapshot(false)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1: %+v", len(rows), rows)
	}
	r := rows[0]
	want := DigestRow{
		Hostgroup: 1, Schema: "db", User: "app", ClientAddr: "", Digest: q.Digest,
		DigestText: "SELECT * FROM t WHERE id = ?", CountStar: 3, FirstSeen: 1700000000, LastSeen: 1700000005,
		SumTime: 1300, MinTime: 100, MaxTime: 900, SumRowsAffected: 7, SumRowsSent: 3,
	}
	if r != want {
		t.Fatalf("row\n got %+v\nwant %+v", r, want)
	}
	if got := sqlscan.FormatHash(r.Digest); got != sqlscan.FormatHash(q.Digest) {
		t.Fatalf("digest %s", got)
	}
	// The stored text is a copy: the caller's buffer may be reused.
	copy(q.DigestText, "XXXXXX")
	if c.Digests().Snapshot(false)[0].DigestText != "SELECT * FROM t WHERE id = ?" {
		t.Fatal("digest text aliases the caller's buffer")
	}
}

func TestDigestKeyFields(t *testing.T) {
	c := newRec(DefaultOptions())
	base := query(1, "db", "app", "10.0.0.1", "SELECT 1", time.Millisecond)
	variants := []func(q *Query){
		func(q *Query) {},
		func(q *Query) { q.Hostgroup = 2 },
		func(q *Query) { q.Hostgroup = -1 },
		func(q *Query) { q.Schema = "other" },
		func(q *Query) { q.User = "bob" },
		func(q *Query) { q.Digest++ },
		func(q *Query) { q.ClientAddr = "10.0.0.2" }, // not tracked: same key as the first
	}
	for _, v := range variants {
		q := *base
		v(&q)
		c.RecordQuery(0, &q)
	}
	if n := c.Digests().Len(); n != 6 {
		t.Fatalf("%d entries, want 6 (client address not tracked)", n)
	}
	if r := findRow(c.Digests().Snapshot(false), 1, "app"); r == nil {
		t.Fatal("no row for hostgroup 1")
	}

	o := DefaultOptions()
	o.TrackHostname = true
	c = newRec(o)
	for _, addr := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.1"} {
		q := *base
		q.ClientAddr = addr
		c.RecordQuery(0, &q)
	}
	rows := c.Digests().Snapshot(false)
	if len(rows) != 2 {
		t.Fatalf("tracked hostname: %d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.ClientAddr == "10.0.0.1" && r.CountStar != 2 || r.ClientAddr == "10.0.0.2" && r.CountStar != 1 {
			t.Fatalf("row %+v", r)
		}
	}
}

// TestDigestCollisionChain puts a foreign entry under the same 64-bit hash
// as a key, as a collision would, and checks lookups compare the fields.
func TestDigestCollisionChain(t *testing.T) {
	d := NewDigestMap()
	d.Record(100, 1, "db", "app", "", 42, []byte("SELECT ?"), 10, 0, 1, 100)
	h := d.hash(1, "db", "app", "", 42)
	sh := &d.shards[h>>(64-shardBits)]
	intruder := newEntry(1, "db", "eve", "", 42, []byte("SELECT ?"))
	intruder.count = 5
	intruder.next = sh.m[h]
	sh.m[h] = intruder

	d.Record(100, 1, "db", "app", "", 42, []byte("SELECT ?"), 30, 0, 1, 101)
	rows := d.Snapshot(false)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	if r := findRow(rows, 1, "app"); r == nil || r.CountStar != 2 || r.SumTime != 40 {
		t.Fatalf("app row %+v", r)
	}
	if r := findRow(rows, 1, "eve"); r == nil || r.CountStar != 5 {
		t.Fatalf("colliding row %+v", r)
	}
}

func TestDigestBound(t *testing.T) {
	o := DefaultOptions()
	o.MaxEntries = 10
	c := newRec(o)
	for i := 0; i < 20; i++ {
		c.RecordQuery(0, query(0, "db", "app", "", fmt.Sprintf("SELECT c%d FROM t", i), time.Millisecond))
	}
	d := c.Digests()
	if d.Len() != 10 || d.Overflow() != 10 {
		t.Fatalf("len %d overflow %d, want 10 and 10", d.Len(), d.Overflow())
	}
	// Known keys still count while the map is full.
	c.RecordQuery(0, query(0, "db", "app", "", "SELECT c0 FROM t", time.Millisecond))
	var total uint64
	for _, r := range d.Snapshot(false) {
		total += r.CountStar
	}
	if total != 11 || d.Overflow() != 10 {
		t.Fatalf("total %d overflow %d, want 11 and 10", total, d.Overflow())
	}
	if d.MemoryBytes() <= 0 {
		t.Fatal("no memory estimate")
	}
	// Raising the bound at runtime makes room at once.
	o.MaxEntries = 12
	c.o = o
	c.RecordQuery(0, query(0, "db", "app", "", "SELECT c15 FROM t", time.Millisecond))
	if d.Len() != 11 {
		t.Fatalf("len %d after raising the bound, want 11", d.Len())
	}
	d.Truncate()
	if d.Len() != 0 || d.Overflow() != 0 || d.MemoryBytes() != 0 || len(d.Snapshot(false)) != 0 {
		t.Fatalf("after Truncate: len %d overflow %d mem %d", d.Len(), d.Overflow(), d.MemoryBytes())
	}
}

func TestDigestReset(t *testing.T) {
	c := newRec(DefaultOptions())
	q := query(3, "db", "app", "", "UPDATE t SET a = 1", 2*time.Millisecond)
	q.RowsAffected = 4
	for i := 0; i < 3; i++ {
		c.RecordQuery(0, q)
	}
	d := c.Digests()
	rows := d.Snapshot(true)
	if len(rows) != 1 || rows[0].CountStar != 3 || rows[0].SumRowsAffected != 12 || rows[0].SumTime != 6000 {
		t.Fatalf("reset read %+v", rows)
	}
	if d.Len() != 0 || d.MemoryBytes() != 0 {
		t.Fatalf("after reset: len %d mem %d", d.Len(), d.MemoryBytes())
	}
	if rows := d.Snapshot(false); len(rows) != 0 {
		t.Fatalf("after reset the map still has %+v", rows)
	}
	q.Duration = time.Millisecond
	c.RecordQuery(0, q)
	rows = d.Snapshot(false)
	if len(rows) != 1 || rows[0].CountStar != 1 || rows[0].MinTime != 1000 || rows[0].MaxTime != 1000 {
		t.Fatalf("counting after reset %+v", rows)
	}
}

// TestDigestConcurrent records from many goroutines while another reads
// with reset: every query must be in exactly one read.
func TestDigestConcurrent(t *testing.T) {
	o := DefaultOptions()
	o.MaxEntries = 1000
	c := newRec(o)
	const workers, perWorker = 8, 2000
	qs := make([]*Query, 16)
	for i := range qs {
		qs[i] = query(i%3, "db", fmt.Sprintf("u%d", i%4), "", fmt.Sprintf("SELECT %d FROM t%d", i, i), time.Duration(i)*time.Microsecond)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readTotal uint64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for i := 0; i < 1000; i++ {
			for _, r := range c.Digests().Snapshot(true) {
				readTotal += r.CountStar
			}
			_ = c.Commands()
			_ = c.Global()
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				c.RecordQuery(uint64(w), qs[(w+i)%len(qs)])
				c.Add(uint64(w), ClientConnectionsCreated, 1)
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	<-readerDone
	for _, r := range c.Digests().Snapshot(true) {
		readTotal += r.CountStar
	}
	if readTotal != workers*perWorker {
		t.Fatalf("digest reads saw %d queries, want %d", readTotal, workers*perWorker)
	}
	if v := c.Value(Questions); v != workers*perWorker {
		t.Fatalf("Questions %d", v)
	}
	if v := c.Value(ClientConnectionsCreated); v != workers*perWorker {
		t.Fatalf("Client_Connections_created %d", v)
	}
	var cnt uint64
	for _, r := range c.Commands() {
		cnt += r.TotalCnt
	}
	if cnt != workers*perWorker {
		t.Fatalf("commands counted %d", cnt)
	}
}

func TestRecordQueryZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	o := DefaultOptions()
	o.TrackHostname = true
	c := newRec(o)
	q := query(1, "sbtest", "sbtest", "127.0.0.1", "SELECT c FROM sbtest1 WHERE id = 4242", 150*time.Microsecond)
	c.RecordQuery(7, q)
	if n := testing.AllocsPerRun(1000, func() { c.RecordQuery(7, q) }); n != 0 {
		t.Fatalf("%.1f allocations per query of a known digest, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Add(3, GeneratedErrorPackets, 1) }); n != 0 {
		t.Fatalf("%.1f allocations per counter add", n)
	}
}

func TestCommandCounters(t *testing.T) {
	c := newRec(DefaultOptions())
	times := []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, time.Millisecond,
		10 * time.Second, 10*time.Second + time.Microsecond, time.Hour}
	for _, d := range times {
		c.RecordQuery(0, &Query{Kind: sqlscan.KindSelect, Hostgroup: 0, Duration: d, End: time.Now()})
	}
	c.RecordQuery(0, &Query{Kind: sqlscan.KindCommit, Duration: time.Millisecond})
	rows := c.Commands()
	if len(rows) != len(sqlscan.AllKinds()) {
		t.Fatalf("%d rows, want one per kind", len(rows))
	}
	var sel, commit *CommandRow
	for i := range rows {
		switch rows[i].Command {
		case "SELECT":
			sel = &rows[i]
		case "COMMIT":
			commit = &rows[i]
		}
	}
	if sel == nil || commit == nil {
		t.Fatal("SELECT or COMMIT row missing")
	}
	// 0 and 100µs → cnt_100us; 101µs → cnt_500us; 1ms → cnt_1ms;
	// 10s → cnt_10s; above → cnt_INFs.
	want := [numBuckets]uint64{2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2}
	if sel.Buckets != want || sel.TotalCnt != 7 {
		t.Fatalf("SELECT buckets %v cnt %d, want %v 7", sel.Buckets, sel.TotalCnt, want)
	}
	var us uint64
	for _, d := range times {
		us += uint64(d.Microseconds())
	}
	if sel.TotalTimeUs != us {
		t.Fatalf("Total_Time_us %d, want %d", sel.TotalTimeUs, us)
	}
	if commit.TotalCnt != 1 || commit.Buckets[2] != 1 {
		t.Fatalf("COMMIT %+v", commit)
	}
	if c.Value(SlowQueries) != 3 {
		t.Fatalf("Slow_queries %d, want 3 (over mysql-long_query_time=1000ms)", c.Value(SlowQueries))
	}

	o := DefaultOptions()
	o.CommandsStats, o.Digests = false, false
	c.o = o
	entries := c.Digests().Len()
	c.RecordQuery(0, query(0, "", "u", "", "SELECT 1", 0))
	if c.Commands()[sqlscan.KindSelect].TotalCnt != 7 || c.Digests().Len() != entries {
		t.Fatal("mysql-commands_stats=false / mysql-query_digests=false still counted")
	}
}

func TestGlobal(t *testing.T) {
	c := newRec(DefaultOptions())
	c.Add(1, ClientConnectionsConnected, 1)
	c.Add(2, ClientConnectionsConnected, 1)
	c.Add(1, ClientConnectionsConnected, -1)
	got := map[string]string{}
	for _, v := range c.Global() {
		if _, dup := got[v.Name]; dup {
			t.Fatalf("duplicate variable %s", v.Name)
		}
		got[v.Name] = v.Value
	}
	for _, name := range []string{"ProxySQL_Uptime", "Questions", "Slow_queries", "Com_commit_filtered",
		"Access_Denied_Max_User_Connections", "mysql_unexpected_frontend_packets", "Stmt_Client_Active_Total",
		"Com_backend_stmt_close", "Com_frontend_set_names", "Com_frontend_reset_connection"} {
		if _, ok := got[name]; !ok {
			t.Errorf("stats_mysql_global lacks %s", name)
		}
	}
	if len(got) != int(numCounters)+1 || got[""] != "" {
		t.Errorf("%d rows for %d counters and the uptime, or a counter without a name", len(got), numCounters)
	}
	// Each counter moves its own row.
	for k := Counter(0); k < numCounters; k++ {
		c.Add(uint64(k), k, 3)
		if v := c.Value(k); v < 3 {
			t.Errorf("%s = %d after adding 3", k, v)
		}
	}
	if got["Client_Connections_connected"] != "1" {
		t.Fatalf("Client_Connections_connected = %s, want 1", got["Client_Connections_connected"])
	}

	if c.MemoryBytes() <= 0 {
		t.Fatal("MemoryBytes")
	}
}

func BenchmarkRecordQuery(b *testing.B) {
	c := newRec(DefaultOptions())
	q := query(1, "sbtest", "sbtest", "127.0.0.1", "SELECT c FROM sbtest1 WHERE id = 4242", 150*time.Microsecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var hint uint64
		for pb.Next() {
			hint++
			c.RecordQuery(hint, q)
		}
	})
}

// TestDigestTextBound: a digest row keeps mysql-query_digests_max_digest_length
// bytes of the digest text, the part that was hashed (ProxySQL's
// QP_query_digest_stats strndup), however long the query.
func TestDigestTextBound(t *testing.T) {
	o := DefaultOptions()
	o.MaxDigestText = 20
	c := newRec(o)
	c.RecordQuery(1, query(1, "db", "app", "", "SELECT id, a, b, c, d, e, f, g FROM t", time.Millisecond))
	if got := c.Digests().Snapshot(false)[0].DigestText; got != "SELECT id,a,b,c,d,e," {
		t.Fatalf("digest text %q, want the first 20 bytes", got)
	}
}
