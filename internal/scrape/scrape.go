// Package scrape reads the servers' Prometheus endpoints
// (mysql_servers_balance.metrics_url) for the balancer's memory and CPU
// factors, as TiProxy's backend metrics reader reads TiDB's /metrics
// (reference tiproxy §1.6): every interval (5 s, TiProxy's) each endpoint
// is fetched with a 3 s timeout and a bounded body, parsed as Prometheus
// text, reduced by its preset to CPU seconds, CPUs and memory usage, kept
// for a minute (usage.History), and published to every server at that
// address as an immutable usage.Usage.
package scrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/usage"
)

// Presets name how a server's metrics give CPU and memory.
const (
	// PresetTiDB: process_cpu_seconds_total / tidb_server_maxprocs, and
	// process_resident_memory_bytes / tidb_server_memory_quota_bytes, as
	// TiProxy reads TiDB.
	PresetTiDB = "tidb"
	// PresetProcess: any exporter of Prometheus' standard process metrics
	// (a Go or Java server, StarRocks FE's JVM through its process
	// metrics, another Sluice): process_cpu_seconds_total and
	// process_resident_memory_bytes, over the cpu_count and
	// memory_limit_bytes labels of the server.
	PresetProcess = "process"
	// PresetNode: node_exporter on the database host: the non-idle
	// node_cpu_seconds_total over the number of CPUs, and 1 −
	// MemAvailable/MemTotal. For mysqld, whose mysqld_exporter reports
	// server status rather than process resources, this is the way.
	PresetNode = "node"
)

// Target is one server's endpoint and how to read it.
type Target struct {
	URL      string
	Preset   string
	CPUs     float64 // overrides what the preset reads (0: none)
	MemLimit float64 // bytes; overrides what the preset reads (0: none)
}

// Settings are what the scraper follows across LOADs.
type Settings struct {
	Targets  map[string]Target // by host:port
	Interval time.Duration
}

// maxBody bounds what an endpoint may send: TiDB's is about 1 MB.
const maxBody = 8 << 20

const timeout = 3 * time.Second

// Scraper reads the endpoints while it runs.
type Scraper struct {
	reg      *backend.Registry
	settings func() Settings
	log      zerolog.Logger
	client   *http.Client

	mu      sync.Mutex
	hist    map[string]*usage.History
	perConn float64
	errs    map[string]string // last error by address, for the log once

	stop chan struct{}
	done chan struct{}
}

