package wire

import (
	"crypto/rand"
	"encoding/binary"
)

// InitialHandshake is the server's first packet (Protocol::HandshakeV10).
type InitialHandshake struct {
	ServerVersion string
	ConnID        uint32
	Salt          []byte // auth-plugin-data, 20 bytes for the plugins Sluice uses
	Capabilities  uint32
	// ExtCapabilities, when not 0, are MariaDB extended capabilities: the
	// handshake then clears CLIENT_MYSQL (ClientLongPassword) and carries
	// them in its last reserved bytes, as a MariaDB server does.
	ExtCapabilities uint32
	Charset         uint8 // server default collation id
	Status          uint16
	AuthPlugin      string
}

// ServerCapabilities returns the capabilities the proxy's frontend offers.
// It follows ProxySQL's mysql-server_capabilities (CLIENT_MYSQL, FOUND_ROWS,
// PROTOCOL_41, IGNORE_SIGPIPE, TRANSACTIONS, SECURE_CONNECTION,
// CONNECT_WITH_DB, PLUGIN_AUTH) plus what the data plane supports: long
// flags, multi statements/results, PS multi results, connect attributes and
// length-encoded auth data, and CLIENT_LOCAL_FILES as MariaDB and MySQL
// servers offer it: whether LOAD DATA LOCAL INFILE may run is decided per
// statement (mysql-enable_load_data_local_infile and the client's own
// flag). CLIENT_DEPRECATE_EOF is added only when enabled; SSL and
// compression are added by the caller (ServerHandshake adds SSL when given
// a TLS configuration); session tracking is never offered.
func ServerCapabilities(deprecateEOF bool) uint32 {
	c := ClientLongPassword | ClientFoundRows | ClientLongFlag | ClientConnectWithDB |
		ClientProtocol41 | ClientIgnoreSigpipe | ClientTransactions | ClientSecureConnection |
		ClientMultiStatements | ClientMultiResults | ClientPSMultiResults | ClientPluginAuth |
		ClientConnectAttrs | ClientPluginAuthLenencClientData | ClientIgnoreSpace | ClientInteractive |
		ClientLocalFiles
	if deprecateEOF {
		c |= ClientDeprecateEOF
	}
	return c
}

// NewSalt returns 20 random bytes usable as a handshake salt. Like MySQL's
// generate_user_salt, it avoids NUL (the salt is NUL-terminated on the
// wire) and '$', and stays 7-bit.
func NewSalt() []byte {
	s := make([]byte, ScrambleLength)
	_, _ = rand.Read(s)
	for i, b := range s {
		b &= 0x7f
		if b == 0 || b == '$' {
			b++
		}
		s[i] = b
	}
	return s
}

// AppendInitialHandshake appends a HandshakeV10 payload. h.Salt must be 20
// bytes; h.AuthPlugin defaults to mysql_native_password.
func AppendInitialHandshake(buf []byte, h *InitialHandshake) []byte {
	plugin := h.AuthPlugin
	if plugin == "" {
		plugin = AuthNativePassword
	}
	caps := h.Capabilities
	if h.ExtCapabilities != 0 {
		caps &^= ClientLongPassword // CLIENT_MYSQL: a MariaDB server clears it
	}
	buf = append(buf, ProtocolVersion)
	buf = append(buf, h.ServerVersion...)
	buf = append(buf, 0)
	buf = binary.LittleEndian.AppendUint32(buf, h.ConnID)
	buf = append(buf, h.Salt[:8]...)
	buf = append(buf, 0)
	buf = append(buf, byte(caps), byte(caps>>8), h.Charset, byte(h.Status), byte(h.Status>>8),
		byte(caps>>16), byte(caps>>24))
	buf = append(buf, byte(len(h.Salt)+1))
	buf = append(buf, 0, 0, 0, 0, 0, 0)
	buf = binary.LittleEndian.AppendUint32(buf, h.ExtCapabilities)
	buf = append(buf, h.Salt[8:]...)
	buf = append(buf, 0)
	buf = append(buf, plugin...)
	return append(buf, 0)
}

