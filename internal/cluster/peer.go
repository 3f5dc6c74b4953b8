package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// Bounds of one poll: ProxySQL connects with a 1 s timeout; reads are
// bounded here too, so that a peer that stops answering never holds a
// poller (or a pull, and the module's sync lock) for long.
const (
	connectTimeout = time.Second
	ioTimeout      = 10 * time.Second
	// maxFetchRows and maxFetchBytes bound what one pull may make this
	// node hold: the rows come from another process.
	maxFetchRows  = 1_000_000
	maxFetchBytes = 256 << 20
)

// peerChecksum is what this node knows of one checksum row of a peer
// (ProxySQL_Checksum_Value_2).
type peerChecksum struct {
	version, epoch       int64
	checksum             string
	changedAt, updatedAt int64
	diffCheck            int64
}

// peer is one proxysql_servers row and what its poller learned. Guarded by
// Manager.mu.
type peer struct {
	host    string
	port    int
	weight  int
	comment string

	// version is the peer's SELECT @@version, ips the addresses its
	// hostname resolved to (PeerVersion).
	version string
	ips     []net.IP

	checksums  map[string]*peerChecksum
	global     int64 // last SELECT GLOBAL_CHECKSUM()
	haveGlobal bool

	// stats_proxysql_servers_metrics
	metricsAt                  time.Time
	responseMs                 int64
	uptime, queries            int64
	clientsConnected, clientsC int64

	// stats_proxysql_servers_status
	lastOK             time.Time
	pingUs             int64
	checksOK, checksER int64
}

func newPeer(ps config.ProxySQLServer) *peer {
	return &peer{host: ps.Hostname, port: ps.Port, weight: ps.Weight, comment: ps.Comment,
		checksums: make(map[string]*peerChecksum)}
}

func (p *peer) name() string { return nodeName(p.host, p.port) }

// poller is the goroutine of one peer.
type poller struct {
	key    peerKey
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *poller) stop() {
	p.cancel()
	<-p.done
}

func (m *Manager) startPoller(pe *peer, key peerKey) *poller {
	ctx, cancel := context.WithCancel(m.ctx)
	p := &poller{key: key, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		m.poll(ctx, pe, key)
	}()
	return p
}

