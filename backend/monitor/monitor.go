package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
)

// The monitor (reference §8): connect, ping, read_only and replication lag
// checks per
// distinct host:port of the registry, each on the monitor's own
// connections logged in as mysql-monitor_username. A scheduler goroutine
// finds the checks that are due every monitorTick and hands them to a small
// pool of workers; a check of one kind never overlaps another of the same
// kind on the same address, and every check is bounded by its timeout.
//
// Shunning and recovery: monitor_ping_max_failures consecutive ping
// failures (access denied does not count) shun every server at that
// host:port and close their idle connections (ProxySQL's
// shun_and_killall; connections in use fail on their own). A shunned
// server comes back in two ways: lazily, like any automatic shun, when
// traffic picks it after shun_recovery_time_sec without a new error
// (Server.Healthy; failing pings keep renewing the error time, so this only
// happens once the pings stop failing), or at once when the monitor's next
// ping succeeds — the monitor has just seen the server answer, so waiting
// would only keep a healthy server out.

const (
	monitorTick    = 100 * time.Millisecond // the variables' minimum interval
	monitorWorkers = 8                      // checks running at once
	monitorQueue   = 128                    // checks waiting for a worker (monitor_threads_queue_maxsize)
	monitorLogKeep = 30                     // log rows kept per host:port and check
)

type checkKind int

const (
	checkConnect checkKind = iota
	checkPing
	checkReadOnly
	checkReplLag
	checkGalera
	checkGroupRepl // the log of the Group Replication check, which runs as checkGalera
	numChecks
)

// LogEntry is one row of monitor.mysql_server_connect_log,
// mysql_server_ping_log, mysql_server_read_only_log or
// mysql_server_replication_lag_log.
type LogEntry struct {
	Host     string
	Port     int
	Start    time.Time     // time_start_us
	Success  time.Duration // *_success_time_us: connect, ping or query time; 0 after an error
	ReadOnly int           // read_only log: 0 or 1, -1 (NULL) after an error
	ReplLag  int           // replication lag log: seconds, -1 (NULL) after an error or on a server that is not a replica
	Error    string        // "" (NULL) on success
	Galera   *GaleraState  // Galera log: what the check read; nil after an error
	GR       *GRState      // Group Replication log: likewise

	seq uint64 // the order it was logged in (Retain)
}

// Monitor checks the registry's servers. Start it with New and stop it
// with Close.
type Monitor struct {
	reg  *backend.Registry
	log  zerolog.Logger
	opts func() *Options // the running configuration's; read at every tick

	ctx    context.Context // cancelled by Close: running checks end at once
	cancel context.CancelFunc

	mu      sync.Mutex
	targets map[string]*monTarget
	logs    map[string]*[numChecks][]LogEntry
	// checks counts the logged checks of each kind, succeeded ([0]) and
	// failed ([1]), for stats_mysql_global's MySQL_Monitor_*_check_OK/ERR.
	checks [numChecks][2]uint64
	seq    uint64 // entries logged so far: the last one's LogEntry.seq

	galeraMu sync.Mutex                  // after mu when both are held
	galera   map[string]*galeraNodeState // by address: the Galera health of each checked node

	jobs      chan func()
	loopDone  chan struct{}
	workers   sync.WaitGroup
	closeOnce sync.Once

	// running and started count the worker goroutines running now and
	// ever started (stats_mysql_global's MySQL_Monitor_Workers and
	// MySQL_Monitor_Workers_Started).
	running, started atomic.Int64
}

// monTarget is one host:port under watch.
type monTarget struct {
	host string
	port int
	addr string

	// Guarded by Monitor.mu.
	last      [numChecks]time.Time
	busy      [numChecks]bool
	checkType string // of the read_only check; "" when not in a replication hostgroup
	galeraHG  int    // the writer hostgroup of its mysql_galera_hostgroups row, -1 when in none
	lag       bool   // a server at this address has max_replication_lag > 0
	ssl       bool   // a server at this address has use_ssl=1: checks connect over TLS
	gone      bool   // no longer configured: the running check closes its connection
	// roKnown and readOnly: the last read_only check's verdict, applied
	// again at every tick, so that a LOAD MYSQL SERVERS (which puts the
	// servers back in the hostgroups of mysql_servers) does not leave the
	// readers out of their hostgroup until the next check.
	roKnown, readOnly bool

	// Owned by the running check of their kind (busy keeps it to one).
	pingConn, roConn, lagConn, galeraConn *backend.BackendConn
	pingFailures                          int
	credsLogged                           time.Time   // the connect check last logged refused credentials
	roTimeouts                            int         // consecutive read_only checks that timed out
	shunned                               bool        // the pings shunned it: a good ping unshuns
	lagCount                              map[int]int // per hostgroup: consecutive lag checks over max_replication_lag
}

