package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-proxy/sluice/internal/ratelog"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// Credentials log a backend connection in. With a *HEX hash in mysql_users
// the proxy knows only SHA1(password), recovered from a client's login
// (wire.RecoverStage1): that is enough for mysql_native_password but not for
// caching_sha2_password full authentication or client_ed25519, which need
// the clear text (ErrNeedClearPassword).
type Credentials struct {
	User     string
	Password string // clear text; "" when unknown (or really empty, with Stage1 nil)
	Stage1   []byte // SHA1(password), used when Password is ""
}

func (cr *Credentials) hasSecret() bool { return cr.Password != "" || len(cr.Stage1) > 0 }

// known bits: which parts of a connection's State are certain. A reset
// leaves autocommit, character set and multi-statements at server defaults
// we cannot see, so the next Sync sets them explicitly.
const (
	knownAutocommit uint8 = 1 << iota
	knownCharset
	knownMulti
	knownAll = knownAutocommit | knownCharset | knownMulti
)

// BackendConn is one connection to a backend server. It belongs to one
// goroutine at a time (the pool, or the session that got it from Get).
type BackendConn struct {
	w        *wire.Conn
	srv      *Server
	pool     *Pool
	cred     Credentials
	salt     []byte
	caps     uint32
	threadID uint32
	version  string
	status   uint16      // last server status flags seen
	tlsConf  *tls.Config // the TLS configuration the connection was made with; nil: clear text

	state State
	fp    uint64
	known uint8
	dirty bool // a sync failed half-way: the state is not what `state` says

	created    time.Time
	lastUsed   time.Time // given back after a use by a session (a ping does not count: free_connections_pct trims by it)
	lastPinged time.Time // given back after the pool's keep-alive ping
	lastSent   time.Time // when send last sent a command
	broken     bool
	closed     bool

	// aborted is set by abort, from another goroutine: the connection's
	// I/O fails from then on and it never returns to the pool.
	aborted atomic.Bool
	// lease counts the times the connection went back to the pool: a
	// goroutine that saw it in use by a session aborts it only while that
	// use lasts (AbortLease), never a later user's.
	lease atomic.Uint64
	// prevUsed, nextUsed and linked chain the pool's connections in use
	// (Pool.inUse), under the pool's lock.
	prevUsed, nextUsed *BackendConn
	linked             bool

	flushedOut, flushedIn uint64
	scratch               []byte // terminator translation, handshake
	defs                  []byte // column definitions held back (countMeta)
	defEnds               []int  // where each of defs ends
	cmd                   []byte // the proxy's own commands

	// opts are the options of the runtime the connection was last handed
	// out under (Pool.Get, TryGet, Sync): init_connect after a reset and
	// the age limit at Put come from the command that holds it.
	opts *Options

	// stmts maps the proxy's global statement ids to this connection's
	// (stmt.go). ResetConnection and COM_CHANGE_USER clear it, because they
	// drop the server's statements.
	stmts map[uint64]stmtOnConn
}

// LocalAddr returns the proxy's end of the connection.
func (c *BackendConn) LocalAddr() net.Addr { return c.w.NetConn().LocalAddr() }

// Options returns the options the connection was last handed out under.
func (c *BackendConn) Options() *Options { return c.opts }

// Server returns the server the connection belongs to.
func (c *BackendConn) Server() *Server { return c.srv }

// User returns the user the connection is logged in as.
func (c *BackendConn) User() string { return c.cred.User }

// ThreadID returns the server's connection id (for KILL).
func (c *BackendConn) ThreadID() uint32 { return c.threadID }

// ServerVersion returns the version string of the server's handshake.
func (c *BackendConn) ServerVersion() string { return c.version }

// Capabilities returns the capabilities negotiated with the server.
func (c *BackendConn) Capabilities() uint32 { return c.caps }

