package router

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// Mirroring (mirror_hostgroup / mirror_flagOUT) runs a copy of a query on
// another hostgroup, on separate connections. The client sees only the
// primary result; a slow or dead mirror never slows it. Up to
// mysql-mirror_max_concurrency copies run at once; beyond that they wait
// in a queue of at most mysql-mirror_max_queue_length, and when the queue
// is full the copy is dropped and counted. Both limits are read from the
// newest runtime at every enqueue and after every job, so a LOAD MYSQL
// VARIABLES TO RUNTIME resizes a running mirror: workers start as jobs
// arrive and stop when the queue is empty or there are more of them than
// the limit.
//
// Each worker runs its copy as a headless session — a session without a
// client — through the same execute loop as client queries, so a mirrored
// query is routed, retried, counted and pinned exactly as the original
// would be; whatever the copy leaves pinned (a mirrored BEGIN's open
// transaction, a GET_LOCK, a user variable) is closed when the job ends,
// never pooled.

type mirrorJob struct {
	hg   int
	user string
	// state is the session's when the query ran — schema, character set,
	// tracked variables (time_zone, sql_mode…) — with autocommit on: the
	// copy runs alone, so it commits itself.
	state backend.State
	kind  sqlscan.StmtKind
	query []byte      // the command packet: COM_QUERY, or COM_STMT_EXECUTE with the parameters' types
	stmt  *globalStmt // COM_STMT_EXECUTE: the statement, prepared on the mirror's connection as needed
	// digest and digestText are those of the query the copy runs, under
	// which it is counted in stats_mysql_query_digest with the mirror's
	// hostgroup.
	digest     uint64
	digestText []byte
}

type mirrorer struct {
	r *Router

	mu      sync.Mutex
	queue   []*mirrorJob // waiting jobs, oldest first
	workers int          // worker goroutines alive
	closed  bool
	wg      sync.WaitGroup

	dropped atomic.Uint64
	done    atomic.Uint64
	failed  atomic.Uint64
	queued  atomic.Int64 // jobs waiting (Mirror_queue_length)
	running atomic.Int64 // jobs running (Mirror_concurrency)
}

func newMirrorer(r *Router) *mirrorer { return &mirrorer{r: r} }

// enqueue hands a job to a worker, starting one when fewer than the
// runtime's limit run, or queues it; it never blocks.
func (m *mirrorer) enqueue(rt *live.Runtime, j *mirrorJob) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
	case m.workers < rt.Mirror.MaxConcurrency:
		m.workers++
		m.wg.Add(1)
		go m.worker(j)
	case len(m.queue) < rt.Mirror.MaxQueue:
		m.queue = append(m.queue, j)
		m.queued.Add(1)
	default:
		m.dropped.Add(1)
	}
}

// worker runs j, then queued jobs while the runtime's concurrency limit
// allows this many workers.
func (m *mirrorer) worker(j *mirrorJob) {
	defer m.wg.Done()
	s := m.r.headless()
	for {
		m.running.Add(1)
		err := s.mirrorRun(j)
		m.running.Add(-1)
		if err != nil {
			m.failed.Add(1)
			m.r.log.Debug().Err(err).Int("hostgroup", j.hg).Msg("mirror query failed")
		} else {
			m.done.Add(1)
		}
		m.mu.Lock()
		if m.closed || len(m.queue) == 0 || m.workers > m.r.rt.Load().Mirror.MaxConcurrency {
			m.workers--
			m.mu.Unlock()
			return
		}
		j = m.queue[0]
		m.queue[0] = nil
		m.queue = m.queue[1:]
		m.queued.Add(-1)
		m.mu.Unlock()
	}
}

func (m *mirrorer) close() {
	m.mu.Lock()
	m.closed = true
	m.queued.Add(-int64(len(m.queue)))
	m.queue = nil
	m.mu.Unlock()
	m.wg.Wait()
}

