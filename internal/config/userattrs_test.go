package config

import (
	"slices"
	"testing"
)

func TestParseUserAttributes(t *testing.T) {
	for _, c := range []struct {
		in    string
		iso   string
		other []string
		err   bool
	}{
		{"", "", nil, false},
		{`{}`, "", nil, false},
		{`{"default-transaction_isolation": "read committed"}`, "READ-COMMITTED", nil, false},
		{`{"default-transaction_isolation": "REPEATABLE-READ", "b": 1, "a": "x"}`, "REPEATABLE-READ", []string{"a", "b"}, false},
		{`{"default-transaction_isolation": "SOMETIMES"}`, "", nil, true},
		{`{"default-transaction_isolation": 3}`, "", nil, true},
		{`{"spiffe_id": 3}`, "", nil, true},
		{`[1]`, "", nil, true},
		{`not json`, "", nil, true},
	} {
		a, err := ParseUserAttributes(c.in)
		if (err != nil) != c.err || a.TransactionIsolation != c.iso || !slices.Equal(a.Other, c.other) {
			t.Errorf("ParseUserAttributes(%q) = %+v, %v", c.in, a, err)
		}
	}
}
