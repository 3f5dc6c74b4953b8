package backend

import (
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/usage"
)

// Status is a server's status (reference §4.1).
type Status int32

// The statuses of mysql_servers, plus SHUNNED_REPLICATION_LAG which exists
// only at runtime.
const (
	StatusOnline Status = iota
	StatusShunned
	StatusOfflineSoft
	StatusOfflineHard
	StatusShunnedReplicationLag
)

var statusNames = [...]string{"ONLINE", "SHUNNED", "OFFLINE_SOFT", "OFFLINE_HARD", "SHUNNED_REPLICATION_LAG"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return "UNKNOWN"
	}
	return statusNames[s]
}

// ParseStatus maps a mysql_servers.status value (any case) to a Status;
// unknown text is ONLINE, the column's default.
func ParseStatus(s string) Status {
	for i, n := range statusNames {
		if strings.EqualFold(s, n) {
			return Status(i)
		}
	}
	return StatusOnline
}

// Key identifies a server: the same host:port in two hostgroups is two
// servers with two pools, as in ProxySQL.
type Key struct {
	Hostgroup int
	Host      string
	Port      int
}

// Addr returns host:port.
func (k Key) Addr() string { return net.JoinHostPort(k.Host, strconv.Itoa(k.Port)) }

// dialAddr is where a connection to the server goes: port 0 makes the
// hostname a Unix socket path, as in ProxySQL's mysql_servers.
func (k Key) dialAddr() (network, addr string) {
	if k.Port == 0 {
		return "unix", k.Host
	}
	return "tcp", k.Addr()
}

// Server is one mysql_servers row at runtime: configuration fields that a
// reload updates in place, health fields a monitor sets, and counters. Every
// field is an atomic, so the data plane reads them without locks. A Server
// must not be copied.
type Server struct {
	// usage is what the server's metrics_url says of its CPU and memory
	// (the balancer's memory and CPU factors); nil when nothing is known.
	usage atomic.Pointer[usage.Usage]
	key   Key
	addr  string
	pool  *Pool

	// Configuration (mysql_servers), replaced by Registry.Reconcile.
	status            atomic.Int32 // Status
	cfgStatus         atomic.Int32 // the status the configuration asked for
	weight            atomic.Int64
	maxConnections    atomic.Int64
	maxLatencyMs      atomic.Int64
	maxReplicationLag atomic.Int64
	compression       atomic.Int64
	useSSL            atomic.Int64
	gtidPort          atomic.Int64
	comment           atomic.Pointer[string]

	// Health. The pool records connect errors; a monitor sets the rest.
	shunnedAuto    atomic.Bool  // SHUNNED by errors, eligible for lazy recovery
	lastErrorNanos atomic.Int64 // time of the last error that counted towards shunning
	errSecond      atomic.Int64 // unix second of the connect errors being counted
	errInSecond    atomic.Int64
	latencyUs      atomic.Int64 // last ping latency in µs (0: unknown)
	readOnly       atomic.Int32 // -1 unknown, 0, 1
	replicationLag atomic.Int64 // seconds; -1 unknown

	// Counters (stats_mysql_connection_pool and the health factor).
	connUsed    atomic.Int64 // connections handed out (including ones being opened)
	busy        atomic.Int64 // connections running a command (BeginCommand … EndCommand)
	connFree    atomic.Int64
	connOK      atomic.Uint64
	mariaDB     atomic.Int64 // the MariaDB version its last handshake gave (101106 for 10.11.6), -1 for another server, 0 unknown
	connERR     atomic.Uint64
	maxConnUsed atomic.Int64
	queries     atomic.Uint64
	queryNanos  atomic.Uint64
	bytesSent   atomic.Uint64 // to the server
	bytesRecv   atomic.Uint64 // from the server
	errors      atomic.Uint64 // failures the proxy observed: lost connections, backend-side errors
	// Commands the proxy sent to bring a connection to a session's state
	// (Com_backend_change_user, _init_db, _set_names).
	changeUsers, initDBs, setNames atomic.Uint64

	// health marks the counters at the start of recent 10-second buckets,
	// so ErrorWindow can tell the failures of the last two minutes.
	health [healthBuckets]healthMark
}

// The error window of the health factor (DESIGN.md §3 "Balancing"): two
// minutes, as TiProxy's error-ratio rules, in 10-second buckets.
const (
	healthBucketSec = 10
	healthBuckets   = 12
)

// healthMark is the value of the cumulative counters when a bucket began
// (as first seen by ErrorWindow). Its fields are separate atomics: a reader
// racing a writer may see one field of the previous bucket, which skews one
// ratio for one call and nothing else, and keeps both paths lock-free.
type healthMark struct {
	bucket atomic.Int64 // unix time / healthBucketSec; 0: never marked
	total  atomic.Uint64
	errors atomic.Uint64
}

