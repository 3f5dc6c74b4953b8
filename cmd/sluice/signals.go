package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// signals catches SIGTERM, SIGINT and SIGHUP for the whole of serve —
// start-up, running, and the graceful close after it — so that none of
// them meets Go's default action (exit) at a moment the proxy did not
// plan for:
//   - SIGHUP reopens the error log whenever it comes: a logrotate postrotate
//     or a systemctl reload may land during a stop or a slow start;
//   - the first SIGTERM or SIGINT asks serve to stop (Stop), which it reads
//     once it runs: during start-up the request waits there;
//   - one that comes while the proxy is already closing (Closing) ends the
//     process at once, logged: the operator's way out of a long graceful
//     close.
type signals struct {
	ch      chan os.Signal
	stop    chan os.Signal
	done    chan struct{}
	closing atomic.Bool
}

func catchSignals(log zerolog.Logger, sink *logSink) *signals {
	s := &signals{ch: make(chan os.Signal, 4), stop: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case sig := <-s.ch:
				switch {
				case sig == syscall.SIGHUP:
					if err := sink.Reopen(); err != nil {
						log.Error().Err(err).Msg("reopening the error log")
					}
					log.Info().Msg("SIGHUP: error log reopened")
				case s.closing.Load():
					log.Warn().Str("signal", sig.String()).Msg("second signal while closing: exiting now, without waiting for sessions to finish their transactions")
					os.Exit(1)
				default:
					select {
					case s.stop <- sig:
					default: // a stop is already asked for
					}
				}
			}
		}
	}()
	return s
}

// Stop delivers the first SIGTERM or SIGINT.
func (s *signals) Stop() <-chan os.Signal { return s.stop }

// Closing marks the start of the close: a SIGTERM or SIGINT from now on
// ends the process at once.
func (s *signals) Closing() { s.closing.Store(true) }

// Close gives the signals their default actions back.
func (s *signals) Close() {
	signal.Stop(s.ch)
	close(s.done)
}
