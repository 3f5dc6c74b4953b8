package qcache

import (
	"fmt"
	"testing"
	"time"
)

func TestGetSetExpire(t *testing.T) {
	c := New(1 << 20)
	now := time.Unix(1000, 0)
	if _, ok := c.Get([]byte("k"), now, 0); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Set([]byte("k"), []byte("data"), time.Second, now)
	if d, ok := c.Get([]byte("k"), now.Add(999*time.Millisecond), 0); !ok || string(d) != "data" {
		t.Fatalf("get before the TTL: %q %v", d, ok)
	}
	if _, ok := c.Get([]byte("k"), now.Add(time.Second), 0); ok {
		t.Fatal("hit at the TTL")
	}
	st := c.Stats()
	if st.GET != 3 || st.GETOK != 1 || st.SET != 1 || st.Entries != 0 || st.Purged != 1 || st.BytesIN != 4 || st.BytesOUT != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSoftTTL(t *testing.T) {
	c := New(1 << 20)
	now := time.Unix(1000, 0)
	c.Set([]byte("k"), []byte("v"), 10*time.Second, now)
	at := now.Add(6 * time.Second) // past 50 %
	if _, ok := c.Get([]byte("k"), at, 50); ok {
		t.Fatal("the first get past the soft TTL must refresh (miss)")
	}
	for range 3 {
		if _, ok := c.Get([]byte("k"), at, 50); !ok {
			t.Fatal("the others keep hitting while one refreshes")
		}
	}
	c.Set([]byte("k"), []byte("v2"), 10*time.Second, at)
	if d, ok := c.Get([]byte("k"), at, 50); !ok || string(d) != "v2" {
		t.Fatalf("after the refresh: %q %v", d, ok)
	}
}

// TestBound: the cache never holds more than its bound, evicting the least
// recently used, however many distinct responses are stored.
func TestBound(t *testing.T) {
	const limit = 1 << 20
	c := New(limit)
	now := time.Unix(1000, 0)
	data := make([]byte, 1000)
	hot := []byte("hot")
	c.Set(hot, data, time.Hour, now)
	for i := range 100_000 {
		c.Set([]byte(fmt.Sprintf("key-%d", i)), data, time.Hour, now)
		if i%100 == 0 {
			c.Get(hot, now, 0) // recently used: survives
		}
		if st := c.Stats(); i%10_000 == 0 && st.MemoryBytes > limit {
			t.Fatalf("%d bytes held, bound %d", st.MemoryBytes, limit)
		}
	}
	st := c.Stats()
	if st.MemoryBytes > limit || st.Entries == 0 || st.Purged == 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := c.Get(hot, now, 0); !ok {
		t.Fatal("the recently used entry was evicted")
	}
	if c.Set([]byte("huge"), make([]byte, limit), time.Hour, now) {
		t.Fatal("a response larger than the bound was stored")
	}
	// The bound is the whole cache's, not a shard's: a response of half
	// of it is stored, and evicts entries of other shards to fit.
	if !c.Set([]byte("half"), make([]byte, limit/2), time.Hour, now) {
		t.Fatal("a response of half the bound was not stored")
	}
	if _, ok := c.Get([]byte("half"), now, 0); !ok {
		t.Fatal("the large response is not there")
	}
	if st := c.Stats(); st.MemoryBytes > limit || st.MemoryBytes < limit/2 {
		t.Fatalf("after the large response: %+v", st)
	}
	if n := c.Flush(); n == 0 || c.Stats().Entries != 0 || c.Stats().MemoryBytes != 0 {
		t.Fatalf("flush: %d, %+v", n, c.Stats())
	}
}

func TestPurge(t *testing.T) {
	c := New(1 << 20)
	now := time.Unix(1000, 0)
	for i := range 10 {
		c.Set([]byte{byte(i)}, []byte("x"), time.Duration(i+1)*time.Second, now)
	}
	if n := c.Purge(now.Add(5 * time.Second)); n != 5 {
		t.Fatalf("purged %d, want 5", n)
	}
	c.SetLimit(0)
	if n := c.Purge(now); n != 5 || c.Stats().Entries != 0 {
		t.Fatalf("purge over a zero bound: %d, %+v", n, c.Stats())
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New(1 << 20)
	now := time.Now()
	key := []byte("sbtest\x00sbtest\x001\x00SELECT c FROM sbtest1 WHERE id=1")
	c.Set(key, make([]byte, 200), time.Hour, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(key, now, 0); !ok {
			b.Fatal("miss")
		}
	}
}