func newServer(cs *config.Server, reg *Registry) *Server {
	s := &Server{key: Key{Hostgroup: cs.HostgroupID, Host: cs.Hostname, Port: cs.Port}}
	s.addr = s.key.Addr()
	s.readOnly.Store(-1)
	s.replicationLag.Store(-1)
	st := ParseStatus(cs.Status)
	s.status.Store(int32(st))
	s.cfgStatus.Store(int32(st))
	s.update(cs)
	s.pool = newPool(s, reg)
	return s
}

// update copies the configuration fields of cs. The status is taken only
// when the configuration changed it, so a reload does not revive a server
// its errors shunned.
func (s *Server) update(cs *config.Server) {
	s.weight.Store(int64(cs.Weight))
	s.maxConnections.Store(int64(cs.MaxConnections))
	s.maxLatencyMs.Store(int64(cs.MaxLatencyMs))
	s.maxReplicationLag.Store(int64(cs.MaxReplicationLag))
	s.compression.Store(int64(cs.Compression))
	s.useSSL.Store(int64(cs.UseSSL))
	s.gtidPort.Store(int64(cs.GTIDPort))
	c := cs.Comment
	s.comment.Store(&c)
	st := ParseStatus(cs.Status)
	if Status(s.cfgStatus.Swap(int32(st))) != st {
		s.status.Store(int32(st))
		s.shunnedAuto.Store(false)
	}
}

// Key returns the server's identity.
func (s *Server) Key() Key { return s.key }

// Hostgroup returns the hostgroup id.
func (s *Server) Hostgroup() int { return s.key.Hostgroup }

// Addr returns host:port.
func (s *Server) Addr() string { return s.addr }

// Pool returns the server's connection pool.
func (s *Server) Pool() *Pool { return s.pool }

// Status returns the current status.
func (s *Server) Status() Status { return Status(s.status.Load()) }

// SetStatus sets the status (for a monitor: replication lag, read_only
// moves, ping failures). SHUNNED set here is not recovered lazily; use
// Shun for that.
func (s *Server) SetStatus(st Status) {
	s.shunnedAuto.Store(false)
	s.status.Store(int32(st))
}

// CompareAndSwapStatus sets the status to next if it is old, and reports
// whether it did (for a monitor: the replication lag check's
// SHUNNED_REPLICATION_LAG, which must not overwrite a status that changed
// meanwhile). Like SetStatus, the result is not recovered lazily.
func (s *Server) CompareAndSwapStatus(old, next Status) bool {
	if !s.status.CompareAndSwap(int32(old), int32(next)) {
		return false
	}
	s.shunnedAuto.Store(false)
	return true
}

// Shun marks the server SHUNNED automatically: it comes back by itself once
// the recovery time passed since the last error (Healthy does that).
func (s *Server) Shun(now time.Time) {
	s.lastErrorNanos.Store(now.UnixNano())
	if s.status.CompareAndSwap(int32(StatusOnline), int32(StatusShunned)) {
		s.shunnedAuto.Store(true)
	}
}

// Weight returns mysql_servers.weight.
func (s *Server) Weight() int { return int(s.weight.Load()) }

// MaxConnections returns mysql_servers.max_connections.
func (s *Server) MaxConnections() int { return int(s.maxConnections.Load()) }

// MaxLatencyMs returns mysql_servers.max_latency_ms (0: use the global
// mysql-default_max_latency_ms).
func (s *Server) MaxLatencyMs() int { return int(s.maxLatencyMs.Load()) }

// MaxReplicationLag returns mysql_servers.max_replication_lag.
func (s *Server) MaxReplicationLag() int { return int(s.maxReplicationLag.Load()) }

// Compression, UseSSL and GTIDPort return the mysql_servers columns of the
// same names (kept for runtime_mysql_servers; Sluice does not act on them).
func (s *Server) Compression() int { return int(s.compression.Load()) }

// UseSSL: see Compression.
func (s *Server) UseSSL() int { return int(s.useSSL.Load()) }

// GTIDPort: see Compression.
func (s *Server) GTIDPort() int { return int(s.gtidPort.Load()) }

// Comment returns mysql_servers.comment.
func (s *Server) Comment() string { return *s.comment.Load() }

// ConnScore is the number of connections in use (handed out or being
// opened): what the conn factor of the balancing policy compares.
func (s *Server) ConnScore() int { return int(s.connUsed.Load()) }

