package stats

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// DigestRow is one row of stats_mysql_query_digest. Times are in
// microseconds, FirstSeen and LastSeen in unix seconds.
type DigestRow struct {
	Hostgroup       int
	Schema          string
	User            string
	ClientAddr      string
	Digest          uint64
	DigestText      string
	CountStar       uint64
	FirstSeen       int64
	LastSeen        int64
	SumTime         uint64
	MinTime         uint64
	MaxTime         uint64
	SumRowsAffected uint64
	SumRowsSent     uint64
}

// DigestMap aggregates queries by (hostgroup, schemaname, username,
// client_address, digest), ProxySQL's key. It is split into 64 shards, each
// a map from a 64-bit hash of the key to a chain of entries guarded by its
// own mutex; a lookup hashes the fields in place and compares the stored
// fields on a hash match, so counting an existing key allocates nothing.
// A new key costs two allocations: the entry and one string holding its
// digest text and key strings.
//
// The number of entries is bounded by the max each Record is given
// (mysql-query_digests_max_entries). A query whose key is new while the map
// is full is counted in Overflow and dropped; lowering the bound keeps the
// entries already stored.
type DigestMap struct {
	seed     maphash.Seed
	shards   [1 << shardBits]digestShard
	entries  atomic.Int64
	overflow atomic.Uint64
	mem      atomic.Int64
}

// shardBits is log2 of the number of digest shards.
const shardBits = 6

type digestShard struct {
	mu  sync.Mutex
	m   map[uint64]*entry
	n   int64 // entries in m
	mem int64 // their estimated bytes
	_   [32]byte
}

type entry struct {
	next       *entry // same 64-bit hash, different key
	digest     uint64
	hg         int
	schema     string
	user       string
	client     string
	text       string
	count      uint64
	firstSeen  int64
	lastSeen   int64
	sumTime    uint64
	minTime    uint64
	maxTime    uint64
	sumRowsAff uint64
	sumRowsSnt uint64
}

// entryOverhead estimates an entry's memory besides its strings: the struct
// and its slot in the shard's map.
const entryOverhead = int64(unsafe.Sizeof(entry{})) + 32

// NewDigestMap returns an empty map.
func NewDigestMap() *DigestMap { return &DigestMap{seed: maphash.MakeSeed()} }

func (d *DigestMap) hash(hg int, schema, user, client string, digest uint64) uint64 {
	h := mix64(digest ^ uint64(int64(hg))*0x9e3779b97f4a7c15)
	h = mix64(h ^ maphash.String(d.seed, schema))
	h = mix64(h ^ maphash.String(d.seed, user))
	if client != "" {
		h = mix64(h ^ maphash.String(d.seed, client))
	}
	return h
}

// Record counts one query of the key. us is its time in microseconds, now
// the unix second it ended. text is copied only for a new key, and only
// while the map holds fewer than maxEntries keys (<= 0: the default bound).
func (d *DigestMap) Record(maxEntries, hg int, schema, user, client string, digest uint64, text []byte, us, affected, sent uint64, now int64) {
	h := d.hash(hg, schema, user, client, digest)
	sh := &d.shards[h>>(64-shardBits)]
	sh.mu.Lock()
	e := sh.m[h]
	for e != nil && !(e.digest == digest && e.hg == hg && e.schema == schema && e.user == user && e.client == client) {
		e = e.next
	}
	if e == nil {
		if !d.reserve(maxEntries) {
			sh.mu.Unlock()
			d.overflow.Add(1)
			return
		}
		e = newEntry(hg, schema, user, client, digest, text)
		e.firstSeen, e.minTime = now, us
		if sh.m == nil {
			sh.m = make(map[uint64]*entry)
		}
		e.next = sh.m[h]
		sh.m[h] = e
		size := entryOverhead + int64(len(e.text)+len(schema)+len(user)+len(client))
		sh.n++
		sh.mem += size
		d.mem.Add(size)
	}
	e.count++
	e.lastSeen = now
	e.sumTime += us
	e.minTime = min(e.minTime, us)
	e.maxTime = max(e.maxTime, us)
	e.sumRowsAff += affected
	e.sumRowsSnt += sent
	sh.mu.Unlock()
}

