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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
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
	// (a Go server, a Java one with the Prometheus client's hotspot
	// exports, another Sluice): process_cpu_seconds_total and
	// process_resident_memory_bytes, over the cpu_count and
	// memory_limit_bytes labels of the server.
	PresetProcess = "process"
	// PresetNode: node_exporter on the database host: the non-idle
	// node_cpu_seconds_total over the number of CPUs, and 1 −
	// MemAvailable/MemTotal. For mysqld, whose mysqld_exporter reports
	// server status rather than process resources, this is the way.
	PresetNode = "node"
	// PresetStarRocksFE: a StarRocks FE's own /metrics (port 8030). The FE
	// exports its JVM's heap, jvm_heap_size_bytes{type="used"} over
	// {type="max"} — what a JVM runs out of — but no process CPU, so CPU
	// is unknown (neutral) unless the server's labels say otherwise: for
	// CPU, scrape node_exporter on the FE host with PresetNode instead.
	PresetStarRocksFE = "starrocks_fe"
)

// Presets lists the presets a server may name (labels.metrics_preset).
var Presets = []string{PresetTiDB, PresetProcess, PresetNode, PresetStarRocksFE}

// wanted are the metric names each preset reads: only their lines are
// parsed (a TiDB /metrics is about 1 MB, and a malformed line of a metric
// the preset does not read then cannot spoil the scrape).
var wanted = map[string][]string{
	PresetTiDB: {"process_cpu_seconds_total", "process_resident_memory_bytes",
		"tidb_server_maxprocs", "tidb_server_memory_quota_bytes"},
	PresetProcess:     {"process_cpu_seconds_total", "process_resident_memory_bytes"},
	PresetNode:        {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"},
	PresetStarRocksFE: {"jvm_heap_size_bytes"},
}

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
	Interval time.Duration     // between rounds; 0 is TiProxy's 5 s
	Timeout  time.Duration     // of one scrape; 0 is TiProxy's 3 s
}

// maxBody bounds what an endpoint may send: TiDB's is about 1 MB.
// Untrusted bytes earn their memory: a larger body fails the scrape.
const maxBody = 8 << 20

const (
	defaultInterval = 5 * time.Second // TiProxy's metrics-interval
	defaultTimeout  = 3 * time.Second // TiProxy's metrics-timeout
	dialTimeout     = 2 * time.Second // TiProxy's backend reader
)

// Scraper reads the endpoints while it runs.
type Scraper struct {
	reg      *backend.Registry
	settings func() Settings
	log      zerolog.Logger
	client   *http.Client

	mu      sync.Mutex
	hist    map[string]*usage.History
	last    map[string]reading // by address: its newest CPU reading, for perConn
	perConn float64
	errs    map[string]string // last error by address, for the log once

	stop chan struct{}
	done chan struct{}
}

// reading is an address's CPU usage and connections in use when read.
type reading struct {
	cpu   float64
	conns int
}

// New starts a scraper.
func New(reg *backend.Registry, settings func() Settings, log zerolog.Logger) *Scraper {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}
	s := &Scraper{reg: reg, settings: settings, log: log.With().Str("component", "scrape").Logger(),
		client: &http.Client{Transport: tr}, hist: map[string]*usage.History{}, last: map[string]reading{},
		errs: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

// Close stops the scraper.
func (s *Scraper) Close() {
	close(s.stop)
	<-s.done
	s.client.CloseIdleConnections()
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
				interval = defaultInterval
			}
			// A round with no targets still withdraws what was published.
			if now.Sub(last) >= interval {
				last = now
				s.round(st)
			}
		}
	}
}