// openDB is a connection pool to a peer's admin port with the cluster
// credentials, bounded in time.
func openDB(host string, port int, user, pass string) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Passwd = user, pass
	c.Net, c.Addr = "tcp", nodeName(host, port)
	c.Timeout, c.ReadTimeout, c.WriteTimeout = connectTimeout, ioTimeout, ioTimeout
	c.AllowNativePasswords = true
	c.DialFunc = dialLimited // a peer's packets are bounded before they are allocated
	conn, err := mysql.NewConnector(c)
	if err != nil { // only for an invalid config, which this one is not
		panic(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	return db
}

// interval is admin-cluster_check_interval_ms (10 ms at least).
func interval(rt *config.Snapshot) time.Duration {
	return max(rt.Millis("admin-cluster_check_interval_ms"), 10*time.Millisecond)
}

// sleep waits d or until ctx ends; false when it ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// poll is ProxySQL_Cluster_Monitor_thread: connect, SELECT @@version,
// register with PROXYSQL CLUSTER_NODE_UUID, then every
// admin-cluster_check_interval_ms SELECT GLOBAL_CHECKSUM() and, when it
// changed, SELECT * FROM runtime_checksums_values ORDER BY name; every
// admin-cluster_check_status_frequency checks, the peer's
// stats_mysql_global. After a failure it reconnects after an interval.
func (m *Manager) poll(ctx context.Context, pe *peer, key peerKey) {
	if key.user == "" {
		// ProxySQL does not monitor with an empty admin-cluster_username.
		<-ctx.Done()
		return
	}
	db := openDB(key.host, key.port, key.user, key.pass)
	defer db.Close()
	// Failures in a row: the first is logged, then every errorLogEvery-th
	// and any with another error, as ProxySQL logs a peer's errors; a
	// check that succeeds in between starts the count again, so a peer
	// that goes down after working is logged.
	fails, lastMsg := 0, ""
	for ctx.Err() == nil {
		m.mu.Lock()
		okBefore := pe.checksOK
		m.mu.Unlock()
		err := m.session(ctx, db, pe)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		pe.checksER++
		pe.haveGlobal = false
		if pe.checksOK != okBefore {
			fails = 0
		}
		m.mu.Unlock()
		fails++
		if msg := err.Error(); fails == 1 || fails%errorLogEvery == 0 || msg != lastMsg {
			m.log.Warn().Err(err).Str("peer", pe.name()).Int("failures_in_a_row", fails).
				Msg("Cluster: unable to query peer; retrying every check interval")
			lastMsg = msg
		}
		wait := interval(m.cfg.Runtime())
		if errors.Is(err, errNotProxySQL) {
			wait = notProxySQLBackoff
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// errorLogEvery: a peer's failures in a row are logged once every this
// many (ProxySQL's QUERY_ERROR_RATE).
const errorLogEvery = 20

// errNotProxySQL: the peer answers, but SELECT @@version names no ProxySQL
// 2.x (nor Sluice): it is asked again after notProxySQLBackoff, as ProxySQL
// waits 30 s after "different ProxySQL version with peer".
var errNotProxySQL = errors.New("the peer is not ProxySQL 2.x or Sluice")

const notProxySQLBackoff = 30 * time.Second

// proxySQLVersion reports whether version, a peer's @@version, is ProxySQL
// 2.x's (2.7.2-…) or Sluice's admin (2.7.1-sluice).
func proxySQLVersion(version string) bool {
	return len(version) > 2 && strings.HasPrefix(version, "2.") && version[2] >= '0' && version[2] <= '9'
}

// session is one connection's life: it returns the error that ended it.
func (m *Manager) session(ctx context.Context, db *sql.DB, pe *peer) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout+ioTimeout)
	conn, err := db.Conn(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	var version string
	if err := queryRow(ctx, conn, "SELECT @@version", &version); err != nil {
		return err
	}
	if !proxySQLVersion(version) {
		return fmt.Errorf("%w: SELECT @@version answers %q", errNotProxySQL, version)
	}
	ips := resolve(ctx, pe.host)
	m.mu.Lock()
	news := pe.version != version
	pe.version, pe.ips = version, ips
	m.mu.Unlock()
	if news {
		m.log.Info().Str("peer", pe.name()).Str("version", version).Msg("Cluster: clustering with peer")
	}
	rt := m.cfg.Runtime()
	reg := "PROXYSQL CLUSTER_NODE_UUID " + m.cfg.UUID + " " + rt.Var("admin-mysql_ifaces")
	if err := exec(ctx, conn, reg); err != nil {
		return fmt.Errorf("%s: %w", reg, err)
	}
	count := int64(0)
	for ctx.Err() == nil {
		start := time.Now()
		rt := m.cfg.Runtime()
		var global int64
		if err := queryRow(ctx, conn, "SELECT GLOBAL_CHECKSUM()", &global); err != nil {
			return err
		}
		ping := time.Since(start)
		m.mu.Lock()
		changed := !pe.haveGlobal || pe.global != global
		pe.global, pe.haveGlobal = global, true
		pe.pingUs = ping.Microseconds()
		m.mu.Unlock()
		var rows [][]sql.NullString
		if changed {
			_, r, err := fetch(ctx, conn, "SELECT * FROM runtime_checksums_values ORDER BY name")
			if err != nil {
				return err
			}
			rows = r
		}
		if err := m.setChecksums(pe, rows, changed); err != nil {
			return err
		}
		count++
		if freq := rt.Int("admin-cluster_check_status_frequency"); freq > 0 && count%freq == 0 {
			if err := m.fetchMetrics(ctx, conn, pe); err != nil {
				return err
			}
		}
		m.mu.Lock()
		pe.checksOK++
		pe.lastOK = time.Now()
		m.mu.Unlock()
		m.syncAll(ctx, pe)
		if !sleep(ctx, interval(rt)-time.Since(start)) {
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// setChecksums is ProxySQL_Node_Entry::set_checksums: with the peer's
// runtime_checksums_values rows (changed) each row updates the peer's
// version and epoch, a new checksum restarts diff_check at 1, the same one
// increments it; without rows (the global checksum did not change) every
// diff_check increments. A checksum equal to this node's resets it to 0.
func (m *Manager) setChecksums(pe *peer, rows [][]sql.NullString, changed bool) error {
	own, err := m.cfg.Store.Checksums()
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	if changed {
		for _, r := range rows {
			if len(r) < 4 {
				return errors.New("runtime_checksums_values has fewer than 4 columns")
			}
			name := r[0].String
			if _, ok := own[name]; !ok {
				continue // a module this node does not have (ldap_variables)
			}
			v, err1 := strconv.ParseInt(r[1].String, 10, 64)
			e, err2 := strconv.ParseInt(r[2].String, 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("runtime_checksums_values row %q: bad version or epoch", name)
			}
			c := pe.checksums[name]
			if c == nil {
				c = &peerChecksum{}
				pe.checksums[name] = c
			}
			c.version, c.epoch, c.updatedAt = v, e, now
			if c.checksum != r[3].String {
				c.checksum, c.changedAt, c.diffCheck = r[3].String, now, 1
			} else {
				c.diffCheck++
			}
		}
	}
	for name, c := range pe.checksums {
		if !changed {
			c.updatedAt = now
			c.diffCheck++
		}
		if o, ok := own[name]; ok && o.Checksum == c.checksum {
			c.diffCheck = 0
		}
	}
	return nil
}

// fetchMetrics is Update_Node_Metrics: the peer's stats_mysql_global.
func (m *Manager) fetchMetrics(ctx context.Context, conn *sql.Conn, pe *peer) error {
	start := time.Now()
	_, rows, err := fetch(ctx, conn, "SELECT * FROM stats_mysql_global ORDER BY Variable_Name")
	if err != nil {
		return err
	}
	rt := time.Since(start)
	val := func(name string) int64 {
		for _, r := range rows {
			if len(r) >= 2 && r[0].String == name {
				n, _ := strconv.ParseInt(r[1].String, 10, 64)
				return n
			}
		}
		return 0
	}
	m.mu.Lock()
	pe.metricsAt = time.Now()
	pe.responseMs = rt.Milliseconds()
	pe.uptime, pe.queries = val("ProxySQL_Uptime"), val("Questions")
	pe.clientsConnected, pe.clientsC = val("Client_Connections_connected"), val("Client_Connections_created")
	m.mu.Unlock()
	return nil
}

func queryRow(ctx context.Context, conn *sql.Conn, q string, dst any) error {
	qctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	return conn.QueryRowContext(qctx, q).Scan(dst)
}

func exec(ctx context.Context, conn *sql.Conn, q string) error {
	qctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	_, err := conn.ExecContext(qctx, q)
	return err
}

// fetch runs q and returns its columns and rows as text, within the bounds
// of one pull.
func fetch(ctx context.Context, conn *sql.Conn, q string) ([]string, [][]sql.NullString, error) {
	qctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	rows, err := conn.QueryContext(qctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]sql.NullString
	size := 0
	for rows.Next() {
		if len(out) >= maxFetchRows || size > maxFetchBytes {
			return nil, nil, fmt.Errorf("%s: more than %d rows or %d bytes", q, maxFetchRows, maxFetchBytes)
		}
		r := make([]sql.NullString, len(cols))
		dst := make([]any, len(cols))
		for i := range r {
			dst[i] = &r[i]
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, nil, err
		}
		for _, f := range r {
			size += len(f.String) + 16
		}
		out = append(out, r)
	}
	return cols, out, rows.Err()
}

// RefreshTables rewrites, of stats_proxysql_servers_checksums, _metrics
// and _status, those among names (lower-case table names a statement
// reads) from what the pollers know. The admin calls it just before such a
// statement runs, as ProxySQL generates these tables on read: the pollers
// themselves never write to the store.
func (m *Manager) RefreshTables(names []string) {
	var want [3]bool
	for _, n := range names {
		switch n {
		case "stats_proxysql_servers_checksums":
			want[0] = true
		case "stats_proxysql_servers_metrics":
			want[1] = true
		case "stats_proxysql_servers_status":
			want[2] = true
		}
	}
	if want != [3]bool{} {
		m.writeStats(want)
	}
}

// writeStats rewrites the tables of RefreshTables that want selects.
func (m *Manager) writeStats(want [3]bool) {
	now := time.Now()
	var sums, metrics, status [][]any
	m.mu.Lock()
	for _, pe := range m.peers {
		for name, c := range pe.checksums {
			sums = append(sums, []any{pe.host, pe.port, name, c.version, c.epoch, c.checksum, c.changedAt, c.updatedAt, c.diffCheck})
		}
		lastCheck := int64(0)
		if !pe.metricsAt.IsZero() {
			lastCheck = now.Sub(pe.metricsAt).Milliseconds()
		}
		metrics = append(metrics, []any{pe.host, pe.port, pe.weight, pe.comment, pe.responseMs, pe.uptime,
			lastCheck, pe.queries, pe.clientsConnected, pe.clientsC})
		age := int64(0)
		if !pe.lastOK.IsZero() {
			age = now.Sub(pe.lastOK).Microseconds()
		}
		status = append(status, []any{pe.host, pe.port, pe.weight, "", pe.global, age, pe.pingUs, pe.checksOK, pe.checksER})
	}
	m.mu.Unlock()
	ctx := context.Background()
	st := m.cfg.Store
	var errs error
	if want[0] {
		errs = errors.Join(errs, st.ReplaceTable(ctx, "stats_proxysql_servers_checksums",
			[]string{"hostname", "port", "name", "version", "epoch", "checksum", "changed_at", "updated_at", "diff_check"}, sums))
	}
	if want[1] {
		errs = errors.Join(errs, st.ReplaceTable(ctx, "stats_proxysql_servers_metrics",
			[]string{"hostname", "port", "weight", "comment", "response_time_ms", "Uptime_s", "last_check_ms", "Queries",
				"Client_Connections_connected", "Client_Connections_created"}, metrics))
	}
	if want[2] {
		errs = errors.Join(errs, st.ReplaceTable(ctx, "stats_proxysql_servers_status",
			[]string{"hostname", "port", "weight", "master", "global_version", "check_age_us", "ping_time_us", "checks_OK", "checks_ERR"}, status))
	}
	if errs != nil && !errors.Is(errs, storage.ErrClosed) {
		m.log.Warn().Err(errs).Msg("Cluster: cannot write stats_proxysql_servers_*")
	}
}

// resolve returns the addresses of host: itself when it is an IP, else
// what the resolver answers within the connect timeout (nil on failure).
func resolve(ctx context.Context, host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	rctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(rctx, host)
	if err != nil {
		return nil
	}
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.IP
	}
	return out
}

// PeerVersion is the @@version to show a ProxySQL Cluster peer that
// connects from ip. A ProxySQL node clusters only with peers whose
// SELECT @@version equals its own version string
// (ProxySQL_Cluster_Monitor_thread); Sluice answers ProxySQL 2.6/2.7's
// queries, so it shows such a node that node's own version, as learned by
// polling it. ok is false when no ProxySQL 2.6/2.7 node is known at ip, or
// when several with different versions are (the admin then answers its
// own admin-version).
func (m *Manager) PeerVersion(ip string) (version string, ok bool) {
	addr := net.ParseIP(ip)
	if addr == nil {
		return "", false
	}
	own := ""
	if rt := m.cfg.Runtime(); rt != nil {
		own = rt.Var("admin-version")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pe := range m.peers {
		if pe.version == "" || pe.version == own || !isProxySQL27(pe.version) {
			continue
		}
		for _, a := range pe.ips {
			if !a.Equal(addr) {
				continue
			}
			if ok && version != pe.version {
				return "", false
			}
			version, ok = pe.version, true
		}
	}
	return version, ok
}

// isProxySQL27 reports whether a @@version is ProxySQL 2.6's or 2.7's,
// whose cluster queries Sluice answers.
func isProxySQL27(v string) bool {
	return strings.HasPrefix(v, "2.6.") || strings.HasPrefix(v, "2.7.")
}
