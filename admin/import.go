package admin

import (
	"fmt"

	"github.com/sluice-proxy/sluice/internal/config"
)

// ImportModule applies a module that came from elsewhere (another node, a
// cluster store) through the path of an operator's LOAD: the rows replace
// the module's MEMORY tables (storage.ReplaceMemoryModule: keyed by MEMORY
// table name, rows in the table's column order), then LOAD m TO RUNTIME runs
// exactly as the command does, then, with saveToDisk, SAVE m TO DISK. It
// holds the admin mutex, so it never interleaves with an admin statement.
// The Publisher is not told: a module that arrived from the cluster is not
// written back to it (no echo loop).
func (s *Server) ImportModule(m config.Module, tables map[string][][]any, saveToDisk bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cfg.Store.ReplaceMemoryModule(m, tables); err != nil {
		return fmt.Errorf("import %s into MEMORY: %w", m, err)
	}
	if _, err := s.loadToRuntime(m, false); err != nil {
		return fmt.Errorf("import %s: LOAD TO RUNTIME: %w", m, err)
	}
	if saveToDisk {
		if _, err := s.cfg.Store.MemoryToDisk(m); err != nil {
			return fmt.Errorf("import %s: SAVE TO DISK: %w", m, err)
		}
	}
	return nil
}

// Publisher is told of every operator's LOAD … TO RUNTIME that succeeded
// (cmd/sluice sets one with --cluster), while the admin mutex is held: it
// may read MEMORY, which is what was just loaded. A non-empty warning goes
// into the OK packet and SHOW WARNINGS; an error turns the LOAD's answer
// into an ERR with its text (the runtime stays as the Publisher left it).
// Loads at start-up and ImportModule's do not call it.
type Publisher interface {
	Published(m config.Module) (warning string, err error)
}

// SetPublisher installs p (nil removes it).
func (s *Server) SetPublisher(p Publisher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publisher = p
}

// published tells the Publisher, if any, about a successful LOAD of m and
// adds its warning to warns. The caller holds s.mu.
func (s *Server) published(m config.Module, warns []string) ([]string, error) {
	if s.publisher == nil {
		return warns, nil
	}
	w, err := s.publisher.Published(m)
	if err != nil {
		return warns, err
	}
	if w != "" {
		warns = append(warns, w)
	}
	return warns, nil
}
