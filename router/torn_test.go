package router

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// brokenBackend is a server that logs in and then answers every query with
// part of a result set and closes the connection: with the column count
// and one column definition (meta), or also one row and then 20 bytes of a
// row packet announced as 100 (torn). It counts the queries it got.
func brokenBackend(tb testing.TB, torn bool, queries *atomic.Int32) string {
	col := wire.AppendLenEncString(nil, "def")
	for _, s := range []string{"", "", "", "c", ""} {
		col = wire.AppendLenEncString(col, s)
	}
	col = append(col, 0x0c, 63, 0, 100, 0, 0, 0, 0xfe, 0, 0, 0, 0, 0)
	return fakeServer(tb, func(c *wire.Conn, nc net.Conn) {
		c.ResetSeq()
		p, err := c.ReadPacket()
		if err != nil || len(p) == 0 || p[0] != wire.ComQuery {
			return
		}
		queries.Add(1)
		c.WritePacket(wire.AppendLenEncInt(nil, 1))
		c.WritePacket(col)
		if torn {
			c.WritePacket(wire.AppendEOF(nil, 0, wire.StatusAutocommit))
			c.WritePacket(wire.AppendLenEncString(nil, "a full row"))
			c.Flush()
			// A row of 100 bytes of which 20 come.
			nc.Write([]byte{100, 0, 0, 5, 99, 'p', 'a', 'r', 't', 'i', 'a', 'l', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-'})
		}
		c.Flush()
	})
}

// TestBackendFailsMidPacket: a server that dies in the middle of a row the
// proxy is forwarding left part of a packet with the client; the proxy
// then wrote its ERR after it, which the client read as the rest of the
// row, and waited for ever (the mariadb CLI, go-sql-driver). The client's
// connection is now closed, as a direct connection would be.
func TestBackendFailsMidPacket(t *testing.T) {
	var n atomic.Int32
	_, c := newRouterAt(t, brokenBackend(t, true, &n), nil)
	c.ResetSeq()
	c.WritePacket(append([]byte{wire.ComQuery}, "SELECT c FROM t"...))
	c.Flush()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.ReadPacket(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		// The connection ended; before, the proxy's ERR was read as the
		// rest of the row and the next read waited or failed on a bad
		// sequence number.
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("the client's read: %v, want the connection closed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client still waits for the rest of the row 10 s later")
	}
	if n.Load() != 1 {
		t.Errorf("the query ran %d times", n.Load())
	}
}

// TestNoRetryAfterMetadata: a read whose server failed after the column
// count and a definition had gone to the client was run again on another
// connection, and the client got a second column count where it expected
// the next definition ("Packet sequence number wrong"). Once anything of a
// response reached the client, the command is not repeated: the client
// gets the error.
func TestNoRetryAfterMetadata(t *testing.T) {
	var n atomic.Int32
	_, c := newRouterAt(t, brokenBackend(t, false, &n), nil)
	c.ResetSeq()
	c.WritePacket(append([]byte{wire.ComQuery}, "SELECT c FROM t"...))
	c.Flush()
	var got [][]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, err := c.ReadPacket()
		if err != nil {
			break
		}
		got = append(got, append([]byte(nil), p...))
		if wire.IsERR(p) {
			break
		}
	}
	if n.Load() != 1 {
		t.Errorf("the query ran %d times after its metadata reached the client", n.Load())
	}
	counts := 0
	for _, p := range got {
		if len(p) == 1 && p[0] == 1 {
			counts++
		}
	}
	if counts > 1 || len(got) == 0 || !wire.IsERR(got[len(got)-1]) {
		t.Errorf("the client got %q", got)
	}
}
