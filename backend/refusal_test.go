package backend

import (
	"bytes"
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestRefusalHeld: a response that is nothing but a server's refusal to
// serve (Galera's 1047 WSREP, 1053 shutdown) is kept from the client when
// the sink's Hold covers it, so the command can be retried elsewhere; any
// other ERR, a refusal the Hold does not cover, and an ERR after a result
// of a multi-statement reach the client as they are.
func TestRefusalHeld(t *testing.T) {
	wsrep := wire.AppendERR(nil, 1047, "08S01", "WSREP has not yet prepared node for application use")
	unknownCmd := wire.AppendERR(nil, 1047, "08S01", "Unknown command")
	shutdown := wire.AppendERR(nil, 1053, "08S01", "Server shutdown in progress")
	noTable := wire.AppendERR(nil, 1146, "42S02", "Table 't.x' doesn't exist")
	okMore := wire.AppendOKTerminator(nil, 0, 0, wire.StatusAutocommit|wire.StatusMoreResultsExists, 0)
	okMore[0] = wire.HeaderOK
	for _, c := range []struct {
		name string
		pkts [][]byte
		hold Hold
		held bool
	}{
		{"wsrep, hold not run", [][]byte{wsrep}, HoldNotRun, true},
		{"wsrep, hold any", [][]byte{wsrep}, HoldAny, true},
		{"wsrep, hold none", [][]byte{wsrep}, HoldNone, false},
		{"unknown command", [][]byte{unknownCmd}, HoldAny, false},
		{"shutdown, hold not run", [][]byte{shutdown}, HoldNotRun, false},
		{"shutdown, hold any", [][]byte{shutdown}, HoldAny, true},
		{"a statement's error", [][]byte{noTable}, HoldAny, false},
		{"after an OK of a multi-statement", [][]byte{okMore, wsrep}, HoldAny, false},
	} {
		var srv []byte
		for i, p := range c.pkts {
			srv = append(srv, packet(byte(i+1), p...)...)
		}
		bc := &BackendConn{w: wire.NewConn(&recConn{byteConn: byteConn{r: bytes.NewReader(srv)}}), srv: &Server{addr: "refusal"}}
		cl := &recConn{byteConn: byteConn{r: bytes.NewReader(nil)}}
		sink := Sink{Client: wire.NewConn(cl), DeprecateEOF: true, Hold: c.hold}
		res, err := bc.Run([]byte{wire.ComQuery, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'}, ShapeResult, &sink)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := payloads(t, cl.w.Bytes())
		if c.held {
			if res.Refused == nil || res.Err != nil || res.Started() || len(got) != 0 {
				t.Errorf("%s: Refused=%v Err=%v, client got %d packets; want the refusal held and nothing sent", c.name, res.Refused, res.Err, len(got))
			}
			continue
		}
		if res.Refused != nil || res.Err == nil || len(got) != len(c.pkts) || !bytes.Equal(got[len(got)-1], c.pkts[len(c.pkts)-1]) {
			t.Errorf("%s: Refused=%v Err=%v, client got %d packets; want the ERR passed on", c.name, res.Refused, res.Err, len(got))
		}
	}
}
