package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
)

// The server side of caching_sha2_password (the proxy's data port).
//
// What the proxy can verify depends on what mysql_users stores: with a
// clear-text password it verifies the fast-auth scramble directly; with a
// mysql_native_password hash ('*' + HEX(SHA1(SHA1(pw)))) it cannot (the
// scramble is built on SHA256 of the password), so it asks the client for
// full authentication — the password itself, over TLS or RSA-encrypted —
// checks it against the hash and keeps SHA256(SHA256(pw)), with which
// later logins of the same user are verified by fast auth, as MySQL's
// cache does.

// ErrBadEncryptedPassword: an RSA-encrypted password that does not decrypt
// to a NUL-terminated string.
var ErrBadEncryptedPassword = errors.New("wire: bad RSA-encrypted password")

// CachingSha2Digest is SHA256(SHA256(password)): what a server keeps to
// verify fast-auth scrambles.
func CachingSha2Digest(password []byte) [32]byte {
	m1 := sha256.Sum256(password)
	return sha256.Sum256(m1[:])
}

// VerifyCachingSha2Digest checks a fast-auth scramble against
// SHA256(SHA256(password)): SHA256(digest ‖ salt) XOR reply must be a
// value whose SHA256 is digest.
func VerifyCachingSha2Digest(salt, reply []byte, digest [32]byte) bool {
	if len(reply) != sha256.Size {
		return false
	}
	if len(salt) > ScrambleLength {
		salt = salt[:ScrambleLength]
	}
	h := sha256.New()
	h.Write(digest[:])
	h.Write(salt)
	var m1 [32]byte
	h.Sum(m1[:0])
	for i := range m1 {
		m1[i] ^= reply[i]
	}
	got := sha256.Sum256(m1[:])
	return subtle.ConstantTimeCompare(got[:], digest[:]) == 1
}

// VerifyNativeHashClear checks a clear-text password against a stored
// mysql_native_password hash (SHA1(SHA1(pw)), the 20 bytes of
// ParseNativeHash).
func VerifyNativeHashClear(password []byte, stage2 []byte) bool {
	s1 := sha1.Sum(password)
	s2 := sha1.Sum(s1[:])
	return subtle.ConstantTimeCompare(s2[:], stage2) == 1
}

// DecryptPassword undoes EncryptPassword with the server's private key:
// RSA-OAEP(SHA1), then XOR with the salt; the result must end with NUL,
// which is dropped.
func DecryptPassword(key *rsa.PrivateKey, salt, enc []byte) ([]byte, error) {
	if key == nil || len(salt) == 0 || len(enc) != key.Size() {
		return nil, ErrBadEncryptedPassword
	}
	plain, err := rsa.DecryptOAEP(sha1.New(), rand.Reader, key, enc, nil)
	if err != nil {
		return nil, ErrBadEncryptedPassword
	}
	for i := range plain {
		plain[i] ^= salt[i%len(salt)]
	}
	if len(plain) == 0 || plain[len(plain)-1] != 0 {
		return nil, ErrBadEncryptedPassword
	}
	return plain[:len(plain)-1], nil
}

// ClearPassword returns the password of a full-authentication reply sent
// over TLS: the bytes up to the first NUL.
func ClearPassword(p []byte) []byte {
	if i := bytes.IndexByte(p, 0); i >= 0 {
		return p[:i]
	}
	return p
}

// WriteAuthMoreData sends an AuthMoreData packet (0x01, data) and flushes.
func (c *Conn) WriteAuthMoreData(data []byte) error {
	c.scratch = append(append(c.scratch[:0], HeaderMoreData), data...)
	if err := c.WritePacket(c.scratch); err != nil {
		return err
	}
	return c.Flush()
}

// TLSState returns the TLS state of the connection and whether it is
// encrypted.
func (c *Conn) TLSState() (tls.ConnectionState, bool) {
	if tc, ok := c.nc.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// AppendSSLRequest appends the 32-byte SSLRequest a client sends before
// its TLS handshake (caps must include ClientSSL; it is added).
func AppendSSLRequest(buf []byte, caps uint32, maxPacket uint32, charset uint8) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, caps|ClientSSL)
	buf = binary.LittleEndian.AppendUint32(buf, maxPacket)
	buf = append(buf, charset)
	return append(buf, make([]byte, 23)...)
}

// StartClientTLS upgrades the connection to TLS as the client, after the
// SSLRequest went out: the server has sent nothing since its handshake, so
// nothing may be buffered. The sequence id is kept.
func (c *Conn) StartClientTLS(conf *tls.Config) error {
	if c.br == nil {
		return ErrClosed
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		return malformed("data from the server before the TLS handshake")
	}
	return c.handshakeTLS(tls.Client(c.nc, conf))
}