// ParseInitialHandshake parses a server's HandshakeV10 (the backend side of
// the proxy). An ERR packet (too many connections, host blocked) is returned
// as a *SQLError.
func ParseInitialHandshake(p []byte) (*InitialHandshake, error) {
	if len(p) > 0 && p[0] == HeaderERR {
		e, err := ParseERR(p)
		if err != nil {
			return nil, err
		}
		return nil, e
	}
	if len(p) < 1 || p[0] != ProtocolVersion {
		return nil, malformed("handshake: protocol version is not 10")
	}
	ver, rest := readNulString(p[1:])
	if rest == nil || len(rest) < 4+8+1+2 {
		return nil, malformed("handshake: too short")
	}
	h := &InitialHandshake{ServerVersion: string(ver)}
	h.ConnID = binary.LittleEndian.Uint32(rest)
	salt := append(make([]byte, 0, ScrambleLength), rest[4:12]...)
	rest = rest[13:] // salt part 1 and its filler
	h.Capabilities = uint32(binary.LittleEndian.Uint16(rest))
	rest = rest[2:]
	if h.Capabilities&ClientProtocol41 == 0 {
		return nil, malformed("handshake: server lacks protocol 4.1")
	}
	if len(rest) < 1+2+2+1+10 {
		h.Salt = salt
		h.AuthPlugin = AuthNativePassword
		return h, nil
	}
	h.Charset = rest[0]
	h.Status = binary.LittleEndian.Uint16(rest[1:])
	h.Capabilities |= uint32(binary.LittleEndian.Uint16(rest[3:])) << 16
	authLen := int(rest[5])
	if h.Capabilities&ClientLongPassword == 0 { // a MariaDB server: extended capabilities
		h.ExtCapabilities = binary.LittleEndian.Uint32(rest[12:])
	}
	rest = rest[16:]
	if h.Capabilities&ClientSecureConnection != 0 {
		// max(13, auth_plugin_data_len-8) bytes; the last one is a NUL.
		n := max(13, authLen-8)
		if len(rest) < n {
			return nil, malformed("handshake: salt part 2")
		}
		part := rest[:n]
		if part[n-1] == 0 {
			part = part[:n-1]
		}
		salt = append(salt, part...)
		rest = rest[n:]
	}
	h.Salt = salt
	h.AuthPlugin = AuthNativePassword
	if h.Capabilities&ClientPluginAuth != 0 && len(rest) > 0 {
		name, _ := readNulString(rest)
		if len(name) > 0 {
			h.AuthPlugin = string(name)
		}
	}
	return h, nil
}

// Attr is one client connection attribute.
type Attr struct {
	Key, Value string
}

// HandshakeResponse is a client's HandshakeResponse41 (or SSLRequest).
type HandshakeResponse struct {
	Capabilities uint32
	// ExtCapabilities are the MariaDB extended capabilities a client sends
	// in the last four reserved bytes (zero from clients that do not know
	// them, or when the server kept CLIENT_MYSQL).
	ExtCapabilities uint32
	MaxPacket       uint32
	Charset         uint8 // collation id
	User            string
	AuthResponse    []byte
	DB              string
	AuthPlugin      string // as sent; "" when the client did not name one
	Attrs           []Attr
	SSLRequest      bool // the 32-byte SSLRequest: the client wants TLS before the rest
	// Proxy is the PROXY protocol header that came before the response
	// (ServerHandshake), nil without one. Believing it is the caller's
	// decision.
	Proxy *ProxyHeader
}

// ParseHandshakeResponse parses HandshakeResponse41. The fields are copied,
// so the result outlives p. Clients without CLIENT_PROTOCOL_41 are refused
// with ErrNeedProto41.
func ParseHandshakeResponse(p []byte) (*HandshakeResponse, error) {
	if len(p) < 4 {
		return nil, malformed("handshake response: too short")
	}
	r := &HandshakeResponse{Capabilities: binary.LittleEndian.Uint32(p)}
	if r.Capabilities&ClientProtocol41 == 0 {
		return nil, ErrNeedProto41
	}
	if len(p) < 32 {
		return nil, malformed("handshake response: too short")
	}
	r.MaxPacket = binary.LittleEndian.Uint32(p[4:])
	r.Charset = p[8]
	r.ExtCapabilities = binary.LittleEndian.Uint32(p[28:])
	if len(p) == 32 {
		if r.Capabilities&ClientSSL == 0 {
			return nil, malformed("handshake response: no user name")
		}
		r.SSLRequest = true
		return r, nil
	}
	rest := p[32:]
	user, rest := readNulString(rest)
	r.User = string(user)
	var auth []byte
	switch {
	case r.Capabilities&ClientPluginAuthLenencClientData != 0:
		var ok bool
		if auth, _, rest, ok = ReadLenEncString(rest); !ok {
			return nil, malformed("handshake response: auth data")
		}
	case r.Capabilities&ClientSecureConnection != 0:
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, malformed("handshake response: auth data")
		}
		auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	default:
		auth, rest = readNulString(rest)
	}
	r.AuthResponse = append([]byte(nil), auth...)
	if r.Capabilities&ClientConnectWithDB != 0 && len(rest) > 0 {
		var db []byte
		db, rest = readNulString(rest)
		r.DB = string(db)
	}
	if r.Capabilities&ClientPluginAuth != 0 && len(rest) > 0 {
		var name []byte
		name, rest = readNulString(rest)
		r.AuthPlugin = string(name)
	}
	if r.Capabilities&ClientConnectAttrs != 0 && len(rest) > 0 {
		attrs, err := parseAttrs(rest)
		if err != nil {
			return nil, err
		}
		r.Attrs = attrs
	}
	return r, nil
}

