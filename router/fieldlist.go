package router

import (
	"bytes"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// comFieldList forwards COM_FIELD_LIST (column definitions, then a
// terminator) to the session's current hostgroup.
func (s *session) comFieldList(rt *runtimeConfig, p []byte) bool {
	return s.forwardSimple(rt, p, func(h *held) (result, error) {
		var res result
		err := s.stream.forwardRows(s.c, h.w, s.depr, h.depr, &res)
		if err == nil {
			err = sideErr(s.c.Flush())
		}
		return res, err
	})
}

// comSimpleForward forwards a command whose response is one packet
// (COM_STATISTICS: a status string, or an ERR).
func (s *session) comSimpleForward(rt *runtimeConfig, p []byte) bool {
	return s.forwardSimple(rt, p, func(h *held) (result, error) {
		var res result
		if _, _, err := h.w.ForwardPacket(s.c); err != nil {
			return res, sideErr(err)
		}
		return res, sideErr(s.c.Flush())
	})
}

// forwardSimple runs a non-query command on the hostgroup the session would
// use for a query without rules.
func (s *session) forwardSimple(rt *runtimeConfig, p []byte, read func(h *held) (result, error)) bool {
	hg := s.user.DefaultHostgroup
	if s.trxHG >= 0 {
		hg = s.trxHG
	}
	if s.lockedHG >= 0 {
		hg = s.lockedHG
	}
	h, e := s.acquire(rt, hg, false)
	if e != nil {
		s.writeErr(e)
		return true
	}
	w := h.w
	w.ResetSeq()
	err := w.WritePacket(p)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		s.c.SetSeq(w.Seq())
		s.stream.status = s.status()
		_, err = read(h)
	}
	if err != nil {
		s.discard(h)
		if errorsIsClientGone(err) {
			return false
		}
		s.writeErr(errLostBackend(hg, h.addr, false))
		return true
	}
	s.release(rt, h)
	return true
}

// comChangeUser re-authenticates the client as another user (with the salt
// of the initial handshake, or a fresh one after an auth switch) and resets
// the session as for COM_RESET_CONNECTION.
func (s *session) comChangeUser(rt *runtimeConfig, p []byte) bool {
	cu, err := wire.ParseChangeUser(p, s.caps)
	if err != nil {
		s.writeErr(&wire.SQLError{Code: 1047, State: "08S01", Message: "Malformed COM_CHANGE_USER"})
		return true
	}
	reply, salt := cu.AuthResponse, s.salt
	if cu.AuthPlugin != "" && cu.AuthPlugin != "mysql_native_password" {
		salt = wire.NewSalt()
		if err := s.c.WritePacket(wire.AppendNativeAuthSwitch(nil, salt)); err != nil {
			return false
		}
		if err := s.c.Flush(); err != nil {
			return false
		}
		_ = s.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		r, err := s.c.ReadPacket()
		_ = s.nc.SetReadDeadline(time.Time{})
		if err != nil {
			return false
		}
		reply = bytes.Clone(r)
	}
	u := rt.frontend[cu.User]
	if u == nil || !s.verify(u, salt, reply) {
		s.writeErr(errAccessDenied(cu.User, s.clientIP, len(reply) > 0))
		return false
	}
	s.resetSession(rt)
	if u.Username != s.username {
		s.r.userCounter(s.username).Add(-1)
		s.r.userCounter(u.Username).Add(1)
	}
	s.user, s.username = u, u.Username
	s.state = initialState(rt, u, &wire.HandshakeResponse{DB: cu.DB, Charset: uint8(cu.Charset)})
	return s.writeOK(0, 0, "") == nil
}
