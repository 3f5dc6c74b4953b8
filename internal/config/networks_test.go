package config

import (
	"net"
	"testing"
)

func TestNetworks(t *testing.T) {
	n, err := ParseNetworks(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.168.1.7": true, "192.168.1.8": false,
		"2001:db8::5": true, "2001:db9::5": false, "::ffff:10.0.0.1": true,
	} {
		if got := n.Contains(&net.TCPAddr{IP: net.ParseIP(addr), Port: 1}); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
	if n.Contains(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}) {
		t.Error("a Unix socket peer matched address networks")
	}
	all, _ := ParseNetworks("*")
	if !all.Contains(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}) || !all.Contains(&net.TCPAddr{IP: net.ParseIP("8.8.8.8")}) {
		t.Error("* does not match every peer")
	}
	none, _ := ParseNetworks("")
	if none.Contains(&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}) {
		t.Error("the empty list matched a peer")
	}
	for _, bad := range []string{"10.0.0.0/33", "localhost", "10.0.0.1/8/2"} {
		if _, err := ParseNetworks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
		d, _ := LookupVar("mysql-proxy_protocol_networks")
		if d.Check(bad) == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
}
