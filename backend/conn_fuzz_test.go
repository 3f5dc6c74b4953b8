package backend

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"runtime"
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// Fuzz targets for what a backend sends besides a command's streamed
// response (FuzzRunResponse): the login exchange (greeting, auth switch,
// AuthMoreData, OK/ERR) at connect and after COM_CHANGE_USER, the
// COM_STMT_PREPARE response, and the result sets the proxy reads itself
// (monitor checks, SELECT @@…). Every target also checks that what the
// server claims (column counts, parameter counts) never makes the proxy
// allocate more than the bytes it really sent justify.

// fuzzConn is a backend connection whose server sends exactly server.
func fuzzConn(server []byte) *BackendConn {
	return &BackendConn{w: wire.NewConn(&byteConn{r: bytes.NewReader(server)}), srv: &Server{addr: "fuzz"}}
}

// allocBound is what a walk over n server bytes may allocate: the
// connection's buffers, plus a fixed multiple of the input.
func allocBound(n int) uint64 { return 512<<10 + 256*uint64(n) }

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func pemKey(tb testing.TB) []byte {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// FuzzBackendLogin feeds arbitrary server bytes to the login: the
// handshake at connect (greeting, auth switch, caching_sha2_password and
// sha256_password exchanges, OK or ERR), or, with mode bit 4, the answer
// to COM_CHANGE_USER. Credentials are a clear password, a stage-1 hash or
// none (mode bits 0-1). It must end without a panic.
func FuzzBackendLogin(f *testing.F) {
	salt := []byte("0123456789abcdefghij")
	greet := func(plugin string) []byte {
		return packet(0, wire.AppendInitialHandshake(nil, &wire.InitialHandshake{ServerVersion: "8.0.36", ConnID: 9,
			Salt: salt, Capabilities: wire.ServerCapabilities(true), Charset: 45, Status: wire.StatusAutocommit,
			AuthPlugin: plugin})...)
	}
	okp := func(seq byte) []byte { return packet(seq, wire.AppendOK(nil, 0, 0, wire.StatusAutocommit, 0, "")...) }
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	key := pemKey(f)
	logins := [][]byte{
		cat(greet(wire.AuthNativePassword), okp(2)),
		cat(greet(wire.AuthCachingSha2), packet(2, wire.HeaderMoreData, wire.CachingSha2FastAuthOK), okp(3)),
		cat(greet(wire.AuthCachingSha2), packet(2, wire.HeaderMoreData, wire.CachingSha2FullAuth),
			packet(4, wire.AppendAuthMoreData(nil, key)...), okp(6)),
		cat(greet(wire.AuthNativePassword), packet(2, wire.AppendAuthSwitchRequest(nil, wire.AuthCachingSha2, append(salt, 0))...),
			packet(4, wire.HeaderMoreData, wire.CachingSha2FastAuthOK), okp(5)),
		cat(greet(wire.AuthSha256Password), packet(2, wire.AppendAuthMoreData(nil, key)...), okp(4)),
		cat(greet(wire.AuthMariaDBEd25519), packet(2, wire.AppendAuthSwitchRequest(nil, wire.AuthMariaDBEd25519, make([]byte, 32))...), okp(4)),
		cat(greet(wire.AuthNativePassword), packet(2, wire.AppendERR(nil, 1045, "28000", "Access denied for user 'app'")...)),
		packet(0, wire.AppendERR(nil, 1040, "08004", "Too many connections")...),
	}
	changes := [][]byte{
		okp(1),
		cat(packet(1, wire.AppendNativeAuthSwitch(nil, salt)...), okp(3)),
		packet(1, wire.AppendERR(nil, 1045, "28000", "Access denied")...),
	}
	for _, l := range logins {
		for mode := range 16 {
			f.Add(l, byte(mode))
		}
	}
	for _, c := range changes {
		for mode := range 4 {
			f.Add(c, byte(16|mode))
		}
	}
	f.Fuzz(func(t *testing.T, server []byte, mode byte) {
		c := fuzzConn(server)
		switch mode & 3 {
		case 0:
			c.cred = Credentials{User: "app", Password: "s3cret"}
		case 1:
			c.cred = Credentials{User: "app", Stage1: wire.Stage1([]byte("s3cret"))}
		default:
			c.cred = Credentials{User: "app"}
		}
		opts := DefaultOptions()
		opts.DeprecateEOF = mode&4 != 0
		want := &State{Collation: 45}
		if mode&8 != 0 {
			want.Schema = "shop"
		}
		got := allocated(func() {
			if mode&16 == 0 {
				_ = c.handshake(&opts, want)
				return
			}
			c.caps = clientCapabilities | wire.ClientDeprecateEOF
			c.salt = append([]byte(nil), salt...)
			cred := c.cred
			_ = c.changeUser(&cred, want.Schema, 45)
		})
		// An RSA exchange parses a key and encrypts: allow for it.
		if bound := allocBound(len(server)) + 256<<10; got > bound {
			t.Fatalf("login over %d server bytes allocated %d bytes (bound %d)", len(server), got, bound)
		}
	})
}

// FuzzPrepareResponse feeds arbitrary server bytes to the
// COM_STMT_PREPARE response reader, with the definitions kept (a statement
// new to the proxy) or skipped, in both dialects. No panic; counts that
// the packet claims but the bytes do not carry allocate nothing.
func FuzzPrepareResponse(f *testing.F) {
	col := wire.AppendColumnDef(nil, &wire.Column{Name: "a", Type: wire.TypeLongLong, Charset: 63, Length: 20})
	par := wire.AppendColumnDef(nil, &wire.Column{Name: "?", Type: wire.TypeVarString, Charset: 45})
	prepOK := func(id uint32, ncols, nparams uint16) []byte {
		return []byte{0, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24), byte(ncols), byte(ncols >> 8),
			byte(nparams), byte(nparams >> 8), 0, 0, 0}
	}
	eof := wire.AppendEOF(nil, 0, wire.StatusAutocommit)
	var classic, depr []byte
	classic = append(classic, packet(1, prepOK(1, 1, 2)...)...)
	classic = append(classic, packet(2, par...)...)
	classic = append(classic, packet(3, par...)...)
	classic = append(classic, packet(4, eof...)...)
	classic = append(classic, packet(5, col...)...)
	classic = append(classic, packet(6, eof...)...)
	depr = append(depr, packet(1, prepOK(7, 1, 1)...)...)
	depr = append(depr, packet(2, par...)...)
	depr = append(depr, packet(3, col...)...)
	for _, seed := range [][]byte{
		classic, depr,
		packet(1, prepOK(2, 0, 0)...),
		packet(1, prepOK(3, 0xffff, 0xffff)...), // claims 65535 of each, sends none
		packet(1, wire.AppendERR(nil, 1064, "42000", "You have an error in your SQL syntax")...),
	} {
		for flags := range 4 {
			f.Add(seed, byte(flags))
		}
	}
	f.Fuzz(func(t *testing.T, server []byte, flags byte) {
		c := fuzzConn(server)
		if flags&1 != 0 {
			c.caps |= wire.ClientDeprecateEOF
		}
		var meta *StmtMeta
		if flags&2 != 0 {
			meta = &StmtMeta{}
		}
		var id uint32
		var err error
		got := allocated(func() { id, err = c.Prepare(1, nil, "", "SELECT ?", meta) })
		if got > allocBound(len(server)) {
			t.Fatalf("prepare response of %d bytes allocated %d bytes", len(server), got)
		}
		if err != nil {
			return
		}
		if sid, ok := c.StmtID(1); !ok || sid != id {
			t.Fatalf("statement not recorded: %d %v", sid, ok)
		}
		if meta != nil && (len(meta.Params) != int(meta.NumParams) || len(meta.Cols) != int(meta.NumCols)) {
			t.Fatalf("meta counts %d/%d, definitions %d/%d", meta.NumParams, meta.NumCols, len(meta.Params), len(meta.Cols))
		}
	})
}