// New starts a monitor over reg's servers. It calls opts at every tick
// (and when a log is read) for the options in force — nil means the
// defaults — and never changes what it returns; unset intervals and limits
// are taken at their defaults. Its connections use reg.Options() (the
// backend options: deprecate-EOF, dialer, …) with the monitor's connect
// timeout and credentials.
func New(reg *backend.Registry, opts func() *Options, log zerolog.Logger) *Monitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		reg: reg, opts: opts, log: log.With().Str("component", "monitor").Logger(),
		ctx: ctx, cancel: cancel,
		targets:  make(map[string]*monTarget),
		logs:     make(map[string]*[numChecks][]LogEntry),
		galera:   make(map[string]*galeraNodeState),
		jobs:     make(chan func(), monitorQueue),
		loopDone: make(chan struct{}),
	}
	for range monitorWorkers {
		m.workers.Add(1)
		go func() {
			defer m.workers.Done()
			m.started.Add(1)
			m.running.Add(1)
			defer m.running.Add(-1)
			for job := range m.jobs {
				job()
			}
		}()
	}
	go m.loop()
	return m
}

// Options returns the options in force, unset values at their defaults.
func (m *Monitor) Options() Options {
	if o := m.opts(); o != nil {
		return o.normalized()
	}
	return DefaultOptions()
}

// Close stops the checks (running ones are cancelled), waits for the
// workers and closes the monitor's connections.
func (m *Monitor) Close() {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.loopDone
		m.workers.Wait()
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, t := range m.targets {
			closeConn(&t.pingConn)
			closeConn(&t.roConn)
			closeConn(&t.lagConn)
		}
	})
}

func closeConn(c **backend.BackendConn) {
	if *c != nil {
		_ = (*c).Close()
		*c = nil
	}
}

func (m *Monitor) loop() {
	defer close(m.loopDone)
	defer close(m.jobs)
	t := time.NewTicker(monitorTick)
	defer t.Stop()
	m.schedule(time.Now())
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			m.schedule(now)
		}
	}
}

