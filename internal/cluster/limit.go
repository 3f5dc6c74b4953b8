package cluster

import (
	"context"
	"fmt"
	"net"
)

// maxPacketChain bounds one logical MySQL packet a peer sends (a row, or a
// chain of 16 MB packets that make one): the driver allocates a packet as
// its header announces it and appends the packets of a chain, so without
// this a peer could make this node grow one row without limit. A packet
// header announces at most 16 MB, so what one logical packet may allocate
// is bounded by maxPacketChain plus 16 MB.
const maxPacketChain = 64 << 20

// frameLimitConn is a connection to a peer that follows the MySQL packet
// framing of what it reads and fails the read that brings a header whose
// logical packet would exceed max bytes, before the driver allocates it.
type frameLimitConn struct {
	net.Conn
	max int64

	hdr       [4]byte
	hdrN      int   // header bytes seen of the current header
	remaining int64 // payload bytes still to come of the current packet
	chain     int64 // payload bytes of the current logical packet
	chainEnds bool  // the current packet is the last of its chain
}

func (c *frameLimitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if ferr := c.follow(p[:n]); ferr != nil {
		c.Conn.Close()
		return 0, ferr
	}
	return n, err
}

// follow updates the framing state with b, the next bytes read.
func (c *frameLimitConn) follow(b []byte) error {
	for len(b) > 0 {
		if c.remaining > 0 {
			k := min(c.remaining, int64(len(b)))
			c.remaining -= k
			b = b[k:]
			continue
		}
		c.hdr[c.hdrN] = b[0]
		c.hdrN++
		b = b[1:]
		if c.hdrN < 4 {
			continue
		}
		c.hdrN = 0
		size := int64(c.hdr[0]) | int64(c.hdr[1])<<8 | int64(c.hdr[2])<<16
		if c.chainEnds {
			c.chain = 0
		}
		c.chain += size
		c.chainEnds = size < 0xffffff
		c.remaining = size
		if c.chain > c.max {
			return fmt.Errorf("cluster: peer %s sent a packet of more than %d bytes", c.RemoteAddr(), c.max)
		}
	}
	return nil
}

// dialLimited is the driver's DialFunc for peers: a TCP connection whose
// packets are bounded by maxPacketChain.
func dialLimited(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &frameLimitConn{Conn: conn, max: maxPacketChain, chainEnds: true}, nil
}
