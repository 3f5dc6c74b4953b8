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
		if got := releasesSession([]byte(q), false); got != want {
			t.Errorf("releasesSession(%q) = %v, want %v", q, got, want)
		}
	}
	// completion_type=RELEASE: a plain COMMIT or ROLLBACK releases too.
	for q, want := range map[string]bool{
		"COMMIT":                    true,
		"ROLLBACK WORK":             true,
		"COMMIT AND NO CHAIN":       true,
		"COMMIT AND CHAIN":          false,
		"COMMIT NO RELEASE":         false,
		"ROLLBACK TO SAVEPOINT sp1": false,
	} {
		if got := releasesSession([]byte(q), true); got != want {
			t.Errorf("releasesSession(%q) under completion_type=RELEASE = %v, want %v", q, got, want)
		}
	}
}

func TestParseUse(t *testing.T) {
	for q, want := range map[string]string{
		"USE db":                  "db",
		"use\ndb;":                "db",
		"USE `my``db`":            "my`db",
		"USE`db`":                 "db",
		"/* c */ USE mysql":       "mysql",
		"USE mysql /* c */":       "mysql",
		"USE /* c */ mysql":       "mysql",
		"USE mysql -- c":          "mysql",
		"USE mysql#c":             "mysql",
		"USE mysql; ;":            "mysql",
		"-- c\nUSE db\n# d":       "db",
		"USE":                     "",
		"USEdb":                   "",
		"USE ``":                  "",
		"USE a b":                 "",
		"USE /*!40101 a */":       "",
		"/*M!100000 USE a */":     "",
		"USE \"db\"":              "",
		"USE db /* unterminated ": "",
		"USE `db":                 "",
	} {
		got, ok := parseUse([]byte(q))
		if ok != (want != "") || got != want {
			t.Errorf("parseUse(%q) = %q %v, want %q", q, got, ok, want)
		}
	}
}

func TestHandlerVerb(t *testing.T) {
	for q, want := range map[string]string{
		"HANDLER t OPEN":              "OPEN",
		"HANDLER t OPEN AS h":         "OPEN",
		"HANDLER db.t open h":         "OPEN",
		"HANDLER `a b` CLOSE":         "CLOSE",
		"HANDLER `db`.`t` READ FIRST": "READ",
		"HANDLER h CLOSE;":            "CLOSE",
		"HANDLER ":                    "",
	} {
		if got := handlerVerb([]byte(q)); got != want {
			t.Errorf("handlerVerb(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestRewriteExecuteNullsWithoutTypes(t *testing.T) {
	cs := &clientStmt{g: &globalStmt{numParams: 2}}
	exec := func(bitmap byte) []byte {
		return []byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, bitmap, 0}
	}
	// No EXECUTE sent the types yet: every parameter NULL runs, as on a
	// server; any other is MariaDB's 1210.
	if out, e := cs.rewriteExecute(nil, exec(0x03)); e != nil || string(out) != string(exec(0x03)) {
		t.Fatalf("all NULL: %q %v", out, e)
	}
	if _, e := cs.rewriteExecute(nil, exec(0x01)); e == nil || e.Code != 1210 {
		t.Fatalf("one value without types: %v, want 1210", e)
	}
}
