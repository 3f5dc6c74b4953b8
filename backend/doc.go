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
// It owns its I/O: Run sends a command and streams the response to a Sink
// (a client connection, nobody, or a Result the proxy reads itself) through
// the one response walker (stream.go); prepared statements live on it
// (stmt.go). The pool options a connection works under come from the
// holder's runtime (Pool.Get, Sync), not from the registry's newest.
//
// The monitor is package backend/monitor: it checks servers on its own
// connections (Dial) and sets the health state of Server (latency, ping
// shunning, read_only) and the writer/reader moves of
// mysql_replication_hostgroups (hostgroups.go), through this package's
// exported API only (export.go).
//
// What this package does not do: decide whether a connection may be shared
// (multiplexing rules, reference §5.2, belong to the router).
package backend
