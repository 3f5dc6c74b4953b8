package proxy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/router/balance"
)

// The live status page: GET / is one HTML file (no build step, no external
// asset) whose script polls GET /api/status every two seconds and draws
// hostgroups, servers, QPS and latency sparklines, the top digests, each
// server's balancing score and the recent migrations. The sparklines come
// from a sampler that reads the servers' counters once a second while the
// HTTP endpoint is on, and keeps the last minute.

//go:embed status.html
var statusPage []byte

// historyLen is how many one-second samples a sparkline shows.
const historyLen = 60

// sampler keeps the last minute of per-server QPS and latency, and the
// proxy's QPS.
type sampler struct {
	p    *Proxy
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	last    map[backend.Key]serverSample
	lastQ   int64
	lastAt  time.Time
	series  map[backend.Key]*serverSeries
	proxyQ  []float64 // questions per second
	started time.Time
}

type serverSample struct {
	queries uint64
	time    time.Duration
}

type serverSeries struct {
	qps, latencyMs []float64
}

func newSampler(p *Proxy) *sampler {
	s := &sampler{p: p, stop: make(chan struct{}), done: make(chan struct{}),
		last: map[backend.Key]serverSample{}, series: map[backend.Key]*serverSeries{}, started: time.Now()}
	go s.loop()
	return s
}

func (s *sampler) close() {
	close(s.stop)
	<-s.done
}

