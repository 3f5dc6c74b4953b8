package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestGarbageClients throws malformed input at both ports — random bytes,
// truncated and oversized packet headers, a half-written handshake, bogus
// commands after a real login — and checks that sluice stays up and keeps
// serving well-behaved clients on both ports.
func TestGarbageClients(t *testing.T) {
	s, _ := multiplexSetup(t, 10, "")
	payloads := [][]byte{
		{},
		{0x01},
		{0xff, 0xff, 0xff, 0x00},             // a 16 MiB packet header, then nothing
		{0xff, 0xff, 0xff, 0x00, 0x03, 'x'},  // oversized and short
		{0x05, 0x00, 0x00, 0x07, 1, 2, 3},    // wrong sequence id
		{0x20, 0x00, 0x00, 0x01, 0x85, 0xa2}, // truncated handshake response
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		b := make([]byte, 1+rng.IntN(300))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		payloads = append(payloads, b)
	}
	var wg sync.WaitGroup
	for _, port := range []int{s.AdminPort, s.DataPort} {
		for _, p := range payloads {
			wg.Add(1)
			go func(port int, p []byte) {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addrOf(port), 2*time.Second)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				buf := make([]byte, 512)
				c.Read(buf) // the server greeting
				c.Write(p)
				c.Read(buf)
			}(port, p)
		}
	}
	wg.Wait()

	// Logged in for real, then nonsense commands: each gets an ERR (or, for
	// the commands that have no response, nothing), and the session
	// survives and still answers a query.
	c := wireLogin(t, s.DataPort, "sbtest", "sbtest")
	for _, cmd := range [][]byte{
		{0x99},                                // no such command
		{wire.ComStmtExecute, 9, 9, 9, 9, 0},  // unknown statement id
		{wire.ComStmtExecute, 1},              // truncated
		{wire.ComStmtFetch, 1, 0, 0, 0, 1, 0}, // fetch without a cursor
		{wire.ComStmtReset, 7, 0, 0, 0},       // unknown statement
		{wire.ComFieldList},                   // no table name
		{wire.ComSetOption, 7, 0},             // bad option
		{wire.ComChangeUser},                  // truncated change user
		{wire.ComQuery},                       // empty query
		append([]byte{wire.ComQuery}, ";"...), // a lone semicolon
	} {
		c.ResetSeq()
		if err := c.WritePacket(cmd); err != nil {
			t.Fatal(err)
		}
		c.Flush()
		p, err := c.ReadPacket()
		if err != nil {
			if cmd[0] == wire.ComChangeUser {
				break // a malformed COM_CHANGE_USER may end the session
			}
			t.Fatalf("command %x: %v", cmd, err)
		}
		if !wire.IsERR(p) && !wire.IsEOF(p) && !wire.IsOK(p) {
			t.Fatalf("command %x: unexpected answer %q", cmd, p)
		}
	}
	out, err := testenv.CLI(t, s.DataPort, "sbtest", "sbtest", "SELECT 1", "-N")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("data port after garbage: %q %v", out, err)
	}
	if out := admin(t, s, "SELECT COUNT(*) FROM mysql_users"); strings.TrimSpace(out) != "2" {
		t.Fatalf("admin port after garbage: %q", out)
	}
	if exited, err := s.Exited(0); exited {
		t.Fatalf("sluice exited: %v\n%s", err, s.Output())
	}
}

func addrOf(port int) string { return net.JoinHostPort("127.0.0.1", itoa(port)) }

// wireLogin logs in to the data port with the packet helpers, for tests that
// must send what no client library would.
func wireLogin(t *testing.T, port int, user, password string) *wire.Conn {
	c, _ := wireLoginSalt(t, port, user, password)
	return c
}

// wireLoginSalt is wireLogin that also returns the handshake salt (which
// COM_CHANGE_USER scrambles with).
func wireLoginSalt(t *testing.T, port int, user, password string) (*wire.Conn, []byte) {
	t.Helper()
	c, hs := wireGreeting(t, port, 30*time.Second)
	resp := &wire.HandshakeResponse{
		Capabilities: wire.ClientProtocol41 | wire.ClientSecureConnection | wire.ClientPluginAuth | wire.ClientTransactions,
		MaxPacket:    1 << 24, Charset: 33, User: user,
		AuthResponse: wire.NativeScramble(hs.Salt, []byte(password)), AuthPlugin: "mysql_native_password",
	}
	c.WritePacket(wire.AppendHandshakeResponse(nil, resp))
	c.Flush()
	if p, err := c.ReadPacket(); err != nil || !wire.IsOK(p) {
		t.Fatalf("login: %v %q", err, p)
	}
	return c, hs.Salt
}

