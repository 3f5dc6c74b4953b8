package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// FuzzCachingSha2Server: what a client controls in the server side of
// caching_sha2_password — the fast-auth scramble, a full-authentication
// reply (clear over TLS, RSA-encrypted without) and the password checked
// against stored $A$ and native hashes — never panics, and nothing but the
// right password verifies.
func FuzzCachingSha2Server(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	salt := []byte("0123456789abcdefghij")
	var cs [20]byte
	copy(cs[:], "saltsaltsaltsaltsalt")
	stored := CachingSha2Hash([]byte("right"), cs[:])
	native, _ := ParseNativeHash(NativeHash("right"))
	digest := CachingSha2Digest([]byte("right"))
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	enc, err := EncryptPassword("right", salt, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("right\x00"))
	f.Add(CachingSha2Scramble(salt, []byte("right")))
	f.Add(enc)
	f.Add(bytes.Repeat([]byte{0xff}, 256))
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > 8192 {
			return
		}
		if VerifyCachingSha2Digest(salt, p, digest) && !bytes.Equal(p, CachingSha2Scramble(salt, []byte("right"))) {
			t.Fatalf("scramble %x verified", p)
		}
		pw := ClearPassword(p)
		if (VerifyCachingSha2Hash(pw, stored) || VerifyNativeHashClear(pw, native)) && string(pw) != "right" {
			t.Fatalf("password %q verified", pw)
		}
		if dec, err := DecryptPassword(key, salt, p); err == nil && len(dec) > len(p) {
			t.Fatalf("decrypted %d bytes from %d", len(dec), len(p))
		}
		_ = IsCachingSha2Hash(string(p))
	})
}
