package wire

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestInitialHandshakeRoundTrip(t *testing.T) {
	salt := NewSalt()
	h := &InitialHandshake{
		ServerVersion: "8.0.11", ConnID: 0x01020304, Salt: salt,
		Capabilities: ServerCapabilities(true), Charset: 45, Status: StatusAutocommit,
		AuthPlugin: AuthNativePassword,
	}
	p := AppendInitialHandshake(nil, h)
	// Byte layout of the fixed part, from the protocol documentation.
	if p[0] != 10 || string(p[1:7]) != "8.0.11" || p[7] != 0 {
		t.Fatalf("version % x", p[:8])
	}
	if !bytes.Equal(p[8:12], []byte{4, 3, 2, 1}) || !bytes.Equal(p[12:20], salt[:8]) || p[20] != 0 {
		t.Fatalf("conn id / salt part 1 % x", p[8:21])
	}
	if p[23] != 45 || p[28] != 21 || !bytes.Equal(p[29:39], make([]byte, 10)) {
		t.Fatalf("charset / auth data len / reserved % x", p[21:39])
	}
	if !bytes.Equal(p[39:51], salt[8:]) || p[51] != 0 || string(p[52:len(p)-1]) != AuthNativePassword || p[len(p)-1] != 0 {
		t.Fatalf("salt part 2 / plugin % x", p[39:])
	}
	got, err := ParseInitialHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, h)
	}
	if caps := ServerCapabilities(false); caps&ClientDeprecateEOF != 0 || caps&ClientLocalFiles == 0 ||
		caps&ClientSSL != 0 || caps&ClientSessionTrack != 0 || caps&ClientCompress != 0 {
		t.Fatalf("capabilities %x", caps)
	}
	if caps := ServerCapabilities(true); caps&ClientDeprecateEOF == 0 {
		t.Fatal("CLIENT_DEPRECATE_EOF missing")
	}
	if _, err := ParseInitialHandshake(AppendERR(nil, 1040, "08004", "Too many connections")); err == nil {
		t.Fatal("ERR accepted")
	} else if e := (*SQLError)(nil); !errors.As(err, &e) || e.Code != 1040 {
		t.Fatalf("ERR not returned as SQLError: %v", err)
	}
}

// A MariaDB 10.11.19 handshake captured from a real server (connection id 6).
var mariadbHandshake = []byte("\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x06\x00\x00\x00!R\\Vz'M.\x00\xfe\xf7-\x02\x00" +
	"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00>.iHmjL{KDQI\x00mysql_native_password\x00")

func TestParseMariaDBHandshake(t *testing.T) {
	h, err := ParseInitialHandshake(mariadbHandshake)
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerVersion != "5.5.5-10.11.19-MariaDB-0+deb12u1" || h.ConnID != 6 || string(h.Salt) != "!R\\Vz'M.>.iHmjL{KDQI" ||
		h.AuthPlugin != AuthNativePassword || h.Charset != 45 || h.Capabilities&ClientPluginAuth == 0 ||
		h.Capabilities&ClientDeprecateEOF == 0 || h.Status != StatusAutocommit || h.ExtCapabilities != 0x1d {
		t.Fatalf("%+v", h)
	}
}

// Presented as MariaDB, the handshake clears CLIENT_MYSQL and carries the
// extended capabilities where a MariaDB server does; a client's come back in
// the last reserved bytes of its response.
func TestMariaDBExtendedCapabilities(t *testing.T) {
	h := &InitialHandshake{
		ServerVersion: "5.5.5-10.11.19-MariaDB", ConnID: 9, Salt: NewSalt(),
		Capabilities: ServerCapabilities(true), ExtCapabilities: MariaDBCacheMetadata, Charset: 33,
		Status: StatusAutocommit, AuthPlugin: AuthNativePassword,
	}
	p := AppendInitialHandshake(nil, h)
	v := len(h.ServerVersion) + 2 // protocol version, version, NUL
	if p[v+13]&1 != 0 || !bytes.Equal(p[v+21:v+31], []byte{0, 0, 0, 0, 0, 0, byte(MariaDBCacheMetadata), 0, 0, 0}) {
		t.Fatalf("capabilities / reserved % x", p[v+13:v+31])
	}
	got, err := ParseInitialHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	want := *h
	want.Capabilities &^= ClientLongPassword
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, &want)
	}
	// Without extended capabilities the handshake stays MySQL's.
	h.ExtCapabilities = 0
	if got, _ := ParseInitialHandshake(AppendInitialHandshake(nil, h)); got.Capabilities&ClientLongPassword == 0 || got.ExtCapabilities != 0 {
		t.Fatalf("MySQL handshake: %+v", got)
	}
	r := &HandshakeResponse{Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		ExtCapabilities: MariaDBCacheMetadata | 1, Charset: 33, User: "u", AuthResponse: []byte{1}, AuthPlugin: AuthNativePassword}
	b := AppendHandshakeResponse(nil, r)
	if !bytes.Equal(b[28:32], []byte{byte(MariaDBCacheMetadata | 1), 0, 0, 0}) {
		t.Fatalf("response reserved bytes % x", b[9:32])
	}
	if got, err := ParseHandshakeResponse(b); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("response round trip %+v %v", got, err)
	}
}

