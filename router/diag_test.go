package router

import "testing"

func TestDiagOf(t *testing.T) {
	for q, want := range map[string]diagKind{
		"SHOW WARNINGS":                 diagShowWarnings,
		"show warnings limit 1":         diagShowWarnings,
		"SHOW WARNINGS LIMIT 0, 10;":    diagShowWarnings,
		"  SHOW ERRORS ":                diagShowErrors,
		"SHOW COUNT(*) WARNINGS":        diagCountWarnings,
		"SHOW COUNT(*)  errors":         diagCountErrors,
		"SELECT @@warning_count":        diagWarningCount,
		"select @@session.error_count":  diagErrorCount,
		"SELECT ROW_COUNT()":            diagRowCount,
		"SELECT FOUND_ROWS ( )":         diagNone,
		"SELECT FOUND_ROWS()":           diagFoundRows,
		"SHOW WARNINGSX":                diagNone,
		"SHOW WARNINGS LIMIT x":         diagNone,
		"SELECT @@":                     diagNone,
		"SELECT @@warning_count, 1":     diagNone,
		"SELECT c FROM sbtest1 WHERE 1": diagNone,
		"SHOW TABLES":                   diagNone,
	} {
		if got, _, _ := diagOf([]byte(q)); got != want {
			t.Errorf("diagOf(%q) = %d, want %d", q, got, want)
		}
	}
	if _, limit, _ := diagOf([]byte("SHOW WARNINGS LIMIT 2, 5")); limit != 0 {
		t.Errorf("LIMIT 2, 5 leaves the one row out: limit %d", limit)
	}
}

// FuzzDiagOf: any text a client sends is classified without a panic.
func FuzzDiagOf(f *testing.F) {
	for _, s := range []string{"SHOW WARNINGS LIMIT 1,2", "SELECT @@", "SHOW COUNT(*)", "SELECT ROW_COUNT", "SHOW ERRORS LIMIT ,", "SHOW WARNINGS LIMIT 99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		kind, limit, _ := diagOf(q)
		if kind == diagNone && limit != 0 {
			t.Fatalf("diagNone with limit %d", limit)
		}
	})
}
