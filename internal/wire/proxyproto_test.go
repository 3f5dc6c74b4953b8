package wire

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// proxyV2TCP4 is a v2 PROXY header for a TCP/IPv4 client src:port.
func proxyV2TCP4(src [4]byte, port uint16) []byte {
	b := append([]byte(nil), proxyV2Sig...)
	b = append(b, 0x21, 0x11, 0, 12)
	b = append(b, src[:]...)
	b = append(b, 127, 0, 0, 1)
	b = binary.BigEndian.AppendUint16(b, port)
	return binary.BigEndian.AppendUint16(b, 6033)
}

func TestParseProxyV1(t *testing.T) {
	for _, tc := range []struct {
		line, src string // src "" : no address; "err": Err set
	}{
		{"PROXY TCP4 192.0.2.7 10.0.0.1 51000 6033\r\n", "192.0.2.7:51000"},
		{"PROXY TCP6 2001:db8::7 2001:db8::1 51000 6033\r\n", "[2001:db8::7]:51000"},
		{"PROXY UNKNOWN\r\n", ""},
		{"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", ""},
		{"PROXY TCP4 2001:db8::7 10.0.0.1 51000 6033\r\n", "err"}, // family mismatch
		{"PROXY TCP4 192.0.2.7 10.0.0.1 70000 6033\r\n", "err"},   // port out of range
		{"PROXY TCP4 192.0.2.7 10.0.0.1 51000\r\n", "err"},
		{"PROXY UDP4 192.0.2.7 10.0.0.1 51000 6033\r\n", "err"},
		{"PROXY TCP4 host 10.0.0.1 51000 6033\r\n", "err"},
	} {
		h := ParseProxyV1([]byte(tc.line))
		switch {
		case h.Version != 1:
			t.Errorf("%q: version %d", tc.line, h.Version)
		case tc.src == "err":
			if h.Err == nil {
				t.Errorf("%q: parsed as %v, want an error", tc.line, h.Source)
			}
		case h.Err != nil:
			t.Errorf("%q: %v", tc.line, h.Err)
		case tc.src == "" && h.Source.IsValid(), tc.src != "" && h.Source.String() != tc.src:
			t.Errorf("%q: source %v, want %q", tc.line, h.Source, tc.src)
		}
	}
}

func TestParseProxyV2(t *testing.T) {
	h := ParseProxyV2(proxyV2TCP4([4]byte{192, 0, 2, 7}, 51000))
	if h.Err != nil || h.Version != 2 || h.Source != netip.MustParseAddrPort("192.0.2.7:51000") {
		t.Fatalf("TCP4: %+v", h)
	}
	v6 := append([]byte(nil), proxyV2Sig...)
	v6 = append(v6, 0x21, 0x21, 0, 36+5) // with a 5-byte TLV after the addresses
	v6 = append(v6, netip.MustParseAddr("2001:db8::7").AsSlice()...)
	v6 = append(v6, netip.MustParseAddr("2001:db8::1").AsSlice()...)
	v6 = append(v6, 0xc7, 0x38, 0x17, 0x91, 0x04, 0, 2, 'h', 'i')
	if h := ParseProxyV2(v6); h.Err != nil || h.Source.String() != "[2001:db8::7]:51000" {
		t.Fatalf("TCP6: %+v", h)
	}
	local := append(append([]byte(nil), proxyV2Sig...), 0x20, 0x00, 0, 0)
	if h := ParseProxyV2(local); h.Err != nil || h.Source.IsValid() {
		t.Fatalf("LOCAL: %+v", h)
	}
	for name, b := range map[string][]byte{
		"short IPv4 block": append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0, 4, 1, 2, 3, 4),
		"version 1":        append(append([]byte(nil), proxyV2Sig...), 0x11, 0x11, 0, 0),
		"command 3":        append(append([]byte(nil), proxyV2Sig...), 0x23, 0x11, 0, 0),
		"length mismatch":  append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0, 12, 1),
	} {
		if h := ParseProxyV2(b); h.Err == nil {
			t.Errorf("%s: accepted as %+v", name, h)
		}
	}
}

// TestServerHandshakeProxyHeader: the header before the handshake response
// is consumed and returned; one that never ends is refused within its bound;
// a client without one is untouched.
func TestServerHandshakeProxyHeader(t *testing.T) {
	resp := AppendHandshakeResponse(nil, &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		User:         "alice", AuthResponse: make([]byte, 20), AuthPlugin: AuthNativePassword,
	})
	hs := func() *InitialHandshake {
		return &InitialHandshake{ServerVersion: "8.0.36", ConnID: 1, Salt: []byte("0123456789abcdefghij"), Capabilities: ServerCapabilities(false)}
	}
	for name, tc := range map[string]struct {
		prefix []byte
		src    string
	}{
		"none": {nil, ""},
		"v1":   {[]byte("PROXY TCP4 192.0.2.7 127.0.0.1 51000 6033\r\n"), "192.0.2.7:51000"},
		"v2":   {proxyV2TCP4([4]byte{192, 0, 2, 9}, 40000), "192.0.2.9:40000"},
	} {
		c := readerConn(append(append([]byte(nil), tc.prefix...), encodeFrom(1, resp)...))
		r, err := ServerHandshake(c, hs(), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.User != "alice" {
			t.Fatalf("%s: user %q", name, r.User)
		}
		switch {
		case tc.src == "" && r.Proxy != nil:
			t.Fatalf("%s: a PROXY header where none was sent: %+v", name, r.Proxy)
		case tc.src != "" && (r.Proxy == nil || r.Proxy.Source.String() != tc.src):
			t.Fatalf("%s: PROXY header %+v, want source %s", name, r.Proxy, tc.src)
		}
	}
	long := append([]byte("PROXY TCP4 "), make([]byte, 200)...)
	c := readerConn(append(long, encodeFrom(1, resp)...))
	defer c.Close()
	if _, err := ServerHandshake(c, hs(), nil); err == nil {
		t.Fatal("a PROXY line without CRLF in 107 bytes was accepted")
	}
}

// FuzzProxyHeader: the PROXY header parsers on any bytes: no panic, and an
// address only from a header that parsed.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 10.0.0.1 51000 6033\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 51000 6033\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2TCP4([4]byte{192, 0, 2, 7}, 51000))
	f.Add(append(append([]byte(nil), proxyV2Sig...), 0x21, 0x21, 0, 36))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, h := range []*ProxyHeader{ParseProxyV1(b), ParseProxyV2(b)} {
			if h.Err != nil && h.Source.IsValid() {
				t.Fatalf("an address from a header that did not parse: %+v", h)
			}
		}
	})
}
