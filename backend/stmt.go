package backend

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// Binary prepared statements on one connection. The router keeps one
// global statement cache and gives each statement a global id; a
// connection prepares a statement the first time it executes it and
// remembers the server's id for it here.

// stmtOnConn is one statement prepared on a connection: the server's id
// for it, and the counter of the connections holding it that the proxy
// keeps for the statement (ref_count_server of
// stats_mysql_prepared_statements_info), or nil.
type stmtOnConn struct {
	id   uint32
	refs *atomic.Int32
}

// StmtMeta is the metadata of a COM_STMT_PREPARE response: the parameter
// and column definition packets, copied.
type StmtMeta struct {
	NumParams uint16
	NumCols   uint16
	Params    [][]byte
	Cols      [][]byte
}

// Prepare sends COM_STMT_PREPARE for query and reads the response. With
// meta not nil the definition packets are copied into it (a statement the
// proxy has not cached yet); otherwise they are skipped. The statement is
// recorded under global, and refs (when not nil) counts it until the
// connection drops the statement (a reset, CloseStatements, Close). A server ERR is returned as *wire.SQLError and
// leaves the connection usable.
//
// The statement's table names resolve in schema, the one the client
// prepared it in, as they do on a server: a client that prepares in one
// schema, changes to another with USE and executes must read the first
// schema's tables. When the connection is elsewhere (it serves the
// session's current schema) it switches for the prepare and back: two
// COM_INIT_DB round trips, only in that case. An empty schema is the
// connection's own.
func (c *BackendConn) Prepare(global uint64, refs *atomic.Int32, schema, query string, meta *StmtMeta) (uint32, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	back := c.state.Schema
	if schema == "" || schema == back {
		return c.prepare(global, refs, query, meta)
	}
	if err := c.initDB(schema); err != nil {
		return 0, c.fail(err)
	}
	id, err := c.prepare(global, refs, query, meta)
	if c.broken {
		return 0, err
	}
	if back == "" {
		// No way back to "no schema": the connection stays in schema.
		c.fp = c.state.Fingerprint()
		return id, err
	}
	if rerr := c.initDB(back); rerr != nil {
		// Left in the wrong schema (the old one was dropped, say): the
		// connection must not serve anyone.
		c.broken = true
		return 0, fmt.Errorf("%w: %s: back to schema %q after a prepare: %w", ErrConnBroken, c.srv.addr, back, rerr)
	}
	return id, err
}

func (c *BackendConn) prepare(global uint64, refs *atomic.Int32, query string, meta *StmtMeta) (uint32, error) {
	c.cmd = append(append(c.cmd[:0], wire.ComStmtPrepare), query...)
	err := c.send(c.cmd)
	var id uint32
	if err == nil {
		id, err = c.prepareResponse(meta)
	}
	if err != nil {
		return 0, c.fail(err)
	}
	if c.stmts == nil {
		c.stmts = make(map[uint64]stmtOnConn)
	}
	if old, ok := c.stmts[global]; ok && old.refs != nil {
		old.refs.Add(-1)
	}
	if refs != nil {
		refs.Add(1)
	}
	c.stmts[global] = stmtOnConn{id: id, refs: refs}
	return id, nil
}

// dropStmts forgets the connection's statements (the server dropped them,
// or is about to) and gives back their counts.
func (c *BackendConn) dropStmts() {
	for _, st := range c.stmts {
		if st.refs != nil {
			st.refs.Add(-1)
		}
	}
	clear(c.stmts)
}

// StmtID returns the connection's id for global statement global, if it
// was prepared here.
func (c *BackendConn) StmtID(global uint64) (uint32, bool) {
	st, ok := c.stmts[global]
	return st.id, ok
}

// Statements returns how many statements are prepared on the connection.
func (c *BackendConn) Statements() int { return len(c.stmts) }

// CloseStatements deallocates every statement prepared on the connection
// (COM_STMT_CLOSE has no response, so the packets are pipelined in one
// write) and forgets them. The router calls it when a connection holds
// more than mysql-max_stmts_per_connection statements: that keeps the
// server's max_prepared_stmt_count in reach without the round trip and the
// lost session state of a reset.
func (c *BackendConn) CloseStatements() error {
	if err := c.usable(); err != nil {
		return err
	}
	var b [5]byte
	b[0] = wire.ComStmtClose
	for _, st := range c.stmts {
		c.w.ResetSeq()
		binary.LittleEndian.PutUint32(b[1:], st.id)
		if err := c.w.WritePacket(b[:]); err != nil {
			return c.fail(err)
		}
	}
	c.dropStmts()
	return c.fail(c.w.Flush())
}
