package proxy

import (
	"context"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/storage"
)

// The admin timer that fills stats_history (ProxySQL's admin main loop,
// lib/ProxySQL_Admin.cpp with lib/ProxySQL_Statistics.cpp): every second it
// checks each job's interval, a global variable in seconds (0 turns the
// job off), read from the running runtime so a LOAD ADMIN VARIABLES TO
// RUNTIME takes effect at the next tick. A job runs when the time passed
// its next run, or when the interval was shortened so that the next run
// is further away than a whole interval (ProxySQL's *_timetoget); the
// next run is then now + interval, in whole seconds. The first tick after
// start runs every enabled job, as ProxySQL's timers start at 0.
//
//	admin-stats_mysql_connections         → mysql_connections (+_hour)
//	admin-stats_mysql_query_cache         → mysql_query_cache (+_hour)
//	admin-stats_system_cpu                → system_cpu (+_hour)
//	admin-stats_system_memory             → system_memory (+_hour)
//	admin-stats_mysql_query_digest_to_disk → history_mysql_query_digest
//	                                         (SAVE MYSQL DIGEST TO DISK)
//
// storage/history.go keeps and trims the tables.

// historyTick is how often the timer looks at the intervals.
const historyTick = time.Second

type historyJob struct {
	variable string
	run      func(p *Proxy, ts int64) error
}

var historyJobs = []historyJob{
	{"admin-stats_mysql_connections", (*Proxy).recordConnections},
	{"admin-stats_mysql_query_cache", (*Proxy).recordQueryCache},
	{"admin-stats_system_cpu", (*Proxy).recordCPU},
	{"admin-stats_system_memory", (*Proxy).recordMemory},
	{"admin-stats_mysql_query_digest_to_disk", func(p *Proxy, _ int64) error {
		n, err := p.SaveDigestsToDisk()
		if err == nil {
			p.log.Info().Int("entries", n).Msg("Automatically saved stats_mysql_query_digest to disk")
		}
		return err
	}},
}

type historyTimer struct {
	p    *Proxy
	next []int64 // per job: Unix second of its next run
	stop chan struct{}
	done chan struct{}
}

func startHistory(p *Proxy) *historyTimer {
	h := &historyTimer{p: p, next: make([]int64, len(historyJobs)), stop: make(chan struct{}), done: make(chan struct{})}
	go h.loop()
	return h
}

func (h *historyTimer) close() {
	close(h.stop)
	<-h.done
}

func (h *historyTimer) loop() {
	defer close(h.done)
	t := time.NewTicker(historyTick)
	defer t.Stop()
	h.tick(time.Now())
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.tick(now)
		}
	}
}

// tick runs the jobs that are due at now.
func (h *historyTimer) tick(now time.Time) {
	snap := h.p.Runtime()
	sec := now.Unix()
	for i, j := range historyJobs {
		iv := snap.Int(j.variable)
		if iv <= 0 {
			continue
		}
		if !(sec >= h.next[i] || sec+iv < h.next[i]) {
			continue
		}
		h.next[i] = sec + iv
		if err := j.run(h.p, sec); err != nil {
			h.p.log.Warn().Err(err).Str("variable", j.variable).Msg("stats_history: sample not recorded")
		}
	}
}

// varValues picks the named values out of vs, in order; a name vs lacks
// is 0 (as ProxySQL's MySQL_Threads_Handler_sets_v1 leaves it).
func varValues(vs []stats.Var, names []string) []int64 {
	byName := make(map[string]string, len(vs))
	for _, v := range vs {
		byName[v.Name] = v.Value
	}
	out := make([]int64, len(names))
	for i, n := range names {
		out[i], _ = strconv.ParseInt(byName[n], 10, 64)
	}
	return out
}

// recordConnections samples stats_mysql_global into mysql_connections.
// GTID_consistent_queries stays 0: Sluice does not route on GTIDs.
func (p *Proxy) recordConnections(ts int64) error {
	vals := varValues(p.globalVars(), storage.HistoryColumns(storage.HistMySQLConnections))
	return p.cfg.Store.RecordHistory(context.Background(), storage.HistMySQLConnections, ts, vals)
}

// recordQueryCache samples the Query_Cache_* counters into
// mysql_query_cache, under ProxySQL's column names.
func (p *Proxy) recordQueryCache(ts int64) error {
	qc := p.router.QueryCache().Stats()
	vals := []int64{int64(qc.GET), int64(qc.GETOK), int64(qc.SET), int64(qc.BytesIN), int64(qc.BytesOUT),
		int64(qc.Purged), qc.Entries, qc.MemoryBytes}
	return p.cfg.Store.RecordHistory(context.Background(), storage.HistMySQLQueryCache, ts, vals)
}

// recordCPU samples times(2): the process's user and system CPU time in
// clock ticks since it started, ProxySQL's tms_utime and tms_stime.
func (p *Proxy) recordCPU(ts int64) error {
	var t syscall.Tms
	if _, err := syscall.Times(&t); err != nil {
		return err
	}
	return p.cfg.Store.RecordHistory(context.Background(), storage.HistSystemCPU, ts, []int64{int64(t.Utime), int64(t.Stime)})
}

// goMemory is what Sluice reports for jemalloc's stats.allocated,
// resident, active, mapped, metadata and retained: the Go runtime's
// nearest equivalents (stats_memory_metrics and system_memory).
type goMemory struct{ allocated, resident, active, mapped, metadata, retained uint64 }

func readGoMemory(m *runtime.MemStats) goMemory {
	return goMemory{
		allocated: m.HeapAlloc,
		resident:  m.Sys - m.HeapReleased,
		active:    m.HeapInuse,
		mapped:    m.Sys,
		metadata:  m.MSpanSys + m.MCacheSys + m.BuckHashSys + m.GCSys + m.OtherSys,
		retained:  m.HeapReleased,
	}
}

// recordMemory samples the Go runtime's memory into system_memory.
func (p *Proxy) recordMemory(ts int64) error {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	g := readGoMemory(&m)
	vals := []int64{int64(g.allocated), int64(g.resident), int64(g.active), int64(g.mapped), int64(g.metadata), int64(g.retained)}
	return p.cfg.Store.RecordHistory(context.Background(), storage.HistSystemMemory, ts, vals)
}

// SaveDigestsToDisk serves SAVE MYSQL DIGEST TO DISK and the
// admin-stats_mysql_query_digest_to_disk timer: the digest map is read and
// emptied in one step (as stats_mysql_query_digest_reset) and its rows are
// appended to stats_history.history_mysql_query_digest with the current
// time as dump_time. It returns the number of digests written.
func (p *Proxy) SaveDigestsToDisk() (int, error) {
	if p.cfg.Store == nil {
		return 0, nil
	}
	rows := digestRows(p.stats.Digests().Snapshot(true))
	if err := p.cfg.Store.SaveDigests(context.Background(), time.Now().Unix(), rows); err != nil {
		return 0, err
	}
	return len(rows), nil
}