// schedule brings the targets in line with the registry and queues the
// checks that are due.
func (m *Monitor) schedule(now time.Time) {
	cur := m.Options()
	o := &cur
	roHG := make(map[int]string, 2*len(o.ReplicationHostgroups))
	for _, rh := range o.ReplicationHostgroups {
		roHG[rh.WriterHostgroup] = rh.CheckType
		roHG[rh.ReaderHostgroup] = rh.CheckType
	}
	galeraHG := make(map[int]int, 4*len(o.ClusterHostgroups)) // any of a row's hostgroups → its writer hostgroup
	for _, g := range o.ClusterHostgroups {
		for _, hg := range g.hostgroups() {
			galeraHG[hg] = g.WriterHostgroup
		}
	}
	if o.Enabled {
		m.convergeGalera(o)
	}
	type want struct {
		host      string
		port      int
		ro        bool
		checkType string
		lag       bool
		ssl       bool
		galera    int
	}
	wants := make(map[string]*want)
	for _, s := range m.reg.Servers() {
		st := s.Status()
		if st == backend.StatusOfflineSoft || st == backend.StatusOfflineHard {
			continue
		}
		if st == backend.StatusShunnedReplicationLag && (s.MaxReplicationLag() == 0 || !o.Enabled) {
			m.lagCheckOff(s)
		}
		w := wants[s.Addr()]
		if w == nil {
			w = &want{host: s.Key().Host, port: s.Key().Port, galera: -1}
			wants[s.Addr()] = w
		}
		if whg, ok := galeraHG[s.Key().Hostgroup]; ok && w.galera < 0 {
			w.galera = whg
		}
		if ct, ok := roHG[s.Key().Hostgroup]; ok && !w.ro {
			w.ro, w.checkType = true, ct
		}
		if s.MaxReplicationLag() > 0 {
			w.lag = true
		}
		if s.UseSSL() != 0 {
			w.ssl = true // ProxySQL's monitor uses TLS with a use_ssl=1 server too
		}
	}

	var toClose []*backend.BackendConn
	type verdict struct {
		t        *monTarget
		readOnly bool
	}
	var reapply []verdict
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		for _, c := range toClose {
			_ = c.Close()
		}
		for _, v := range reapply {
			m.readOnlyAction(v.t, o, v.readOnly)
		}
	}()
	for addr, t := range m.targets {
		if wants[addr] != nil && o.Enabled {
			continue
		}
		delete(m.targets, addr)
		t.gone = true
		if !t.busy[checkPing] && t.pingConn != nil {
			toClose = append(toClose, t.pingConn)
			t.pingConn = nil
		}
		if !t.busy[checkReadOnly] && t.roConn != nil {
			toClose = append(toClose, t.roConn)
			t.roConn = nil
		}
		if !t.busy[checkReplLag] && t.lagConn != nil {
			toClose = append(toClose, t.lagConn)
			t.lagConn = nil
		}
		if !t.busy[checkGalera] && t.galeraConn != nil {
			toClose = append(toClose, t.galeraConn)
			t.galeraConn = nil
		}
		m.galeraMu.Lock()
		delete(m.galera, addr)
		m.galeraMu.Unlock()
	}
	m.pruneLocked(now, o.History)
	if !o.Enabled {
		return
	}
	for addr, w := range wants {
		t := m.targets[addr]
		if t == nil {
			t = &monTarget{host: w.host, port: w.port, addr: addr}
			m.targets[addr] = t
		}
		t.checkType = ""
		if w.ro {
			t.checkType = w.checkType
			if t.roKnown && !t.busy[checkReadOnly] {
				reapply = append(reapply, verdict{t, t.readOnly})
			}
		} else if !t.busy[checkReadOnly] && t.roConn != nil {
			toClose = append(toClose, t.roConn)
			t.roConn = nil
		}
		t.lag = w.lag
		t.ssl = w.ssl
		if t.galeraHG != w.galera {
			m.galeraMu.Lock()
			delete(m.galera, addr) // another row, or none: its last verdict is not this row's
			m.galeraMu.Unlock()
		}
		t.galeraHG = w.galera
		if w.galera < 0 && !t.busy[checkGalera] && t.galeraConn != nil {
			toClose = append(toClose, t.galeraConn)
			t.galeraConn = nil
		}
		if !w.lag && !t.busy[checkReplLag] && t.lagConn != nil {
			toClose = append(toClose, t.lagConn)
			t.lagConn = nil
		}
		for k := checkConnect; k < numChecks; k++ {
			var interval time.Duration
			switch k {
			case checkConnect:
				interval = o.ConnectInterval
			case checkPing:
				interval = o.PingInterval
			case checkReadOnly:
				if !w.ro {
					continue
				}
				interval = o.ReadOnlyInterval
			case checkReplLag:
				if !w.lag {
					continue
				}
				interval = o.ReplLagInterval
			case checkGalera:
				if w.galera < 0 {
					continue
				}
				interval = o.GaleraInterval
				if g, ok := o.galeraRow(w.galera); ok && g.GR {
					interval = o.GRInterval
				}
			case checkGroupRepl:
				continue // a log: the check runs as checkGalera
			}
			if t.busy[k] || (!t.last[k].IsZero() && now.Sub(t.last[k]) < interval) {
				continue
			}
			t.busy[k] = true
			select {
			case m.jobs <- m.job(t, k, o):
				t.last[k] = now
			default:
				t.busy[k] = false // every worker busy and the queue full: next tick
			}
		}
	}
}

// job returns the check k of t as a function for a worker.
func (m *Monitor) job(t *monTarget, k checkKind, o *Options) func() {
	checkType, galeraHG := t.checkType, t.galeraHG
	return func() {
		switch k {
		case checkConnect:
			m.checkConnect(t, o)
		case checkPing:
			m.checkPing(t, o)
		case checkReadOnly:
			m.checkReadOnly(t, o, checkType)
		case checkReplLag:
			m.checkReplLag(t, o)
		case checkGalera:
			m.checkGalera(t, o, galeraHG)
		}
		m.mu.Lock()
		t.busy[k] = false
		var c **backend.BackendConn
		if t.gone {
			switch k {
			case checkPing:
				c = &t.pingConn
			case checkReadOnly:
				c = &t.roConn
			case checkReplLag:
				c = &t.lagConn
			case checkGalera:
				c = &t.galeraConn
			}
		}
		var stale *backend.BackendConn
		if c != nil {
			stale, *c = *c, nil
		}
		m.mu.Unlock()
		if stale != nil {
			_ = stale.Close()
		}
	}
}

