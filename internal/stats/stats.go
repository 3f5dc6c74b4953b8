// Package stats holds the live counters behind ProxySQL's stats tables:
// the query-digest map (stats_mysql_query_digest and its _reset twin), the
// per-command latency counters (stats_mysql_commands_counters) and the
// global status counters (stats_mysql_global).
//
// Everything here is written on the data plane's per-query path, so the
// write side takes no global lock and allocates nothing once a digest entry
// exists: counters are atomics spread over cache-line padded shards chosen
// by a caller's hint (the session id), and the digest map is split into 64
// shards with one mutex each, picked by a hash of the entry's key. The read
// side (the admin port, a few times a minute) sums the shards.
//
// The digest map is bounded by mysql-query_digests_max_entries, a Sluice
// variable (ProxySQL's map grows without limit, its users report
// gigabytes: reference §12 item 1). When the map is full, queries with a
// key it does not hold are counted in Overflow and not stored; existing
// entries keep counting. TRUNCATE of the digest table or a read of
// stats_mysql_query_digest_reset empties it.
package stats

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

// Options are the mysql-* variables the collector obeys.
type Options struct {
	Digests       bool          // mysql-query_digests: record stats_mysql_query_digest
	MaxEntries    int           // mysql-query_digests_max_entries (Sluice): bound of the digest map
	TrackHostname bool          // mysql-query_digests_track_hostname: client_address in the key
	CommandsStats bool          // mysql-commands_stats: record stats_mysql_commands_counters
	LongQueryTime time.Duration // mysql-long_query_time: Slow_queries threshold
	// MaxDigestText is mysql-query_digests_max_digest_length: a digest
	// row keeps that much of the digest text, the part that was hashed, as
	// ProxySQL's QP_query_digest_stats does (0 or less: all of it).
	MaxDigestText int
}

// DefaultOptions returns the variables' defaults.
func DefaultOptions() Options {
	return Options{Digests: true, MaxEntries: 100000, CommandsStats: true, LongQueryTime: time.Second}
}

// Query is one finished COM_QUERY or COM_STMT_EXECUTE.
type Query struct {
	Kind                   sqlscan.StmtKind
	Hostgroup              int    // -1: answered by the proxy itself
	Schema                 string // the schema when the query started
	User                   string
	ClientAddr             string // client IP; dropped unless TrackHostname
	Digest                 uint64
	DigestText             []byte // copied only when a new digest entry is made
	Duration               time.Duration
	End                    time.Time
	RowsAffected, RowsSent uint64
}

// Collector is the set of live counters of one Sluice process.
type Collector struct {
	start   time.Time
	digests *DigestMap
	shards  []*counterShard
	mask    uint64
	kinds   int
}

// counterShard is one stripe of the atomic counters. Each shard is its own
// heap object several kilobytes long, so two shards never share a cache
// line except at their padded edges.
type counterShard struct {
	_        [64]byte
	counters [numCounters]atomic.Int64
	cmds     []cmdCounter
	_        [64]byte
}

// New returns a Collector; ProxySQL_Uptime counts from now. The options
// in force come with each RecordQuery (the caller's runtime).
func New() *Collector {
	n := 1
	for n < runtime.GOMAXPROCS(0) && n < 32 {
		n <<= 1
	}
	kinds := len(sqlscan.AllKinds())
	c := &Collector{start: time.Now(), digests: NewDigestMap(), mask: uint64(n - 1), kinds: kinds}
	c.shards = make([]*counterShard, n)
	for i := range c.shards {
		c.shards[i] = &counterShard{cmds: make([]cmdCounter, kinds)}
	}
	return c
}

// Uptime returns how long the collector has existed (ProxySQL_Uptime).
func (c *Collector) Uptime() time.Duration { return time.Since(c.start) }

// Digests returns the digest map.
func (c *Collector) Digests() *DigestMap { return c.digests }

func (c *Collector) shard(hint uint64) *counterShard { return c.shards[hint&c.mask] }

// Add adds n to counter k. hint spreads concurrent writers over shards:
// pass something stable per writer, such as the session id.
func (c *Collector) Add(hint uint64, k Counter, n int64) {
	if k < numCounters {
		c.shard(hint).counters[k].Add(n)
	}
}

