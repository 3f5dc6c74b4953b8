package wire

import (
	"strings"
	"testing"
)

// TestSha256Crypt: the SHA-crypt core against openssl passwd -5 (the same
// algorithm with crypt(3)'s 16-byte salts), then MySQL's $A$005$ form with
// a 20-byte salt: verified with the right password only; malformed, too
// costly or truncated hashes are refused.
func TestSha256Crypt(t *testing.T) {
	for _, c := range []struct{ pw, salt, want string }{
		{"Hello world!", "saltstring", "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"a much longer password that spans more than thirty-two bytes of input", "abcdefghijklmnop", "lv9WWuhbo1ccGR87NfhszvzonfuT.4JBQsge9ttCtM/"},
	} {
		if got := string(sha256Crypt([]byte(c.pw), []byte(c.salt), 5000)); got != c.want {
			t.Errorf("sha256Crypt(%q, %q) = %s, want %s (openssl passwd -5)", c.pw, c.salt, got, c.want)
		}
	}
	var salt [20]byte
	copy(salt[:], "0123456789abcdefghij")
	h := CachingSha2Hash([]byte("s3cret"), salt[:])
	if len(h) != 70 || !strings.HasPrefix(h, "$A$005$0123456789abcdefghij") || !IsCachingSha2Hash(h) {
		t.Fatalf("hash %q", h)
	}
	if !VerifyCachingSha2Hash([]byte("s3cret"), h) || VerifyCachingSha2Hash([]byte("s3cre"), h) || VerifyCachingSha2Hash(nil, h) {
		t.Fatal("verification")
	}
	for _, bad := range []string{h[:69], "$A$000$" + h[7:], "$A$zzz$" + h[7:], "$B$005$" + h[7:], "*" + strings.Repeat("A", 40), "s3cret"} {
		if IsCachingSha2Hash(bad) || VerifyCachingSha2Hash([]byte("s3cret"), bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if VerifyCachingSha2Hash(make([]byte, sha2CryptMaxPassword+1), h) {
		t.Fatal("an over-long password was hashed")
	}
}
