package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

// TestCachingSha2DigestVerifiesScrambles: the digest a server keeps
// (SHA256(SHA256(pw))) verifies the scramble a client computes from the
// clear password with any salt, and nothing else.
func TestCachingSha2DigestVerifiesScrambles(t *testing.T) {
	d := CachingSha2Digest([]byte("s3cret"))
	for range 50 {
		salt := NewSalt()
		if !VerifyCachingSha2Digest(salt, CachingSha2Scramble(salt, []byte("s3cret")), d) {
			t.Fatal("the right password's scramble was refused")
		}
		if VerifyCachingSha2Digest(salt, CachingSha2Scramble(salt, []byte("s3creT")), d) {
			t.Fatal("a wrong password's scramble was accepted")
		}
		other := NewSalt()
		if bytes.Equal(other, salt) {
			continue
		}
		if VerifyCachingSha2Digest(other, CachingSha2Scramble(salt, []byte("s3cret")), d) {
			t.Fatal("a scramble made with another salt was accepted")
		}
	}
	if VerifyCachingSha2Digest(NewSalt(), []byte{1, 2, 3}, d) || VerifyCachingSha2Digest(NewSalt(), nil, d) {
		t.Fatal("a short reply was accepted")
	}
}

// TestVerifyNativeHashClear: a clear password against a stored '*HEX'
// hash, as full authentication of a hashed user needs.
func TestVerifyNativeHashClear(t *testing.T) {
	stage2, ok := ParseNativeHash("*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29") // PASSWORD('test')
	if !ok {
		t.Fatal("hash not parsed")
	}
	if !VerifyNativeHashClear([]byte("test"), stage2) {
		t.Fatal("right password refused")
	}
	if VerifyNativeHashClear([]byte("Test"), stage2) || VerifyNativeHashClear(nil, stage2) {
		t.Fatal("wrong password accepted")
	}
}

// TestDecryptPasswordRoundTrip: what a client encrypts with the public
// key (EncryptPassword, as go-sql-driver and libmysqlclient do) decrypts
// to the password; tampered or foreign ciphertexts are refused.
func TestDecryptPasswordRoundTrip(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	salt := NewSalt()
	for _, pw := range []string{"x", "s3cret", string(bytes.Repeat([]byte("p"), 100))} {
		enc, err := EncryptPassword(pw, salt, pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecryptPassword(key, salt, enc)
		if err != nil || string(got) != pw {
			t.Fatalf("%q: got %q, %v", pw, got, err)
		}
		enc[10] ^= 1
		if _, err := DecryptPassword(key, salt, enc); err == nil {
			t.Fatal("a tampered ciphertext decrypted")
		}
	}
	for _, bad := range [][]byte{nil, {1, 2}, bytes.Repeat([]byte{7}, 256)} {
		if _, err := DecryptPassword(key, salt, bad); err == nil {
			t.Fatalf("garbage of %d bytes decrypted", len(bad))
		}
	}
	if _, err := DecryptPassword(nil, salt, bytes.Repeat([]byte{7}, 256)); err == nil {
		t.Fatal("decrypted without a key")
	}
}

// TestServerHandshakeSwitchesOtherPlugins: a reply for a plugin the proxy
// does not verify is switched to the announced one (caching_sha2_password
// when announced, else mysql_native_password, also for a
// caching_sha2_password reply); a mysql_native_password reply is kept
// whatever was announced.
func TestServerHandshakeSwitchesOtherPlugins(t *testing.T) {
	cases := []struct{ announced, client, want string }{
		{AuthNativePassword, AuthCachingSha2, AuthNativePassword},
		{AuthNativePassword, AuthMariaDBEd25519, AuthNativePassword},
		{AuthCachingSha2, AuthMariaDBEd25519, AuthCachingSha2},
		{AuthCachingSha2, AuthNativePassword, AuthNativePassword},
		{AuthCachingSha2, AuthCachingSha2, AuthCachingSha2},
	}
	for _, tc := range cases {
		a, b := net.Pipe()
		type result struct {
			resp *HandshakeResponse
			err  error
		}
		done := make(chan result, 1)
		salt := NewSalt()
		go func() {
			c := NewConn(a)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			hs := &InitialHandshake{ServerVersion: "8.0.11", ConnID: 1, Salt: salt,
				Capabilities: ServerCapabilities(false), Charset: 33, AuthPlugin: tc.announced}
			r, err := ServerHandshake(c, hs, nil)
			done <- result{r, err}
		}()
		c := NewConn(b)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.ReadPacket(); err != nil {
			t.Fatal(err)
		}
		resp := &HandshakeResponse{Capabilities: ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientPluginAuthLenencClientData,
			MaxPacket: 1 << 24, Charset: 33, User: "u", AuthResponse: []byte("first"), AuthPlugin: tc.client}
		if err := c.WritePacket(AppendHandshakeResponse(nil, resp)); err != nil {
			t.Fatal(err)
		}
		_ = c.Flush()
		if tc.client != tc.want {
			p, err := c.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			name, data, err := ParseAuthSwitchRequest(p)
			if err != nil || name != tc.want || !bytes.Equal(data, salt) {
				t.Fatalf("%+v: switch to %q with % x (%v)", tc, name, data, err)
			}
			_ = c.WritePacket([]byte("second"))
			_ = c.Flush()
		}
		r := <-done
		b.Close()
		if r.err != nil {
			t.Fatalf("%+v: %v", tc, r.err)
		}
		wantReply := "first"
		if tc.client != tc.want {
			wantReply = "second"
		}
		if r.resp.AuthPlugin != tc.want || string(r.resp.AuthResponse) != wantReply {
			t.Fatalf("%+v: reply for %q: %q", tc, r.resp.AuthPlugin, r.resp.AuthResponse)
		}
	}
}