// Busy is the number of the server's connections running a command now:
// what the conn factor compares when a command picks a server.
func (s *Server) Busy() int { return int(s.busy.Load()) }

// BeginCommand and EndCommand bracket a command a session runs on one of
// the server's connections (Busy).
func (s *Server) BeginCommand() { s.busy.Add(1) }

// EndCommand: see BeginCommand.
func (s *Server) EndCommand() { s.busy.Add(-1) }

// LatencyUs returns the last measured ping latency in microseconds, 0 when
// unknown.
func (s *Server) LatencyUs() int64 { return s.latencyUs.Load() }

// SetLatency records a ping latency (monitor).
func (s *Server) SetLatency(d time.Duration) { s.latencyUs.Store(max(d.Microseconds(), 1)) }

// ReadOnly returns the last read_only value seen (-1: unknown).
func (s *Server) ReadOnly() int { return int(s.readOnly.Load()) }

// SetReadOnly records read_only (monitor).
func (s *Server) SetReadOnly(v bool) {
	if v {
		s.readOnly.Store(1)
	} else {
		s.readOnly.Store(0)
	}
}

// ReplicationLag returns the last lag seen in seconds (-1: unknown).
func (s *Server) ReplicationLag() int64 { return s.replicationLag.Load() }

// SetReplicationLag records the lag (monitor).
func (s *Server) SetReplicationLag(sec int64) { s.replicationLag.Store(sec) }

// Healthy reports whether the server may be picked now: ONLINE, or SHUNNED
// automatically and past its recovery time, in which case it is brought
// back ONLINE here: ProxySQL unshuns lazily, when traffic tries to use the
// hostgroup (reference §4.1).
func (s *Server) Healthy() bool { return s.unshunAfter(1) }

// UnshunEarly is ProxySQL's "desperate" pass (#531), for a hostgroup in
// which no server can be picked: an automatically shunned server comes back
// once a tenth of its recovery time has passed since its last error, so a
// hostgroup of one server that failed for a moment (a restart) serves again
// after about a second instead of the whole recovery time. It reports
// whether the server is ONLINE.
func (s *Server) UnshunEarly() bool { return s.unshunAfter(10) }

// unshunAfter reports whether the server is ONLINE, bringing an
// automatically shunned one back once the recovery time divided by div has
// passed since its last error.
func (s *Server) unshunAfter(div time.Duration) bool {
	switch Status(s.status.Load()) {
	case StatusOnline:
		return true
	case StatusShunned:
		if !s.shunnedAuto.Load() || s.pool == nil || s.pool.reg == nil {
			return false
		}
		o := s.pool.reg.options()
		if div == 1 && o.ShunRecoveryTime <= 0 {
			// mysql-shun_recovery_time_sec=0: no recovery with time, as in
			// ProxySQL; only the desperate pass brings the server back.
			return false
		}
		wait := o.shunWait() / div
		if time.Since(time.Unix(0, s.lastErrorNanos.Load())) < wait {
			return false
		}
		if s.status.CompareAndSwap(int32(StatusShunned), int32(StatusOnline)) {
			s.shunnedAuto.Store(false)
			s.errInSecond.Store(0)
		}
		return Status(s.status.Load()) == StatusOnline
	}
	return false
}

// connectFailed counts a failed connect towards shunning: errors are
// counted per second, and reaching the threshold within one second shuns
// the server (reference §4.1). It returns the errors counted in this second
// when that shunned the server, else 0.
func (s *Server) connectFailed(err error, now time.Time, threshold int) int64 {
	s.connERR.Add(1)
	if !countsAsConnectError(err) {
		return 0
	}
	s.errors.Add(1)
	sec := now.Unix()
	if old := s.errSecond.Load(); old != sec && s.errSecond.CompareAndSwap(old, sec) {
		s.errInSecond.Store(0)
	}
	// As MySrvC::connect_error: the first error of a second only starts
	// the count, so two are needed whatever the threshold (0 included:
	// it does not turn shunning off).
	if n := s.errInSecond.Add(1); n >= int64(max(threshold, 2)) {
		wasOnline := s.Status() == StatusOnline
		s.Shun(now)
		if wasOnline && s.Status() == StatusShunned {
			return n
		}
	}
	return 0
}

// CountQuery records one query served by the server and the time it took.
func (s *Server) CountQuery(d time.Duration) {
	s.queries.Add(1)
	if d > 0 {
		s.queryNanos.Add(uint64(d))
	}
}

// CountError records a failure the proxy observed on this server (a lost
// connection, a backend-side error): the health factor's input.
func (s *Server) CountError() { s.errors.Add(1) }

