package router

import (
	"crypto/sha1"
	"crypto/subtle"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// sha2Entry is the caching_sha2_password cache of one user: the stored
// password it was made from (a changed password invalidates it) and
// SHA256(SHA256(password)), against which fast-auth scrambles are checked.
type sha2Entry struct {
	stored string
	digest [32]byte
}

// maxFullAuthReply bounds a full-authentication reply: an RSA-2048
// ciphertext is 256 bytes, a clear password far below 64 KiB (the login
// bound of the connection applies as well).
const maxFullAuthReply = 4096

// verifySha2 runs the server side of caching_sha2_password for user u
// after the client's scramble (reply): fast auth when the proxy can check
// the scramble (a clear stored password, or the cache filled by an earlier
// full authentication), else full authentication — the password over TLS,
// or RSA-encrypted with the proxy's key (sent when the client asks for it)
// without TLS — checked against the stored password, clear, a
// mysql_native_password hash or a $A$ caching_sha2_password hash. A
// successful full authentication fills the cache and, for hashed
// passwords, keeps SHA1(password) for backend logins. It reports whether
// the client is authenticated; the caller writes the final OK or ERR.
func (s *session) verifySha2(u *config.User, salt, reply []byte, encrypted bool) bool {
	if u.Password == "" {
		return len(reply) == 0 || (len(reply) == 1 && reply[0] == 0)
	}
	if len(reply) != 32 {
		return false
	}
	var digest [32]byte
	have := false
	if !wire.IsCachingSha2Hash(u.Password) {
		if _, hashed := wire.ParseNativeHash(u.Password); !hashed {
			digest, have = wire.CachingSha2Digest([]byte(u.Password)), true
		}
	}
	if !have {
		if v, ok := s.r.sha2Cache.Load(u.Username); ok && v.(sha2Entry).stored == u.Password {
			digest, have = v.(sha2Entry).digest, true
		}
	}
	if have {
		if !wire.VerifyCachingSha2Digest(salt, reply, digest) {
			return false // a wrong scramble against a known digest, as MySQL
		}
		return s.c.WriteAuthMoreData([]byte{wire.CachingSha2FastAuthOK}) == nil
	}
	// Full authentication.
	if err := s.c.WriteAuthMoreData([]byte{wire.CachingSha2FullAuth}); err != nil {
		return false
	}
	p, err := s.c.ReadPacket()
	if err != nil || len(p) > maxFullAuthReply {
		return false
	}
	var pw []byte
	switch {
	case encrypted:
		pw = wire.ClearPassword(p)
	case len(p) == 1 && p[0] == wire.CachingSha2RequestKey:
		m := s.r.tlsMaterial()
		if m == nil || m.Key == nil {
			return false
		}
		if err := s.c.WriteAuthMoreData(m.PublicPEM); err != nil {
			return false
		}
		enc, err := s.c.ReadPacket()
		if err != nil || len(enc) > maxFullAuthReply {
			return false
		}
		if pw, err = wire.DecryptPassword(m.Key, salt, enc); err != nil {
			return false
		}
	default:
		// A clear password on a clear connection (a client sends it only
		// when it believes the link is secure): refused, never read.
		return false
	}
	if !checkClear(u.Password, pw) {
		return false
	}
	s.r.sha2Cache.Store(u.Username, sha2Entry{stored: u.Password, digest: wire.CachingSha2Digest(pw)})
	if _, hashed := wire.ParseNativeHash(u.Password); hashed || wire.IsCachingSha2Hash(u.Password) {
		s1 := sha1.Sum(pw)
		s.r.stage1.Store(u.Username, s1[:])
	}
	return true
}

// checkClear checks a clear password against the stored one: clear, a
// mysql_native_password hash or a caching_sha2_password $A$ hash.
func checkClear(stored string, pw []byte) bool {
	if stage2, ok := wire.ParseNativeHash(stored); ok {
		return wire.VerifyNativeHashClear(pw, stage2)
	}
	if wire.IsCachingSha2Hash(stored) {
		return wire.VerifyCachingSha2Hash(pw, stored)
	}
	return subtle.ConstantTimeCompare([]byte(stored), pw) == 1
}

// tlsMaterial is the proxy's certificate and key in use, or nil.
func (r *Router) tlsMaterial() *tlsconf.Material {
	if r.cfg.TLS == nil {
		return nil
	}
	return r.cfg.TLS.Current()
}
