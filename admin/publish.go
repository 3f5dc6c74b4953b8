package admin

import "github.com/sluice-proxy/sluice/internal/config"

// Publisher is told of every operator's LOAD … TO RUNTIME that succeeded
// (cmd/sluice sets one with --cluster etcd://…), while the admin mutex is
// held: it may read MEMORY, which is what was just loaded. A non-empty
// warning goes into the OK packet and SHOW WARNINGS; an error turns the
// LOAD's answer into an ERR with its text (the runtime stays as the
// Publisher left it). Loads at start-up and ImportModule's do not call it.
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