// dial opens a monitor connection to t: its own, in no pool, counting
// against no server.
func (m *Monitor) dial(t *monTarget, o *Options) (*backend.BackendConn, error) {
	opts := m.reg.Options()
	opts.ConnectTimeout = o.ConnectTimeout
	opts.InitConnect, opts.Hostgroups = "", nil
	m.mu.Lock()
	ssl := t.ssl
	m.mu.Unlock()
	return backend.DialSSL(m.ctx, t.host, t.port, ssl, &opts, &backend.Credentials{User: o.Username, Password: o.Password})
}

// withConn runs f on the kept connection in slot, opening one when there is
// none. A kept connection that fails (a wait_timeout on the server, say) is
// replaced once within the same check; a connection that fails is closed.
// SQL errors leave the connection in place.
func (m *Monitor) withConn(t *monTarget, o *Options, slot **backend.BackendConn, f func(*backend.BackendConn) error) error {
	if c := *slot; c != nil && (c.Credentials().User != o.Username || c.Credentials().Password != o.Password) {
		closeConn(slot) // the monitor credentials changed
	}
	if c := *slot; c != nil {
		m.mu.Lock()
		ssl := t.ssl
		m.mu.Unlock()
		if _, encrypted := c.TLSState(); encrypted != ssl {
			closeConn(slot) // use_ssl changed
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		reused := *slot != nil
		if !reused {
			c, err := m.dial(t, o)
			if err != nil {
				return err
			}
			*slot = c
			for _, s := range m.serversAt(t.addr) {
				s.NoteVersion(c.ServerVersion())
			}
		}
		err := f(*slot)
		if err == nil {
			return nil
		}
		if _, ok := backend.IsSQLError(err); ok {
			return err
		}
		closeConn(slot)
		if !reused || m.ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// isTimeout reports whether err is a check that did not answer in time
// (the read_only and Galera checks count those against their
// max_timeout_count), rather than a refusal or an error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// errorText is how a check's error on host reads in the monitor tables:
// the server's own message for an error it sent (Access denied for user
// …), the client library's for a connection that failed (Can't connect to
// MySQL server on 'host' (111)), as ProxySQL stores mysql_error();
// anything else as it is. Scripts match the start of these messages.
func errorText(err error, host string) string {
	if se, ok := backend.IsSQLError(err); ok {
		return se.Message
	}
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		return fmt.Sprintf("Can't connect to MySQL server on '%s' (%d \"%s\")", host, int(errno), errno.Error())
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("Can't connect to MySQL server on '%s' (110 \"timeout\")", host)
	}
	return err.Error()
}

func (m *Monitor) checkConnect(t *monTarget, o *Options) {
	start := time.Now()
	c, err := m.dial(t, o)
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: -1, ReplLag: -1}
	if err == nil {
		e.Success = max(time.Since(start), time.Microsecond)
		_ = c.Close()
	} else {
		e.Error = errorText(err, t.host)
		m.credentialsRefused(t, err, start)
	}
	if m.ctx.Err() == nil {
		m.record(t.addr, checkConnect, e)
	}
}

// credentialsRefused logs, as ProxySQL's connect check does, a server that
// refuses the monitor's credentials (mysql-monitor_username/_password, the
// most common misconfiguration: the checks then fail without a word, and a
// server is never judged by them). At most once a minute per server.
func (m *Monitor) credentialsRefused(t *monTarget, err error, now time.Time) {
	se, ok := backend.IsSQLError(err)
	if !ok {
		return
	}
	var what string
	switch {
	case se.Code == 1045:
		what = "Access denied"
	case se.Code == 1862 || se.Code == 1820 || strings.HasPrefix(se.Message, "Your password has expired"):
		what = "Your password has expired"
	default:
		return
	}
	if now.Sub(t.credsLogged) < time.Minute {
		return
	}
	t.credsLogged = now
	m.log.Error().Str("server", t.addr).Uint16("errno", se.Code).Str("error", se.Message).
		Msgf("Server %s is returning %q for monitoring user (check mysql-monitor_username and mysql-monitor_password)", t.addr, what)
}

func (m *Monitor) checkPing(t *monTarget, o *Options) {
	start := time.Now()
	var took time.Duration
	err := m.withConn(t, o, &t.pingConn, func(c *backend.BackendConn) error {
		ctx, cancel := context.WithTimeout(m.ctx, o.PingTimeout)
		defer cancel()
		p := time.Now()
		err := c.Ping(ctx)
		took = max(time.Since(p), time.Microsecond)
		return err
	})
	if m.ctx.Err() != nil {
		return // closing: not a health signal
	}
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: -1, ReplLag: -1}
	if err == nil {
		e.Success = took
	} else {
		e.Error = errorText(err, t.host)
	}
	m.record(t.addr, checkPing, e)
	m.pingResult(t, o, took, err)
}

