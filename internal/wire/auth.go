package wire

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ScrambleLength is the length of a handshake salt and of a
// mysql_native_password reply.
const ScrambleLength = 20

// ErrBadPublicKey is returned when a server's RSA public key cannot be read.
var ErrBadPublicKey = errors.New("wire: bad RSA public key from server")

// Stage1 returns SHA1(password), the secret a backend login needs.
func Stage1(password []byte) []byte {
	s := sha1.Sum(password)
	return s[:]
}

// Stage2 returns SHA1(stage1) = SHA1(SHA1(password)), what MySQL stores.
func Stage2(stage1 []byte) []byte {
	s := sha1.Sum(stage1)
	return s[:]
}

// NativeHash returns the "*HEX" form of a mysql_native_password hash, as
// PASSWORD('pw') and mysql.user show it ("" for an empty password).
func NativeHash(password string) string {
	if password == "" {
		return ""
	}
	return "*" + strings.ToUpper(hex.EncodeToString(Stage2(Stage1([]byte(password)))))
}

// IsNativeHash reports whether s looks like a stored "*HEX" hash ('*' and 40
// hex digits), which is how mysql_users tells hashes from clear text.
func IsNativeHash(s string) bool {
	if len(s) != 41 || s[0] != '*' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseNativeHash decodes a "*HEX" hash into the 20-byte stage2.
func ParseNativeHash(s string) ([]byte, bool) {
	if !IsNativeHash(s) {
		return nil, false
	}
	b, err := hex.DecodeString(s[1:])
	return b, err == nil
}

// scrambleHash = SHA1(salt ‖ stage2).
func scrambleHash(salt, stage2 []byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2)
	var out [sha1.Size]byte
	h.Sum(out[:0])
	return out
}

// NativeScramble computes the mysql_native_password reply for a clear-text
// password: SHA1(pw) XOR SHA1(salt ‖ SHA1(SHA1(pw))). An empty password
// gives an empty reply, as MySQL clients send.
func NativeScramble(salt, password []byte) []byte {
	if len(password) == 0 {
		return nil
	}
	return ScrambleFromStage1(salt, Stage1(password))
}

// ScrambleFromStage1 computes the mysql_native_password reply from
// SHA1(password) alone: this is how the proxy logs in to a backend for a
// user whose password it only knows as a *HEX hash. salt is the first 20
// bytes of the server's scramble.
func ScrambleFromStage1(salt, stage1 []byte) []byte {
	if len(stage1) == 0 {
		return nil
	}
	if len(salt) > ScrambleLength {
		salt = salt[:ScrambleLength]
	}
	h := scrambleHash(salt, Stage2(stage1))
	out := make([]byte, sha1.Size)
	for i := range out {
		out[i] = h[i] ^ stage1[i%len(stage1)]
	}
	return out
}

// RecoverStage1 recovers SHA1(password) from a client's
// mysql_native_password reply and the stored stage2 = SHA1(SHA1(password)):
// stage1 = reply XOR SHA1(salt ‖ stage2). ok is true only if
// SHA1(stage1) == stage2, i.e. the client knew the password; the check is
// constant-time.
func RecoverStage1(salt, reply, stage2 []byte) (stage1 []byte, ok bool) {
	if len(reply) != sha1.Size || len(stage2) != sha1.Size {
		return nil, false
	}
	if len(salt) > ScrambleLength {
		salt = salt[:ScrambleLength]
	}
	h := scrambleHash(salt, stage2)
	stage1 = make([]byte, sha1.Size)
	for i := range stage1 {
		stage1[i] = reply[i] ^ h[i]
	}
	check := sha1.Sum(stage1)
	if subtle.ConstantTimeCompare(check[:], stage2) != 1 {
		return nil, false
	}
	return stage1, true
}

// VerifyNative checks a client's mysql_native_password reply against the
// stored stage2. An empty reply matches only an empty stored hash.
func VerifyNative(salt, reply, stage2 []byte) bool {
	if len(reply) == 0 || len(stage2) == 0 {
		return len(reply) == 0 && len(stage2) == 0
	}
	_, ok := RecoverStage1(salt, reply, stage2)
	return ok
}

// VerifyNativeClear checks a mysql_native_password reply against a
// clear-text password.
func VerifyNativeClear(salt, reply []byte, password string) bool {
	if password == "" {
		return len(reply) == 0
	}
	return VerifyNative(salt, reply, Stage2(Stage1([]byte(password))))
}

// CachingSha2Scramble computes the caching_sha2_password fast-auth reply:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ salt).
func CachingSha2Scramble(salt, password []byte) []byte {
	if len(password) == 0 {
		return nil
	}
	if len(salt) > ScrambleLength {
		salt = salt[:ScrambleLength]
	}
	m1 := sha256.Sum256(password)
	m1h := sha256.Sum256(m1[:])
	h := sha256.New()
	h.Write(m1h[:])
	h.Write(salt)
	m2 := h.Sum(nil)
	for i := range m2 {
		m2[i] ^= m1[i]
	}
	return m2
}

// VerifyCachingSha2Clear checks a caching_sha2_password fast-auth reply
// against a clear-text password (possible only when the proxy stores the
// password in clear; with a *HEX hash the client must be switched to
// mysql_native_password).
func VerifyCachingSha2Clear(salt, reply []byte, password string) bool {
	if password == "" {
		return len(reply) == 0
	}
	want := CachingSha2Scramble(salt, []byte(password))
	return subtle.ConstantTimeCompare(want, reply) == 1
}

// EncryptPassword encrypts a clear-text password for caching_sha2_password
// (or sha256_password) full authentication over a plain connection:
// RSA-OAEP(SHA1) of (password ‖ NUL) XOR salt, with the PEM public key the
// server sent.
func EncryptPassword(password string, salt []byte, pemKey []byte) ([]byte, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, ErrBadPublicKey
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		// Some servers send PKCS#1 keys.
		k1, err1 := x509.ParsePKCS1PublicKey(block.Bytes)
		if err1 != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPublicKey, err)
		}
		k = k1
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, ErrBadPublicKey
	}
	if len(salt) == 0 {
		return nil, ErrBadPublicKey
	}
	plain := make([]byte, len(password)+1)
	copy(plain, password)
	for i := range plain {
		plain[i] ^= salt[i%len(salt)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, plain, nil)
}
