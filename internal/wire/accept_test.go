package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// acceptResult is what the test server saw of one login.
type acceptResult struct {
	resp  *HandshakeResponse
	err   error
	tls   bool   // NetConn was a *tls.Conn after the handshake
	salt  []byte // the salt the handshake announced
	caps  uint32 // hs.Capabilities after ServerHandshake
	login bool   // the reply matched the password
}

// serveAccept accepts one connection and logs it in with ServerHandshake
// and VerifyNativeClear (or VerifyCachingSha2Clear and fast auth) against password, answering the final OK/ERR as a
// caller would (ERR 1043 for ErrTLSNotSupported), then answers COM_PING
// until COM_QUIT.
func serveAccept(ln net.Listener, plugin, password string, tlsConf *tls.Config) <-chan acceptResult {
	out := make(chan acceptResult, 1)
	go func() {
		var res acceptResult
		defer func() { out <- res }()
		nc, err := ln.Accept()
		if err != nil {
			res.err = err
			return
		}
		c := NewConn(nc)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		hs := &InitialHandshake{ServerVersion: "8.0.11-test", ConnID: 77, Salt: NewSalt(),
			Capabilities: ServerCapabilities(false), Charset: 33, Status: StatusAutocommit, AuthPlugin: plugin}
		res.salt = hs.Salt
		res.resp, res.err = ServerHandshake(c, hs, tlsConf)
		res.caps = hs.Capabilities
		_, res.tls = c.NetConn().(*tls.Conn)
		if errors.Is(res.err, ErrTLSNotSupported) {
			_ = c.WriteERR(1043, "08S01", "ProxySQL Error: TLS is not supported by this proxy yet")
			_ = c.Flush()
			return
		}
		if res.err != nil {
			return
		}
		ok := VerifyNativeClear(hs.Salt, res.resp.AuthResponse, password)
		if res.resp.AuthPlugin == AuthCachingSha2 {
			ok = VerifyCachingSha2Clear(hs.Salt, res.resp.AuthResponse, password)
		}
		if !ok {
			_ = c.WriteERR(1045, "28000", "Access denied for user '"+res.resp.User+"'")
			_ = c.Flush()
			return
		}
		if res.resp.AuthPlugin == AuthCachingSha2 {
			if err := c.WriteAuthMoreData([]byte{CachingSha2FastAuthOK}); err != nil {
				res.err = err
				return
			}
		}
		res.login = true
		if err := c.WriteOK(0, 0, StatusAutocommit, 0, ""); err != nil {
			res.err = err
			return
		}
		if err := c.Flush(); err != nil {
			res.err = err
			return
		}
		for {
			c.ResetSeq()
			p, err := c.ReadPacket()
			if err != nil || len(p) == 0 || p[0] == ComQuit {
				return
			}
			if p[0] == ComPing {
				_ = c.WriteOK(0, 0, StatusAutocommit, 0, "")
			} else {
				_ = c.WriteERR(1047, "08S01", "Unknown command")
			}
			if c.Flush() != nil {
				return
			}
		}
	}()
	return out
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func waitAccept(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
	}
	return acceptResult{}
}