// wireGreeting connects to port (the connection bounded by deadline, closed
// at the end of the test) and reads the server's handshake.
func wireGreeting(t *testing.T, port int, deadline time.Duration) (*wire.Conn, *wire.InitialHandshake) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addrOf(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(deadline))
	c := wire.NewConn(nc)
	t.Cleanup(func() { c.Close() })
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := wire.ParseInitialHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	return c, hs
}

// TestPacketsOutOfOrder: a command packet with the wrong sequence id gets
// MariaDB's ERR 1156 "Got packets out of order", then the connection
// closes, as on a server (it used to close without a word).
func TestPacketsOutOfOrder(t *testing.T) {
	s, _ := multiplexSetup(t, 4, "")
	c := sbtestConn(t, s.DataPort)
	c.Sequence = 5
	if err := c.WritePacket(append([]byte{0, 0, 0, 0, mysql.COM_QUERY}, "SELECT 1"...)); err != nil {
		t.Fatal(err)
	}
	data, err := c.ReadPacket()
	if err != nil || len(data) < 3 || data[0] != mysql.ERR_HEADER || data[1] != 0x84 || data[2] != 0x04 {
		t.Fatalf("COM_QUERY with sequence 5: %x %v, want ERR 1156", data, err)
	}
	if !strings.Contains(string(data), "Got packets out of order") {
		t.Fatalf("ERR %q", data)
	}
}

// TestUnknownStatementNamesCommand: an unknown statement id gets ERR 1243
// naming the command as MariaDB names it (mysqld_stmt_reset,
// mysqld_stmt_fetch), and an unknown command MariaDB's 1047, through
// Sluice as directly.
func TestUnknownStatementNamesCommand(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	for _, pkt := range [][]byte{
		{mysql.COM_STMT_RESET, 0xe7, 0x03, 0, 0},
		{mysql.COM_STMT_FETCH, 0xe7, 0x03, 0, 0, 1, 0, 0, 0},
		{mysql.COM_STMT_EXECUTE, 0xe7, 0x03, 0, 0, 0, 1, 0, 0, 0},
		{0x99}, // no such command: MariaDB's 1047 word for word
	} {
		send := func(uint32) []byte { return pkt }
		if got, want := firstAnswer(t, s.DataPort, "", send), firstAnswer(t, b.Port, "", send); got != want {
			t.Errorf("command %d, unknown id: through Sluice %q, directly %q", pkt[0], got, want)
		}
	}
	// A fetch from a statement without a cursor: 1421 names the statement,
	// each side its own id.
	for _, port := range []int{s.DataPort, b.Port} {
		var id uint32
		got := firstAnswer(t, port, "SELECT 1", func(i uint32) []byte {
			id = i
			return []byte{mysql.COM_STMT_FETCH, byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), 1, 0, 0, 0}
		})
		if want := fmt.Sprintf("The statement (%d) has no open cursor", id); !strings.HasSuffix(got, want) {
			t.Errorf("port %d: fetch without a cursor: %q, want the ERR %q", port, got, want)
		}
	}
}

// TestMalformedExecute: a COM_STMT_EXECUTE cut short, or without the
// parameter types the server has never been sent, gets the server's answer,
// through Sluice as directly.
func TestMalformedExecute(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	answer := func(port int, exec []byte) string {
		t.Helper()
		data := firstAnswer(t, port, "SELECT ?, ?", func(id uint32) []byte {
			return append([]byte{mysql.COM_STMT_EXECUTE, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}, exec...)
		})
		if len(data) > 0 && data[0] != mysql.ERR_HEADER {
			return "not an error"
		}
		return data
	}
	for name, exec := range map[string][]byte{
		"no null bitmap":   {0, 1, 0, 0, 0},
		"types cut short":  {0, 1, 0, 0, 0, 0, 1, 8, 0},
		"types never sent": {0, 1, 0, 0, 0, 0, 0},
	} {
		if got, want := answer(s.DataPort, exec), answer(b.Port, exec); got != want {
			t.Errorf("%s: through Sluice %q, directly %q", name, got, want)
		}
	}
}

// firstAnswer logs in to port as sbtest, prepares prepare (when not ""),
// sends the command packet cmd makes from the statement's id, and returns
// the first packet of the answer.
func firstAnswer(t *testing.T, port int, prepare string, cmd func(id uint32) []byte) string {
	t.Helper()
	c := sbtestConn(t, port)
	defer c.Close()
	var id uint32
	if prepare != "" {
		st, err := c.Prepare(prepare)
		if err != nil {
			t.Fatal(err)
		}
		id = st.ID
	}
	c.ResetSequence()
	if err := c.WritePacket(append([]byte{0, 0, 0, 0}, cmd(id)...)); err != nil {
		t.Fatal(err)
	}
	data, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
