package router

import (
	"testing"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// TestDiagnosticsAsSet: GET DIAGNOSTICS read as the SET of its variables
// from the session's record of its previous statement.
func TestDiagnosticsAsSet(t *testing.T) {
	dup := &wire.SQLError{Code: 1062, State: "23000", Message: "Duplicate entry '1' for key 'PRIMARY'"}
	for _, c := range []struct {
		err      *wire.SQLError
		warnings uint16
		rows     int64
		q, want  string
	}{
		{nil, 0, 3, "GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT", "SET @n = 0, @r = 3"},
		{nil, 2, -1, "get current diagnostics @`n x`=number;", "SET @`n x` = 2"},
		{dup, 0, -1, "GET DIAGNOSTICS CONDITION 1 @e = MYSQL_ERRNO, @s = RETURNED_SQLSTATE, @o = CLASS_ORIGIN, @w = ROW_NUMBER",
			"SET @e = IF((1) = 1, 1062, NULL), @s = IF((1) = 1, CONVERT(X'3233303030' USING utf8mb4), NULL), @o = IF((1) = 1, '', NULL), @w = IF((1) = 1, 0, NULL)"},
		{nil, 0, 0, "GET DIAGNOSTICS CONDITION @k @'m' = MESSAGE_TEXT", "SET @'m' = NULL"},
		{dup, 0, -1, "GET DIAGNOSTICS CONDITION @k @m = MESSAGE_TEXT",
			"SET @m = IF((@k) = 1, CONVERT(X'4475706c696361746520656e7472792027312720666f72206b657920275052494d41525927' USING utf8mb4), NULL)"},
		// Not read: to the server as written.
		{dup, 0, -1, "GET DIAGNOSTICS x = NUMBER", ""},
		{dup, 0, -1, "GET DIAGNOSTICS CONDITION 1 @x = NUMBER", ""},
		{dup, 0, -1, "GET DIAGNOSTICS @x = MESSAGE_TEXT", ""},
		{dup, 0, -1, "GET STACKED DIAGNOSTICS @x = NUMBER", ""},
		{dup, 0, -1, "GET DIAGNOSTICS /* c */ @x = NUMBER", ""},
		{dup, 0, -1, "GET DIAGNOSTICS @x = NUMBER; SELECT 1", ""},
		{dup, 0, -1, "GET DIAGNOSTICS CONDITION 1+1 @x = MESSAGE_TEXT", ""},
	} {
		s := &session{diagErr: c.err, diagWarnings: c.warnings, rowCount: c.rows}
		got, ok := s.diagnosticsAsSet([]byte(c.q))
		if c.want == "" {
			if ok {
				t.Errorf("%q read as %q, want it left to the server", c.q, got)
			}
			continue
		}
		if !ok || string(got) != c.want {
			t.Errorf("%q: %q %v, want %q", c.q, got, ok, c.want)
		}
		if k, _, _ := diagOf([]byte(c.q)); k != diagGet {
			t.Errorf("%q classified %d, want diagGet", c.q, k)
		}
	}
}
