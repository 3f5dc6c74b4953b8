// Package usage holds what a server's metrics say about its CPU and memory
// — TiProxy's memory and CPU factors (reference tiproxy §1.5) — computed
// from the samples the scraper takes of mysql_servers_balance.metrics_url:
// the immutable Usage a server publishes, and the math that turns a
// history of samples into it. It is a leaf: the balancer reads Usage, the
// scraper writes it, neither knows the other.
package usage

import (
	"math"
	"time"
)

// TiProxy's constants (factor_memory.go, factor_cpu.go).
const (
	OOMUsage         = 0.9              // usage treated as the OOM point (values capped there)
	MemExpiry        = time.Minute      // memory data older than this is ignored
	CPUExpiry        = 2 * time.Minute  // CPU data older than this is ignored
	cpuEWMAAlpha     = 0.5              // the average CPU usage's smoothing
	MinCPUPerConn    = 0.001            // the floor of the CPU one connection is reckoned to cost
	history          = time.Minute      // samples kept
	memRiskHighUsage = 0.75             // risk 2 above this usage…
	memRiskHighTime  = 45 * time.Second // …or when OOM is nearer than this
	memRiskMidUsage  = 0.6              // risk 1 above this usage…
	memRiskMidTime   = 3 * time.Minute  // …or when OOM is nearer than this
	memHighSeconds   = 60.0             // balanceSeconds4HighMemory: every session off within a minute…
	memOOMSeconds    = 10.0             // balanceSeconds4OOMRisk: …or ten seconds when OOM is nearer than 45 s
)

// Usage is one server's resource picture at At. NaN fields are unknown.
// A Usage is never changed once published.
type Usage struct {
	At time.Time

	CPU      float64 // latest CPU usage, 0..1 of the server's CPUs
	CPUAvg   float64 // EWMA of the last minute's CPU usage
	CPUConns int     // the server's connections in use when CPU was measured
	PerConn  float64 // CPU one connection is reckoned to cost (over all servers)

	Mem       float64       // memory usage, 0..1 of its limit (capped at OOMUsage)
	TimeToOOM time.Duration // at the current growth; math.MaxInt64 when not growing
	// MemRate is TiProxy's memory balance count: at OOM risk 2, the
	// sessions to move off per second — the connections in use at the
	// reading over 60 s (10 s when OOM is under 45 s away), never less than
	// the previous reading's while the risk lasts (KeepMemRate), so the
	// last sessions leave as fast as the first. 0 below risk 2.
	MemRate float64
}

// KeepMemRate sets u.MemRate from the connections in use at u's reading
// (u.CPUConns), keeping prev's rate when it is larger and prev was at risk
// 2 too (TiProxy's calcBalanceCount: a migration that started goes on at
// its pace while the server's connections drain).
func (u *Usage) KeepMemRate(prev *Usage) {
	if u == nil || u.MemRisk(u.At) < 2 {
		return
	}
	secs := memHighSeconds
	if u.TimeToOOM < memRiskHighTime {
		secs = memOOMSeconds
	}
	u.MemRate = float64(max(u.CPUConns, 0)) / secs
	if prev != nil && prev.MemRisk(u.At) == 2 && prev.MemRate > u.MemRate {
		u.MemRate = prev.MemRate
	}
}

// MemRisk is TiProxy's OOM risk level: 2 (move every session off), 1, or
// 0; 0 too when the data is missing or stale.
func (u *Usage) MemRisk(now time.Time) int {
	if u == nil || math.IsNaN(u.Mem) || now.Sub(u.At) > MemExpiry {
		return 0
	}
	switch {
	case u.TimeToOOM < memRiskHighTime || u.Mem > memRiskHighUsage:
		return 2
	case u.TimeToOOM < memRiskMidTime || u.Mem > memRiskMidUsage:
		return 1
	}
	return 0
}

// CPUNow estimates the CPU usage now, as TiProxy's getUsage: the measured
// usage plus what the connections opened (or closed) since cost, clamped
// to [0, 1]; avg is the same estimate from the average. ok is false when
// the data is missing or stale: the factor is then neutral (TiProxy
// treats missing data as 100 % busy; issue 8 asks for neutral).
func (u *Usage) CPUNow(conns int, now time.Time) (latest, avg float64, ok bool) {
	if u == nil || math.IsNaN(u.CPU) || now.Sub(u.At) > CPUExpiry {
		return 0, 0, false
	}
	d := float64(conns-u.CPUConns) * u.PerConn
	return clamp(u.CPU + d), clamp(u.CPUAvg + d), true
}