func driverDB(t *testing.T, addr, user, pass string, tlsConf *tls.Config) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, pass, "tcp", addr, "sbtest"
	cfg.Timeout = 5 * time.Second
	cfg.TLS = tlsConf
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice-wire-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestServerHandshakeGoSQLDriver logs a real client in with the plugin the
// handshake announces (go-sql-driver answers with it): mysql_native_password,
// and caching_sha2_password (fast auth). Wrong passwords are told apart by
// the caller's check.
func TestServerHandshakeGoSQLDriver(t *testing.T) {
	for _, plugin := range []string{AuthNativePassword, AuthCachingSha2} {
		t.Run(plugin, func(t *testing.T) {
			ln := listen(t)
			ch := serveAccept(ln, plugin, "s3cret", nil)
			db := driverDB(t, ln.Addr().String(), "alice", "s3cret", nil)
			if err := db.Ping(); err != nil {
				t.Fatalf("ping: %v", err)
			}
			db.Close()
			r := waitAccept(t, ch)
			if r.err != nil || !r.login || r.tls {
				t.Fatalf("server: err=%v login=%v tls=%v", r.err, r.login, r.tls)
			}
			if r.resp.User != "alice" || r.resp.DB != "sbtest" || r.resp.AuthPlugin != plugin ||
				r.resp.Capabilities&ClientProtocol41 == 0 || r.resp.SSLRequest {
				t.Fatalf("response %+v", r.resp)
			}
			want := NativeScramble(r.salt, []byte("s3cret"))
			if plugin == AuthCachingSha2 {
				want = CachingSha2Scramble(r.salt, []byte("s3cret"))
			}
			if !bytes.Equal(r.resp.AuthResponse, want) {
				t.Fatalf("auth response % x, want the %s scramble % x", r.resp.AuthResponse, plugin, want)
			}
			if r.caps&ClientSSL != 0 {
				t.Fatal("CLIENT_SSL offered without a TLS config")
			}

			ch = serveAccept(ln, plugin, "s3cret", nil)
			bad := driverDB(t, ln.Addr().String(), "alice", "nope", nil)
			var me *mysql.MySQLError
			if err := bad.Ping(); !errors.As(err, &me) || me.Number != 1045 {
				t.Fatalf("wrong password: %v", err)
			}
			if r := waitAccept(t, ch); r.err != nil || r.login {
				t.Fatalf("wrong password accepted: %+v", r)
			}
		})
	}
}

// TestServerHandshakeTLS upgrades a go-sql-driver connection, for both
// plugins, and checks that the upgrade is offered only with a TLS config.
func TestServerHandshakeTLS(t *testing.T) {
	conf := selfSignedTLS(t)
	for _, plugin := range []string{AuthNativePassword, AuthCachingSha2} {
		t.Run(plugin, func(t *testing.T) {
			ln := listen(t)
			ch := serveAccept(ln, plugin, "s3cret", conf)
			db := driverDB(t, ln.Addr().String(), "alice", "s3cret", &tls.Config{InsecureSkipVerify: true})
			if err := db.Ping(); err != nil {
				t.Fatalf("ping over TLS: %v", err)
			}
			db.Close()
			r := waitAccept(t, ch)
			if r.err != nil || !r.login || !r.tls {
				t.Fatalf("server: err=%v login=%v tls=%v", r.err, r.login, r.tls)
			}
			if r.caps&ClientSSL == 0 || r.resp.Capabilities&ClientSSL == 0 || r.resp.User != "alice" || r.resp.SSLRequest {
				t.Fatalf("caps %#x, response %+v", r.caps, r.resp)
			}
		})
	}
}

// rawClient is the client side of a login written by hand.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	c  *Conn // client-side framing (sequence ids checked)
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawClient{t: t, nc: nc, c: NewConn(nc)}
	t.Cleanup(func() { rc.c.Close() })
	p, err := rc.c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseInitialHandshake(p); err != nil {
		t.Fatal(err)
	}
	return rc
}

// sslRequest is the 32-byte SSLRequest payload.
func sslRequest() []byte {
	p := binary.LittleEndian.AppendUint32(nil, ClientProtocol41|ClientSecureConnection|ClientPluginAuth|ClientSSL)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 33)
	return append(p, make([]byte, 23)...)
}

// TestServerHandshakeSSLRequestRefused: without a TLS config an SSLRequest
// gives ErrTLSNotSupported, and the caller's ERR reaches the client with the
// next sequence id.
func TestServerHandshakeSSLRequestRefused(t *testing.T) {
	ln := listen(t)
	ch := serveAccept(ln, AuthNativePassword, "", nil)
	rc := dialRaw(t, ln.Addr().String())
	if err := rc.c.WritePacket(sslRequest()); err != nil {
		t.Fatal(err)
	}
	if err := rc.c.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := rc.c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseERR(p)
	if err != nil || e.Code != 1043 || e.Message != "ProxySQL Error: TLS is not supported by this proxy yet" {
		t.Fatalf("got %q %v", p, err)
	}
	if r := waitAccept(t, ch); !errors.Is(r.err, ErrTLSNotSupported) || r.tls {
		t.Fatalf("server: %v", r.err)
	}
}