// mirrorRun runs one mirrored query on the headless session s under the
// newest runtime and drops its response.
func (s *session) mirrorRun(j *mirrorJob) error {
	rt := s.r.rt.Load()
	u := rt.BackendUsers[j.user]
	if u == nil {
		return errNoBackendUser(j.user)
	}
	s.resetHeadless(u, &j.state)
	defer s.conns.closeAll(s)
	s.req = request{hg: j.hg, payload: j.query, shape: backend.ShapeResult,
		retries: rt.Router.QueryRetries, repeatable: safeToRepeat(j.kind)}
	if j.stmt != nil {
		// A statement of the mirror's own: no long data, no cursor.
		s.req.stmt = &clientStmt{g: j.stmt}
	}
	start := time.Now()
	res, h, _ := s.run(rt, &s.req)
	// Counted as ProxySQL counts a mirrored query: a digest row of its own
	// hostgroup beside the original's.
	end := time.Now()
	s.r.stats.RecordQuery(0, rt.Stats, &stats.Query{Kind: j.kind, Hostgroup: j.hg, Schema: j.state.Schema, User: j.user,
		Digest: j.digest, DigestText: j.digestText, Duration: end.Sub(start), End: end, RowsAffected: res.Affected, RowsSent: res.Rows})
	if h == nil {
		return s.lastErr
	}
	h.inTrx = res.Status&wire.StatusInTrans != 0
	// What the copy left on its connection pins it as it would pin a
	// client's (a GET_LOCK, a user variable, a temporary table, LOCK
	// TABLES…), and a SET or USE changed state the connection's record
	// does not show: such a connection is closed, never pooled, as
	// ProxySQL destroys a mirror session's connection that cannot be
	// multiplexed.
	d := sqlscan.Digest{Kind: j.kind, Text: j.digestText}
	h.flags = rules.UpdateFlags(h.flags, &d, &rules.FlagContext{Multiplex: rules.Unset, InTransaction: h.inTrx,
		Keep: rt.Router.KeepVars, Untracked: j.kind == sqlscan.KindSet || j.kind == sqlscan.KindUse})
	s.release(rt, h) // kept when pinned: closed by closeAll
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// mirror enqueues the query for the mirror hostgroup the decision names
// (reference §3.2: mirror_flagOUT re-runs the rules for the copy). cmd is
// COM_QUERY with q the query text, or COM_STMT_EXECUTE with q the execute
// packet's body and g its statement.
func (s *session) mirror(rt *live.Runtime, dec *rules.Decision, cmd byte, q []byte, g *globalStmt) {
	if dec.MirrorHostgroup < 0 && dec.MirrorFlagOUT < 0 {
		return
	}
	mhg := dec.MirrorHostgroup
	d := &s.digest
	if dec.MirrorFlagOUT >= 0 {
		// The copy goes through the rules again from mirror_flagOUT, as
		// ProxySQL's mirror session does: they may send it elsewhere,
		// rewrite it (a query, not an execute: ProxySQL rewrites no
		// EXECUTE) or answer it themselves, and then no copy runs.
		mq := s.query
		if cmd == wire.ComQuery {
			mq.Text = q
		}
		mq.Mirror, mq.MirrorFlagOUT, mq.MirrorHostgroup = true, dec.MirrorFlagOUT, dec.MirrorHostgroup
		var md rules.Decision
		rt.Rules.Match(&mq, &md)
		if md.HasOKMsg || md.HasErrorMsg {
			return
		}
		if md.DestinationHostgroup >= 0 {
			mhg = md.DestinationHostgroup
		}
		if md.Rewritten && cmd == wire.ComQuery {
			q = md.NewQuery
			d = &sqlscan.Digest{}
			s.digester.Digest(d, q, s.dialect())
		}
	}
	if mhg < 0 || len(q) >= 15<<20 {
		return
	}
	// The state is copied as it is now: its Vars are copied on write, so
	// sharing the slice is safe.
	j := &mirrorJob{hg: mhg, user: s.username, state: s.state, kind: d.Kind, query: make([]byte, 1+len(q)), stmt: g,
		digest: d.Hash, digestText: bytes.Clone(d.Text)}
	j.state.Autocommit = true
	j.query[0] = cmd
	copy(j.query[1:], q)
	s.r.mirror.enqueue(rt, j)
}
