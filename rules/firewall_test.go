package rules

import (
	"database/sql"
	"testing"
)

func TestFirewall(t *testing.T) {
	s := func(v string) sql.NullString { return sql.NullString{String: v, Valid: true} }
	users := [][]sql.NullString{
		{s("1"), s("app"), s("10.0.0.5"), s("PROTECTING"), s("")},
		{s("1"), s("app"), s(""), s("DETECTING"), s("")},
		{s("1"), s("ops"), s(""), s("OFF"), s("")},
		{s("0"), s("gone"), s(""), s("OFF"), s("")},
	}
	rules := [][]sql.NullString{
		{s("1"), s("app"), s("10.0.0.5"), s("shop"), s("0"), s("0x00000000000000AB"), s("")},
		{s("1"), s("app"), s(""), s("shop"), s("0"), s("0xCD"), s("")},
		{s("0"), s("app"), s("10.0.0.5"), s("shop"), s("0"), s("0xEF"), s("")},
	}
	f, err := CompileFirewall(users, rules, [][]sql.NullString{{s("1"), s("s&1c")}, {s("0"), s("s&1")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, client, schema string
		flagIN               int
		digest               uint64
		mode                 FirewallMode
		allowed              bool
	}{
		{"app", "10.0.0.5", "shop", 0, 0xab, FirewallProtecting, true},
		{"app", "10.0.0.5", "shop", 0, 0xcd, FirewallProtecting, false}, // the '' rule is not this user's
		{"app", "10.0.0.5", "shop", 0, 0xef, FirewallProtecting, false}, // inactive rule
		{"app", "10.0.0.5", "other", 0, 0xab, FirewallProtecting, false},
		{"app", "10.0.0.5", "shop", 1, 0xab, FirewallProtecting, false},
		{"app", "10.0.0.9", "shop", 0, 0xcd, FirewallDetecting, true}, // falls back to (app, '')
		{"app", "10.0.0.9", "shop", 0, 0xab, FirewallDetecting, false},
		{"ops", "10.0.0.9", "any", 3, 1, FirewallOff, true},
		{"gone", "10.0.0.9", "any", 0, 1, FirewallProtecting, false}, // inactive user: unknown
		{"nobody", "10.0.0.9", "any", 0, 1, FirewallProtecting, false},
	} {
		mode, ok := f.Check(tc.user, tc.client, tc.schema, tc.flagIN, tc.digest)
		if mode != tc.mode || ok != tc.allowed {
			t.Errorf("%+v: %v %v", tc, mode, ok)
		}
	}
	if !f.SQLiWhitelisted("s&1c") || f.SQLiWhitelisted("s&1") {
		t.Error("sqli fingerprints: only active rows count")
	}
	if _, err := CompileFirewall([][]sql.NullString{{s("1"), s("a"), s(""), s("BLOCK"), s("")}}, nil, nil); err == nil {
		t.Error("mode BLOCK accepted")
	}
	if _, err := CompileFirewall(nil, [][]sql.NullString{{s("1"), s("a"), s(""), s("db"), s("0"), s("xyz"), s("")}}, nil); err == nil {
		t.Error("digest xyz accepted")
	}
	var none *Firewall
	if mode, ok := none.Check("a", "b", "c", 0, 1); mode != FirewallProtecting || ok {
		t.Error("a nil firewall let a query through")
	}
}