// Value returns the current value of counter k.
func (c *Collector) Value(k Counter) int64 {
	if k >= numCounters {
		return 0
	}
	var v int64
	for _, s := range c.shards {
		v += s.counters[k].Load()
	}
	return v
}

// RecordQuery counts one finished query: Questions, Slow_queries, the
// command counters and the digest map, as the options o allow. It allocates
// only when the query's digest key is new.
func (c *Collector) RecordQuery(hint uint64, o *Options, q *Query) {
	sh := c.shard(hint)
	sh.counters[Questions].Add(1)
	if o.LongQueryTime > 0 && q.Duration > o.LongQueryTime {
		sh.counters[SlowQueries].Add(1)
	}
	us := q.Duration.Microseconds()
	if us < 0 {
		us = 0
	}
	if o.CommandsStats && int(q.Kind) < c.kinds {
		sh.cmds[q.Kind].add(uint64(us))
	}
	if o.Digests {
		client := q.ClientAddr
		if !o.TrackHostname {
			client = ""
		}
		text := q.DigestText
		if o.MaxDigestText > 0 && len(text) > o.MaxDigestText {
			text = text[:o.MaxDigestText]
		}
		c.digests.Record(o.MaxEntries, q.Hostgroup, q.Schema, q.User, client, q.Digest, text,
			uint64(us), q.RowsAffected, q.RowsSent, q.End.Unix())
	}
}

// Var is one row of a Variable_Name/Variable_Value table.
type Var struct {
	Name, Value string
}

// Global returns the collector's rows of stats_mysql_global: ProxySQL_Uptime
// first, then every counter in a fixed order. The caller adds the values it
// reads elsewhere (connection pool totals, table versions).
func (c *Collector) Global() []Var {
	out := make([]Var, 0, numCounters+1)
	out = append(out, Var{"ProxySQL_Uptime", strconv.FormatInt(int64(c.Uptime()/time.Second), 10)})
	for k := Counter(0); k < numCounters; k++ {
		out = append(out, Var{k.String(), strconv.FormatInt(c.Value(k), 10)})
	}
	return out
}

// CommandBuckets are the latency columns of stats_mysql_commands_counters:
// each query is counted in exactly one, the first whose bound (µs) is at
// least its time; cnt_INFs takes the rest.
var CommandBuckets = [numBuckets]string{
	"cnt_100us", "cnt_500us", "cnt_1ms", "cnt_5ms", "cnt_10ms", "cnt_50ms",
	"cnt_100ms", "cnt_500ms", "cnt_1s", "cnt_5s", "cnt_10s", "cnt_INFs",
}

var bucketBounds = [numBuckets - 1]uint64{100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000}

const numBuckets = 12

type cmdCounter struct {
	totalUs atomic.Uint64
	cnt     atomic.Uint64
	buckets [numBuckets]atomic.Uint64
}

func (cc *cmdCounter) add(us uint64) {
	cc.totalUs.Add(us)
	cc.cnt.Add(1)
	i := 0
	for i < len(bucketBounds) && us > bucketBounds[i] {
		i++
	}
	cc.buckets[i].Add(1)
}

// CommandRow is one row of stats_mysql_commands_counters.
type CommandRow struct {
	Command     string
	TotalTimeUs uint64
	TotalCnt    uint64
	Buckets     [numBuckets]uint64 // in CommandBuckets order
}

// Commands returns one row per statement kind, in sqlscan.AllKinds order,
// zero rows included (ProxySQL lists every command).
func (c *Collector) Commands() []CommandRow {
	kinds := sqlscan.AllKinds()
	out := make([]CommandRow, len(kinds))
	for i, k := range kinds {
		r := &out[i]
		r.Command = k.String()
		for _, s := range c.shards {
			cc := &s.cmds[i]
			r.TotalTimeUs += cc.totalUs.Load()
			r.TotalCnt += cc.cnt.Load()
			for b := range r.Buckets {
				r.Buckets[b] += cc.buckets[b].Load()
			}
		}
	}
	return out
}

// MemoryBytes estimates what the collector holds: the digest map (keys,
// texts, map overhead) and the counter shards.
func (c *Collector) MemoryBytes() int64 {
	per := int64(numCounters)*8 + 128 + int64(c.kinds)*int64((2+numBuckets)*8)
	return c.digests.MemoryBytes() + per*int64(len(c.shards))
}

// mix64 is a 64-bit finalizer (splitmix64's), used to spread keys.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
