package backend

import "time"

// Totals are the global counters of the backend side (stats_mysql_global's
// Server_Connections_*, Queries_backends_bytes_*, Com_backend_*,
// MyHGM_myconnpoll_*): the sums over every server the registry has had.
// ProxySQL's are process-wide counters that only grow; summing only the
// servers configured now made them fall when a LOAD or the monitor's
// read_only check took a server out, and a Prometheus rate() read that as
// a counter reset.
type Totals struct {
	ConnOK, ConnERR, BytesSent, BytesRecv, ChangeUsers, InitDBs, SetNames uint64
	Pool                                                                  PoolCounts
	// Connected is a gauge: the connections open now (in use and idle),
	// those of removed servers still in use included.
	Connected int64
}

func (t *Totals) add(s *Server) {
	st := s.Stats()
	t.ConnOK += st.ConnOK
	t.ConnERR += st.ConnERR
	t.BytesSent += st.BytesSent
	t.BytesRecv += st.BytesRecv
	t.ChangeUsers += st.ChangeUsers
	t.InitDBs += st.InitDBs
	t.SetNames += st.SetNames
	c := s.pool.Counts()
	t.Pool.Get += c.Get
	t.Pool.GetOK += c.GetOK
	t.Pool.Push += c.Push
	t.Pool.Destroy += c.Destroy
	t.Connected += st.ConnUsed + st.ConnFree
}

// retiredServer is a server taken out of the registry whose counters have
// not been folded into Registry.retiredSum yet.
type retiredServer struct {
	s  *Server
	at time.Time
}

// retireFoldAfter is how long a removed server with no connection in use
// stays listed before its counters are folded into one sum: a session that
// chose it just before the removal may still be connecting.
const retireFoldAfter = 5 * time.Second

// Totals returns the backend side's global counters (see Totals).
func (r *Registry) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.retiredSum
	t.Connected = 0 // folded servers hold no connection
	for _, s := range r.servers {
		t.add(s)
	}
	for _, rs := range r.retired {
		t.add(rs.s)
	}
	return t
}

// retireLocked keeps the counters of a server leaving the registry.
// Called with r.mu held.
func (r *Registry) retireLocked(s *Server, now time.Time) {
	r.retired = append(r.retired, retiredServer{s: s, at: now})
}

// foldRetired folds into retiredSum the removed servers that have had no
// connection in use for retireFoldAfter, so the list stays short however
// often servers come and go.
func (r *Registry) foldRetired(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.retired[:0]
	for _, rs := range r.retired {
		if rs.s.connUsed.Load() != 0 {
			rs.at = now
		}
		if now.Sub(rs.at) < retireFoldAfter {
			kept = append(kept, rs)
			continue
		}
		r.retiredSum.add(rs.s)
	}
	clear(r.retired[len(kept):])
	r.retired = kept
}
