package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// nativeHash is mysql_native_password's stored form of pw.
func nativeHash(pw string, upper bool) string {
	s1 := sha1.Sum([]byte(pw))
	s2 := sha1.Sum(s1[:])
	h := hex.EncodeToString(s2[:])
	if upper {
		h = strings.ToUpper(h)
	}
	return "*" + h
}

// TestClientCachingSha2 (issue 10): mysql-default_authentication_plugin=
// caching_sha2_password, end to end with go-sql-driver/mysql and PyMySQL,
// the backend a MariaDB with mysql_native_password.
//
//   - a clear stored password: fast auth at once (a client that can do
//     neither TLS nor RSA logs in);
//   - a mysql_native_password hash: the proxy cannot check a scramble, so it
//     asks for full authentication: a client holding a wrong RSA key
//     fails, one that asks for the proxy's key sends the password
//     RSA-encrypted; then the client with the wrong key logs in by fast
//     auth (the cache), and the backend login uses SHA1(password) recovered
//     from the full authentication;
//   - a changed stored password empties the user's cache: full
//     authentication again, this time over TLS (clear password in the
//     TLS tunnel);
//   - MySQL 8's $A$005$ hash in mysql_users (as ProxySQL accepts it): full
//     authentication by RSA with PyMySQL, then fast auth;
//   - wrong passwords fail with ERR 1045 in every mode.
func TestClientCachingSha2(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sbtest', 'sbtest', 0), ('root', '%s', 0);
SET mysql-default_authentication_plugin='caching_sha2_password'; SET mysql-have_ssl='true';
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL VARIABLES TO RUNTIME`, b.Host, b.Port, nativeHash("test", false)))
	denied := func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1045
	}
	// Clear stored password: fast auth, no TLS, no RSA.
	if err := ping(t, s.DataPort, "sbtest", "sbtest", ""); err != nil {
		t.Fatalf("clear password, fast auth: %v", err)
	}
	if err := ping(t, s.DataPort, "sbtest", "nope", ""); !denied(err) {
		t.Fatalf("clear password, wrong scramble: %v", err)
	}
	// Native hash: full authentication needed. A client holding a wrong
	// server public key (serverPubKey) cannot do it — its RSA-encrypted
	// password does not decrypt — but it can do fast auth: it tells the
	// two apart.
	wrong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	mysql.RegisterServerPubKey("wrong", &wrong.PublicKey)
	t.Cleanup(func() { mysql.DeregisterServerPubKey("wrong") })
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); !denied(err) {
		t.Fatalf("hashed password, no cache entry, RSA with a wrong key: %v", err)
	} else {
		t.Logf("full auth needed, RSA with a wrong key: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "nope", ""); !denied(err) {
		t.Fatalf("RSA full auth, wrong password: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "test", ""); err != nil { // the driver asks for the key
		t.Fatalf("RSA full auth with the key the proxy sent: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); err != nil {
		t.Fatalf("fast auth after the RSA full auth (cache): %v", err)
	}
	if err := ping(t, s.DataPort, "root", "nope", "serverPubKey=wrong"); !denied(err) {
		t.Fatalf("cached user, wrong scramble: %v", err)
	}
	// The stored password changes (same password, upper-case hash): the
	// cache entry no longer applies; full auth over TLS fills it again.
	admin(t, s, fmt.Sprintf("UPDATE mysql_users SET password='%s' WHERE username='root'; LOAD MYSQL USERS TO RUNTIME", nativeHash("test", true)))
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); !denied(err) {
		t.Fatalf("a stale cache entry served a changed stored password: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "nope", "tls=skip-verify"); !denied(err) {
		t.Fatalf("TLS full auth, wrong password: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "test", "tls=skip-verify"); err != nil {
		t.Fatalf("TLS full auth: %v", err)
	}
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); err != nil {
		t.Fatalf("fast auth after the TLS full auth: %v", err)
	}
	// The mariadb CLI (Connector/C's caching_sha2_password plugin): full
	// auth over TLS after another change of the stored form, then fast auth
	// without TLS.
	admin(t, s, fmt.Sprintf("UPDATE mysql_users SET password='%s' WHERE username='root'; LOAD MYSQL USERS TO RUNTIME", nativeHash("test", false)))
	if out, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT CURRENT_USER()", "-N", "--ssl"); err != nil || !strings.HasPrefix(out, "root@") {
		t.Fatalf("mariadb --ssl, caching_sha2 full auth over TLS: %q %v", out, err)
	}
	if out, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT CURRENT_USER()", "-N", "--skip-ssl"); err != nil || !strings.HasPrefix(out, "root@") {
		t.Fatalf("mariadb --skip-ssl, caching_sha2 fast auth: %q %v", out, err)
	}
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); err != nil {
		t.Fatalf("fast auth after the CLI's full auth: %v", err)
	}
	// A client set to mysql_native_password answers the announced
	// caching_sha2_password with an empty native reply and waits for the
	// switch a server sends; a wrong password is still refused.
	if out, err := testenv.CLI(t, s.DataPort, "root", "test", "SELECT CURRENT_USER()", "-N", "--skip-ssl", "--default-auth=mysql_native_password"); err != nil || !strings.HasPrefix(out, "root@") {
		t.Fatalf("mariadb --default-auth=mysql_native_password: %q %v", out, err)
	}
	if out, err := testenv.CLI(t, s.DataPort, "root", "nope", "SELECT 1", "-N", "--skip-ssl", "--default-auth=mysql_native_password"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("mariadb --default-auth=mysql_native_password, wrong password: %q %v", out, err)
	}

	// MySQL 8's $A$005$ form, with PyMySQL (RSA without TLS, then fast auth).
	// Imported as ProxySQL's documentation says: UNHEX of MySQL's
	// HEX(authentication_string); the salt holds bytes a literal could not.
	var salt [20]byte
	copy(salt[:], "Sl'ice\x01sha2-salt-ab")
	admin(t, s, fmt.Sprintf("UPDATE mysql_users SET password=UNHEX('%s') WHERE username='root'; LOAD MYSQL USERS TO RUNTIME",
		hex.EncodeToString([]byte(wire.CachingSha2Hash([]byte("test"), salt[:])))))
	py := `import sys, pymysql
def login(pw):
    c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", password=pw, connect_timeout=10)
    cur = c.cursor(); cur.execute("SELECT CURRENT_USER()"); u = cur.fetchone()[0]
    c.close()
    return u
try:
    login("nope"); print("wrong password accepted"); sys.exit(1)
except pymysql.err.OperationalError as e:
    assert e.args[0] == 1045, e
print("rsa", login("test"))
print("fast", login("test"))`
	out, err := exec.Command("/usr/bin/python3", "-c", py, itoa(s.DataPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rsa root@") || !strings.Contains(string(out), "fast root@") {
		t.Fatalf("PyMySQL with a $A$005$ hash: %v\n%s", err, out)
	}
	t.Logf("PyMySQL, $A$005$ hash: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	if err := ping(t, s.DataPort, "root", "test", "serverPubKey=wrong"); err != nil {
		t.Fatalf("go-sql-driver fast auth after PyMySQL's RSA full auth: %v", err)
	}

	// Hashed by the admin's own functions, as ProxySQL 2.6+ documents.
	for _, fn := range []string{"CACHING_SHA2_PASSWORD('test')", "MYSQL_NATIVE_PASSWORD('test')"} {
		admin(t, s, "UPDATE mysql_users SET password="+fn+" WHERE username='root'; LOAD MYSQL USERS TO RUNTIME")
		out, err := exec.Command("/usr/bin/python3", "-c", py, itoa(s.DataPort)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fast root@") {
			t.Fatalf("PyMySQL with password=%s: %v\n%s", fn, err, out)
		}
	}
}

// TestClientCachingSha2HostileInput: a client in the middle of
// caching_sha2_password full authentication sends what no real client
// sends — an undecryptable RSA payload, an over-long reply, a clear
// password on a clear connection (refused unread), a key request then
// junk of the wrong size. Each gets ERR 1045, and the port keeps serving.
func TestClientCachingSha2HostileInput(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('root', '%s', 0);
SET mysql-default_authentication_plugin='caching_sha2_password';
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL VARIABLES TO RUNTIME`, b.Host, b.Port, nativeHash("test", false)))
	junk := func(n int) []byte {
		p := make([]byte, n)
		_, _ = rand.Read(p)
		return p
	}
	for _, c := range []struct {
		name    string
		askKey  bool
		payload []byte
	}{
		{"undecryptable RSA payload", true, junk(256)},
		{"RSA payload of the wrong size", true, junk(300)},
		{"over-long reply", false, junk(5000)},
		{"clear password without TLS", false, []byte("test\x00")},
	} {
		t.Run(c.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.DataPort), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			cc := wire.NewClientConn(nc)
			p, err := cc.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			hs, err := wire.ParseInitialHandshake(p)
			if err != nil || hs.AuthPlugin != wire.AuthCachingSha2 {
				t.Fatalf("handshake: %v %q", err, hs.AuthPlugin)
			}
			resp := &wire.HandshakeResponse{Capabilities: hs.Capabilities &^ wire.ClientSSL, MaxPacket: 1 << 24, Charset: 45,
				User: "root", AuthResponse: junk(32), AuthPlugin: wire.AuthCachingSha2}
			send := func(b []byte) {
				if err := cc.WritePacket(b); err != nil {
					t.Fatal(err)
				}
				if err := cc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			send(wire.AppendHandshakeResponse(nil, resp))
			if p, err = cc.ReadPacket(); err != nil || len(p) != 2 || p[0] != wire.HeaderMoreData || p[1] != wire.CachingSha2FullAuth {
				t.Fatalf("want perform-full-authentication, got %q %v", p, err)
			}
			if c.askKey {
				send([]byte{wire.CachingSha2RequestKey})
				if p, err = cc.ReadPacket(); err != nil || !strings.HasPrefix(string(p[1:]), "-----BEGIN PUBLIC KEY-----") {
					t.Fatalf("want the public key, got %q %v", p, err)
				}
			}
			send(c.payload)
			p, err = cc.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			e, err := wire.ParseERR(p)
			if err != nil || e.Code != 1045 {
				t.Fatalf("want ERR 1045, got %q %v", p, err)
			}
		})
	}
	if err := ping(t, s.DataPort, "root", "test", ""); err != nil {
		t.Fatalf("after the hostile clients: %v", err)
	}
}

