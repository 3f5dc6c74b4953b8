package router

import (
	"io"
	"sync"
)

// fastForward serves a fast_forward=1 user (reference §4.4): no query
// processing, no digest, no multiplexing. The session gets one backend
// connection of its default hostgroup, synced to the login's schema and
// character set, and from then on bytes flow through unchanged in both
// directions until either side closes. This also serves clients whose
// protocol the proxy does not parse (replication, COM_BINLOG_DUMP).
func (s *session) fastForward(rt *runtimeConfig) {
	h, e := s.acquire(rt, s.user.DefaultHostgroup, false)
	if e != nil {
		s.writeErr(e)
		return
	}
	defer s.discard(h)
	if err := h.w.Flush(); err != nil {
		return
	}
	client, server := s.nc, h.w.NetConn()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(client, h.w.RawReader())
		client.Close()
	}()
	_, _ = io.Copy(server, s.c.RawReader())
	server.Close()
	wg.Wait()
}
