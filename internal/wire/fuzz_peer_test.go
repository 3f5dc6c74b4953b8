package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"math/big"
	"reflect"
	"testing"
	"time"
)

// Fuzz targets for the packets a peer controls beyond the client's
// HandshakeResponse41 (fuzz_test.go): a backend's greeting, its OK, ERR,
// EOF and auth-switch packets, length-encoded integers, a client's
// COM_CHANGE_USER, and the server side of the connection phase with and
// without TLS. Failing inputs and kept corpus entries live in
// testdata/fuzz/<target> and run with every go test.

// FuzzParseInitialHandshake: a backend's HandshakeV10 (or ERR greeting),
// whatever its bytes, parses or fails without a panic; the salt never
// holds more than the packet did; what parses with a 20-byte salt survives
// AppendInitialHandshake and a second parse.
func FuzzParseInitialHandshake(f *testing.F) {
	salt := []byte("0123456789abcdefghij")
	for _, h := range []*InitialHandshake{
		{ServerVersion: "11.4.2-MariaDB", ConnID: 7, Salt: salt, Capabilities: ServerCapabilities(true), Charset: 45, Status: StatusAutocommit},
		{ServerVersion: "8.0.36", ConnID: 1 << 30, Salt: salt, Capabilities: ServerCapabilities(false), Charset: 255, AuthPlugin: AuthCachingSha2},
		{ServerVersion: "5.5.5-10.6.16-MariaDB", Salt: salt, Capabilities: ClientProtocol41 | ClientSecureConnection, AuthPlugin: AuthMariaDBEd25519},
	} {
		f.Add(AppendInitialHandshake(nil, h))
	}
	f.Add(AppendERR(nil, 1040, "08004", "Too many connections"))
	f.Add([]byte{ProtocolVersion, '5', 0, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x00, 0x02}) // pre-4.1, short
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseInitialHandshake(p)
		if err != nil {
			if h != nil {
				t.Fatalf("a handshake and an error: %+v, %v", h, err)
			}
			return
		}
		if len(h.Salt) > len(p) || len(h.ServerVersion) > len(p) ||
			(h.AuthPlugin != AuthNativePassword && len(h.AuthPlugin) > len(p)) {
			t.Fatalf("fields larger than the %d-byte packet: %+v", len(p), h)
		}
		if h.Capabilities&ClientProtocol41 == 0 {
			t.Fatalf("accepted a server without protocol 4.1: %+v", h)
		}
		// AppendInitialHandshake writes a 20-byte salt and the 4.1 layout
		// in full; only such greetings round-trip.
		if len(h.Salt) != ScrambleLength || h.Capabilities&ClientSecureConnection == 0 ||
			bytes.IndexByte(h.Salt, 0) >= 0 || bytes.IndexByte([]byte(h.ServerVersion), 0) >= 0 {
			return
		}
		again, err := ParseInitialHandshake(AppendInitialHandshake(nil, h))
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", h, err)
		}
		if h.Capabilities&ClientPluginAuth == 0 {
			again.AuthPlugin = h.AuthPlugin // not written without the flag
		}
		if !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, h)
		}
	})
}