func (s *sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.sample(time.Now())
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

func push(xs []float64, v float64) []float64 {
	xs = append(xs, v)
	if len(xs) > historyLen {
		xs = xs[len(xs)-historyLen:]
	}
	return xs
}

func (s *sampler) sample(now time.Time) {
	servers := s.p.registry.Servers()
	q := s.p.stats.Value(stats.Questions)
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := now.Sub(s.lastAt).Seconds()
	first := s.lastAt.IsZero()
	seen := make(map[backend.Key]bool, len(servers))
	for _, srv := range servers {
		k, st := srv.Key(), srv.Stats()
		seen[k] = true
		prev, ok := s.last[k]
		s.last[k] = serverSample{queries: st.Queries, time: st.QueryTime}
		if first || !ok || dt <= 0 {
			continue
		}
		ser := s.series[k]
		if ser == nil {
			ser = &serverSeries{}
			s.series[k] = ser
		}
		dq := float64(st.Queries - prev.queries)
		lat := 0.0
		if dq > 0 {
			lat = float64(st.QueryTime-prev.time) / float64(time.Millisecond) / dq
		}
		ser.qps = push(ser.qps, dq/dt)
		ser.latencyMs = push(ser.latencyMs, lat)
	}
	for k := range s.last {
		if !seen[k] {
			delete(s.last, k)
			delete(s.series, k)
		}
	}
	if !first && dt > 0 {
		s.proxyQ = push(s.proxyQ, float64(q-s.lastQ)/dt)
	}
	s.lastQ, s.lastAt = q, now
}

// Status is the answer of GET /api/status.
type Status struct {
	Version    string            `json:"version"`
	UptimeS    int64             `json:"uptime_s"`
	Policy     string            `json:"policy"`
	Factors    []string          `json:"factors"`
	QPS        []float64         `json:"qps"`
	Hostgroups []HostgroupStatus `json:"hostgroups"`
	Digests    []DigestStatus    `json:"top_digests"`
	Migrations []MigrationStatus `json:"migrations"`
	Cache      map[string]int64  `json:"query_cache"`
}

// HostgroupStatus is one hostgroup of Status.
type HostgroupStatus struct {
	Hostgroup int            `json:"hostgroup"`
	Servers   []ServerStatus `json:"servers"`
}

// ServerStatus is one server of Status.
type ServerStatus struct {
	Endpoint   string    `json:"endpoint"`
	Status     string    `json:"status"`
	Weight     int       `json:"weight"`
	Used       int64     `json:"conn_used"`
	Free       int64     `json:"conn_free"`
	Queries    uint64    `json:"queries"`
	Errors     uint64    `json:"errors"`
	QPS        float64   `json:"qps"`
	QPSHistory []float64 `json:"qps_history"`
	LatencyMs  []float64 `json:"latency_ms_history"`
	PingUs     int64     `json:"ping_us"`
	Sessions   int       `json:"sessions"`
	Score      string    `json:"score"` // the packed factor score, hex; "" under random
}

// DigestStatus is one of the top digests.
type DigestStatus struct {
	Hostgroup int    `json:"hostgroup"`
	Digest    string `json:"digest"`
	Text      string `json:"text"`
	Count     uint64 `json:"count"`
	AvgUs     uint64 `json:"avg_us"`
}

// MigrationStatus is a row of stats_mysql_migrations.
type MigrationStatus struct {
	Hostgroup int    `json:"hostgroup"`
	From      string `json:"from"`
	To        string `json:"to"`
	Reason    string `json:"reason"`
	Outcome   string `json:"outcome"`
	Count     uint64 `json:"count"`
	Last      string `json:"last"`
}

// Status returns what the status page shows.
func (p *Proxy) Status() Status {
	snap := p.Runtime()
	st := Status{Version: config.ProxySQLVersion, UptimeS: int64(p.stats.Uptime() / time.Second),
		Policy: snap.Str("mysql-balance_policy")}
	fp, _ := p.rt.Load().Policy.(*balance.FactorPolicy[*backend.Server])
	if fp != nil {
		for _, f := range fp.Order() {
			st.Factors = append(st.Factors, f.String())
		}
	}
	var sm *sampler
	if p.http != nil {
		sm = p.http.sampler()
	}
	byHG := map[int]*HostgroupStatus{}
	var order []int
	servers := p.registry.Servers()
	maxWeight := map[int]int{}
	count := map[int]int{}
	for _, srv := range servers {
		hg := srv.Key().Hostgroup
		maxWeight[hg] = max(maxWeight[hg], srv.Weight())
		count[hg]++
	}
	now := time.Now()
	for _, srv := range servers {
		k, ss := srv.Key(), srv.Stats()
		hs := byHG[k.Hostgroup]
		if hs == nil {
			hs = &HostgroupStatus{Hostgroup: k.Hostgroup}
			byHG[k.Hostgroup] = hs
			order = append(order, k.Hostgroup)
		}
		row := ServerStatus{Endpoint: net.JoinHostPort(k.Host, strconv.Itoa(k.Port)), Status: ss.Status.String(),
			Weight: srv.Weight(), Used: ss.ConnUsed, Free: ss.ConnFree, Queries: ss.Queries, Errors: ss.Errors,
			PingUs: ss.LatencyUs, Sessions: srv.ConnScore()}
		if fp != nil {
			row.Score = fmt.Sprintf("%#x", fp.Score(srv, now, maxWeight[k.Hostgroup], count[k.Hostgroup] > 1))
		}
		if sm != nil {
			sm.mu.Lock()
			if ser := sm.series[k]; ser != nil {
				row.QPSHistory = append([]float64(nil), ser.qps...)
				row.LatencyMs = append([]float64(nil), ser.latencyMs...)
				if n := len(ser.qps); n > 0 {
					row.QPS = ser.qps[n-1]
				}
			}
			sm.mu.Unlock()
		}
		hs.Servers = append(hs.Servers, row)
	}
	sort.Ints(order)
	for _, hg := range order {
		st.Hostgroups = append(st.Hostgroups, *byHG[hg])
	}
	if sm != nil {
		sm.mu.Lock()
		st.QPS = append([]float64(nil), sm.proxyQ...)
		sm.mu.Unlock()
	}
	digests := p.stats.Digests().Snapshot(false)
	sort.Slice(digests, func(i, j int) bool { return digests[i].CountStar > digests[j].CountStar })
	for _, d := range digests[:min(len(digests), 10)] {
		avg := uint64(0)
		if d.CountStar > 0 {
			avg = d.SumTime / d.CountStar
		}
		st.Digests = append(st.Digests, DigestStatus{Hostgroup: d.Hostgroup, Digest: fmt.Sprintf("0x%016X", d.Digest),
			Text: d.DigestText, Count: d.CountStar, AvgUs: avg})
	}
	for _, m := range p.router.Migrations() {
		st.Migrations = append(st.Migrations, MigrationStatus{Hostgroup: m.Hostgroup, From: m.From, To: m.To,
			Reason: m.Reason, Outcome: m.Outcome, Count: m.Count, Last: m.Last.Format(time.DateTime)})
	}
	qc := p.router.QueryCache().Stats()
	st.Cache = map[string]int64{"entries": qc.Entries, "memory_bytes": qc.MemoryBytes,
		"gets": int64(qc.GET), "hits": int64(qc.GETOK)}
	return st
}

func (h *httpEndpoint) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(h.p.Status())
}

func (h *httpEndpoint) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(statusPage)
}
