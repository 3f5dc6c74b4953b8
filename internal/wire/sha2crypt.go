package wire

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
)

// MySQL 8 keeps a caching_sha2_password in mysql.user as
// "$A$" + rounds/1000 (three hex digits) + "$" + a 20-byte salt + 43
// characters of SHA-crypt (Drepper's SHA-256 crypt, as crypt(3)'s "$5$"
// but with MySQL's 20-byte salt). ProxySQL accepts that form in
// mysql_users.password, and so does Sluice: a client's full
// authentication (TLS or RSA) is checked against it, and then its fast
// auth against the cached SHA256(SHA256(password)).

const (
	sha2CryptPrefix  = "$A$"
	sha2CryptSaltLen = 20
	sha2CryptHashLen = 43
	// sha2CryptMaxRounds bounds the work a stored hash can ask for
	// (MySQL's caching_sha2_password_digest_rounds is at most 4095000).
	sha2CryptMaxRounds = 0xfff * 1000
	// sha2CryptMaxPassword bounds the password checked against one: the
	// algorithm's cost grows with the square of its length.
	sha2CryptMaxPassword = 1024
)

// IsCachingSha2Hash reports whether stored is a caching_sha2_password hash
// ($A$…) rather than a clear password or a mysql_native_password hash.
func IsCachingSha2Hash(stored string) bool {
	_, _, _, ok := parseSha2Crypt(stored)
	return ok
}

func parseSha2Crypt(stored string) (rounds int, salt, hash string, ok bool) {
	if len(stored) != len(sha2CryptPrefix)+3+1+sha2CryptSaltLen+sha2CryptHashLen || stored[:3] != sha2CryptPrefix || stored[6] != '$' {
		return 0, "", "", false
	}
	n, err := strconv.ParseUint(stored[3:6], 16, 16)
	if err != nil || n == 0 {
		return 0, "", "", false
	}
	return int(n) * 1000, stored[7 : 7+sha2CryptSaltLen], stored[7+sha2CryptSaltLen:], true
}

// VerifyCachingSha2Hash checks a clear password against a stored $A$ hash.
func VerifyCachingSha2Hash(password []byte, stored string) bool {
	rounds, salt, hash, ok := parseSha2Crypt(stored)
	if !ok || rounds > sha2CryptMaxRounds || len(password) > sha2CryptMaxPassword {
		return false
	}
	got := sha256Crypt(password, []byte(salt), rounds)
	return subtle.ConstantTimeCompare(got, []byte(hash)) == 1
}

// CachingSha2SaltLen is the salt length of MySQL's stored
// caching_sha2_password hash.
const CachingSha2SaltLen = sha2CryptSaltLen

// CachingSha2Hash returns the $A$005$ form of password with salt
// (CachingSha2SaltLen bytes to be one a server and Sluice verify; MySQL
// draws printable ones) — for the admin's CACHING_SHA2_PASSWORD(), tests
// and tools.
func CachingSha2Hash(password, salt []byte) string {
	return sha2CryptPrefix + "005$" + string(salt) + string(sha256Crypt(password, salt, 5000))
}

const cryptB64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// sha256Crypt is the SHA-256 crypt of Drepper's specification, with the
// salt taken whole, rounds as given, and the 43-character encoding.
func sha256Crypt(pw, salt []byte, rounds int) []byte {
	hb := sha256.New()
	hb.Write(pw)
	hb.Write(salt)
	hb.Write(pw)
	b := hb.Sum(nil)

	ha := sha256.New()
	ha.Write(pw)
	ha.Write(salt)
	i := len(pw)
	for ; i > 32; i -= 32 {
		ha.Write(b)
	}
	ha.Write(b[:i])
	for i = len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(pw)
		}
	}
	a := ha.Sum(nil)

	hp := sha256.New()
	for range len(pw) {
		hp.Write(pw)
	}
	dp := hp.Sum(nil)
	p := make([]byte, 0, len(pw))
	for len(p) < len(pw) {
		p = append(p, dp[:min(32, len(pw)-len(p))]...)
	}

	hs := sha256.New()
	for range 16 + int(a[0]) {
		hs.Write(salt)
	}
	ds := hs.Sum(nil)
	s := make([]byte, 0, len(salt))
	for len(s) < len(salt) {
		s = append(s, ds[:min(32, len(salt)-len(s))]...)
	}

	c := a
	h := sha256.New()
	for r := range rounds {
		h.Reset()
		if r&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if r%3 != 0 {
			h.Write(s)
		}
		if r%7 != 0 {
			h.Write(p)
		}
		if r&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	out := make([]byte, 0, sha2CryptHashLen)
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out = append(out, cryptB64[w&0x3f])
			w >>= 6
		}
	}
	enc(c[0], c[10], c[20], 4)
	enc(c[21], c[1], c[11], 4)
	enc(c[12], c[22], c[2], 4)
	enc(c[3], c[13], c[23], 4)
	enc(c[24], c[4], c[14], 4)
	enc(c[15], c[25], c[5], 4)
	enc(c[6], c[16], c[26], 4)
	enc(c[27], c[7], c[17], 4)
	enc(c[18], c[28], c[8], 4)
	enc(c[9], c[19], c[29], 4)
	enc(0, c[31], c[30], 3)
	return out
}
