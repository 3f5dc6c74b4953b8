package main

import (
	"strconv"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
)

// reportFDLimit logs the file-descriptor limit Sluice runs with (the Go
// runtime has already raised the soft limit to the hard one) and warns when
// it is below what the configuration may need: a socket per client up to
// mysql-max_connections, one per backend connection up to the servers'
// max_connections, and some for listeners, the admin port and files.
// Running out shows up as failed accepts and connects under load, far from
// its cause; this says it at start.
func reportFDLimit(log zerolog.Logger, snap *config.Snapshot) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn().Err(err).Msg("cannot read the file descriptor limit")
		return
	}
	clients, _ := strconv.ParseInt(snap.Var("mysql-max_connections"), 10, 64)
	var servers int64
	for _, s := range snap.Servers {
		servers += int64(s.MaxConnections)
	}
	need := uint64(max(clients, 0)) + uint64(min(max(servers, 0), 1<<20)) + 256
	if lim.Cur < need {
		log.Warn().Uint64("limit", lim.Cur).Uint64("needed", need).Int64("mysql-max_connections", clients).
			Int64("backend_max_connections", servers).
			Msg("file descriptor limit (RLIMIT_NOFILE) is below what the configured connections may need: raise it (ulimit -n, systemd LimitNOFILE=)")
		return
	}
	log.Info().Uint64("limit", lim.Cur).Uint64("needed", need).Msg("file descriptor limit")
}