// ErrorWindow returns the failures the proxy observed on the server
// (connect errors, lost connections, backend-side failures: CountError) and
// all operations (those failures plus the queries served) over about the
// last two minutes: since the first call in the 10-second bucket that began
// up to 110 s before now. It marks the current bucket on its first call in
// it, so the window is kept by the readers alone and the query path only
// bumps its counters. A window nobody read for two minutes starts afresh.
func (s *Server) ErrorWindow(now time.Time) (failures, total uint64) {
	errs := s.errors.Load()
	tot := s.queries.Load() + errs
	b := now.Unix() / healthBucketSec
	m := &s.health[b%healthBuckets]
	if m.bucket.Load() != b {
		// Counters first, bucket last: a reader that sees the new bucket
		// number sees this bucket's counters (or a concurrent marker's,
		// which are as good).
		m.total.Store(tot)
		m.errors.Store(errs)
		m.bucket.Store(b)
	}
	oldest := m
	for i := range s.health {
		h := &s.health[i]
		if hb := h.bucket.Load(); hb > b-healthBuckets && hb < oldest.bucket.Load() {
			oldest = h
		}
	}
	t0, e0 := oldest.total.Load(), oldest.errors.Load()
	if t0 > tot || e0 > errs { // a racing marker stored newer counters
		return 0, 0
	}
	return errs - e0, tot - t0
}

// Stats is a snapshot of a server's counters, shaped like a row of
// stats_mysql_connection_pool.
type Stats struct {
	Hostgroup   int
	Host        string
	Port        int
	Status      Status
	ConnUsed    int64
	ConnFree    int64
	ConnOK      uint64
	ConnERR     uint64
	MaxConnUsed int64
	Queries     uint64
	QueryTime   time.Duration // total time of counted queries
	BytesSent   uint64        // Bytes_data_sent: to the server
	BytesRecv   uint64        // Bytes_data_recv: from the server
	LatencyUs   int64
	Errors      uint64
	// ChangeUsers, InitDBs and SetNames count the COM_CHANGE_USER,
	// COM_INIT_DB and SET NAMES the proxy sent to the server.
	ChangeUsers, InitDBs, SetNames uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Hostgroup: s.key.Hostgroup, Host: s.key.Host, Port: s.key.Port,
		Status:   Status(s.status.Load()),
		ConnUsed: s.connUsed.Load(), ConnFree: s.connFree.Load(),
		ConnOK: s.connOK.Load(), ConnERR: s.connERR.Load(), MaxConnUsed: s.maxConnUsed.Load(),
		Queries: s.queries.Load(), QueryTime: time.Duration(s.queryNanos.Load()),
		BytesSent: s.bytesSent.Load(), BytesRecv: s.bytesRecv.Load(),
		LatencyUs: s.latencyUs.Load(), Errors: s.errors.Load(),
		ChangeUsers: s.changeUsers.Load(), InitDBs: s.initDBs.Load(), SetNames: s.setNames.Load(),
	}
}

func (s *Server) noteUsed(n int64) {
	for {
		m := s.maxConnUsed.Load()
		if n <= m || s.maxConnUsed.CompareAndSwap(m, n) {
			return
		}
	}
}

// Usage returns what the server's metrics say of its CPU and memory, nil
// when nothing is known.
func (s *Server) Usage() *usage.Usage { return s.usage.Load() }

// SetUsage publishes a new picture of the server's CPU and memory (the
// metrics scraper).
func (s *Server) SetUsage(u *usage.Usage) { s.usage.Store(u) }

// NoteVersion records the version string of a handshake of the server
// (a pooled or a monitor connection).
func (s *Server) NoteVersion(v string) { s.mariaDB.Store(MariaDBVersion(v)) }

// MariaDBVersionNumber returns the server's MariaDB version as MariaDB's
// executable comments number it (101106 for 10.11.6), -1 when the server
// is not MariaDB, 0 before a handshake was seen.
func (s *Server) MariaDBVersionNumber() int64 { return s.mariaDB.Load() }

// MariaDBVersion reads a version string that presents MariaDB
// ("10.11.6-MariaDB-log", "5.5.5-10.11.6-MariaDB") as a /*M!NNNNNN number;
// -1 for any other server.
func MariaDBVersion(v string) int64 {
	if !strings.Contains(strings.ToLower(v), "mariadb") {
		return -1
	}
	v = strings.TrimPrefix(v, "5.5.5-")
	var n [3]int64
	i := 0
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n[i] = n[i]*10 + int64(c-'0')
		case c == '.' && i < 2:
			i++
		default:
			return n[0]*10000 + n[1]*100 + n[2]
		}
	}
	return n[0]*10000 + n[1]*100 + n[2]
}
