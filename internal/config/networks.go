package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Networks is a VarNetworks value (mysql-proxy_protocol_networks): "*"
// for every peer, or a comma-separated list of networks (CIDR) and
// addresses; "" matches no peer.
type Networks struct {
	all      bool
	prefixes []netip.Prefix
}

// ParseNetworks parses a VarNetworks value.
func ParseNetworks(v string) (Networks, error) {
	var n Networks
	for _, f := range strings.Split(v, ",") {
		s := strings.TrimSpace(f)
		switch {
		case s == "":
			continue
		case s == "*":
			n.all = true
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			n.prefixes = append(n.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Networks{}, fmt.Errorf("%q is neither a network (CIDR) nor an address, nor *", s)
		}
		n.prefixes = append(n.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return n, nil
}

// Contains reports whether peer (a TCP address) is in one of the networks.
func (n Networks) Contains(peer net.Addr) bool {
	if n.all {
		return true
	}
	tcp, ok := peer.(*net.TCPAddr)
	if !ok {
		return false
	}
	a, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range n.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Networks returns a VarNetworks variable (no peer when it does not parse;
// LOAD refuses such a value).
func (s *Snapshot) Networks(name string) Networks {
	n, _ := ParseNetworks(s.Var(name))
	return n
}