func clamp(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Sample is one scrape's reading of a server.
type Sample struct {
	At         time.Time
	CPUSeconds float64 // cumulative CPU seconds used (NaN: unknown)
	CPUs       float64 // CPUs it may use
	Mem        float64 // memory usage, 0..1 of its limit (NaN: unknown)
}

// History is a server's samples of the last minute, oldest first, and the
// CPU usages derived from them.
type History struct {
	samples []Sample
	cpu     []point // CPU usage between consecutive samples
}

type point struct {
	at time.Time
	v  float64
}

// Add records a sample and drops those older than a minute.
func (h *History) Add(s Sample) {
	if n := len(h.samples); n > 0 {
		prev := h.samples[n-1]
		dt := s.At.Sub(prev.At).Seconds()
		switch {
		case math.IsNaN(s.CPUSeconds) || math.IsNaN(prev.CPUSeconds) || dt < 1 || s.CPUs <= 0:
			// irate needs two readings at least a second apart
		case s.CPUSeconds < prev.CPUSeconds:
			h.cpu = nil // the counter went back: the server restarted
		default:
			h.cpu = append(h.cpu, point{s.At, (s.CPUSeconds - prev.CPUSeconds) / dt / s.CPUs})
		}
		if dt < 1 && !math.IsNaN(s.CPUSeconds) {
			// keep the older reading as the base of the next rate
			s.CPUSeconds, s.At = prev.CPUSeconds, prev.At
			h.samples[n-1].Mem = s.Mem
			h.trim(s.At)
			return
		}
	}
	h.samples = append(h.samples, s)
	h.trim(s.At)
}

func (h *History) trim(now time.Time) {
	cut := now.Add(-history)
	i := 0
	for i < len(h.samples)-1 && h.samples[i].At.Before(cut) {
		i++
	}
	h.samples = h.samples[i:]
	j := 0
	for j < len(h.cpu) && h.cpu[j].at.Before(cut) {
		j++
	}
	h.cpu = h.cpu[j:]
}

// Usage computes the picture of the history at its newest sample; conns
// is the server's connections in use now and perConn the CPU a
// connection costs.
func (h *History) Usage(conns int, perConn float64) *Usage {
	if len(h.samples) == 0 {
		return nil
	}
	last := h.samples[len(h.samples)-1]
	u := &Usage{At: last.At, CPU: math.NaN(), CPUAvg: math.NaN(), CPUConns: conns, PerConn: perConn,
		Mem: math.NaN(), TimeToOOM: math.MaxInt64}
	if n := len(h.cpu); n > 0 {
		u.CPU = math.Min(h.cpu[n-1].v, 1)
		avg := h.cpu[0].v
		for _, p := range h.cpu[1:] {
			avg = cpuEWMAAlpha*p.v + (1-cpuEWMAAlpha)*avg
		}
		u.CPUAvg = math.Min(avg, 1)
	}
	u.Mem, u.TimeToOOM = memUsage(h.samples)
	return u
}

// memUsage is TiProxy's calcMemUsage: the newest usage (capped at the OOM
// point) and, if it grew over at least ten seconds, the time until it
// reaches the OOM point at that pace — scaled by latest/0.6 as TiProxy
// does since its PR #1167, so a young server's burst is not taken for a
// leak.
func memUsage(samples []Sample) (latest float64, toOOM time.Duration) {
	toOOM = math.MaxInt64
	i := len(samples) - 1
	for i >= 0 && math.IsNaN(samples[i].Mem) {
		i--
	}
	if i < 0 {
		return math.NaN(), toOOM
	}
	newest := samples[i]
	latest = math.Min(newest.Mem, OOMUsage)
	for j := i - 1; j >= 0; j-- {
		old := samples[j]
		if math.IsNaN(old.Mem) || newest.At.Sub(old.At) < 10*time.Second {
			continue
		}
		diff := latest - old.Mem
		if diff > 1e-4 && latest > 1e-4 {
			secs := newest.At.Sub(old.At).Seconds() * (OOMUsage - latest) / diff
			secs = secs / latest * 0.6
			toOOM = time.Duration(secs * float64(time.Second))
		}
		break
	}
	return latest, toOOM
}

// PerConn is TiProxy's updateCpuPerConn over all servers' latest usage
// and connections: the CPU one connection costs, at least MinCPUPerConn;
// prev is kept while the picture is too thin to tell (start-up).
func PerConn(latest []float64, conns []int, prev float64) float64 {
	sumU, sumC, n := 0.0, 0, 0
	for i, u := range latest {
		if math.IsNaN(u) || u <= 0 || conns[i] <= 0 {
			continue
		}
		sumU += u
		sumC += conns[i]
		n++
	}
	if sumC > 0 {
		if upc := sumU / float64(sumC); upc >= MinCPUPerConn {
			return upc
		}
		if n > 0 && sumU/float64(n) <= 0.1 && prev > 0 {
			return prev
		}
	}
	if prev > 0 {
		return prev
	}
	return MinCPUPerConn
}
