package router

import (
	"strconv"
	"testing"
)

// TestStmtCachePurgesUnreferenced: a full statement cache drops the
// statements no client and no backend connection references before it
// refuses a new one (it used to stay full of them for good, and every new
// text then went uncached); statements in use stay.
func TestStmtCachePurgesUnreferenced(t *testing.T) {
	var c stmtCache
	key := func(i int) stmtKey { return stmtKey{user: "u", query: "SELECT " + strconv.Itoa(i)} }
	held := &globalStmt{}
	held.clients.Add(1)
	onServer := &globalStmt{}
	onServer.servers.Add(1)
	c.put(key(0), held, 3)
	c.put(key(1), onServer, 3)
	c.put(key(2), &globalStmt{}, 3) // nobody's
	g := &globalStmt{}
	if got := c.put(key(3), g, 3); got != g || c.get(key(3)) != g {
		t.Fatal("a full cache with an unreferenced statement did not take a new one")
	}
	if c.get(key(2)) != nil || c.get(key(0)) != held || c.get(key(1)) != onServer || c.len() != 3 {
		t.Fatalf("after the purge: %d cached, unreferenced kept %v", c.len(), c.get(key(2)) != nil)
	}
	// Full of statements in use: the new one serves uncached.
	g.clients.Add(1)
	g4 := &globalStmt{}
	if got := c.put(key(4), g4, 3); got != g4 || c.get(key(4)) != nil || c.len() != 3 {
		t.Fatalf("a cache full of statements in use: cached %v, %d entries", c.get(key(4)) != nil, c.len())
	}
}
