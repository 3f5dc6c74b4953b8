// Package backend owns everything Sluice keeps per backend server: the
// registry of servers keyed by (hostgroup, host, port) with their live
// atomics (status, weight, limits, health, counters), one connection pool
// per server, and the backend connection itself (dial, client handshake,
// login with a clear-text password or only SHA1(password), session state
// sync, reset).
//
// Servers, pools and counters live outside the configuration snapshot:
// Registry.Reconcile applies a new mysql_servers table by updating existing
// servers in place, so LOAD MYSQL SERVERS TO RUNTIME drops no socket and
// resets no counter (DESIGN.md §3). The data plane reads a hostgroup's
// servers through an immutable slice behind an atomic pointer and never
// takes a registry lock.
//
// A BackendConn belongs to one goroutine at a time: the pool hands it out
// with Pool.Get and takes it back with Pool.Put (or the holder closes it).
// Its *wire.Conn is exposed so the router can forward packets directly.
//
// The Monitor (monitor*.go) checks servers on its own connections and sets
// the health atomics on Server: latency, ping shunning, read_only and the
// writer/reader moves of mysql_replication_hostgroups.
//
// What this package does not do: decide whether a connection may be shared
// (multiplexing rules, reference §5.2, belong to the router).
package backend