// FuzzServerPackets: the packets a backend answers a command or a login
// with — OK (both headers), ERR, EOF, result-set terminators and their
// translation between dialects, AuthSwitchRequest — and the
// length-encoded integers and strings inside them. No panic; every parse
// that succeeds survives the package's writer and a second parse; the
// dialect translations keep warnings and status.
func FuzzServerPackets(f *testing.F) {
	f.Add(AppendOK(nil, 3, 42, StatusAutocommit, 1, "Rows matched: 3  Changed: 3  Warnings: 0"))
	f.Add(AppendOK(nil, 1<<40, 1<<20, StatusInTrans|StatusMoreResultsExists, 0, ""))
	f.Add(AppendOKTerminator(nil, 0, 0, StatusAutocommit, 2))
	f.Add(AppendERR(nil, 1146, "42S02", "Table 'shop.nope' doesn't exist"))
	f.Add([]byte{HeaderERR, 0x15, 0x04, 'A', 'c', 'c'}) // no SQL state
	f.Add(AppendEOF(nil, 0, StatusAutocommit))
	f.Add([]byte{HeaderEOF})
	f.Add(AppendNativeAuthSwitch(nil, []byte("0123456789abcdefghij")))
	f.Add(AppendAuthSwitchRequest(nil, AuthCachingSha2, []byte("0123456789abcdefghij\x00")))
	f.Add(AppendAuthMoreData(nil, []byte{CachingSha2FullAuth}))
	f.Add(AppendLenEncString(AppendLenEncInt(nil, 1<<24), "x"))
	f.Add([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		// Length-encoded integers and strings.
		if n, isNull, rest, ok := ReadLenEncInt(p); ok {
			if len(rest) >= len(p) {
				t.Fatalf("ReadLenEncInt consumed nothing")
			}
			if !isNull {
				enc := AppendLenEncInt(nil, n)
				if m, null2, rest2, ok2 := ReadLenEncInt(enc); !ok2 || null2 || m != n || len(rest2) != 0 || len(enc) != LenEncIntSize(n) {
					t.Fatalf("lenenc %d: re-read %d %v %v", n, m, null2, ok2)
				}
			}
		} else if len(rest) != len(p) {
			t.Fatalf("a failed ReadLenEncInt moved")
		}
		if s, isNull, rest, ok := ReadLenEncString(p); ok && !isNull {
			if len(s)+len(rest) > len(p) {
				t.Fatalf("string and rest longer than the input")
			}
			if s2, _, _, _ := ReadLenEncString(AppendLenEncBytes(nil, s)); !bytes.Equal(s2, s) {
				t.Fatalf("lenenc string round trip")
			}
		}

		// OK, both headers.
		if ok, err := ParseOK(p); err == nil {
			again, err := ParseOK(AppendOK(nil, ok.AffectedRows, ok.LastInsertID, ok.Status, ok.Warnings, string(ok.Info)))
			if err != nil {
				t.Fatalf("OK re-parse: %v", err)
			}
			if len(ok.Info) == 0 {
				ok.Info, again.Info = nil, nil
			}
			if !reflect.DeepEqual(again, ok) {
				t.Fatalf("OK round trip\n got %+v\nwant %+v", again, ok)
			}
		}

		// ERR.
		if e, err := ParseERR(p); err == nil {
			again, err := ParseERR(AppendERR(nil, e.Code, e.State, e.Message))
			if err != nil || *again != *e {
				t.Fatalf("ERR round trip: %+v, %v; want %+v", again, err, e)
			}
		} else if e != nil {
			t.Fatalf("ERR and an error")
		}

		// EOF and terminators, with the translation between dialects.
		if w, s, ok := ParseEOF(p); ok && len(p) >= 5 {
			w2, s2, ok2 := ParseEOF(AppendEOF(nil, w, s))
			if !ok2 || w2 != w || s2 != s {
				t.Fatalf("EOF round trip")
			}
		}
		if w, s, err := ParseTerminator(p); err == nil {
			for _, conv := range []func([]byte, []byte) ([]byte, error){EOFToOK, OKToEOF} {
				out, err := conv(nil, p)
				if err != nil {
					t.Fatalf("a terminator that does not convert: %v", err)
				}
				w2, s2, err := ParseTerminator(out)
				if err != nil || w2 != w || s2 != s {
					t.Fatalf("terminator %x: converted %x reads %d/%d (%v), want %d/%d", p, out, w2, s2, err, w, s)
				}
			}
		}

		// AuthSwitchRequest.
		if plugin, data, err := ParseAuthSwitchRequest(p); err == nil {
			if len(p) > 1 && len(plugin)+len(data) > len(p) {
				t.Fatalf("auth switch fields longer than the packet")
			}
			if len(p) > 1 && bytes.IndexByte([]byte(plugin), 0) < 0 {
				_, data2, err := ParseAuthSwitchRequest(AppendAuthSwitchRequest(nil, plugin, data))
				if err != nil || !bytes.Equal(data2, data) {
					t.Fatalf("auth switch round trip: %x, %v; want %x", data2, err, data)
				}
			}
		}
	})
}

