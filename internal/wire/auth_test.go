package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestNativeHashKnownVectors(t *testing.T) {
	// PASSWORD('test') and PASSWORD('password') as MySQL prints them.
	for pw, want := range map[string]string{
		"test":     "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29",
		"password": "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
		"":         "",
	} {
		if got := NativeHash(pw); got != want {
			t.Fatalf("NativeHash(%q) = %s, want %s", pw, got, want)
		}
		if pw != "" {
			if got := mysql.EncodePasswordHex(mysql.NativePasswordHash([]byte(pw))); got != want {
				t.Fatalf("go-mysql disagrees for %q: %s", pw, got)
			}
			st2, ok := ParseNativeHash(want)
			if !ok || !bytes.Equal(st2, Stage2(Stage1([]byte(pw)))) {
				t.Fatalf("ParseNativeHash(%s)", want)
			}
		}
	}
	for _, bad := range []string{"", "*94BD", "94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29X", "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC2G"} {
		if IsNativeHash(bad) {
			t.Fatalf("%q taken as a hash", bad)
		}
	}
	if !IsNativeHash("*94bdcebe19083ce2a1f959fd02f964c7af4cfc29") {
		t.Fatal("lower-case hash refused")
	}
}

func TestNativeScrambleMatchesGoMySQL(t *testing.T) {
	for i := range 50 {
		salt := NewSalt()
		pw := []byte{byte('a' + i%26), byte(i), 'x'}
		got := NativeScramble(salt, pw)
		want := mysql.CalcNativePassword(salt, pw)
		if !bytes.Equal(got, want) {
			t.Fatalf("scramble differs from mysql.CalcNativePassword")
		}
		if !mysql.CompareNativePassword(got, Stage2(Stage1(pw)), salt) {
			t.Fatal("go-mysql rejects our scramble")
		}
		if got2 := ScrambleFromStage1(salt, Stage1(pw)); !bytes.Equal(got2, want) {
			t.Fatal("ScrambleFromStage1 differs")
		}
	}
	if NativeScramble(NewSalt(), nil) != nil {
		t.Fatal("empty password must give an empty reply")
	}
}

func TestRecoverStage1(t *testing.T) {
	salt := NewSalt()
	pw := []byte("s3cret")
	stage2, _ := ParseNativeHash(NativeHash(string(pw)))
	reply := mysql.CalcNativePassword(salt, pw)
	st1, ok := RecoverStage1(salt, reply, stage2)
	if !ok || !bytes.Equal(st1, Stage1(pw)) {
		t.Fatal("stage1 not recovered")
	}
	// The recovered stage1 logs in to a server that checks the reply
	// against the same hash with a fresh salt.
	salt2 := NewSalt()
	if !mysql.CompareNativePassword(ScrambleFromStage1(salt2, st1), stage2, salt2) {
		t.Fatal("scramble from recovered stage1 rejected")
	}
	if _, ok := RecoverStage1(salt, mysql.CalcNativePassword(salt, []byte("wrong")), stage2); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := RecoverStage1(salt2, reply, stage2); ok {
		t.Fatal("reply for another salt accepted")
	}
	if _, ok := RecoverStage1(salt, reply[:19], stage2); ok {
		t.Fatal("short reply accepted")
	}
	if !VerifyNative(salt, reply, stage2) || VerifyNative(salt, nil, stage2) || !VerifyNative(salt, nil, nil) {
		t.Fatal("VerifyNative")
	}
	if !VerifyNativeClear(salt, reply, "s3cret") || VerifyNativeClear(salt, reply, "other") || !VerifyNativeClear(salt, nil, "") {
		t.Fatal("VerifyNativeClear")
	}
	// A 21-byte salt (with the trailing NUL) behaves like the 20-byte one.
	if _, ok := RecoverStage1(append(salt, 0), reply, stage2); !ok {
		t.Fatal("salt with NUL")
	}
}

func TestCachingSha2(t *testing.T) {
	salt := NewSalt()
	pw := []byte("sha2pw")
	got := CachingSha2Scramble(salt, pw)
	if want := mysql.CalcCachingSha2Password(salt, pw); !bytes.Equal(got, want) {
		t.Fatal("differs from mysql.CalcCachingSha2Password")
	}
	if !VerifyCachingSha2Clear(salt, got, "sha2pw") || VerifyCachingSha2Clear(salt, got, "x") {
		t.Fatal("VerifyCachingSha2Clear")
	}
}

func TestEncryptPassword(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	salt := NewSalt()
	enc, err := EncryptPassword("pw123", salt, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mysql.Xor(plain, salt); string(got) != "pw123\x00" {
		t.Fatalf("decrypted %q", got)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})
	if _, err := EncryptPassword("pw", salt, pkcs1); err != nil {
		t.Fatal("PKCS#1 key:", err)
	}
	if _, err := EncryptPassword("pw", salt, []byte("garbage")); err == nil {
		t.Fatal("garbage key accepted")
	}
}

func TestNewSalt(t *testing.T) {
	for range 100 {
		s := NewSalt()
		if len(s) != 20 {
			t.Fatal(len(s))
		}
		for _, b := range s {
			if b == 0 || b == '$' || b > 0x7f {
				t.Fatalf("bad salt byte %x", b)
			}
		}
	}
}
