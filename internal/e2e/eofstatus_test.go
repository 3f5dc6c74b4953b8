package e2e

import (
	"encoding/binary"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// metaEOFs sends payload and reads its whole response as a client without
// CLIENT_DEPRECATE_EOF: the status of the EOF after each result set's
// column definitions, in order.
func (m *metaClient) metaEOFs(payload []byte) []uint16 {
	m.t.Helper()
	m.send(payload)
	var metas []uint16
	for {
		p := m.read()
		if wire.IsOK(p) {
			ok, err := wire.ParseOK(p)
			if err != nil {
				m.t.Fatal(err)
			}
			if ok.Status&wire.StatusMoreResultsExists == 0 {
				return metas
			}
			continue
		}
		n, _, _, _ := wire.ReadLenEncInt(p)
		for range n {
			m.read()
		}
		_, st, ok := wire.ParseEOF(m.read())
		if !ok {
			m.t.Fatal("no EOF after the column definitions")
		}
		metas = append(metas, st)
		for {
			r := m.read()
			if wire.IsEOF(r) {
				_, st, _ = wire.ParseEOF(r)
				break
			}
		}
		if st&wire.StatusMoreResultsExists == 0 {
			return metas
		}
	}
}

// TestEOFStatusForClassicClients: clients without CLIENT_DEPRECATE_EOF
// (libmariadb under DBD::mysql and C programs, PHP's mysqlnd) read
// SERVER_MORE_RESULTS_EXISTS and SERVER_PS_OUT_PARAMS from the EOF after a
// result set's column definitions. The proxy's servers drop that EOF
// (CLIENT_DEPRECATE_EOF towards them), and the one it writes carried only
// the session's status: DBD::mysql after a prepared CALL got "Commands out
// of sync", PHP's more_results() said false in the middle of a CALL. The
// EOFs now carry what the server's carry, for a result set larger than
// the proxy's read buffer too.
func TestEOFStatusForClassicClients(t *testing.T) {
	s, b := multiplexSetup(t, 10, "")
	root := testenv.DB(t, b.Port, "root", "test", "", "")
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS eofst",
		"CREATE OR REPLACE TABLE eofst.t (id INT PRIMARY KEY, v VARCHAR(100))",
		"INSERT INTO eofst.t SELECT seq, REPEAT('x', 100) FROM eofst.seq_1_to_400", // 40 KB: more than a read buffer
		"CREATE OR REPLACE PROCEDURE eofst.p_multi() BEGIN SELECT 1 AS a; SELECT id, v FROM eofst.t ORDER BY id; SELECT 2 AS c; END",
		"CREATE OR REPLACE PROCEDURE eofst.p_out(IN a INT, OUT b INT) BEGIN SET b = a * 2; SELECT a AS in_a; END",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// An execute of a statement with two INT parameters.
	exec := func(id uint32) []byte {
		p := []byte{wire.ComStmtExecute}
		p = binary.LittleEndian.AppendUint32(p, id)
		p = append(p, 0, 1, 0, 0, 0, 0, 1, byte(wire.TypeLongLong), 0, byte(wire.TypeLongLong), 0)
		p = binary.LittleEndian.AppendUint64(p, 5)
		return binary.LittleEndian.AppendUint64(p, 0)
	}
	const mask = wire.StatusMoreResultsExists | wire.StatusPSOutParams | wire.StatusInTrans | wire.StatusAutocommit
	statuses := func(port int) (text, prep []uint16) {
		m, _ := metaLogin(t, port, false, false)
		defer m.c.Close()
		text = m.metaEOFs([]byte("\x03CALL eofst.p_multi()"))
		id, _ := m.prepare("CALL eofst.p_out(?, ?)")
		prep = m.metaEOFs(exec(id))
		for i := range text {
			text[i] &= mask
		}
		for i := range prep {
			prep[i] &= mask
		}
		return text, prep
	}
	dText, dPrep := statuses(b.Port)
	pText, pPrep := statuses(s.DataPort)
	more, out := wire.StatusMoreResultsExists, wire.StatusPSOutParams
	if len(dText) != 3 || len(dPrep) != 2 || dText[0]&more == 0 || dText[1]&more == 0 || dPrep[1]&out == 0 {
		t.Fatalf("the server's own EOFs are not what this test knows: text %x, prepared %x", dText, dPrep)
	}
	if len(pText) != len(dText) || len(pPrep) != len(dPrep) {
		t.Fatalf("result sets through the proxy: text %x, prepared %x; direct %x, %x", pText, pPrep, dText, dPrep)
	}
	for i := range dText {
		if pText[i] != dText[i] {
			t.Errorf("CALL p_multi() result set %d: EOF status %#x through the proxy, %#x direct", i, pText[i], dText[i])
		}
	}
	for i := range dPrep {
		if pPrep[i] != dPrep[i] {
			t.Errorf("prepared CALL p_out(?, ?) result set %d: EOF status %#x through the proxy, %#x direct", i, pPrep[i], dPrep[i])
		}
	}
	t.Logf("EOF statuses after the definitions (masked): text %x, prepared %x, as direct", pText, pPrep)
}

// TestSetOptionReply: COM_SET_OPTION is answered as the server answers it
// in each EOF dialect (under CLIENT_DEPRECATE_EOF an OK with the 0xFE
// header, not the 5-byte EOF), byte for byte.
func TestSetOptionReply(t *testing.T) {
	s, b := multiplexSetup(t, 4, "")
	for _, depr := range []bool{false, true} {
		var got [2][]byte
		for i, port := range []int{s.DataPort, b.Port} {
			m, _ := metaLogin(t, port, depr, false)
			m.send([]byte{wire.ComSetOption, 0, 0})
			got[i] = m.read()
			m.c.Close()
		}
		if string(got[0]) != string(got[1]) {
			t.Errorf("CLIENT_DEPRECATE_EOF %v: COM_SET_OPTION answered % x through the proxy, % x directly", depr, got[0], got[1])
		}
	}
}