// reserve takes a slot for a new entry, failing when the map is full.
func (d *DigestMap) reserve(maxEntries int) bool {
	if maxEntries <= 0 {
		maxEntries = DefaultOptions().MaxEntries
	}
	for {
		n := d.entries.Load()
		if n >= int64(maxEntries) {
			return false
		}
		if d.entries.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// newEntry builds an entry whose strings share one allocation, so a key
// costs one string however many fields it has, and the entry never aliases
// the caller's buffers.
func newEntry(hg int, schema, user, client string, digest uint64, text []byte) *entry {
	var b strings.Builder
	b.Grow(len(text) + len(schema) + len(user) + len(client))
	b.Write(text)
	b.WriteString(schema)
	b.WriteString(user)
	b.WriteString(client)
	all := b.String()
	e := &entry{digest: digest, hg: hg}
	i := 0
	cut := func(n int) string {
		s := all[i : i+n]
		i += n
		return s
	}
	e.text = cut(len(text))
	e.schema = cut(len(schema))
	e.user = cut(len(user))
	e.client = cut(len(client))
	return e
}

func (e *entry) row() DigestRow {
	return DigestRow{
		Hostgroup: e.hg, Schema: e.schema, User: e.user, ClientAddr: e.client,
		Digest: e.digest, DigestText: e.text, CountStar: e.count,
		FirstSeen: e.firstSeen, LastSeen: e.lastSeen,
		SumTime: e.sumTime, MinTime: e.minTime, MaxTime: e.maxTime,
		SumRowsAffected: e.sumRowsAff, SumRowsSent: e.sumRowsSnt,
	}
}

// Snapshot returns every entry as a row. With reset, the map is emptied in
// the same pass (stats_mysql_query_digest_reset: read, then zero): each
// shard is swapped for an empty one under its lock, so a query counted
// concurrently lands either in the returned rows or in the new map, never
// in neither.
func (d *DigestMap) Snapshot(reset bool) []DigestRow {
	rows := make([]DigestRow, 0, max(d.entries.Load(), 0))
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		m := sh.m
		if !reset {
			rows = appendRows(rows, m)
			sh.mu.Unlock()
			continue
		}
		n, mem := sh.n, sh.mem
		sh.m, sh.n, sh.mem = nil, 0, 0
		sh.mu.Unlock()
		d.entries.Add(-n)
		d.mem.Add(-mem)
		rows = appendRows(rows, m) // m is no longer reachable by writers
	}
	if reset {
		d.overflow.Store(0)
	}
	return rows
}

func appendRows(rows []DigestRow, m map[uint64]*entry) []DigestRow {
	for _, e := range m {
		for ; e != nil; e = e.next {
			rows = append(rows, e.row())
		}
	}
	return rows
}

// Truncate empties the map (TRUNCATE stats_mysql_query_digest) and the
// overflow counter.
func (d *DigestMap) Truncate() {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		n, mem := sh.n, sh.mem
		sh.m, sh.n, sh.mem = nil, 0, 0
		sh.mu.Unlock()
		d.entries.Add(-n)
		d.mem.Add(-mem)
	}
	d.overflow.Store(0)
}

// Len returns the number of entries.
func (d *DigestMap) Len() int { return int(d.entries.Load()) }

// Overflow returns how many queries found the map full and were not
// recorded since the map was last emptied (Truncate, Snapshot with reset).
func (d *DigestMap) Overflow() uint64 { return d.overflow.Load() }

// MemoryBytes estimates the memory the entries hold (stats_memory_metrics
// query_digest_memory).
func (d *DigestMap) MemoryBytes() int64 { return d.mem.Load() }