// FuzzParseChangeUser: a client's COM_CHANGE_USER under any capabilities
// parses or fails without a panic, never returns more than the packet
// held, and what parses (with the one-byte auth length AppendChangeUser
// writes) survives a write/parse round trip.
func FuzzParseChangeUser(f *testing.F) {
	caps := ServerCapabilities(true)
	cu := &ChangeUser{User: "alice", AuthResponse: []byte("01234567890123456789"), DB: "shop", Charset: 45,
		AuthPlugin: AuthNativePassword, Attrs: []Attr{{"_client_name", "libmariadb"}, {"_client_version", "3.3.10"}}}
	f.Add(AppendChangeUser(nil, caps, cu), caps)
	f.Add(AppendChangeUser(nil, ClientProtocol41|ClientSecureConnection, &ChangeUser{User: "bob"}), uint32(ClientProtocol41|ClientSecureConnection))
	f.Add([]byte{ComChangeUser, 'u', 0, 'p', 'w', 0, 'd', 'b', 0}, uint32(ClientProtocol41))
	f.Add([]byte{ComChangeUser, 'u', 0, 200, 'x'}, caps)
	f.Fuzz(func(t *testing.T, p []byte, caps uint32) {
		cu, err := ParseChangeUser(p, caps)
		if err != nil {
			return
		}
		n := len(cu.User) + len(cu.AuthResponse) + len(cu.DB) + len(cu.AuthPlugin)
		for _, a := range cu.Attrs {
			n += len(a.Key) + len(a.Value)
		}
		if n > len(p) {
			t.Fatalf("%d bytes of fields from a %d-byte packet", n, len(p))
		}
		if caps&ClientSecureConnection == 0 {
			return // NUL-terminated auth data: AppendChangeUser does not write it
		}
		again, err := ParseChangeUser(AppendChangeUser(nil, caps, cu), caps)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again, cu) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, cu)
		}
	})
}

// FuzzServerHandshake: the data port's side of the connection phase fed
// any client bytes — a HandshakeResponse41, an SSLRequest followed by
// whatever (a TLS hello or not), an auth-switch reply — through an
// in-memory connection, with TLS offered or not. It must end (the bytes
// run out) without a panic, and whatever it accepts is a parsed response.
func FuzzServerHandshake(f *testing.F) {
	tlsConf := fuzzTLS(f)
	resp := AppendHandshakeResponse(nil, &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientPluginAuthLenencClientData | ClientConnectAttrs,
		MaxPacket:    1 << 24, Charset: 45, User: "alice", AuthResponse: []byte("01234567890123456789"),
		AuthPlugin: AuthNativePassword, Attrs: []Attr{{"_client_name", "libmariadb"}},
	})
	sha := AppendHandshakeResponse(nil, &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		User:         "bob", AuthResponse: make([]byte, 32), AuthPlugin: AuthCachingSha2,
	})
	ssl := binary.LittleEndian.AppendUint32(nil, ClientProtocol41|ClientSSL)
	ssl = append(ssl, make([]byte, 28)...)
	// A TLS 1.2 ClientHello record header after the SSLRequest: the
	// handshake fails on the truncated hello.
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03}
	for _, seed := range [][]byte{
		encodeFrom(1, resp),
		encodeFrom(1, sha, []byte("01234567890123456789")),
		append(encodeFrom(1, ssl), hello...),
		encodeFrom(1, ssl, resp),
		{0xff, 0xff, 0xff, 1},
		append([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 51000 6033\r\n"), encodeFrom(1, resp)...),
		append(proxyV2TCP4([4]byte{192, 0, 2, 7}, 51000), encodeFrom(1, resp)...),
		[]byte("PROXY TCP4 192.0.2.7 127.0.0.1 51000 6033 no end of line in sight"),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, client []byte, offerTLS bool) {
		c := readerConn(client)
		defer c.Close()
		c.SetMaxPayload(64 << 10) // the login bound the session sets
		hs := &InitialHandshake{ServerVersion: "8.0.36-sluice", ConnID: 1, Salt: []byte("0123456789abcdefghij"),
			Capabilities: ServerCapabilities(true)}
		var conf *tls.Config
		if offerTLS {
			conf = tlsConf
		}
		r, err := ServerHandshake(c, hs, conf)
		if err != nil {
			if r != nil {
				t.Fatalf("a response and an error")
			}
			return
		}
		if r.SSLRequest {
			t.Fatalf("ServerHandshake returned an SSLRequest as the login")
		}
		if len(r.User) > len(client) || len(r.AuthResponse) > len(client) {
			t.Fatalf("fields longer than the client's bytes")
		}
		if r.Proxy != nil && r.Proxy.Err == nil && r.Proxy.Source.IsValid() && r.Proxy.Version == 0 {
			t.Fatalf("a PROXY header without a version")
		}
	})
}

// encodeFrom is encode with the first packet's sequence id given (a
// client's first packet is 1: the greeting was 0).
func encodeFrom(seq byte, payloads ...[]byte) []byte {
	var out []byte
	for _, p := range payloads {
		out = append(out, header(len(p), seq)...)
		out = append(out, p...)
		seq++
	}
	return out
}

func fuzzTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-fuzz"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