// round scrapes every target at once and publishes the new pictures of
// the addresses read: each server there gets its own immutable Usage, the
// CPU estimate anchored on that server's connections in use at the
// reading (a server in two hostgroups is two servers). An address whose
// scrape failed keeps what it published: it goes stale, and neutral, at
// the expiry.
func (s *Scraper) round(st Settings) {
	type result struct {
		addr   string
		sample usage.Sample
		err    error
	}
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	results := make(chan result, len(st.Targets))
	for addr, t := range st.Targets {
		go func() {
			smp, err := s.scrape(t, timeout)
			results <- result{addr, smp, err}
		}()
	}
	byAddr := map[string][]*backend.Server{}
	for _, srv := range s.reg.Servers() {
		byAddr[srv.Addr()] = append(byAddr[srv.Addr()], srv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []string
	for range st.Targets {
		r := <-results
		if r.err != nil {
			if s.errs[r.addr] != r.err.Error() {
				s.log.Warn().Err(r.err).Str("server", r.addr).Msg("metrics_url scrape failed: the memory and CPU factors are neutral for it once its data is stale")
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
		fresh = append(fresh, r.addr)
	}
	for addr := range s.hist {
		if _, ok := st.Targets[addr]; !ok {
			delete(s.hist, addr)
			delete(s.last, addr)
			delete(s.errs, addr)
			for _, srv := range byAddr[addr] {
				srv.SetUsage(nil)
			}
		}
	}
	// The CPU one connection costs, over every address's newest reading
	// (TiProxy's updateCpuPerConn: global, since one server's background
	// work would distort its own figure).
	for _, addr := range fresh {
		n := 0
		for _, srv := range byAddr[addr] {
			n += srv.ConnScore()
		}
		s.last[addr] = reading{s.hist[addr].Usage(n, 0).CPU, n}
	}
	latest, conns := make([]float64, 0, len(s.last)), make([]int, 0, len(s.last))
	for _, r := range s.last {
		latest, conns = append(latest, r.cpu), append(conns, r.conns)
	}
	s.perConn = usage.PerConn(latest, conns, s.perConn)
	for _, addr := range fresh {
		h := s.hist[addr]
		for _, srv := range byAddr[addr] {
			u := h.Usage(srv.ConnScore(), s.perConn)
			u.KeepMemRate(srv.Usage())
			srv.SetUsage(u)
		}
	}
}

// scrape fetches and reduces one endpoint.
func (s *Scraper) scrape(t Target, timeout time.Duration) (usage.Sample, error) {
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
	preset := t.Preset
	if preset == "" {
		preset = PresetTiDB
	}
	names, ok := wanted[preset]
	if !ok {
		return usage.Sample{}, fmt.Errorf("scrape: unknown preset %q", preset)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(filter(text, names)))
	if err != nil {
		return usage.Sample{}, fmt.Errorf("scrape: not Prometheus text: %w", err)
	}
	smp := usage.Sample{At: now, CPUSeconds: math.NaN(), Mem: math.NaN()}
	switch preset {
	case PresetStarRocksFE:
		used, limit := math.NaN(), math.NaN()
		for _, m := range mfs["jvm_heap_size_bytes"].GetMetric() {
			switch label(m, "type") {
			case "used":
				used = value(m)
			case "max":
				limit = value(m)
			}
		}
		if t.MemLimit > 0 {
			limit = t.MemLimit
		}
		if limit > 0 && !math.IsNaN(used) {
			smp.Mem = used / limit
		}
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
		if preset == PresetTiDB {
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

// filter keeps the lines of text that are about one of names — samples,
// and their # HELP and # TYPE — and drops the rest before parsing.
// Names are compared whole: node_cpu_seconds_total does not keep
// node_cpu_seconds_total_foo.
func filter(text []byte, names []string) []byte {
	out := make([]byte, 0, 4096)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		l := bytes.TrimLeft(line, " \t")
		if len(l) > 0 && l[0] == '#' {
			f := bytes.Fields(l[1:])
			if len(f) < 2 || (string(f[0]) != "HELP" && string(f[0]) != "TYPE") {
				continue
			}
			l = f[1]
		}
		end := bytes.IndexAny(l, "{ \t\r\n")
		if end < 0 {
			end = len(l)
		}
		if named(names, l[:end]) {
			out = append(out, line...)
			if line[len(line)-1] != '\n' {
				out = append(out, '\n')
			}
		}
	}
	return out
}

func named(names []string, name []byte) bool {
	for _, n := range names {
		if string(name) == n { // no allocation
			return true
		}
	}
	return false
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