// DeprecateEOF reports whether CLIENT_DEPRECATE_EOF is in effect: result
// sets from this server end with an OK (0xFE) packet and have no EOF after
// the column definitions. When the client's setting differs, the router
// translates with wire.EOFToOK / wire.OKToEOF.
func (c *BackendConn) DeprecateEOF() bool { return c.caps&wire.ClientDeprecateEOF != 0 }

// State returns the session state the connection is known to have. Vars
// aliases the connection's slice: read only.
func (c *BackendConn) State() State { return c.state }

// NoteState records a state change the router caused by forwarding a
// statement (a USE, a SET it could not answer locally): the connection now
// has st.
func (c *BackendConn) NoteState(st *State) {
	c.state = st.Clone()
	c.fp = c.state.Fingerprint()
}

// Status returns the server status flags of the last OK/EOF the connection
// itself read (Exec, Query, Sync, login); the router tracks its own.
func (c *BackendConn) Status() uint16 { return c.status }

// Created returns when the connection was opened.
func (c *BackendConn) Created() time.Time { return c.created }

// Broken reports whether an I/O error made the connection unusable.
func (c *BackendConn) Broken() bool { return c.broken }

// MarkBroken records that the holder saw an I/O error (or abandoned a
// response half-way): Put will close the connection.
func (c *BackendConn) MarkBroken() { c.broken = true }

// abort makes the I/O of a connection in use fail now, from any goroutine:
// a command waiting on a frozen or shunned server returns an error at
// once, and its owner breaks and closes the connection as for any I/O
// error. The socket itself is closed by the owner, so its descriptor is
// never reused under a pending read.
func (c *BackendConn) abort() {
	c.aborted.Store(true)
	_ = c.w.SetDeadline(time.Unix(1, 0))
}

// Close closes the connection (COM_QUIT first, best effort, when it is
// healthy) and frees its slot in the pool. Closing twice is harmless.
func (c *BackendConn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if !c.broken {
		_ = c.w.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.w.ResetSeq()
		if c.w.WritePacket([]byte{wire.ComQuit}) == nil {
			_ = c.w.Flush()
		}
	}
	c.flushStats()
	c.dropStmts()
	err := c.w.Close()
	if c.pool != nil {
		c.pool.release(c)
	}
	return err
}

// flushStats adds the bytes moved since the last flush to the server.
func (c *BackendConn) flushStats() {
	out, in := c.w.BytesWritten(), c.w.BytesRead()
	if out != c.flushedOut {
		c.srv.bytesSent.Add(out - c.flushedOut)
		c.flushedOut = out
	}
	if in != c.flushedIn {
		c.srv.bytesRecv.Add(in - c.flushedIn)
		c.flushedIn = in
	}
}

