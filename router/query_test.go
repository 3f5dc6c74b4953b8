package router

import "testing"

func TestReleasesSession(t *testing.T) {
	for q, want := range map[string]bool{
		"COMMIT RELEASE":                 true,
		"commit work release;":           true,
		"ROLLBACK AND NO CHAIN RELEASE":  true,
		"COMMIT NO RELEASE":              false,
		"ROLLBACK AND CHAIN NO RELEASE ": false,
		"COMMIT":                         false,
		"RELEASE SAVEPOINT a":            false,
		"SELECT 'COMMIT RELEASE'":        false,
		"ROLLBACK TO SAVEPOINT release":  false,
	} {
		if got := releasesSession([]byte(q)); got != want {
			t.Errorf("releasesSession(%q) = %v, want %v", q, got, want)
		}
	}
}