// TestChangeUserCachingSha2: COM_CHANGE_USER under
// mysql-default_authentication_plugin=caching_sha2_password. The scramble
// of an auth switch becomes the connection's, as on a server: PHP's
// mysqlnd answers the next COM_CHANGE_USER with it, and the second
// change_user of a connection was refused (1045, connection closed). A
// user stored as a $A$ hash is checked with caching_sha2_password (fast
// auth once its cache is warm): a native scramble, all it was offered,
// can never match such a hash.
func TestChangeUserCachingSha2(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	backendSQL(t, b, `CREATE USER IF NOT EXISTS 'cu_clear'@'%' IDENTIFIED BY 'p1'; GRANT ALL ON *.* TO 'cu_clear'@'%';
		CREATE USER IF NOT EXISTS 'cu_sha2'@'%' IDENTIFIED BY 'p3'; GRANT ALL ON *.* TO 'cu_sha2'@'%';`)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('cu_clear', 'p1', 0), ('cu_sha2', CACHING_SHA2_PASSWORD('p3'), 0);
SET mysql-default_authentication_plugin='caching_sha2_password';
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME; LOAD MYSQL VARIABLES TO RUNTIME`, b.Host, b.Port))
	// A first login of the $A$ user: full authentication (RSA), which
	// fills the fast-auth cache and keeps what backend logins need.
	if err := ping(t, s.DataPort, "cu_sha2", "p3", ""); err != nil {
		t.Fatalf("a first login of the $A$ user: %v", err)
	}
	php := fmt.Sprintf(`<?php
mysqli_report(MYSQLI_REPORT_OFF);
$m = new mysqli("127.0.0.1", "cu_clear", "p1", "", %d);
foreach ([["cu_clear", "p1"], ["cu_clear", "p1"], ["cu_sha2", "p3"], ["cu_clear", "p1"], ["cu_sha2", "p3"]] as [$u, $p]) {
	$ok = $m->change_user($u, $p, null);
	$r = $ok ? $m->query("SELECT CURRENT_USER()") : false;
	echo $u, " ", $ok ? "ok " . explode("@", $r->fetch_row()[0])[0] : "failed " . $m->errno, "\n";
}
`, s.DataPort)
	out, err := runPHP(t, "changeuser_sha2.php", php)
	want := "cu_clear ok cu_clear\ncu_clear ok cu_clear\ncu_sha2 ok cu_sha2\ncu_clear ok cu_clear\ncu_sha2 ok cu_sha2\n"
	if err != nil || string(out) != want {
		t.Fatalf("PHP mysqli change_user under caching_sha2_password: %v\n%s\nwant:\n%s", err, out, want)
	}
}

// TestNativeClientSwitchedForSha2User: with the default
// mysql_native_password handshake, a user stored as a caching_sha2_password
// hash ($A$…) cannot be checked against the native scramble a client
// answers with: the client is switched to caching_sha2_password, as a
// MySQL 8 server switches to the account's plugin. It was refused (1045):
// MariaDB Connector/J 2.x and go-sql-driver could not log in as such users.
func TestNativeClientSwitchedForSha2User(t *testing.T) {
	b := testenv.Backends(t, 1)[0]
	backendSQL(t, b, `CREATE USER IF NOT EXISTS 'sw_sha2'@'%' IDENTIFIED BY 'p5'; GRANT ALL ON *.* TO 'sw_sha2'@'%';`)
	s := startFresh(t, "")
	admin(t, s, fmt.Sprintf(`INSERT INTO mysql_servers(hostgroup_id, hostname, port) VALUES (0, '%s', %d);
INSERT INTO mysql_users(username, password, default_hostgroup) VALUES ('sw_sha2', CACHING_SHA2_PASSWORD('p5'), 0);
LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL USERS TO RUNTIME;`, b.Host, b.Port))
	// Twice: full authentication (RSA key asked for), then fast auth.
	for i := range 2 {
		if err := ping(t, s.DataPort, "sw_sha2", "p5", ""); err != nil {
			t.Fatalf("login %d of a $A$ user with a native handshake: %v", i, err)
		}
	}
	if err := ping(t, s.DataPort, "sw_sha2", "wrong", ""); err == nil {
		t.Fatal("a wrong password logged in")
	}
}