// parseAttrs reads the connect attributes. A block whose length overruns
// the packet is refused; inside it, a key or value that does not parse
// ends the list there, and the login goes on with what was read, as
// MariaDB, which ignores attributes it cannot read.
func parseAttrs(b []byte) ([]Attr, error) {
	total, _, b, ok := ReadLenEncInt(b)
	if !ok || total > uint64(len(b)) {
		return nil, malformed("handshake response: attributes length")
	}
	b = b[:total]
	var attrs []Attr
	for len(b) > 0 {
		k, _, rest, ok := ReadLenEncString(b)
		if !ok {
			break
		}
		v, _, rest, ok := ReadLenEncString(rest)
		if !ok {
			break
		}
		attrs = append(attrs, Attr{Key: string(k), Value: string(v)})
		b = rest
	}
	return attrs, nil
}

func appendAttrs(buf []byte, attrs []Attr) []byte {
	n := 0
	for _, a := range attrs {
		n += LenEncIntSize(uint64(len(a.Key))) + len(a.Key) + LenEncIntSize(uint64(len(a.Value))) + len(a.Value)
	}
	buf = AppendLenEncInt(buf, uint64(n))
	for _, a := range attrs {
		buf = AppendLenEncString(buf, a.Key)
		buf = AppendLenEncString(buf, a.Value)
	}
	return buf
}

// LenEncIntSize returns how many bytes AppendLenEncInt writes for n.
func LenEncIntSize(n uint64) int {
	switch {
	case n < 251:
		return 1
	case n < 1<<16:
		return 3
	case n < 1<<24:
		return 4
	}
	return 9
}

// AppendHandshakeResponse appends a HandshakeResponse41 payload (the proxy
// logging in to a backend). The auth data is written length-encoded when
// CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA is set, else with a one-byte length
// (CLIENT_SECURE_CONNECTION must then be set). The DB is written when
// CLIENT_CONNECT_WITH_DB is set, the plugin name with CLIENT_PLUGIN_AUTH and
// the attributes with CLIENT_CONNECT_ATTRS; ExtCapabilities fill the last
// four reserved bytes (MariaDB's extended capabilities).
func AppendHandshakeResponse(buf []byte, r *HandshakeResponse) []byte {
	caps := r.Capabilities
	buf = binary.LittleEndian.AppendUint32(buf, caps)
	buf = binary.LittleEndian.AppendUint32(buf, r.MaxPacket)
	buf = append(buf, r.Charset)
	buf = append(buf, make([]byte, 19)...)
	buf = binary.LittleEndian.AppendUint32(buf, r.ExtCapabilities)
	buf = append(buf, r.User...)
	buf = append(buf, 0)
	if caps&ClientPluginAuthLenencClientData != 0 {
		buf = AppendLenEncBytes(buf, r.AuthResponse)
	} else {
		buf = append(buf, byte(len(r.AuthResponse)))
		buf = append(buf, r.AuthResponse...)
	}
	if caps&ClientConnectWithDB != 0 {
		buf = append(buf, r.DB...)
		buf = append(buf, 0)
	}
	if caps&ClientPluginAuth != 0 {
		buf = append(buf, r.AuthPlugin...)
		buf = append(buf, 0)
	}
	if caps&ClientConnectAttrs != 0 {
		buf = appendAttrs(buf, r.Attrs)
	}
	return buf
}

