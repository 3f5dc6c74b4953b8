package router

import (
	"bytes"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// FuzzClientText: the statement texts the session reads itself before
// (or instead of) a backend — KILL, USE, PREPARE/EXECUTE/DEALLOCATE
// names, the queries answered locally — whatever a client sends. No
// panic; what parses re-parses from its canonical form to the same value.
func FuzzClientText(f *testing.F) {
	for _, s := range []string{
		"KILL 42", "kill query 7;", "KILL CONNECTION 18446744073709551615", "KILL QUERY -1",
		"KILL HARD QUERY 5", "kill soft 6", "KILL /*c*/ QUERY 8", "KILL QUERY ID 9", "KILL USER bob", "KILL -- x\n 4",
		"USE shop", "use `we``ird db`;", "USE\t`x`", "USE a b",
		"PREPARE s1 FROM 'SELECT 1'", "EXECUTE `S``2` USING @a", "DEALLOCATE PREPARE s1", "DROP PREPARE `x`;",
		"select @@version_comment limit 1", "SELECT CONNECTION_ID();", "SHOW WARNINGS LIMIT 1",
		"PROXYSQL INTERNAL SESSION", "proxysql internal session;",
		"GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT", "get current diagnostics condition @n @`m x` = MESSAGE_TEXT, @'e' = mysql_errno;",
		"GET DIAGNOSTICS CONDITION 1 @a = RETURNED_SQLSTATE", "GET DIAGNOSTICS x = NUMBER",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		if id, query, ok := parseKill(q); ok {
			canon := "KILL " + strconv.FormatUint(id, 10)
			if query {
				canon = "KILL QUERY " + strconv.FormatUint(id, 10)
			}
			id2, query2, ok2 := parseKill([]byte(canon))
			if !ok2 || id2 != id || query2 != query {
				t.Fatalf("KILL %q: %d %v, canonical %q gives %d %v %v", q, id, query, canon, id2, query2, ok2)
			}
		}
		if db, ok := parseUse(q); ok {
			if len(db) == 0 || len(db) > len(q) {
				t.Fatalf("USE %q: schema %q", q, db)
			}
			canon := "USE `" + strings.ReplaceAll(db, "`", "``") + "`"
			if db2, ok2 := parseUse([]byte(canon)); !ok2 || db2 != db {
				t.Fatalf("USE %q: %q, canonical %q gives %q %v", q, db, canon, db2, ok2)
			}
		}
		for _, kw := range []string{"PREPARE", "EXECUTE"} {
			if name, ok := preparedName(q, kw); ok {
				if hasUpperASCII(name) || len(name) > len(q) {
					t.Fatalf("%s %q: name %q", kw, q, name)
				}
			}
		}
		if name, ok := deallocatedName(q); ok && (hasUpperASCII(name) || len(name) > len(q)) {
			t.Fatalf("DEALLOCATE %q: name %q", q, name)
		}
		_, _ = localQuery(q)
		_ = localStmt(q)
		if isInternalCommand(q) && !bytes.Equal(bytes.ToUpper(q[:len(internalPrefix)]), []byte(internalPrefix)) {
			t.Fatalf("%q taken for a PROXYSQL INTERNAL command", q)
		}
		for _, k := range []sqlscan.StmtKind{sqlscan.KindShow, sqlscan.KindSelect, sqlscan.KindUnknown} {
			_ = readsDiagnostics(k, q)
		}
		// GET DIAGNOSTICS read as the SET of its variables: one SET of
		// user variables, or nothing.
		ds := &session{rowCount: -1, diagErr: &wire.SQLError{Code: 1146, State: "42S02", Message: "it's"}}
		if set, ok := ds.diagnosticsAsSet(q); ok && (!bytes.HasPrefix(set, []byte("SET @")) || bytes.Contains(set, []byte("it's"))) {
			t.Fatalf("GET DIAGNOSTICS %q read as %q", q, set)
		}
	})
}

// FuzzStmtLongData: COM_STMT_SEND_LONG_DATA and COM_STMT_EXECUTE packets
// of any bytes against a client statement with n parameters. The long
// data kept never exceeds what the client sent, nor max_allowed_packet for
// one parameter, nor names a parameter the statement lacks; the EXECUTE rewrite
// answers an error or a packet at least as long as the client's.
func FuzzStmtLongData(f *testing.F) {
	long := append([]byte{wire.ComStmtSendLongData, 1, 0, 0, 0, 0, 0}, "a long blob chunk"...)
	exec := []byte{wire.ComStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0xfc, 0, 0}
	f.Add(long, exec, uint8(1))
	f.Add([]byte{wire.ComStmtSendLongData, 1, 0, 0, 0, 0xff, 0xff}, exec[:11], uint8(9))
	f.Add([]byte{wire.ComStmtSendLongData, 2, 0, 0, 0}, []byte{wire.ComStmtExecute}, uint8(0))
	f.Fuzz(func(t *testing.T, longData, execute []byte, params uint8) {
		cs := &clientStmt{g: &globalStmt{numParams: uint16(params)}}
		s := &session{}
		s.stmts.m = map[uint32]*clientStmt{1: cs}
		const maxPacket = 64 // small, so that the bound is reached
		s.comStmtSendLongData(longData, maxPacket)
		s.comStmtSendLongData(longData, maxPacket)
		kept := 0
		for param, chunks := range cs.longData {
			one := 0
			for _, c := range chunks {
				one += len(c)
			}
			if param >= int(params) || one > maxPacket {
				t.Fatalf("kept %d bytes for parameter %d of %d (bound %d)", one, param, params, maxPacket)
			}
			kept += one
		}
		if cs.longData != nil && cs.longDataErr != nil {
			t.Fatalf("long data kept after an error")
		}
		if kept > 2*len(longData) {
			t.Fatalf("kept %d bytes of long data from 2 × %d", kept, len(longData))
		}
		if cs.longData != nil && !bytes.Equal(cs.longData[int(longData[5])|int(longData[6])<<8][0], longData[7:]) {
			t.Fatalf("long data chunk differs from the packet's")
		}
		for range 2 {
			out, e := cs.rewriteExecute(nil, execute)
			if e == nil && len(out) < len(execute) {
				t.Fatalf("rewritten EXECUTE shorter than the client's")
			}
		}
	})
}

func hasUpperASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) >= 0
}

// TestParseKillForms: MariaDB's KILL [HARD | SOFT] [CONNECTION | QUERY] n,
// with comments anywhere, is the proxy's KILL (it used to reach a backend,
// which had never seen the proxy's id: 1094); KILL QUERY ID and KILL USER
// are the server's.
func TestParseKillForms(t *testing.T) {
	for q, want := range map[string]struct {
		id    uint64
		query bool
		ok    bool
	}{
		"KILL 42":                      {42, false, true},
		"kill query 7;":                {7, true, true},
		"KILL HARD QUERY 5":            {5, true, true},
		"KILL SOFT CONNECTION 6":       {6, false, true},
		"kill soft 6":                  {6, false, true},
		"KILL /*c*/ QUERY 8":           {8, true, true},
		"KILL/*c*/QUERY/*d*/8 ;":       {8, true, true},
		"KILL -- note\n QUERY 3":       {3, true, true},
		"KILL # note\n 3":              {3, false, true},
		"KILL QUERY ID 9":              {0, false, false},
		"KILL USER bob":                {0, false, false},
		"KILL HARD":                    {0, false, false},
		"KILL CONNECTION QUERY 1":      {0, false, false},
		"KILL 1 2":                     {0, false, false},
		"KILL /* unterminated QUERY 1": {0, false, false},
		"KILL (42)":                    {42, false, true},
		"KILL QUERY (7);":              {7, true, true},
		"KILL 42+0":                    {0, false, false},
	} {
		id, query, ok := parseKill([]byte(q))
		if ok != want.ok || (ok && (id != want.id || query != want.query)) {
			t.Errorf("parseKill(%q) = %d %v %v, want %d %v %v", q, id, query, ok, want.id, want.query, want.ok)
		}
	}
}

// TestConnectionIDSpellings: SELECT CONNECTION_ID() in any spelling is the
// proxy's to answer, with the column name the server would give.
func TestConnectionIDSpellings(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT CONNECTION_ID()":                 "CONNECTION_ID()",
		"select  connection_id();":               "connection_id()",
		"/* c */ SELECT CONNECTION_ID()":         "CONNECTION_ID()",
		"SELECT connection_id ( )":               "connection_id()",
		"SELECT CONNECTION_ID() AS id":           "id",
		"SELECT CONNECTION_ID() `my id`":         "",
		"SELECT CONNECTION_ID() AS `cid`":        "cid",
		"SELECT CONNECTION_ID() cid":             "cid",
		"SELECT CONNECTION_ID(), 1":              "",
		"SELECT CONNECTION_ID() FROM t":          "",
		"SELECT CONNECTION_ID() + 1":             "",
		"SELECT 1":                               "",
		"SELECT CONNECTION_ID() AS":              "",
		"SELECT CONNECTION_ID() AS a b":          "",
		"SELECT /*x*/ CONNECTION_ID() -- note\n": "CONNECTION_ID()",
	} {
		col, ok := connectionIDQuery([]byte(q))
		if ok != (want != "") || col != want {
			t.Errorf("connectionIDQuery(%q) = %q %v, want %q", q, col, ok, want)
		}
	}
}

// TestWellFormedPrepare: which failed PREPAREs the server parsed (and so
// deallocated the name's old statement first).
func TestWellFormedPrepare(t *testing.T) {
	for q, want := range map[string]bool{
		"PREPARE s FROM 'SELEC bad'":         true,
		"PREPARE s FROM 'select 43' garbage": false,
		"PREPARE s FROM @q":                  true,
		"PREPARE s FROM 'it''s' ;":           true,
		`PREPARE s FROM "a\"b"`:              true,
		"PREPARE s FROM 'unterminated":       false,
		"PREPARE s FROM select 1":            false,
		"PREPARE s 'x'":                      false,
		"PREPARE `my s` FROM 'SELECT 1' 'x'": false,
		"prepare s from 'SELECT ? + 1';\n":   true,
	} {
		if got := wellFormedPrepare([]byte(q), 0); got != want {
			t.Errorf("wellFormedPrepare(%q) = %v, want %v", q, got, want)
		}
	}
}
