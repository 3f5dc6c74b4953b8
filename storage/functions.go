package storage

import (
	"crypto/rand"
	"database/sql/driver"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// The admin's SQL functions that ProxySQL 2.6+ adds to its SQLite, the
// documented way to store a user's password hashed:
//
//	INSERT INTO mysql_users(username, password) VALUES ('u', MYSQL_NATIVE_PASSWORD('pw'));
//	UPDATE mysql_users SET password = CACHING_SHA2_PASSWORD('pw') WHERE username = 'u';
//
// MYSQL_NATIVE_PASSWORD(pw) is '*' and the 40 hex digits of SHA1(SHA1(pw)),
// MySQL's PASSWORD(). CACHING_SHA2_PASSWORD(pw[, salt]) is MySQL 8's
// "$A$005$" form: the salt (20 random printable bytes when none is given, at
// most 20) and the 5000-round SHA-256 crypt. As in ProxySQL, an argument of
// the wrong type or size gives a text result that says so rather than an
// error, and a wrong argument count is SQLite's error.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("MYSQL_NATIVE_PASSWORD", 1, nativePassword)
	// One name registers once: one or two arguments, counted here.
	sqlite.MustRegisterScalarFunction("CACHING_SHA2_PASSWORD", -1, cachingSha2Password)
	sqlite.MustRegisterDeterministicScalarFunction("FROM_UNIXTIME", 1, fromUnixtime)
}

// fromUnixtime is FROM_UNIXTIME(seconds), which ProxySQL patches into its
// SQLite (deps/sqlite3/from_unixtime.patch) for the stats and monitor
// tables' epoch columns: 'YYYY-MM-DD HH:MM:SS' in UTC, as SQLite's
// datetime(seconds, 'unixepoch'); NULL for what is not a number.
func fromUnixtime(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	var sec float64
	switch v := args[0].(type) {
	case int64:
		sec = float64(v)
	case float64:
		sec = v
	case string, []byte:
		t, _ := textArg(v)
		f, err := strconv.ParseFloat(strings.TrimSpace(string(t)), 64)
		if err != nil {
			return nil, nil
		}
		sec = f
	default:
		return nil, nil
	}
	// SQLite's valid Julian days: years 0000 to 9999.
	if math.IsNaN(sec) || sec < -62167219200 || sec > 253402300799 {
		return nil, nil
	}
	return time.Unix(int64(math.Floor(sec)), 0).UTC().Format("2006-01-02 15:04:05"), nil
}

const (
	errArgType = "Invalid argument type"
	errArgSize = "Invalid argument size"
)

// textArg returns a TEXT or BLOB argument's bytes.
func textArg(v driver.Value) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	}
	return nil, false
}

func nativePassword(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	pw, ok := textArg(args[0])
	switch {
	case !ok:
		return errArgType, nil
	case len(pw) == 0:
		return errArgSize, nil
	}
	return wire.NativeHash(string(pw)), nil
}

func cachingSha2Password(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) != 1 && len(args) != 2 {
		return nil, errors.New("wrong number of arguments to function CACHING_SHA2_PASSWORD()")
	}
	pw, ok := textArg(args[0])
	if !ok {
		return errArgType, nil
	}
	var salt []byte
	if len(args) == 2 {
		if salt, ok = textArg(args[1]); !ok {
			return errArgType, nil
		}
		if len(salt) == 0 {
			return errArgSize, nil
		}
	} else {
		salt = randomSalt()
	}
	if len(pw) == 0 || len(salt) > wire.CachingSha2SaltLen {
		return errArgSize, nil
	}
	return wire.CachingSha2Hash(pw, salt), nil
}

// randomSalt draws 20 printable ASCII bytes other than '$' (the field
// separator of the stored form).
func randomSalt() []byte {
	const alphabet = "!\"#%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	salt := make([]byte, wire.CachingSha2SaltLen)
	_, _ = rand.Read(salt)
	for i, b := range salt {
		salt[i] = alphabet[int(b)%len(alphabet)]
	}
	return salt
}
