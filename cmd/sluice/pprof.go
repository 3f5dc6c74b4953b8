package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/rs/zerolog"
)

// startPprof serves Go's profiler on the address in SLUICE_PPROF (for
// example 127.0.0.1:6060) when that variable is set: a diagnostic for
// developers, off unless asked for, never on a public interface by default.
func startPprof(log zerolog.Logger) {
	addr := os.Getenv("SLUICE_PPROF")
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn().Err(err).Str("addr", addr).Msg("SLUICE_PPROF: cannot listen")
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info().Str("addr", l.Addr().String()).Msg("pprof listening (SLUICE_PPROF)")
	go http.Serve(l, mux) //nolint:errcheck // diagnostic endpoint
}