// AppendAuthSwitchRequest appends an AuthSwitchRequest: 0xFE, the plugin
// name, then the plugin data. For mysql_native_password use
// AppendNativeAuthSwitch, which adds the trailing NUL clients expect.
func AppendAuthSwitchRequest(buf []byte, plugin string, data []byte) []byte {
	buf = append(buf, HeaderEOF)
	buf = append(buf, plugin...)
	buf = append(buf, 0)
	return append(buf, data...)
}

// AppendNativeAuthSwitch appends the AuthSwitchRequest that moves a client
// (typically a MySQL 8 client that opened with caching_sha2_password) to
// mysql_native_password with the given 20-byte salt. The client answers with
// a bare packet holding NativeScramble(salt, password).
func AppendNativeAuthSwitch(buf []byte, salt []byte) []byte {
	buf = AppendAuthSwitchRequest(buf, AuthNativePassword, salt)
	return append(buf, 0)
}

// ParseAuthSwitchRequest parses an AuthSwitchRequest (0xFE, plugin NUL,
// data). A trailing NUL after a 20-byte salt is dropped. An old-style
// request (the lone 0xFE byte) names mysql_old_password.
func ParseAuthSwitchRequest(p []byte) (plugin string, data []byte, err error) {
	if len(p) < 1 || p[0] != HeaderEOF {
		return "", nil, malformed("not an auth switch request")
	}
	if len(p) == 1 {
		return AuthMySQLOldPassword, nil, nil
	}
	name, rest := readNulString(p[1:])
	if len(rest) == ScrambleLength+1 && rest[ScrambleLength] == 0 {
		rest = rest[:ScrambleLength]
	}
	return string(name), rest, nil
}

// AppendAuthMoreData appends an AuthMoreData packet (0x01 + data), used by
// caching_sha2_password (fast-auth result, full-auth request, public key).
func AppendAuthMoreData(buf []byte, data []byte) []byte {
	return append(append(buf, HeaderMoreData), data...)
}

// ChangeUser is a COM_CHANGE_USER request.
type ChangeUser struct {
	User         string
	AuthResponse []byte
	DB           string
	Charset      uint16 // collation id
	AuthPlugin   string
	Attrs        []Attr
}

// AppendChangeUser appends a COM_CHANGE_USER payload for a connection with
// the given negotiated capabilities (protocol 4.1 and secure connection
// assumed, as Sluice requires them).
func AppendChangeUser(buf []byte, caps uint32, cu *ChangeUser) []byte {
	buf = append(buf, ComChangeUser)
	buf = append(buf, cu.User...)
	buf = append(buf, 0)
	buf = append(buf, byte(len(cu.AuthResponse)))
	buf = append(buf, cu.AuthResponse...)
	buf = append(buf, cu.DB...)
	buf = append(buf, 0)
	buf = append(buf, byte(cu.Charset), byte(cu.Charset>>8))
	if caps&ClientPluginAuth != 0 {
		buf = append(buf, cu.AuthPlugin...)
		buf = append(buf, 0)
	}
	if caps&ClientConnectAttrs != 0 {
		buf = appendAttrs(buf, cu.Attrs)
	}
	return buf
}

// ParseChangeUser parses a client's COM_CHANGE_USER given the client's
// capabilities. Fields are copied.
func ParseChangeUser(p []byte, caps uint32) (*ChangeUser, error) {
	if len(p) < 1 || p[0] != ComChangeUser {
		return nil, malformed("not a COM_CHANGE_USER")
	}
	cu := &ChangeUser{}
	user, rest := readNulString(p[1:])
	cu.User = string(user)
	if caps&ClientSecureConnection != 0 {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, malformed("change user: auth data")
		}
		cu.AuthResponse = append([]byte(nil), rest[1:1+int(rest[0])]...)
		rest = rest[1+int(rest[0]):]
	} else {
		var auth []byte
		auth, rest = readNulString(rest)
		cu.AuthResponse = append([]byte(nil), auth...)
	}
	db, rest := readNulString(rest)
	cu.DB = string(db)
	if len(rest) >= 2 {
		cu.Charset = binary.LittleEndian.Uint16(rest)
		rest = rest[2:]
	}
	if caps&ClientPluginAuth != 0 && len(rest) > 0 {
		var name []byte
		name, rest = readNulString(rest)
		cu.AuthPlugin = string(name)
	}
	if caps&ClientConnectAttrs != 0 && len(rest) > 0 {
		attrs, err := parseAttrs(rest)
		if err != nil {
			return nil, err
		}
		cu.Attrs = attrs
	}
	return cu, nil
}