// pingResult applies a ping's outcome to the servers at t's address.
func (m *Monitor) pingResult(t *monTarget, o *Options, took time.Duration, err error) {
	servers := m.serversAt(t.addr)
	if err == nil {
		t.pingFailures = 0
		for _, s := range servers {
			s.SetLatency(took)
		}
		if t.shunned {
			// Not ONLINE at once: as in ProxySQL, a server the monitor
			// shunned comes back when traffic finds it past
			// mysql-shun_recovery_time_sec since its last failed ping
			// (Server.Healthy), so one that flaps does not take traffic
			// at every good ping.
			t.shunned = false
			m.log.Info().Str("server", t.addr).
				Msgf("Server %s:%d answers pings again: back ONLINE when traffic finds it past mysql-shun_recovery_time_sec", t.host, t.port)
		}
		return
	}
	if !pingFailureCounts(err) {
		// The server is up and refused the monitor user: a configuration
		// problem, not a dead server.
		m.log.Debug().Str("server", t.addr).Err(err).Msg("monitor ping: login refused")
		return
	}
	t.pingFailures++
	if t.pingFailures < o.PingMaxFailures {
		return
	}
	now := time.Now()
	shunned, killed := 0, 0
	for _, s := range servers {
		wasOnline := s.Status() == backend.StatusOnline
		s.Shun(now) // also renews the error time of a server already shunned
		if s.AutoShunned() {
			t.shunned = true
			// As ProxySQL: every connection goes, those in use too (a
			// query waiting on a frozen server fails now and is retried
			// elsewhere if it may be).
			killed += s.KillConnections()
			if wasOnline {
				shunned++
			}
		}
	}
	if shunned > 0 {
		m.log.Warn().Str("server", t.addr).Err(err).Int("aborted_in_use", killed).
			Msgf("Server %s:%d missed %d heartbeats, shunning it and killing all the connections (%d in use aborted)",
				t.host, t.port, t.pingFailures, killed)
	}
}

// pingFailureCounts tells whether a failed ping counts towards shunning:
// not when the server refused the login (ProxySQL skips access denied).
func pingFailureCounts(err error) bool { return backend.CountsAgainstServer(err) }

func (m *Monitor) checkReadOnly(t *monTarget, o *Options, checkType string) {
	start := time.Now()
	var took time.Duration
	ro := -1
	err := m.withConn(t, o, &t.roConn, func(c *backend.BackendConn) error {
		ctx, cancel := context.WithTimeout(m.ctx, o.ReadOnlyTimeout)
		defer cancel()
		q := time.Now()
		res, err := c.Query(ctx, readOnlyQuery(checkType))
		took = max(time.Since(q), time.Microsecond)
		if err != nil {
			return err
		}
		ro, err = parseReadOnly(res)
		return err
	})
	if m.ctx.Err() != nil {
		return
	}
	e := LogEntry{Host: t.host, Port: t.port, Start: start, ReadOnly: ro, ReplLag: -1}
	if err == nil {
		e.Success = took
	} else {
		e.Error, e.ReadOnly = errorText(err, t.host), -1
	}
	m.record(t.addr, checkReadOnly, e)
	if err != nil {
		// A server that keeps not answering in time is taken for
		// read_only=1, as ProxySQL does (#1742), so a hung writer leaves the
		// writer hostgroup; other errors change nothing.
		if !isTimeout(err) {
			t.roTimeouts = 0
			return
		}
		if t.roTimeouts++; t.roTimeouts < o.ReadOnlyMaxTimeoutCount {
			return
		}
		m.log.Error().Str("server", t.addr).Int("timeouts", t.roTimeouts).
			Msgf("Timeout on read_only check for %s after %dms. If the server is overload, increase mysql-monitor_read_only_timeout. Assuming read_only=1",
				t.addr, o.ReadOnlyTimeout.Milliseconds())
		ro = 1
	} else {
		t.roTimeouts = 0
	}
	for _, s := range m.serversAt(t.addr) {
		s.SetReadOnly(ro == 1)
	}
	m.mu.Lock()
	t.roKnown, t.readOnly = true, ro == 1
	m.mu.Unlock()
	m.readOnlyAction(t, o, ro == 1)
}

