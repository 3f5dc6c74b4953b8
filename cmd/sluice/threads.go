package main

import (
	"os"
	"runtime"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/threads"
)

// applyThreads gives mysql-threads, ProxySQL's number of worker threads,
// its meaning in Go: the number of threads running Go code at once
// (GOMAXPROCS), at most the CPUs the runtime found (it reads the cgroup
// quota). ProxySQL's default of 4 therefore changes nothing on a machine
// of up to 4 CPUs. Fewer threads than CPUs trade throughput for a fairer
// latency tail on a machine the proxy shares with busy processes
// (docs/benchmarks.md). GOMAXPROCS in the environment wins: it is the
// runtime's own setting, given on purpose. It returns the cap for
// adaptThreads, 0 when the environment set it.
func applyThreads(log zerolog.Logger, snap *config.Snapshot) int {
	if os.Getenv("GOMAXPROCS") != "" {
		log.Info().Int("gomaxprocs", runtime.GOMAXPROCS(0)).Msg("worker threads: GOMAXPROCS from the environment; mysql-threads not applied")
		return 0
	}
	runtime.SetDefaultGOMAXPROCS()
	cpus := runtime.GOMAXPROCS(0)
	n, err := strconv.Atoi(snap.Var("mysql-threads"))
	if err != nil || n < 1 {
		log.Warn().Str("mysql-threads", snap.Var("mysql-threads")).Int("gomaxprocs", cpus).Msg("worker threads: mysql-threads is not a positive number; using every CPU")
		threads.Default.Manage(cpus, cpus)
		return cpus
	}
	runtime.GOMAXPROCS(min(n, cpus))
	threads.Default.Manage(min(n, cpus), min(n, cpus))
	log.Info().Int("mysql-threads", n).Int("cpus", cpus).Int("gomaxprocs", min(n, cpus)).Bool("adaptive", snap.Bool("mysql-threads_adaptive")).Msg("worker threads")
	return min(n, cpus)
}
