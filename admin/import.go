package admin

import (
	"fmt"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/threads"
)

// ImportModule applies module m fetched from elsewhere (a ProxySQL Cluster
// peer, the etcd store) through the path of a local LOAD: the rows go into the MEMORY
// tables (storage.ReplaceMemory: tables keyed by MEMORY table name, rows in
// that table's column order), then LOAD … TO RUNTIME builds the runtime
// aside with the same validation and swaps it, the runtime_* tables and the
// checksum follow, and with saveToDisk the module is saved to DISK. On a
// failed LOAD the MEMORY tables keep the imported rows and RUNTIME is
// unchanged, as after an operator's failed LOAD. It holds the admin mutex,
// so it never interleaves with an admin statement, and it is refused while
// the admin is read-only, as an operator's LOAD is. The Publisher is not
// told: a module that came from the cluster is not written back to it.
func (s *Server) ImportModule(m config.Module, tables map[string][][]any, saveToDisk bool) error {
	return s.ImportModuleAt(m, tables, saveToDisk, time.Time{})
}

// ImportModuleAt is ImportModule with the epoch the module's checksum row
// gets (zero: now). ProxySQL Cluster keeps the epoch of the peer a module
// came from, so that the nodes agree on which configuration is the newest.
func (s *Server) ImportModuleAt(m config.Module, tables map[string][][]any, saveToDisk bool, epoch time.Time) error {
	defer threads.Default.Admin()() // admin work: see session.query
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readOnly.Load() {
		return errReadOnly
	}
	if err := s.cfg.Store.ReplaceMemory(m, tables); err != nil {
		return fmt.Errorf("import %s into MEMORY: %w", m, err)
	}
	// The LOAD's warnings are logged by apply.
	if _, err := s.loadToRuntimeAt(m, false, epoch); err != nil {
		return fmt.Errorf("import %s: LOAD TO RUNTIME: %w", m, err)
	}
	if saveToDisk {
		if _, err := s.cfg.Store.MemoryToDisk(m); err != nil {
			return fmt.Errorf("import %s: SAVE TO DISK: %w", m, err)
		}
	}
	return nil
}