func parseReadOnly(res *backend.Result) (int, error) {
	if len(res.Rows) == 0 || len(res.Rows[0]) == 0 || !res.Rows[0][0].Valid {
		return -1, fmt.Errorf("%w: read_only check returned no value", backend.ErrProtocol)
	}
	n, err := strconv.Atoi(strings.TrimSpace(res.Rows[0][0].String))
	if err != nil {
		return -1, fmt.Errorf("%w: read_only check returned %q", backend.ErrProtocol, res.Rows[0][0].String)
	}
	if n != 0 {
		n = 1
	}
	return n, nil
}

// readOnlyAction moves the server between the writer and reader hostgroups
// of every replication hostgroup pair it is in (ProxySQL's
// read_only_action_v2, reference §4.3): read_only=0 puts it in the writer
// hostgroup (and keeps it in, or adds it to, the reader one when
// writer_is_also_reader, else takes it out of the reader one); read_only=1
// takes it out of the writer hostgroup and ensures it in the reader one.
// A pair where the server is OFFLINE (an administrator's choice) is left
// alone.
func (m *Monitor) readOnlyAction(t *monTarget, o *Options, readOnly bool) {
	offline := func(s *backend.Server) bool {
		st := s.Status()
		return st == backend.StatusOfflineSoft || st == backend.StatusOfflineHard
	}
	for _, rh := range o.ReplicationHostgroups {
		w := m.reg.Lookup(backend.Key{Hostgroup: rh.WriterHostgroup, Host: t.host, Port: t.port})
		r := m.reg.Lookup(backend.Key{Hostgroup: rh.ReaderHostgroup, Host: t.host, Port: t.port})
		if (w == nil && r == nil) || (w != nil && offline(w)) || (r != nil && offline(r)) {
			continue
		}
		add := func(src *backend.Server, hg int) {
			if _, added := m.reg.AddToHostgroup(src, hg); added {
				m.log.Info().Str("server", t.addr).Int("hostgroup", hg).Bool("read_only", readOnly).
					Msgf("Server %s:%d has read_only=%d: adding it to hostgroup %d", t.host, t.port, b2i(readOnly), hg)
			}
		}
		remove := func(s *backend.Server) {
			if m.reg.RemoveFromHostgroup(s.Key()) {
				m.log.Info().Str("server", t.addr).Int("hostgroup", s.Key().Hostgroup).Bool("read_only", readOnly).
					Msgf("Server %s:%d has read_only=%d: removing it from hostgroup %d", t.host, t.port, b2i(readOnly), s.Key().Hostgroup)
			}
		}
		if !readOnly {
			if w == nil {
				add(r, rh.WriterHostgroup)
				w = m.reg.Lookup(backend.Key{Hostgroup: rh.WriterHostgroup, Host: t.host, Port: t.port})
			}
			switch {
			case o.WriterIsAlsoReader && r == nil && w != nil:
				add(w, rh.ReaderHostgroup)
			case !o.WriterIsAlsoReader && r != nil:
				remove(r)
			}
			continue
		}
		if r == nil {
			add(w, rh.ReaderHostgroup)
		}
		if w != nil {
			remove(w)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// serversAt returns the registry's servers with address addr (one per
// hostgroup).
func (m *Monitor) serversAt(addr string) []*backend.Server {
	var out []*backend.Server
	for _, s := range m.reg.Servers() {
		if s.Addr() == addr {
			out = append(out, s)
		}
	}
	return out
}

func (m *Monitor) record(addr string, k checkKind, e LogEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.logs[addr]
	if l == nil {
		l = new([numChecks][]LogEntry)
		m.logs[addr] = l
	}
	if e.Error == "" {
		m.checks[k][0]++
	} else {
		m.checks[k][1]++
	}
	m.seq++
	e.seq = m.seq
	rows := append(l[k], e)
	if len(rows) > monitorLogKeep {
		rows = append(rows[:0], rows[len(rows)-monitorLogKeep:]...)
	}
	l[k] = rows
}

// pruneLocked drops log rows older than history, and the logs of addresses
// left with none.
func (m *Monitor) pruneLocked(now time.Time, history time.Duration) {
	cut := now.Add(-history)
	for addr, l := range m.logs {
		empty := true
		for k := range l {
			rows := l[k]
			i := 0
			for i < len(rows) && rows[i].Start.Before(cut) {
				i++
			}
			if i > 0 {
				l[k] = append(rows[:0], rows[i:]...)
			}
			empty = empty && len(l[k]) == 0
		}
		if empty {
			delete(m.logs, addr)
		}
	}
}

func (m *Monitor) snapshot(k checkKind) []LogEntry {
	m.mu.Lock()
	m.pruneLocked(time.Now(), m.Options().History)
	var out []LogEntry
	for _, l := range m.logs {
		out = append(out, l[k]...)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Start.Before(b.Start)
	})
	return out
}

// Workers returns how many worker goroutines run the checks now, and how
// many were started since New (ProxySQL's MySQL_Monitor_Workers and
// MySQL_Monitor_Workers_Started; its auxiliary threads, started when the
// queue fills, have no counterpart: a check that finds every worker busy
// and the queue full waits for the next tick).
func (m *Monitor) Workers() (running, started int64) {
	return m.running.Load(), m.started.Load()
}

// CheckCounts returns how many connect, ping, read_only and replication
// lag checks succeeded and failed since start, as ProxySQL's
// MySQL_Monitor_<check>_check_OK and _ERR name them.
func (m *Monitor) CheckCounts() map[string][2]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return map[string][2]uint64{
		"connect": m.checks[checkConnect], "ping": m.checks[checkPing],
		"read_only": m.checks[checkReadOnly], "replication_lag": m.checks[checkReplLag],
	}
}

// LogSeq marks the log as it is now, for Retain: entries logged later
// have a greater mark.
func (m *Monitor) LogSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// logTables maps the monitor log tables an operator may edit to their
// check; the Galera and Group Replication logs are rebuilt from the
// checks' state on each read, as in ProxySQL.
var logTables = map[string]checkKind{
	"mysql_server_connect_log": checkConnect, "mysql_server_ping_log": checkPing,
	"mysql_server_read_only_log": checkReadOnly, "mysql_server_replication_lag_log": checkReplLag,
}

// EditableLog reports whether table (bare name) is a monitor log an
// operator may edit (Retain).
func EditableLog(table string) bool {
	_, ok := logTables[table]
	return ok
}

// Retain applies an operator's edit of a monitor log table (DELETE FROM
// monitor.mysql_server_ping_log [WHERE …]) to the log behind it: of the
// entries logged up to upTo (the LogSeq of the copy the statement ran on),
// those keep rejects are dropped; later ones stay. A table that is not an
// editable log (EditableLog) is left alone.
func (m *Monitor) Retain(table string, upTo uint64, keep func(host string, port int, startUs int64) bool) {
	k, ok := logTables[table]
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.logs {
		rows := l[k][:0]
		for _, e := range l[k] {
			if e.seq > upTo || keep(e.Host, e.Port, e.Start.UnixMicro()) {
				rows = append(rows, e)
			}
		}
		clear(l[k][len(rows):])
		l[k] = rows
	}
}

// ConnectLog returns monitor.mysql_server_connect_log, oldest first per
// host:port (at most monitorLogKeep rows each, none older than
// mysql-monitor_history).
func (m *Monitor) ConnectLog() []LogEntry { return m.snapshot(checkConnect) }

// PingLog returns monitor.mysql_server_ping_log (see ConnectLog).
func (m *Monitor) PingLog() []LogEntry { return m.snapshot(checkPing) }

// ReadOnlyLog returns monitor.mysql_server_read_only_log (see ConnectLog).
func (m *Monitor) ReadOnlyLog() []LogEntry { return m.snapshot(checkReadOnly) }

// ReplicationLagLog returns monitor.mysql_server_replication_lag_log (see
// ConnectLog).
func (m *Monitor) ReplicationLagLog() []LogEntry { return m.snapshot(checkReplLag) }