// firstWriteConn sends prefix together with the first write, so that the
// SSLRequest and the TLS ClientHello arrive in one segment and the server's
// reader takes part of the hello off the socket with the request.
type firstWriteConn struct {
	net.Conn
	prefix []byte
}

func (f *firstWriteConn) Write(b []byte) (int, error) {
	if f.prefix != nil {
		buf := append(f.prefix, b...)
		f.prefix = nil
		if _, err := f.Conn.Write(buf); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return f.Conn.Write(b)
}

// TestServerHandshakeTLSEarlyBytes: the ClientHello sent in the same
// segment as the SSLRequest is not lost in the Conn's read buffer.
func TestServerHandshakeTLSEarlyBytes(t *testing.T) {
	ln := listen(t)
	ch := serveAccept(ln, AuthNativePassword, "pw", selfSignedTLS(t))
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	plain := NewConn(nc)
	p, err := plain.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ParseInitialHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Capabilities&ClientSSL == 0 {
		t.Fatal("CLIENT_SSL not offered with a TLS config")
	}
	req := append(header(32, 1), sslRequest()...)
	tc := tls.Client(&firstWriteConn{Conn: nc, prefix: req}, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	c := NewConn(tc)
	c.SetSeq(2)
	resp := &HandshakeResponse{
		Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientSSL | ClientPluginAuthLenencClientData,
		MaxPacket:    1 << 24, Charset: 33, User: "bob",
		AuthResponse: NativeScramble(hs.Salt, []byte("pw")), AuthPlugin: AuthNativePassword,
	}
	if err := c.WritePacket(AppendHandshakeResponse(nil, resp)); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err = c.ReadPacket()
	if err != nil || !IsOK(p) {
		t.Fatalf("after login: %q %v", p, err)
	}
	c.ResetSeq()
	_ = c.WritePacket([]byte{ComQuit})
	_ = c.Flush()
	if r := waitAccept(t, ch); r.err != nil || !r.login || !r.tls || r.resp.User != "bob" {
		t.Fatalf("server: %+v", r)
	}
}

// TestServerHandshakeBadResponse: a response that cannot be parsed is an
// ErrMalformed for the caller to answer, not an I/O error.
func TestServerHandshakeBadResponse(t *testing.T) {
	ln := listen(t)
	ch := serveAccept(ln, AuthNativePassword, "", nil)
	rc := dialRaw(t, ln.Addr().String())
	_ = rc.c.WritePacket([]byte{1, 2})
	_ = rc.c.Flush()
	if r := waitAccept(t, ch); !errors.Is(r.err, ErrMalformed) {
		t.Fatalf("server: %v", r.err)
	}
	if _, err := rc.c.ReadPacket(); !errors.Is(err, io.EOF) {
		t.Fatalf("client: %v", err)
	}
}

// TestServerHandshakeMaxPayload: a response announcing more than the
// Conn's limit is refused without reading it into memory.
func TestServerHandshakeMaxPayload(t *testing.T) {
	ln := listen(t)
	out := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			out <- err
			return
		}
		c := NewConn(nc)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		c.SetMaxPayload(64 << 10)
		_, err = ServerHandshake(c, &InitialHandshake{ServerVersion: "x", Salt: NewSalt(),
			Capabilities: ServerCapabilities(false)}, nil)
		out <- err
	}()
	rc := dialRaw(t, ln.Addr().String())
	if _, err := rc.nc.Write(append(header(100_000, 1), filled(100_000, 'x')...)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-out:
		if !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("got %v, want ErrPacketTooLarge", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
	}
}
