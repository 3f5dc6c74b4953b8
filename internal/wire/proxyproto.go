package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/ratelog"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt): a load balancer in
// front of the proxy opens each connection with a header naming the
// client it relays. Version 1 is a text line, "PROXY TCP4 <src> <dst>
// <sport> <dport>\r\n" of at most 107 bytes; version 2 is binary, a
// 16-byte header (signature, version/command, family, length) and the
// addresses. The header comes before anything else the client sends,
// which for MySQL is the reply to the server's handshake: ServerHandshake
// looks for it there, as ProxySQL does, and hands it to the caller, who
// decides whether to believe it (mysql-proxy_protocol_networks).

// ProxyHeader is a PROXY protocol header read at the start of a client
// connection.
type ProxyHeader struct {
	Version int // 1 or 2
	// Source is the relayed client's address; invalid for a header that
	// names none (v1 UNKNOWN, v2 LOCAL or an unspecified family) or that
	// could not be parsed (Err says why).
	Source netip.AddrPort
	Err    error
}

const (
	proxyV1Max    = 107  // the longest v1 line, CRLF included
	proxyV2Header = 16   // signature, version/command, family, length
	proxyV2MaxLen = 2048 // Sluice's bound on the v2 address block and TLVs
)

var (
	proxyV1Sig = []byte("PROXY ")
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// readProxyHeader consumes a PROXY protocol header if the stream starts with
// one. No header: nil, nothing consumed. A header whose end does not come
// within its bound is an error (the connection cannot be read past it); a
// complete one that does not parse is returned with Err set. The signature
// is compared a byte at a time, so a client without a header is never
// waited on for more than the bytes it sent: a MySQL packet that starts
// like one ('P' or '\r' as its length's low byte) differs by its second
// byte, a zero length byte.
func (c *Conn) readProxyHeader() (*ProxyHeader, error) {
	switch {
	case c.startsWith(proxyV1Sig):
		for n := len(proxyV1Sig); ; n++ {
			p, err := c.br.Peek(n)
			if err != nil {
				return nil, readErr(err)
			}
			if bytes.HasSuffix(p, []byte("\r\n")) {
				h := ParseProxyV1(p)
				_, _ = c.br.Discard(n)
				return h, nil
			}
			if n >= proxyV1Max {
				return nil, malformed(fmt.Sprintf("PROXY protocol v1 header: no CRLF in %d bytes", proxyV1Max))
			}
		}
	case c.startsWith(proxyV2Sig):
		p, err := c.br.Peek(proxyV2Header)
		if err != nil {
			return nil, readErr(err)
		}
		n := int(binary.BigEndian.Uint16(p[14:16]))
		if n > proxyV2MaxLen {
			return nil, malformed(fmt.Sprintf("PROXY protocol v2 header: %d bytes of addresses, more than %d", n, proxyV2MaxLen))
		}
		if p, err = c.br.Peek(proxyV2Header + n); err != nil {
			return nil, readErr(err)
		}
		h := ParseProxyV2(p)
		_, _ = c.br.Discard(proxyV2Header + n)
		return h, nil
	}
	return nil, nil
}

// startsWith reports whether the unread stream starts with sig, reading
// only as far as it matches.
func (c *Conn) startsWith(sig []byte) bool {
	for i := 1; i <= len(sig); i++ {
		p, err := c.br.Peek(i)
		if err != nil || p[i-1] != sig[i-1] {
			return false
		}
	}
	return true
}

// ParseProxyV1 parses one v1 line, CRLF included.
func ParseProxyV1(line []byte) *ProxyHeader {
	h := &ProxyHeader{Version: 1}
	f := bytes.Split(bytes.TrimSuffix(line, []byte("\r\n")), []byte(" "))
	if len(f) < 2 || string(f[0]) != "PROXY" {
		h.Err = malformed("PROXY protocol v1 header: no PROXY keyword")
		return h
	}
	switch string(f[1]) {
	case "UNKNOWN":
		return h // the receiver keeps the connection's own peer
	case "TCP4", "TCP6":
	default:
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: unknown protocol %q", ratelog.Clip(string(f[1]), 48)))
		return h
	}
	if len(f) != 6 {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: %d fields, want 6", len(f)))
		return h
	}
	src, err := netip.ParseAddr(string(f[2]))
	if err != nil || src.Is4() != (string(f[1]) == "TCP4") {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: bad source address %q", ratelog.Clip(string(f[2]), 48)))
		return h
	}
	if _, err := netip.ParseAddr(string(f[3])); err != nil {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: bad destination address %q", ratelog.Clip(string(f[3]), 48)))
		return h
	}
	port, err := strconv.ParseUint(string(f[4]), 10, 16)
	if err != nil {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: bad source port %q", ratelog.Clip(string(f[4]), 48)))
		return h
	}
	if _, err := strconv.ParseUint(string(f[5]), 10, 16); err != nil {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v1 header: bad destination port %q", ratelog.Clip(string(f[5]), 48)))
		return h
	}
	h.Source = netip.AddrPortFrom(src, uint16(port))
	return h
}

// ParseProxyV2 parses a whole v2 header: the 16 fixed bytes and the length
// they announce.
func ParseProxyV2(p []byte) *ProxyHeader {
	h := &ProxyHeader{Version: 2}
	if len(p) < proxyV2Header || !bytes.HasPrefix(p, proxyV2Sig) {
		h.Err = malformed("PROXY protocol v2 header: no signature")
		return h
	}
	verCmd, fam := p[12], p[13]
	body := p[proxyV2Header:]
	if n := int(binary.BigEndian.Uint16(p[14:16])); n != len(body) {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v2 header: %d bytes announced, %d given", n, len(body)))
		return h
	}
	if verCmd>>4 != 2 {
		h.Err = malformed(fmt.Sprintf("PROXY protocol v2 header: version %d", verCmd>>4))
		return h
	}
	switch verCmd & 0x0f {
	case 0: // LOCAL: the balancer's own connection (a health check)
		return h
	case 1: // PROXY
	default:
		h.Err = malformed(fmt.Sprintf("PROXY protocol v2 header: command %d", verCmd&0x0f))
		return h
	}
	switch fam >> 4 {
	case 1: // AF_INET: src, dst, sport, dport
		if len(body) < 12 {
			h.Err = malformed(fmt.Sprintf("PROXY protocol v2 header: %d bytes for IPv4 addresses", len(body)))
			return h
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
	case 2: // AF_INET6
		if len(body) < 36 {
			h.Err = malformed(fmt.Sprintf("PROXY protocol v2 header: %d bytes for IPv6 addresses", len(body)))
			return h
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
	}
	// AF_UNSPEC and AF_UNIX name no TCP client: the connection's own peer
	// stands. TLVs are not used.
	return h
}
