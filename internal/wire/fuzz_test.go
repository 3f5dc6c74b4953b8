package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadPacket feeds arbitrary bytes to the packet reader and checks three
// readings of the same stream against each other: ReadPacket + WritePacket
// must reproduce exactly the bytes ForwardPacket copies, and both must equal
// the input prefix they consumed (sequence ids start at 0 on both sides).
// Seeds live in testdata/fuzz/FuzzReadPacket and run with every go test.
func FuzzReadPacket(f *testing.F) {
	f.Add(encode([]byte("\x03select 1"), []byte{0xfe, 0, 0, 2, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Reading.
		r := readerConn(data)
		defer r.Close()
		var rewritten bytes.Buffer
		w := writerConn(&rewritten)
		defer w.Close()
		var goodRead int
		for range 1000 {
			p, err := r.ReadPacket()
			if err != nil {
				break
			}
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
			goodRead = int(r.BytesRead())
		}
		_ = w.Flush()

		// Forwarding.
		src := readerConn(data)
		defer src.Close()
		var forwarded bytes.Buffer
		dst := writerConn(&forwarded)
		defer dst.Close()
		var goodFwd, goodOut int
		for range 1000 {
			first, n, err := src.ForwardPacket(dst)
			if err != nil {
				break
			}
			if n > 0 && first != data[goodFwd+4] {
				t.Fatalf("first byte %x, want %x", first, data[goodFwd+4])
			}
			_ = dst.Flush()
			goodFwd = int(src.BytesRead())
			goodOut = forwarded.Len()
		}
		if goodRead != goodFwd {
			t.Fatalf("ReadPacket consumed %d good bytes, ForwardPacket %d", goodRead, goodFwd)
		}
		if !bytes.Equal(rewritten.Bytes(), data[:goodRead]) {
			t.Fatalf("ReadPacket+WritePacket does not reproduce the input")
		}
		if !bytes.Equal(forwarded.Bytes()[:goodOut], data[:goodFwd]) {
			t.Fatalf("ForwardPacket does not reproduce the input")
		}

		// Peeking agrees with reading and never consumes.
		pc := readerConn(data)
		defer pc.Close()
		if n, first, err := pc.PeekHeader(); err == nil {
			p, err := pc.ReadPacket()
			if err == nil && n < MaxPayloadLen && (len(p) != n || (n > 0 && p[0] != first)) {
				t.Fatalf("PeekHeader %d %x, ReadPacket %d bytes", n, first, len(p))
			}
		}
	})
}

// FuzzParseHandshakeResponse checks that the HandshakeResponse41 parser
// never panics and that what it accepts survives a write/parse round trip.
// Seeds (a real MariaDB client response among them) live in
// testdata/fuzz/FuzzParseHandshakeResponse.
func FuzzParseHandshakeResponse(f *testing.F) {
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		User:         "root", AuthResponse: []byte("01234567890123456789"), AuthPlugin: AuthNativePassword,
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseHandshakeResponse(data)
		if err != nil || r.SSLRequest {
			return
		}
		caps := r.Capabilities
		// AppendHandshakeResponse writes the auth data length-encoded or
		// with a one-byte length; NUL-terminated auth (neither flag) and
		// over-long one-byte auth cannot round-trip.
		if caps&ClientPluginAuthLenencClientData == 0 && (caps&ClientSecureConnection == 0 || len(r.AuthResponse) > 255) {
			return
		}
		again, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, r))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, r)
		}
	})
}

// FuzzCompressed feeds arbitrary bytes to a compressed connection's reader
// (it must fail cleanly, never panic or read past the input) and uses the
// same bytes as payloads for a round trip through the compressed writer and
// reader at a fuzzed level. Seeds live in testdata/fuzz/FuzzCompressed.
func FuzzCompressed(f *testing.F) {
	f.Add(compPacket(0, encode([]byte("\x03select 1")), false), int8(3))
	f.Add(compPacket(0, encode(bytes.Repeat([]byte("abc"), 100)), true), int8(-1))
	f.Add(append(compPacket(0, encode(filled(70, 'x'))[:30], true), compPacket(1, encode(filled(70, 'x'))[30:], false)...), int8(9))
	f.Fuzz(func(t *testing.T, data []byte, level int8) {
		r := readerConn(data)
		_ = r.StartCompression(3)
		for range 100 {
			r.ResetSeq()
			if _, err := r.ReadPacket(); err != nil {
				break
			}
		}
		r.Close()

		var wire bytes.Buffer
		w := writerConn(&wire)
		_ = w.StartCompression(int(level))
		payloads := bytes.SplitN(data, []byte{0}, 8)
		for _, p := range payloads {
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		back := readerConn(wire.Bytes())
		defer back.Close()
		_ = back.StartCompression(0)
		for i, want := range payloads {
			got, err := back.ReadPacket()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("payload %d: %q, %v; want %q", i, got, err, want)
			}
		}
		if _, err := back.ReadPacket(); err == nil {
			t.Fatal("a packet after the last one written")
		}
	})
}
