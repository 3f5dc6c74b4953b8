package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logSink is the error log: stderr, or a file that SIGHUP and
// PROXYSQL FLUSH LOGS reopen (so logrotate can move it away).
type logSink struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openLogSink(path string) (*logSink, error) {
	s := &logSink{path: path}
	if path == "" {
		return s, nil
	}
	if err := s.Reopen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return os.Stderr.Write(p)
	}
	return s.f.Write(p)
}

// Reopen closes and reopens the log file; a no-op for stderr.
func (s *logSink) Reopen() error {
	if s.path == "" {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (s *logSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// newLogger writes human-readable lines at info level and above; set
// SLUICE_LOG_LEVEL=debug (or trace, warn, error) to change that.
func newLogger(w io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano // keep milliseconds through the console writer
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(os.Getenv("SLUICE_LOG_LEVEL")); err == nil && l != zerolog.NoLevel {
		level = l
	}
	cw := zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: "2006-01-02 15:04:05.000"}
	return zerolog.New(cw).Level(level).With().Timestamp().Logger()
}

// driverLogger sends go-sql-driver's own messages (the ProxySQL Cluster
// poller's connections to peers: "unexpected EOF" when a peer restarts)
// to the error log instead of stderr.
type driverLogger struct{ l zerolog.Logger }

func (d driverLogger) Print(v ...any) {
	d.l.Warn().Msg(strings.TrimSpace(fmt.Sprint(v...)))
}