func TestHandshakeResponseRoundTrip(t *testing.T) {
	r := &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientConnectWithDB |
			ClientConnectAttrs | ClientPluginAuthLenencClientData | ClientDeprecateEOF,
		MaxPacket: 1 << 24, Charset: 45, User: "root", AuthResponse: NativeScramble(NewSalt(), []byte("pw")),
		DB: "sbtest", AuthPlugin: AuthNativePassword,
		Attrs: []Attr{{"_client_name", "sluice"}, {"program_name", "x"}},
	}
	got, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
	}
	// One-byte auth length (no LENENC flag), no db, no attrs.
	r2 := &HandshakeResponse{Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		Charset: 8, User: "u", AuthResponse: []byte{1, 2, 3}, AuthPlugin: AuthCachingSha2}
	got, err = ParseHandshakeResponse(AppendHandshakeResponse(nil, r2))
	if err != nil || !reflect.DeepEqual(got, r2) {
		t.Fatalf("%+v %v", got, err)
	}
	// SSLRequest.
	ssl := AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: ClientProtocol41 | ClientSSL})[:32]
	got, err = ParseHandshakeResponse(ssl)
	if err != nil || !got.SSLRequest {
		t.Fatalf("SSLRequest: %+v %v", got, err)
	}
	if _, err := ParseHandshakeResponse([]byte{0, 0, 0, 0, 1, 2}); !errors.Is(err, ErrNeedProto41) {
		t.Fatalf("pre-4.1: %v", err)
	}
	// Attributes whose second key claims 2^64 bytes inside a well-sized
	// block: the login goes on with the first one, as MariaDB ignores what
	// it cannot read; a block longer than the packet is refused.
	r3 := *r
	r3.Attrs = []Attr{{"_client_name", "sluice"}}
	p := AppendHandshakeResponse(nil, &r3)
	blockAt := len(p) - (1 + 1 + len("_client_name") + 1 + len("sluice"))
	odd := append(p[:blockAt:blockAt], byte(p[blockAt]+9))
	odd = append(odd, p[blockAt+1:]...)
	odd = append(odd, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	got, err = ParseHandshakeResponse(odd)
	if err != nil || !reflect.DeepEqual(got.Attrs, r3.Attrs) || got.User != "root" {
		t.Fatalf("a key that overruns the attributes: %+v %v", got, err)
	}
	if _, err := ParseHandshakeResponse(odd[:len(odd)-1]); err == nil {
		t.Fatal("an attributes block longer than the packet was accepted")
	}
	// Truncated auth data.
	bad := AppendHandshakeResponse(nil, r2)
	if _, err := ParseHandshakeResponse(bad[:35]); err == nil {
		t.Fatal("truncated response accepted")
	}
}

func TestAuthSwitchAndChangeUser(t *testing.T) {
	salt := NewSalt()
	p := AppendNativeAuthSwitch(nil, salt)
	if p[0] != 0xfe || p[len(p)-1] != 0 || len(p) != 1+len(AuthNativePassword)+1+21 {
		t.Fatalf("% x", p)
	}
	plugin, data, err := ParseAuthSwitchRequest(p)
	if err != nil || plugin != AuthNativePassword || !bytes.Equal(data, salt) {
		t.Fatalf("%s % x %v", plugin, data, err)
	}
	if plugin, _, _ := ParseAuthSwitchRequest([]byte{0xfe}); plugin != AuthMySQLOldPassword {
		t.Fatal("old auth switch")
	}
	if md := AppendAuthMoreData(nil, []byte{CachingSha2FullAuth}); !bytes.Equal(md, []byte{1, 4}) {
		t.Fatal("AuthMoreData")
	}
	caps := ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientConnectAttrs
	cu := &ChangeUser{User: "bob", AuthResponse: NativeScramble(salt, []byte("x")), DB: "d", Charset: 255,
		AuthPlugin: AuthNativePassword, Attrs: []Attr{{"a", "b"}}}
	got, err := ParseChangeUser(AppendChangeUser(nil, caps, cu), caps)
	if err != nil || !reflect.DeepEqual(got, cu) {
		t.Fatalf("%+v %v", got, err)
	}
}