// connect dials srv and logs in with cred, starting from the schema and
// collation of want. Sync applies the rest of want afterwards.
func connect(ctx context.Context, srv *Server, opts *Options, cred *Credentials, want *State) (*BackendConn, error) {
	timeout := opts.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultOptions().ConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := opts.dial(ctx, srv.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, srv.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c := &BackendConn{w: wire.NewConn(nc), srv: srv, cred: *cred, created: time.Now()}
	c.lastUsed = c.created
	// Until the login is done a server's packets are small (a greeting,
	// an auth switch, an OK): one announcing more is refused before it
	// earns a buffer, as a client's login is bounded.
	c.w.SetMaxPayload(handshakeMaxPayload)
	err = c.handshake(opts, want)
	c.w.SetMaxPayload(wire.DefaultMaxPayload)
	if err != nil {
		_ = c.w.Close()
		if errors.Is(err, ErrAuth) || errors.Is(err, ErrNeedClearPassword) || errors.Is(err, ErrUnsupportedAuth) {
			return nil, err
		}
		// Everything else, including an ERR greeting (1040 Too many
		// connections, 1129 host blocked), means "try another server".
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, srv.addr, err)
	}
	if !stop() {
		_ = c.w.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, srv.addr, ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// clientCapabilities are the flags Sluice asks a backend for; the result is
// ANDed with what the server offers.
const clientCapabilities = wire.ClientLongPassword | wire.ClientLongFlag | wire.ClientProtocol41 |
	wire.ClientTransactions | wire.ClientSecureConnection | wire.ClientPluginAuth |
	wire.ClientPluginAuthLenencClientData | wire.ClientMultiResults |
	wire.ClientConnectAttrs | wire.ClientLocalFiles

func (c *BackendConn) handshake(opts *Options, want *State) error {
	p, err := c.w.ReadPacket()
	if err != nil {
		return err
	}
	h, err := wire.ParseInitialHandshake(p)
	if err != nil {
		return err
	}
	c.threadID, c.version, c.salt = h.ConnID, h.ServerVersion, h.Salt
	caps := clientCapabilities
	if opts.DeprecateEOF {
		caps |= wire.ClientDeprecateEOF
	}
	if want.MultiStatements {
		caps |= wire.ClientMultiStatements
	}
	caps |= want.Caps & ConnCaps
	if want.Schema != "" {
		caps |= wire.ClientConnectWithDB
	}
	if c.srv.Compression() != 0 {
		// mysql_servers.compression=1; a server that does not offer it
		// (StarRocks FE) is used uncompressed.
		caps |= wire.ClientCompress
	}
	c.caps = caps & h.Capabilities
	if c.caps&wire.ClientProtocol41 == 0 || c.caps&wire.ClientSecureConnection == 0 {
		return fmt.Errorf("%w: server lacks protocol 4.1 authentication", ErrProtocol)
	}
	if want.Caps&wire.ClientFoundRows != 0 && c.caps&wire.ClientFoundRows == 0 {
		return fmt.Errorf("%w: server lacks CLIENT_FOUND_ROWS", ErrProtocol)
	}
	collation := want.Collation
	if collation == 0 {
		collation = h.Charset
	}
	// mysql_servers.use_ssl=1: the login and everything after it go over
	// TLS (SSLRequest, handshake, then the HandshakeResponse41).
	if conf := c.srv.clientTLS(opts, c.cred.User); conf != nil {
		if h.Capabilities&wire.ClientSSL == 0 {
			return fmt.Errorf("%w: mysql_servers.use_ssl=1 but the server does not offer SSL", ErrTLS)
		}
		c.caps |= wire.ClientSSL
		if err := c.startTLS(conf, collation); err != nil {
			return err
		}
		c.tlsConf = conf
	}
	plugin, auth, err := c.authResponse(h.AuthPlugin, c.salt)
	if err != nil {
		return err
	}
	resp := &wire.HandshakeResponse{
		Capabilities: c.caps, MaxPacket: 1 << 30, Charset: collation, User: c.cred.User,
		AuthResponse: auth, DB: want.Schema, AuthPlugin: plugin,
		Attrs: []wire.Attr{{Key: "_client_name", Value: "sluice"}, {Key: "program_name", Value: "sluice"}},
	}
	if c.caps&wire.ClientPluginAuthLenencClientData == 0 && len(auth) > 250 {
		return fmt.Errorf("%w: auth response too long for the server", ErrProtocol)
	}
	c.scratch = wire.AppendHandshakeResponse(c.scratch[:0], resp)
	if err := c.w.WritePacket(c.scratch); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if err := c.authResult(plugin); err != nil {
		return err
	}
	NoteDefaultMode(c.status) // a new server session has the global sql_mode
	if c.caps&wire.ClientCompress != 0 {
		if err := c.w.StartCompression(wire.DefaultCompressionLevel); err != nil {
			return err
		}
	}
	c.state = State{Schema: want.Schema, Collation: want.Collation, Autocommit: c.status&wire.StatusAutocommit != 0,
		MultiStatements: c.caps&wire.ClientMultiStatements != 0, Caps: want.Caps & ConnCaps}
	c.known = knownAll
	c.fp = c.state.Fingerprint()
	return nil
}

// authResponse computes the auth data for plugin. When the secret at hand
// cannot serve plugin, it answers for mysql_native_password instead and
// lets the server switch it (or refuse).
func (c *BackendConn) authResponse(plugin string, salt []byte) (string, []byte, error) {
	pw := c.cred.Password
	switch plugin {
	case wire.AuthCachingSha2:
		if pw != "" {
			return plugin, wire.CachingSha2Scramble(salt, []byte(pw)), nil
		}
	case wire.AuthMariaDBEd25519:
		if pw != "" {
			if len(salt) != 32 {
				return "", nil, fmt.Errorf("%w: ed25519 scramble of %d bytes", ErrProtocol, len(salt))
			}
			r, err := mysql.CalcEd25519Password(salt, pw)
			return plugin, r, err
		}
	case wire.AuthSha256Password:
		if pw != "" {
			return plugin, []byte{wire.Sha256RequestPublicKey}, nil
		}
	}
	if pw != "" {
		return wire.AuthNativePassword, wire.NativeScramble(salt, []byte(pw)), nil
	}
	return wire.AuthNativePassword, wire.ScrambleFromStage1(salt, c.cred.Stage1), nil
}

// authResult reads the server's answers to a login (handshake or
// COM_CHANGE_USER) until OK or ERR, following at most one auth switch and
// the caching_sha2_password / sha256_password exchanges.
func (c *BackendConn) authResult(plugin string) error {
	switched := false
	for range 6 {
		p, err := c.w.ReadPacket()
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return fmt.Errorf("%w: empty packet during authentication", ErrProtocol)
		}
		switch p[0] {
		case wire.HeaderOK:
			ok, err := wire.ParseOK(p)
			if err != nil {
				return err
			}
			c.status = ok.Status
			return nil
		case wire.HeaderERR:
			e, err := wire.ParseERR(p)
			if err != nil {
				return err
			}
			if !countsAsConnectError(e) {
				// The server refused this login (1045, 1044, 1203,
				// 1226…): another try will not help, and the server is
				// not at fault.
				return fmt.Errorf("%w: %w", ErrAuth, e)
			}
			// A server that is full (1040 Too many connections), blocks
			// the host (1129) or is shutting down: another server may take
			// the session, and the error counts against this one, as
			// ProxySQL counts every connect error but those.
			return e
		case wire.HeaderEOF:
			if switched {
				return fmt.Errorf("%w: second auth switch", ErrProtocol)
			}
			switched = true
			name, data, err := wire.ParseAuthSwitchRequest(p)
			if err != nil {
				return err
			}
			if err := c.authSwitch(name, data); err != nil {
				return err
			}
			plugin = name
		case wire.HeaderMoreData:
			if err := c.authMoreData(plugin, p[1:]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unexpected packet 0x%02x during authentication", ErrProtocol, p[0])
		}
	}
	return fmt.Errorf("%w: authentication did not finish", ErrProtocol)
}

func (c *BackendConn) authSwitch(plugin string, data []byte) error {
	// The switch carries the scramble the server now expects; the RSA
	// exchange and a later COM_CHANGE_USER use it.
	if len(data) >= wire.ScrambleLength {
		c.salt = append(c.salt[:0], data...)
	}
	var resp []byte
	switch plugin {
	case wire.AuthNativePassword:
		if !c.cred.hasSecret() {
			break
		}
		if c.cred.Password != "" {
			resp = wire.NativeScramble(data, []byte(c.cred.Password))
		} else {
			resp = wire.ScrambleFromStage1(data, c.cred.Stage1)
		}
	case wire.AuthCachingSha2, wire.AuthMariaDBEd25519, wire.AuthSha256Password:
		if c.cred.Password == "" && c.cred.hasSecret() {
			return fmt.Errorf("%w: %s for user %q", ErrNeedClearPassword, plugin, c.cred.User)
		}
		if c.cred.Password == "" {
			break
		}
		_, r, err := c.authResponse(plugin, data)
		if err != nil {
			return err
		}
		resp = r
	default:
		return fmt.Errorf("%w: %q", ErrUnsupportedAuth, clipName(plugin))
	}
	return c.writeAuth(resp)
}

// authMoreData handles AuthMoreData (0x01): caching_sha2_password's fast
// auth result or full-auth request, and the RSA public key of
// sha256_password / caching_sha2_password.
func (c *BackendConn) authMoreData(plugin string, data []byte) error {
	switch {
	case plugin == wire.AuthCachingSha2 && len(data) == 1 && data[0] == wire.CachingSha2FastAuthOK:
		return nil // the OK follows
	case plugin == wire.AuthCachingSha2 && len(data) == 1 && data[0] == wire.CachingSha2FullAuth:
		if c.cred.Password == "" {
			return fmt.Errorf("%w: caching_sha2_password full authentication for user %q", ErrNeedClearPassword, c.cred.User)
		}
		if _, encrypted := c.w.TLSState(); encrypted {
			// Over TLS the password goes as it is, NUL-terminated.
			return c.writeAuth(append([]byte(c.cred.Password), 0))
		}
		// Without TLS: ask for the server's RSA key.
		return c.writeAuth([]byte{wire.CachingSha2RequestKey})
	case plugin == wire.AuthCachingSha2 || plugin == wire.AuthSha256Password:
		enc, err := wire.EncryptPassword(c.cred.Password, c.salt[:min(len(c.salt), wire.ScrambleLength)], data)
		if err != nil {
			return err
		}
		return c.writeAuth(enc)
	}
	return fmt.Errorf("%w: unexpected AuthMoreData for %s", ErrProtocol, plugin)
}

func (c *BackendConn) writeAuth(data []byte) error {
	if err := c.w.WritePacket(data); err != nil {
		return err
	}
	return c.w.Flush()
}

// guard applies ctx to the socket for the duration of one command: its
// deadline, and cancellation by forcing an immediate deadline. The returned
// function undoes it and reports whether ctx ended meanwhile.
func (c *BackendConn) guard(ctx context.Context) func() bool {
	nc := c.w.NetConn()
	dl, hasDL := ctx.Deadline()
	if hasDL && !c.aborted.Load() {
		_ = nc.SetDeadline(dl)
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	}
	return func() bool {
		ended := false
		if stop != nil && !stop() {
			ended = true
		}
		if hasDL || ended {
			_ = nc.SetDeadline(time.Time{})
			if c.aborted.Load() { // abort sets its flag before its deadline
				_ = nc.SetDeadline(time.Unix(1, 0))
			}
		}
		return ended
	}
}

// fail marks the connection broken for any error that is not a server ERR.
func (c *BackendConn) fail(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := IsSQLError(err); !ok {
		c.broken = true
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: %s: %w", ErrConnBroken, c.srv.addr, err)
		}
	}
	return err
}

// handshakeMaxPayload bounds the packets of a server's login.
const handshakeMaxPayload = 64 << 10

// clipName is a name a server sent, short enough for an error or a log.
func clipName(s string) string { return ratelog.Clip(s, 64) }

// defaultMode is the servers' default sql_mode quoting bits
// (ModeBits), with modeSeen set once something said them.
var defaultMode atomic.Uint32

const modeSeen = 1 << 31

// ModeBits are the status flags sql_mode sets: NO_BACKSLASH_ESCAPES and
// MariaDB's ANSI_QUOTES. Drivers escape strings by them.
const ModeBits = wire.StatusNoBackslashEscapes | wire.StatusANSIQuotes

// NoteDefaultMode records the ModeBits of status, the status of a server
// session with the servers' default sql_mode: every login's OK (the
// pools', the monitor's from start-up), and the router's answers to
// sessions that set none. One atomic load when nothing changed.
func NoteDefaultMode(status uint16) {
	if v := modeSeen | uint32(status&ModeBits); defaultMode.Load() != v {
		defaultMode.Store(v)
	}
}

// DefaultMode returns the servers' default sql_mode bits as last noted
// (0 before anything said them).
func DefaultMode() uint16 { return uint16(defaultMode.Load()) }
