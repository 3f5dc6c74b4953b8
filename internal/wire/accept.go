package wire

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
)

// ErrTLSNotSupported is returned by ServerHandshake when a client sends an
// SSLRequest and no TLS configuration was given. The caller answers with an
// ERR packet (the Conn's sequence id is ready for it).
var ErrTLSNotSupported = errors.New("wire: client asked for TLS, which is not offered")

// ServerHandshake runs the server side of the connection phase up to, not
// including, the final OK/ERR: it writes hs (HandshakeV10), reads the
// client's HandshakeResponse41 and, when the client answered for another auth
// plugin than mysql_native_password, sends an auth switch to
// mysql_native_password with the same salt (hs.Salt) and reads the reply.
// The returned response's AuthResponse is the mysql_native_password reply (a
// copy that stays valid); its other fields are the client's
// HandshakeResponse41 as parsed by ParseHandshakeResponse.
//
// If the client sends an SSLRequest and tlsConf is not nil, the connection
// is upgraded to TLS (tls.Server over the socket, handshake, the Conn's
// reader and writer re-pointed at the TLS connection, the sequence id
// continuing) and the real HandshakeResponse41 is read over TLS; NetConn
// then returns the *tls.Conn. With tlsConf nil it returns
// ErrTLSNotSupported. When tlsConf is not nil, hs.Capabilities must include
// ClientSSL: the helper adds it to hs if missing, so hs.Capabilities is what
// was offered.
//
// A PROXY protocol header (v1 or v2) before the response is read and
// returned in the response's Proxy field.
//
// Errors: I/O failures wrap ErrRead or ErrWrite (a failed TLS handshake
// wraps ErrRead); a response over the Conn's SetMaxPayload gives
// ErrPacketTooLarge; a response that cannot be parsed wraps ErrMalformed or
// is ErrNeedProto41. Only after the latter kinds and ErrTLSNotSupported is
// an ERR reply meaningful. Deadlines are the caller's: set them on the Conn
// before the call.
func ServerHandshake(c *Conn, hs *InitialHandshake, tlsConf *tls.Config) (*HandshakeResponse, error) {
	if tlsConf != nil {
		hs.Capabilities |= ClientSSL
	}
	c.scratch = AppendInitialHandshake(c.scratch[:0], hs)
	if err := c.WritePacket(c.scratch); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	proxy, err := c.readProxyHeader()
	if err != nil {
		return nil, err
	}
	resp, err := c.readHandshakeResponse()
	if err != nil {
		return nil, err
	}
	if resp.SSLRequest {
		if tlsConf == nil {
			return nil, ErrTLSNotSupported
		}
		if err := c.startServerTLS(tlsConf); err != nil {
			return nil, err
		}
		if resp, err = c.readHandshakeResponse(); err != nil {
			return nil, err
		}
		if resp.SSLRequest {
			return nil, malformed("handshake response: SSLRequest over TLS")
		}
	}
	resp.Proxy = proxy
	// The reply must be for a plugin the proxy verifies: the one announced
	// (hs.AuthPlugin), or mysql_native_password whatever was announced (the
	// proxy verifies it with any stored password). With
	// mysql_native_password announced, a caching_sha2_password reply
	// (MySQL 8 clients open with it) is switched too: native lets the proxy
	// recover SHA1(password) for backend logins.
	want := hs.AuthPlugin
	if want != AuthCachingSha2 {
		want = AuthNativePassword
	}
	if resp.AuthPlugin == "" {
		resp.AuthPlugin = AuthNativePassword
	}
	switchTo := ""
	switch {
	case resp.AuthPlugin != AuthNativePassword && resp.AuthPlugin != want:
		switchTo = want
	case resp.AuthPlugin == AuthNativePassword && want != AuthNativePassword && len(resp.AuthResponse) == 0:
		// A client set to mysql_native_password (libmariadb's
		// --default-auth, MySQL 5.7's libmysqlclient) answers another
		// announced plugin with an empty native reply and waits for the
		// switch a server sends: ask for its native scramble. (An empty
		// password answers the switch with nothing again.)
		switchTo = AuthNativePassword
	}
	if switchTo != "" {
		reply, err := c.AuthSwitch(switchTo, hs.Salt)
		if err != nil {
			return nil, err
		}
		resp.AuthResponse, resp.AuthPlugin = reply, switchTo
	}
	return resp, nil
}

// AuthSwitch sends an AuthSwitchRequest to plugin with the 20-byte salt
// (and the NUL clients expect after it) and returns the client's reply, a
// copy. The login and COM_CHANGE_USER both switch through it.
func (c *Conn) AuthSwitch(plugin string, salt []byte) ([]byte, error) {
	c.scratch = append(AppendAuthSwitchRequest(c.scratch[:0], plugin, salt), 0)
	if err := c.WritePacket(c.scratch); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	reply, err := c.ReadPacket()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(reply), nil
}

// readHandshakeResponse reads and parses one HandshakeResponse41 or
// SSLRequest.
func (c *Conn) readHandshakeResponse() (*HandshakeResponse, error) {
	p, err := c.ReadPacket()
	if err != nil {
		return nil, err
	}
	return ParseHandshakeResponse(p)
}

// startServerTLS upgrades the connection to TLS as the server, after the
// client's SSLRequest: bytes the reader already took off the socket (the
// start of the client's TLS hello) are handed to the TLS layer first, then
// the reader and writer are re-pointed at the TLS connection. The sequence
// id is kept.
func (c *Conn) startServerTLS(conf *tls.Config) error {
	if c.br == nil {
		return ErrClosed
	}
	if err := c.Flush(); err != nil {
		return err
	}
	raw := c.nc
	if n := c.br.Buffered(); n > 0 {
		early, _ := c.br.Peek(n)
		raw = &prefixConn{Conn: c.nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), c.nc)}
	}
	return c.handshakeTLS(tls.Server(raw, conf))
}

// handshakeTLS runs the TLS handshake of tc, which wraps this Conn's
// socket, and re-points the reader and writer at it.
func (c *Conn) handshakeTLS(tc *tls.Conn) error {
	if err := tc.Handshake(); err != nil {
		return readErr(fmt.Errorf("TLS handshake: %w", err))
	}
	c.nc, c.out = tc, tc
	c.br.Reset(tc)
	if c.bw != nil {
		c.bw.Reset(tc)
	}
	return nil
}

// prefixConn is a net.Conn whose reads return bytes already received before
// the ones still on the socket.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }
