package router

import (
	"sync"
	"sync/atomic"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// Mirroring (mirror_hostgroup / mirror_flagOUT) runs a copy of a query on
// another hostgroup, on separate connections, from a bounded queue. The
// client sees only the primary result; a slow or dead mirror never slows it:
// when the queue is full the copy is dropped and counted.

type mirrorJob struct {
	hg     int
	user   string
	schema string
	query  []byte // COM_QUERY payload, command byte included
}

type mirrorer struct {
	r       *Router
	ch      chan *mirrorJob
	start   sync.Once
	wg      sync.WaitGroup
	closed  atomic.Bool
	dropped atomic.Uint64
	done    atomic.Uint64
	failed  atomic.Uint64
	queued  atomic.Int64 // jobs waiting (Mirror_queue_length)
	running atomic.Int64 // jobs running (Mirror_concurrency)
}

func newMirrorer(r *Router) *mirrorer { return &mirrorer{r: r} }

// enqueue hands a job to the mirror workers without ever blocking.
func (m *mirrorer) enqueue(rt *runtimeConfig, j *mirrorJob) {
	if m.closed.Load() {
		return
	}
	m.start.Do(func() {
		m.ch = make(chan *mirrorJob, max(rt.mirrorMaxQueue, 1))
		for i := 0; i < max(rt.mirrorMaxConcurrency, 1); i++ {
			m.wg.Add(1)
			go m.worker()
		}
	})
	m.queued.Add(1)
	select {
	case m.ch <- j:
	default:
		m.queued.Add(-1)
		m.dropped.Add(1)
	}
}

func (m *mirrorer) worker() {
	defer m.wg.Done()
	for j := range m.ch {
		m.queued.Add(-1)
		m.running.Add(1)
		err := m.run(j)
		m.running.Add(-1)
		if err != nil {
			m.failed.Add(1)
			m.r.log.Debug().Err(err).Int("hostgroup", j.hg).Msg("mirror query failed")
		} else {
			m.done.Add(1)
		}
	}
}

// run executes one mirrored query and discards its response.
func (m *mirrorer) run(j *mirrorJob) error {
	rt := m.r.rt.Load()
	st := backend.State{Schema: j.schema, Autocommit: true, Collation: 33}
	h, e := m.r.borrow(rt, j.hg, j.user, &st, false)
	if e != nil {
		return e
	}
	w := h.w
	w.ResetSeq()
	err := w.WritePacket(j.query)
	if err == nil {
		err = w.Flush()
	}
	var res result
	if err == nil {
		var st streamer // no client: the response is read and dropped
		res, err = st.forwardResponse(nil, w, h.depr, h.depr)
	}
	if err != nil {
		h.server.CountError()
		m.r.closeConn(h)
		return err
	}
	h.server.CountQuery(0)
	h.inTrx = res.status&wire.StatusInTrans != 0
	if h.inTrx {
		// A mirrored BEGIN must not leak an open transaction into the pool.
		m.r.closeConn(h)
		return nil
	}
	m.r.giveBack(rt, h)
	if res.err != nil {
		return res.err
	}
	return nil
}

func (m *mirrorer) close() {
	if m.closed.Swap(true) {
		return
	}
	m.start.Do(func() {}) // no workers will start now
	if m.ch != nil {
		close(m.ch)
		m.wg.Wait()
	}
}

// mirror enqueues the query for the mirror hostgroup the decision names
// (reference §3.2: mirror_flagOUT re-runs the rules for the copy).
func (s *session) mirror(rt *runtimeConfig, hg int, dec *rules.Decision, q []byte) {
	mhg := dec.MirrorHostgroup
	if dec.MirrorFlagOUT >= 0 {
		mq := s.query
		mq.Mirror, mq.MirrorFlagOUT, mq.MirrorHostgroup = true, dec.MirrorFlagOUT, dec.MirrorHostgroup
		var md rules.Decision
		rt.rules.Match(&mq, &md)
		if md.DestinationHostgroup >= 0 {
			mhg = md.DestinationHostgroup
		}
	}
	if mhg < 0 || len(q) >= 15<<20 {
		return
	}
	j := &mirrorJob{hg: mhg, user: s.username, schema: s.state.Schema, query: make([]byte, 1+len(q))}
	j.query[0] = wire.ComQuery
	copy(j.query[1:], q)
	s.r.mirror.enqueue(rt, j)
}
