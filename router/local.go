package router

import (
	"github.com/sluice-proxy/sluice/internal/wire"
)

// writeTextResult sends a small result set the proxy computes itself: all
// columns VARCHAR, values as text (nil = NULL).
func (s *session) writeTextResult(cols []string, rows [][]*string) error {
	c := s.c
	b := wire.AppendLenEncInt(s.scratch[:0], uint64(len(cols)))
	if err := c.WritePacket(b); err != nil {
		return err
	}
	for _, name := range cols {
		b = b[:0]
		b = wire.AppendLenEncString(b, "def")
		b = wire.AppendLenEncString(b, "")
		b = wire.AppendLenEncString(b, "")
		b = wire.AppendLenEncString(b, "")
		b = wire.AppendLenEncString(b, name)
		b = wire.AppendLenEncString(b, "")
		b = append(b, 0x0c)       // length of the fixed fields
		b = append(b, 33, 0)      // utf8_general_ci
		b = append(b, 0, 1, 0, 0) // column length 256
		b = append(b, 0xfd)       // MYSQL_TYPE_VAR_STRING
		b = append(b, 0, 0)       // flags
		b = append(b, 0x1f)       // decimals
		b = append(b, 0, 0)
		if err := c.WritePacket(b); err != nil {
			return err
		}
	}
	if !s.depr {
		if err := c.WriteEOF(0, s.status()); err != nil {
			return err
		}
	}
	for _, row := range rows {
		b = b[:0]
		for _, v := range row {
			if v == nil {
				b = append(b, 0xfb)
			} else {
				b = wire.AppendLenEncString(b, *v)
			}
		}
		if err := c.WritePacket(b); err != nil {
			return err
		}
	}
	s.scratch = b
	if err := c.WriteResultEnd(s.depr, 0, s.status()); err != nil {
		return err
	}
	return c.Flush()
}

// writeOK sends an OK packet with the session's status.
func (s *session) writeOK(affected, insertID uint64, info string) error {
	if err := s.c.WriteOK(affected, insertID, s.status(), 0, info); err != nil {
		return err
	}
	return s.c.Flush()
}

func strp(s string) *string { return &s }