// FuzzRunCollect feeds arbitrary server bytes to a query the proxy runs
// for itself (Sink.Collect: the monitor's read_only and replication
// checks, SELECT @@… for session tracking), which decodes column
// definitions and text rows. No panic; the collected rows have the
// announced width; allocations follow the bytes received, whatever
// column count the server claims.
func FuzzRunCollect(f *testing.F) {
	def := func(name string) []byte {
		return wire.AppendColumnDef(nil, &wire.Column{Name: name, Type: wire.TypeVarString, Charset: 45, Length: 1024})
	}
	eof := wire.AppendEOF(nil, 0, wire.StatusAutocommit)
	var rs []byte
	rs = append(rs, packet(1, 2)...)
	rs = append(rs, packet(2, def("Variable_name")...)...)
	rs = append(rs, packet(3, def("Value")...)...)
	rs = append(rs, packet(4, eof...)...)
	rs = append(rs, packet(5, wire.AppendLenEncString(wire.AppendLenEncString(nil, "read_only"), "OFF")...)...)
	rs = append(rs, packet(6, wire.AppendLenEncString([]byte{0xfb}, "x")...)...)
	rs = append(rs, packet(7, eof...)...)
	var wide []byte // claims 65536 columns, sends one, then tiny rows
	wide = append(wide, packet(1, 0xfd, 0, 0, 1)...)
	wide = append(wide, packet(2, def("a")...)...)
	for i := range 8 {
		wide = append(wide, packet(byte(3+i), 1, 'x')...)
	}
	// 600 empty column definitions, then 600 one-byte rows: the first
	// short row must end the walk, or the rows would cost 600 values each.
	var square []byte
	square = append(square, packet(1, 0xfc, 0x58, 0x02)...)
	seq := byte(2)
	for range 600 {
		square = append(square, packet(seq)...)
		seq++
	}
	square = append(square, packet(seq, eof...)...)
	for range 600 {
		seq++
		square = append(square, packet(seq, 0)...)
	}
	for _, seed := range [][]byte{
		rs, wide, square,
		packet(1, wire.AppendOK(nil, 1, 0, wire.StatusAutocommit, 0, "")...),
		packet(1, wire.AppendERR(nil, 1227, "42000", "Access denied; you need the PROCESS privilege")...),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, server []byte, depr bool) {
		c := fuzzConn(server)
		if depr {
			c.caps |= wire.ClientDeprecateEOF
		}
		var res Result
		var err error
		got := allocated(func() {
			_, err = c.Run(append([]byte{wire.ComQuery}, "SHOW VARIABLES"...), ShapeResult, &Sink{Collect: &res})
		})
		if got > allocBound(len(server)) {
			t.Fatalf("collecting %d server bytes allocated %d bytes", len(server), got)
		}
		if err != nil {
			return
		}
		for _, row := range res.Rows {
			if len(row) != len(res.Columns) {
				t.Fatalf("row of %d values under %d columns", len(row), len(res.Columns))
			}
		}
		if len(res.Types) != len(res.Columns) || len(res.Charsets) != len(res.Columns) {
			t.Fatalf("column metadata out of step")
		}
	})
}