// serveLogin is a minimal frontend built only from this package's helpers:
// it advertises plugin, switches non-native clients to
// mysql_native_password, checks the reply against a *HEX hash by recovering
// stage1, then answers COM_PING until COM_QUIT.
func serveLogin(ln net.Listener, plugin, storedHash string, got chan<- *HandshakeResponse, stage1 chan<- []byte) error {
	nc, err := ln.Accept()
	if err != nil {
		return err
	}
	c := NewConn(nc)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	salt := NewSalt()
	err = c.WritePacket(AppendInitialHandshake(nil, &InitialHandshake{ServerVersion: "8.0.11", ConnID: 9, Salt: salt,
		Capabilities: ServerCapabilities(true), Charset: 45, Status: StatusAutocommit, AuthPlugin: plugin}))
	if err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	p, err := c.ReadPacket()
	if err != nil {
		return err
	}
	r, err := ParseHandshakeResponse(p)
	if err != nil {
		return err
	}
	got <- r
	reply := r.AuthResponse
	if r.AuthPlugin != AuthNativePassword {
		salt = NewSalt()
		if err := c.WritePacket(AppendNativeAuthSwitch(nil, salt)); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return err
		}
		if reply, err = c.ReadPacket(); err != nil {
			return err
		}
	}
	stage2, _ := ParseNativeHash(storedHash)
	st1, ok := RecoverStage1(salt, reply, stage2)
	if !ok {
		_ = c.WriteERR(1045, "28000", fmt.Sprintf("ProxySQL Error: Access denied for user '%s'", r.User))
		return c.Flush()
	}
	stage1 <- st1
	if err := c.WriteOK(0, 0, StatusAutocommit, 0, ""); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	for range 100 {
		c.ResetSeq()
		p, err := c.ReadPacket()
		if err != nil {
			return err
		}
		switch p[0] {
		case ComQuit:
			return nil
		case ComPing:
			_ = c.WriteOK(0, 0, StatusAutocommit, 0, "")
		default:
			_ = c.WriteERR(1047, "08S01", "Unknown command")
		}
		if err := c.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func TestFrontendLoginWithGoSQLDriver(t *testing.T) {
	for _, plugin := range []string{AuthNativePassword, AuthCachingSha2} {
		t.Run(plugin, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			resp := make(chan *HandshakeResponse, 1)
			stage1 := make(chan []byte, 1)
			done := make(chan error, 1)
			go func() { done <- serveLogin(ln, plugin, NativeHash("test"), resp, stage1) }()

			cfg := mysql.NewConfig()
			cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "root", "test", "tcp", ln.Addr().String(), "sbtest"
			cfg.Timeout = 5 * time.Second
			connector, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(connector)
			defer db.Close()
			if err := db.Ping(); err != nil {
				t.Fatalf("ping through the test frontend: %v", err)
			}
			r := <-resp
			if r.User != "root" || r.DB != "sbtest" || r.AuthPlugin != plugin || r.Capabilities&ClientProtocol41 == 0 {
				t.Fatalf("parsed response %+v", r)
			}
			if len(r.Attrs) == 0 || r.Attrs[0].Key == "" {
				t.Fatalf("connection attributes not parsed: %+v", r.Attrs)
			}
			if st1 := <-stage1; !bytes.Equal(st1, Stage1([]byte("test"))) {
				t.Fatal("recovered stage1 is not SHA1(password)")
			}
			_ = db.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("server: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("server did not finish")
			}
		})
	}
}

func TestFrontendRejectsWrongPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	resp := make(chan *HandshakeResponse, 1)
	go func() { _ = serveLogin(ln, AuthNativePassword, NativeHash("test"), resp, make(chan []byte, 1)) }()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", "nope", "tcp", ln.Addr().String()
	connector, _ := mysql.NewConnector(cfg)
	db := sql.OpenDB(connector)
	defer db.Close()
	err = db.Ping()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("got %v, want ERR 1045", err)
	}
}
