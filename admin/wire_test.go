package admin

import (
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestOKLastInsertIDZero: every OK the admin sends carries last_insert_id 0,
// as ProxySQL 2.7's admin does (SQLite's last_insert_rowid() would be stale
// after a DELETE), while affected rows stay SQLite's.
func TestOKLastInsertIDZero(t *testing.T) {
	e := newEnv(t)
	adm := e.admin()
	for _, c := range []struct {
		q        string
		affected int64 // -1: not checked
	}{
		{"INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'a')", 1},
		{"INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'b')", 1},
		{"INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup) VALUES (5, 1, '^SELECT', 1)", 1},
		{"DELETE FROM mysql_servers WHERE hostname='a'", 1},
		{"UPDATE mysql_servers SET weight=7", 1},
		{"UPDATE mysql_servers SET weight=8 WHERE hostname='none'", 0},
		{"SET mysql-eventslog_format=2", 1},
		{"SET NAMES utf8mb4", 0},
		{"LOAD MYSQL SERVERS TO RUNTIME", -1},
		{"SAVE MYSQL SERVERS TO DISK", -1},
		{"LOAD MYSQL QUERY RULES TO RUNTIME", -1},
		{"PROXYSQL FLUSH LOGS", -1},
		{"INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (2, 'c')", 1},
	} {
		r := mustExec(t, adm, c.q)
		if id, err := r.LastInsertId(); err != nil || id != 0 {
			t.Errorf("%s: LastInsertId %d %v, want 0", c.q, id, err)
		}
		if n, err := r.RowsAffected(); err != nil || c.affected >= 0 && n != c.affected {
			t.Errorf("%s: RowsAffected %d %v, want %d", c.q, n, err, c.affected)
		}
	}
}

// TestHandshakeCapabilities: the admin offers what go-mysql's server
// offered it, without CLIENT_SESSION_TRACK and without
// CLIENT_DEPRECATE_EOF; CLIENT_SSL only with a TLS config. Each connection
// gets its own connection id.
func TestHandshakeCapabilities(t *testing.T) {
	e := newEnv(t)
	hello := func() *wire.InitialHandshake {
		nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		c := wire.NewConn(nc)
		defer c.Close()
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := wire.ParseInitialHandshake(p)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	hs := hello()
	if hs.Capabilities != adminCapabilities || hs.Capabilities&(wire.ClientSessionTrack|wire.ClientDeprecateEOF|wire.ClientSSL) != 0 {
		t.Errorf("capabilities %#x, want %#x", hs.Capabilities, adminCapabilities)
	}
	if hs.Charset != charsetUTF8 || hs.AuthPlugin != wire.AuthNativePassword || hs.ServerVersion != e.srv.serverVersion() ||
		len(hs.Salt) != wire.ScrambleLength {
		t.Errorf("handshake %+v", hs)
	}
	if hs2 := hello(); hs2.ConnID == hs.ConnID || hs.ConnID == 0 {
		t.Errorf("connection ids %d then %d", hs.ConnID, hs2.ConnID)
	}
}

// TestSSLRequestWithoutTLS: a client asking for TLS where none is
// configured gets an ERR, not a hang.
func TestSSLRequestWithoutTLS(t *testing.T) {
	e := newEnv(t)
	nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := wire.NewConn(nc)
	defer c.Close()
	if _, err := c.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	req := binary.LittleEndian.AppendUint32(nil, wire.ClientProtocol41|wire.ClientSecureConnection|wire.ClientSSL)
	req = binary.LittleEndian.AppendUint32(req, 1<<24)
	req = append(req, 33)
	req = append(req, make([]byte, 23)...)
	if err := c.WritePacket(req); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if e, err := wire.ParseERR(p); err != nil || e.Code != 1043 {
		t.Fatalf("got %q %v, want ERR 1043", p, err)
	}
}

// TestPreLoginAnnouncedPacket: a client that announces a 16 MiB handshake
// response and sends 100 bytes does not make the admin allocate 16 MiB.
func TestPreLoginAnnouncedPacket(t *testing.T) {
	e := newEnv(t)
	waitIdle := func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.srv.lmu.Lock()
			n := len(e.srv.conns)
			e.srv.lmu.Unlock()
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d admin connections still open", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	attack := func() {
		nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		if _, err := nc.Read(buf); err != nil { // the server's handshake
			t.Fatal(err)
		}
		msg := append([]byte{0xff, 0xff, 0xff, 1}, make([]byte, 100)...)
		if _, err := nc.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = nc.Close()
		waitIdle()
	}
	attack() // warm up pools and lazily built state
	const rounds = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range rounds {
		attack()
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<20 {
		t.Fatalf("%d bytes allocated for %d connections announcing 16 MiB", grew, rounds)
	}
}

// TestLargeQueryAfterLogin: the small pre-login payload limit is lifted
// once the client is logged in.
func TestLargeQueryAfterLogin(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 200_000)
	if got := scalar(t, e.admin(), "SELECT '"+long+"'"); got != long {
		t.Fatalf("got %d bytes back, want %d", len(got), len(long))
	}
}
