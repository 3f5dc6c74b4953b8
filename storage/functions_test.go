package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestPasswordFunctions: MYSQL_NATIVE_PASSWORD() and CACHING_SHA2_PASSWORD()
// give what MySQL stores, and ProxySQL's answers to bad arguments
// (test_sqlite3_pass_exts-t.cpp).
func TestPasswordFunctions(t *testing.T) {
	s, _ := openTemp(t)
	scalars(t, s, map[string]string{
		// SELECT PASSWORD('test') on MariaDB.
		"SELECT MYSQL_NATIVE_PASSWORD('test')":                         "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29",
		"SELECT MYSQL_NATIVE_PASSWORD('')":                             "Invalid argument size",
		"SELECT MYSQL_NATIVE_PASSWORD(2)":                              "Invalid argument type",
		"SELECT CACHING_SHA2_PASSWORD('test', '0123456789abcdefghij')": wire.CachingSha2Hash([]byte("test"), []byte("0123456789abcdefghij")),
		"SELECT CACHING_SHA2_PASSWORD('test', UNHEX('00FF'))":          wire.CachingSha2Hash([]byte("test"), []byte{0, 0xff}),
		"SELECT CACHING_SHA2_PASSWORD('', '')":                         "Invalid argument size",
		"SELECT CACHING_SHA2_PASSWORD('', '000000000000000000000')":    "Invalid argument size",
		"SELECT CACHING_SHA2_PASSWORD('x', '000000000000000000000')":   "Invalid argument size",
		"SELECT CACHING_SHA2_PASSWORD(2, '00')":                        "Invalid argument type",
		"SELECT CACHING_SHA2_PASSWORD('00', 2)":                        "Invalid argument type",
	})
	for _, q := range []string{"SELECT MYSQL_NATIVE_PASSWORD()", "SELECT MYSQL_NATIVE_PASSWORD('00', '00')",
		"SELECT CACHING_SHA2_PASSWORD()", "SELECT CACHING_SHA2_PASSWORD('00', '00', '00')"} {
		if _, err := s.Query(context.Background(), q, false); err == nil || !strings.Contains(err.Error(), "wrong number of arguments to function") {
			t.Errorf("%s: %v, want SQLite's wrong number of arguments", q, err)
		}
	}
	// Without a salt: a fresh printable one each time, a hash that verifies.
	a, b := scalar(t, s, "SELECT CACHING_SHA2_PASSWORD('s3cret')"), scalar(t, s, "SELECT CACHING_SHA2_PASSWORD('s3cret')")
	if a == b || !wire.IsCachingSha2Hash(a) || !wire.VerifyCachingSha2Hash([]byte("s3cret"), a) || wire.VerifyCachingSha2Hash([]byte("s3creT"), a) {
		t.Fatalf("random salts: %q %q", a, b)
	}
	if strings.ContainsAny(a[7:27], "$\x00") {
		t.Fatalf("salt %q", a[7:27])
	}
	// Stored the documented way.
	mustExec(t, s, "INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('u', MYSQL_NATIVE_PASSWORD('test'), 0)")
	if got := scalar(t, s, "SELECT password FROM mysql_users WHERE username = 'u'"); got != wire.NativeHash("test") {
		t.Fatalf("stored %q", got)
	}
}

// TestFromUnixtime: FROM_UNIXTIME(), which ProxySQL patches into its SQLite
// for the epoch columns of the stats and monitor tables, is SQLite's
// datetime(…, 'unixepoch'): UTC, seconds.
func TestFromUnixtime(t *testing.T) {
	s, _ := openTemp(t)
	scalars(t, s, map[string]string{
		"SELECT FROM_UNIXTIME(1700000000)":                                     "2023-11-14 22:13:20",
		"SELECT from_unixtime(1700000000.9)":                                   "2023-11-14 22:13:20",
		"SELECT FROM_UNIXTIME('1700000000')":                                   "2023-11-14 22:13:20",
		"SELECT FROM_UNIXTIME(0) = datetime(0, 'unixepoch')":                   "1",
		"SELECT FROM_UNIXTIME(-1)":                                             "1969-12-31 23:59:59",
		"SELECT COALESCE(FROM_UNIXTIME('x'), 'null')":                          "null",
		"SELECT COALESCE(FROM_UNIXTIME(NULL), 'null')":                         "null",
		"SELECT COALESCE(FROM_UNIXTIME(1e300), 'null')":                        "null",
		"SELECT FROM_UNIXTIME(1700000000) = datetime(1700000000, 'unixepoch')": "1",
	})
}

// scalars checks that each query answers the value it maps to.
func scalars(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	for q, w := range want {
		if got := scalar(t, s, q); got != w {
			t.Errorf("%s = %q, want %q", q, got, w)
		}
	}
}
