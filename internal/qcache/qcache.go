// Package qcache is ProxySQL's query cache (reference §7): the packets of
// a SELECT's response, as sent to a client, kept for the rule's cache_ttl
// and served to the next identical query of the same user, schema and
// client dialect without a backend.
//
// The cache is split into shards by key hash, each with its own lock, map
// and LRU list, so concurrent sessions rarely meet; the size bound
// (mysql-query_cache_size_MB) is the whole cache's, as ProxySQL's, so one
// response may take up to all of it; only queries that a cache_ttl rule
// matches ever touch it. An entry is written once and never changed, so a
// hit copies nothing under the lock: the caller gets the immutable bytes.
package qcache

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const shards = 16

// entryOverhead approximates what an entry costs besides its key and data
// (map slot, list element, struct), for the size bound.
const entryOverhead = 160

// Cache is a bounded, TTL-based cache of responses. The zero value is not
// usable; use New. Safe for concurrent use.
type Cache struct {
	seed   maphash.Seed
	shards [shards]shard
	limit  atomic.Int64  // bytes, over all shards
	held   atomic.Int64  // bytes held, over all shards
	next   atomic.Uint32 // the shard evictOthers starts with

	// ProxySQL's Query_Cache_* counters.
	gets, getsOK, sets, bytesIn, bytesOut, purged atomic.Uint64
}

type shard struct {
	mu    sync.Mutex
	m     map[string]*list.Element
	lru   list.List // front: most recently used
	bytes int64
}

type entry struct {
	key        string
	data       []byte
	stored     int64 // unix ns
	expires    int64 // unix ns
	refreshing atomic.Bool
}

func (e *entry) size() int64 { return int64(len(e.key)+len(e.data)) + entryOverhead }

// New returns an empty cache bounded to limit bytes.
func New(limit int64) *Cache {
	c := &Cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*list.Element)
	}
	c.limit.Store(limit)
	return c
}

func (c *Cache) shard(key []byte) *shard {
	return &c.shards[maphash.Bytes(c.seed, key)%shards]
}

// Get returns the response stored under key, if it has not expired. With
// softTTLPct > 0, once an entry is that far into its TTL, the first Get
// after that point reports a miss (refresh true) so that one query goes to
// the backend and stores a fresh copy, while the others keep hitting the
// old one (mysql-query_cache_soft_ttl_pct). The bytes returned must not be
// modified.
func (c *Cache) Get(key []byte, now time.Time, softTTLPct int) (data []byte, ok bool) {
	c.gets.Add(1)
	sh := c.shard(key)
	ns := now.UnixNano()
	sh.mu.Lock()
	el, found := sh.m[string(key)]
	if !found {
		sh.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*entry)
	if ns >= e.expires {
		c.remove(sh, el)
		sh.mu.Unlock()
		c.purged.Add(1)
		return nil, false
	}
	sh.lru.MoveToFront(el)
	sh.mu.Unlock()
	if softTTLPct > 0 && softTTLPct < 100 {
		soft := e.stored + (e.expires-e.stored)*int64(softTTLPct)/100
		if ns >= soft && e.refreshing.CompareAndSwap(false, true) {
			return nil, false // this one refreshes the entry
		}
	}
	c.getsOK.Add(1)
	c.bytesOut.Add(uint64(len(e.data)))
	return e.data, true
}

// Set stores data (which the cache keeps: the caller must not reuse it)
// under key for ttl, replacing an older copy, and while the cache is over
// its size bound evicts the least recently used entries of the key's
// shard, then of the others. A response larger than the bound is not
// stored.
func (c *Cache) Set(key, data []byte, ttl time.Duration, now time.Time) bool {
	e := &entry{key: string(key), data: data, stored: now.UnixNano(), expires: now.Add(ttl).UnixNano()}
	limit := c.limit.Load()
	if e.size() > limit {
		return false
	}
	sh := c.shard(key)
	sh.mu.Lock()
	if old, ok := sh.m[e.key]; ok {
		c.remove(sh, old)
	}
	sh.m[e.key] = sh.lru.PushFront(e)
	sh.bytes += e.size()
	c.held.Add(e.size())
	evicted := 0
	for c.held.Load() > limit {
		back := sh.lru.Back()
		if back == nil || back.Value.(*entry) == e {
			break
		}
		c.remove(sh, back)
		evicted++
	}
	sh.mu.Unlock()
	if c.held.Load() > limit {
		evicted += c.evictOthers(limit, sh)
	}
	c.sets.Add(1)
	c.bytesIn.Add(uint64(len(data)))
	c.purged.Add(uint64(evicted))
	return true
}

// evictOthers evicts the least recently used entries of the shards other
// than skip, one shard's oldest at a time in turn, until the cache is
// within limit or they are empty; it returns how many it evicted. It never
// holds two shards' locks.
func (c *Cache) evictOthers(limit int64, skip *shard) int {
	n, empty := 0, 0
	for i := c.next.Add(1); c.held.Load() > limit && empty < shards; i++ {
		sh := &c.shards[i%shards]
		if sh == skip {
			empty++
			continue
		}
		sh.mu.Lock()
		if back := sh.lru.Back(); back != nil {
			c.remove(sh, back)
			n++
			empty = 0
		} else {
			empty++
		}
		sh.mu.Unlock()
	}
	return n
}

// remove drops el from sh, whose lock the caller holds.
func (c *Cache) remove(sh *shard, el *list.Element) {
	e := el.Value.(*entry)
	sh.lru.Remove(el)
	delete(sh.m, e.key)
	sh.bytes -= e.size()
	c.held.Add(-e.size())
}

// SetLimit changes the size bound (mysql-query_cache_size_MB); entries
// over it go at the next Set, or at Purge.
func (c *Cache) SetLimit(bytes int64) { c.limit.Store(bytes) }

// Purge drops expired entries, and entries over the size bound, in every
// shard; it returns how many it dropped.
func (c *Cache) Purge(now time.Time) int {
	ns := now.UnixNano()
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for el := sh.lru.Back(); el != nil; {
			prev := el.Prev()
			if e := el.Value.(*entry); ns >= e.expires {
				c.remove(sh, el)
				n++
			}
			el = prev
		}
		sh.mu.Unlock()
	}
	if limit := c.limit.Load(); c.held.Load() > limit {
		n += c.evictOthers(limit, nil)
	}
	c.purged.Add(uint64(n))
	return n
}

// Flush empties the cache (PROXYSQL FLUSH QUERY CACHE) and returns how
// many entries it held.
func (c *Cache) Flush() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.m = make(map[string]*list.Element)
		sh.lru.Init()
		c.held.Add(-sh.bytes)
		sh.bytes = 0
		sh.mu.Unlock()
	}
	c.purged.Add(uint64(n))
	return n
}

// Stats are the Query_Cache_* rows of stats_mysql_global.
type Stats struct {
	MemoryBytes, Entries                       int64
	GET, GETOK, SET, BytesIN, BytesOUT, Purged uint64
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	st := Stats{GET: c.gets.Load(), GETOK: c.getsOK.Load(), SET: c.sets.Load(),
		BytesIN: c.bytesIn.Load(), BytesOUT: c.bytesOut.Load(), Purged: c.purged.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.MemoryBytes += sh.bytes
		st.Entries += int64(len(sh.m))
		sh.mu.Unlock()
	}
	return st
}