// New starts a scraper.
func New(reg *backend.Registry, settings func() Settings, log zerolog.Logger) *Scraper {
	s := &Scraper{reg: reg, settings: settings, log: log.With().Str("component", "scrape").Logger(),
		client: &http.Client{Timeout: timeout}, hist: map[string]*usage.History{}, errs: map[string]string{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

// Close stops the scraper.
func (s *Scraper) Close() {
	close(s.stop)
	<-s.done
}

func (s *Scraper) loop() {
	defer close(s.done)
	// The settings are read every tick, so a LOAD that adds an endpoint or
	// shortens the interval applies within a tick.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			st := s.settings()
			interval := st.Interval
			if interval <= 0 {
				interval = 5 * time.Second
			}
			if len(st.Targets) > 0 && now.Sub(last) >= interval {
				last = now
				s.round(st)
			}
		}
	}
}

// round scrapes every target at once and publishes the new pictures.
func (s *Scraper) round(st Settings) {
	type result struct {
		addr   string
		sample usage.Sample
		err    error
	}
	results := make(chan result, len(st.Targets))
	for addr, t := range st.Targets {
		go func() {
			smp, err := s.scrape(t)
			results <- result{addr, smp, err}
		}()
	}
	byAddr := map[string][]*backend.Server{}
	for _, srv := range s.reg.Servers() {
		byAddr[srv.Addr()] = append(byAddr[srv.Addr()], srv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range st.Targets {
		r := <-results
		if r.err != nil {
			if s.errs[r.addr] != r.err.Error() {
				s.log.Warn().Err(r.err).Str("server", r.addr).Msg("metrics_url scrape failed: the memory and CPU factors are neutral for it until a scrape succeeds")
				s.errs[r.addr] = r.err.Error()
			}
			continue
		}
		if s.errs[r.addr] != "" {
			s.log.Info().Str("server", r.addr).Msg("metrics_url scrape works again")
			delete(s.errs, r.addr)
		}
		h := s.hist[r.addr]
		if h == nil {
			h = &usage.History{}
			s.hist[r.addr] = h
		}
		h.Add(r.sample)
	}
	for addr := range s.hist {
		if _, ok := st.Targets[addr]; !ok {
			delete(s.hist, addr)
			for _, srv := range byAddr[addr] {
				srv.SetUsage(nil)
			}
		}
	}
	// The CPU one connection costs, over every server with data.
	var latest []float64
	var conns []int
	for addr, h := range s.hist {
		n := 0
		for _, srv := range byAddr[addr] {
			n += srv.ConnScore()
		}
		if u := h.Usage(n, s.perConn); u != nil {
			latest, conns = append(latest, u.CPU), append(conns, n)
		}
	}
	s.perConn = usage.PerConn(latest, conns, s.perConn)
	for addr, h := range s.hist {
		n := 0
		for _, srv := range byAddr[addr] {
			n += srv.ConnScore()
		}
		u := h.Usage(n, s.perConn)
		for _, srv := range byAddr[addr] {
			srv.SetUsage(u)
		}
	}
}

// scrape fetches and reduces one endpoint.
func (s *Scraper) scrape(t Target) (usage.Sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return usage.Sample{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return usage.Sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return usage.Sample{}, fmt.Errorf("%s: HTTP %d", t.URL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return usage.Sample{}, err
	}
	if len(body) > maxBody {
		return usage.Sample{}, fmt.Errorf("%s: more than %d bytes of metrics", t.URL, maxBody)
	}
	return Reduce(body, t, time.Now())
}

// ErrNoData: the metrics lack what the preset reads.
var ErrNoData = errors.New("scrape: the metrics lack what the preset reads")

// Reduce parses Prometheus text and reduces it by t's preset to a sample
// taken at now.
func Reduce(text []byte, t Target, now time.Time) (usage.Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(text)))
	if err != nil {
		return usage.Sample{}, fmt.Errorf("scrape: not Prometheus text: %w", err)
	}
	smp := usage.Sample{At: now, CPUSeconds: math.NaN(), Mem: math.NaN()}
	switch t.Preset {
	case PresetNode:
		var busy float64
		cpus := map[string]bool{}
		found := false
		for _, m := range mfs["node_cpu_seconds_total"].GetMetric() {
			mode, cpu := label(m, "mode"), label(m, "cpu")
			if mode == "idle" {
				cpus[cpu] = true
			} else {
				busy += value(m)
			}
			found = true
		}
		if found {
			smp.CPUSeconds, smp.CPUs = busy, float64(len(cpus))
		}
		total, avail := first(mfs, "node_memory_MemTotal_bytes"), first(mfs, "node_memory_MemAvailable_bytes")
		if total > 0 && !math.IsNaN(avail) {
			smp.Mem = 1 - avail/total
		}
	default: // tidb, process
		smp.CPUSeconds = first(mfs, "process_cpu_seconds_total")
		rss := first(mfs, "process_resident_memory_bytes")
		limit := math.NaN()
		if t.Preset == PresetTiDB || t.Preset == "" {
			smp.CPUs = first(mfs, "tidb_server_maxprocs")
			limit = first(mfs, "tidb_server_memory_quota_bytes")
		}
		if t.MemLimit > 0 {
			limit = t.MemLimit
		}
		if limit > 0 && !math.IsNaN(rss) {
			smp.Mem = rss / limit
		}
	}
	if t.CPUs > 0 {
		smp.CPUs = t.CPUs
	}
	if math.IsNaN(smp.CPUs) || smp.CPUs <= 0 {
		smp.CPUSeconds = math.NaN()
	}
	if math.IsNaN(smp.CPUSeconds) && math.IsNaN(smp.Mem) {
		return smp, ErrNoData
	}
	return smp, nil
}

func first(mfs map[string]*dto.MetricFamily, name string) float64 {
	ms := mfs[name].GetMetric()
	if len(ms) == 0 {
		return math.NaN()
	}
	return value(ms[0])
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
