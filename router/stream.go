package router

import (
	"errors"
	"fmt"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// result is what the proxy learns from a backend's response while it streams
// it to the client: only the first packet of each result and the final
// OK/EOF/ERR are parsed; rows pass through undecoded.
type result struct {
	affected   uint64
	insertID   uint64
	status     uint16
	warnings   uint16
	rows       uint64
	ok         bool           // the last result was an OK packet
	resultSets int            // how many result sets were sent
	err        *wire.SQLError // the backend answered with an ERR
}

// errClientGone marks a failure to write to the client: the backend's
// response was cut short, so its connection cannot be reused.
var errClientGone = errors.New("router: client connection failed")

// streamer forwards one command's response from a backend to a client,
// translating result-set terminators when exactly one side negotiated
// CLIENT_DEPRECATE_EOF. It keeps a scratch buffer across commands.
type streamer struct {
	scratch []byte
	status  uint16 // the session's last known server status, for synthesized EOFs
}

// sideErr tags an I/O error with the side that failed, so the session knows
// whether to blame the backend (close it, maybe retry) or the client.
func sideErr(err error) error {
	if errors.Is(err, wire.ErrWrite) {
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	return err
}

// The streamer also reads responses that go nowhere (the mirror's): with a
// nil client every packet is read and skipped, and the same parsing fills
// the result. These helpers are the only places that touch the client.

// write sends p to cli, if there is one.
func write(cli *wire.Conn, p []byte) error {
	if cli == nil {
		return nil
	}
	return sideErr(cli.WritePacket(p))
}

// pass moves one packet from srv to cli without decoding it, or skips it
// when there is no client.
func pass(cli, srv *wire.Conn) error {
	if cli == nil {
		_, _, err := srv.SkipPacket()
		return err
	}
	_, _, err := srv.ForwardPacket(cli)
	return sideErr(err)
}

func flush(cli *wire.Conn) error {
	if cli == nil {
		return nil
	}
	return sideErr(cli.Flush())
}

// forwardTerminator reads a result-set terminator from srv and writes it to
// cli in the form cli expects.
func (st *streamer) forwardTerminator(cli, srv *wire.Conn, cliDepr, srvDepr bool, res *result) error {
	p, err := srv.ReadPacket()
	if err != nil {
		return err
	}
	w, s, err := wire.ParseTerminator(p)
	if err != nil {
		return err
	}
	res.warnings, res.status = w, s
	switch {
	case cli == nil:
		return nil
	case cliDepr == srvDepr:
		st.scratch = append(st.scratch[:0], p...)
	case cliDepr:
		st.scratch, err = wire.EOFToOK(st.scratch[:0], p)
	default:
		st.scratch, err = wire.OKToEOF(st.scratch[:0], p)
	}
	if err != nil {
		return err
	}
	return write(cli, st.scratch)
}

// forwardResponse streams the response to COM_QUERY (or COM_STMT_EXECUTE:
// binary rows look the same from here) until the last result, following
// SERVER_MORE_RESULTS_EXISTS. The client is flushed at the end; in between,
// its buffered writer flushes whenever it fills, so memory stays flat
// whatever the result size. With a nil client the response is read and
// dropped.
func (st *streamer) forwardResponse(cli, srv *wire.Conn, cliDepr, srvDepr bool) (result, error) {
	if cli == nil {
		cliDepr = srvDepr // nothing to translate
	}
	var res result
	for {
		_, first, err := srv.PeekHeader()
		if err != nil {
			return res, err
		}
		switch {
		case first == wire.HeaderOK:
			p, err := srv.ReadPacket()
			if err != nil {
				return res, err
			}
			ok, err := wire.ParseOK(p)
			if err != nil {
				return res, err
			}
			res.ok, res.affected, res.insertID, res.status, res.warnings = true, ok.AffectedRows, ok.LastInsertID, ok.Status, ok.Warnings
			if err := write(cli, p); err != nil {
				return res, err
			}
		case first == wire.HeaderERR:
			p, err := srv.ReadPacket()
			if err != nil {
				return res, err
			}
			e, err := wire.ParseERR(p)
			if err != nil {
				return res, err
			}
			res.err, res.ok = e, false
			if err := write(cli, p); err != nil {
				return res, err
			}
			return res, flush(cli)
		case first == wire.HeaderLocalIn:
			// The proxy never offers CLIENT_LOCAL_FILES to backends, so a
			// server asking for a local file is misbehaving: answer with an
			// empty file (the protocol's way to decline) and pass on what
			// the server says next.
			if _, err := srv.ReadPacket(); err != nil {
				return res, err
			}
			if err := srv.WritePacket(nil); err != nil {
				return res, err
			}
			if err := srv.Flush(); err != nil {
				return res, err
			}
			if cli != nil {
				cli.SetSeq(srv.Seq())
			}
			continue
		default:
			if err := st.forwardResultSet(cli, srv, cliDepr, srvDepr, &res); err != nil {
				return res, err
			}
		}
		if res.status&wire.StatusMoreResultsExists == 0 {
			return res, flush(cli)
		}
	}
}

// forwardResultSet streams one result set: column count, column
// definitions, optional EOF, rows, terminator.
func (st *streamer) forwardResultSet(cli, srv *wire.Conn, cliDepr, srvDepr bool, res *result) error {
	p, err := srv.ReadPacket()
	if err != nil {
		return err
	}
	ncols, _, _, ok := wire.ReadLenEncInt(p)
	if !ok {
		return fmt.Errorf("router: malformed column count packet")
	}
	if err := write(cli, p); err != nil {
		return err
	}
	for i := uint64(0); i < ncols; i++ {
		if err := pass(cli, srv); err != nil {
			return err
		}
	}
	// The EOF after the column definitions exists only without DEPRECATE_EOF.
	switch {
	case !srvDepr && !cliDepr:
		if err := pass(cli, srv); err != nil {
			return err
		}
	case !srvDepr && cliDepr:
		if _, _, err := srv.SkipPacket(); err != nil {
			return err
		}
	case srvDepr && !cliDepr:
		// The status of the intermediate EOF is not known yet; clients read
		// the real one from the terminator.
		if err := cli.WriteEOF(0, st.status); err != nil {
			return sideErr(err)
		}
	}
	res.ok = false
	res.resultSets++
	return st.forwardRows(cli, srv, cliDepr, srvDepr, res)
}

// forwardRows streams rows until the terminator (or an ERR), counting them.
func (st *streamer) forwardRows(cli, srv *wire.Conn, cliDepr, srvDepr bool, res *result) error {
	for {
		length, first, err := srv.PeekHeader()
		if err != nil {
			return err
		}
		if first == wire.HeaderERR && length < wire.MaxPayloadLen {
			p, err := srv.ReadPacket()
			if err != nil {
				return err
			}
			if res.err, err = wire.ParseERR(p); err != nil {
				return err
			}
			res.status &^= wire.StatusMoreResultsExists
			return write(cli, p)
		}
		if wire.IsTerminator(first, length) {
			return st.forwardTerminator(cli, srv, cliDepr, srvDepr, res)
		}
		if err := pass(cli, srv); err != nil {
			return err
		}
		res.rows++
	}
}

func errorsIsClientGone(err error) bool { return errors.Is(err, errClientGone) }
