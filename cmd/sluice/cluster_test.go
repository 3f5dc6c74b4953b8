package main

import (
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/cnf"
)

func TestSyncInterfacesNotice(t *testing.T) {
	for _, c := range []struct {
		text string
		warn bool
	}{
		{`datadir="/tmp"`, false},
		{`cluster_sync_interfaces=false`, false},
		{`cluster_sync_interfaces=true`, true},
		{`cluster_sync_interfaces="yes"`, true},
	} {
		root, err := cnf.Parse([]byte(c.text))
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		msg := syncInterfacesNotice(root)
		if (msg != "") != c.warn {
			t.Errorf("%s: notice %q, want one: %v", c.text, msg, c.warn)
		}
		if c.warn && !strings.Contains(msg, "not implemented in Sluice") {
			t.Errorf("%s: notice %q", c.text, msg)
		}
	}
	if syncInterfacesNotice(nil) != "" {
		t.Error("no config file: a notice")
	}
}

func TestNodeUUID(t *testing.T) {
	root, err := cnf.Parse([]byte(`uuid="0F1E2D3C-4B5A-4968-8776-655443322110"`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nodeUUID(root); err != nil || got != "0f1e2d3c-4b5a-4968-8776-655443322110" {
		t.Errorf("uuid from the config file: %q, %v", got, err)
	}
	bad, _ := cnf.Parse([]byte(`uuid="node-1"`))
	got, err := nodeUUID(bad)
	if err == nil || !uuidText.MatchString(got) {
		t.Errorf("bad uuid: %q, %v; want a new UUID and an error", got, err)
	}
	a, errA := nodeUUID(nil)
	b, errB := nodeUUID(nil)
	if errA != nil || errB != nil || !uuidText.MatchString(a) || a == b {
		t.Errorf("no config file: %q, %q (%v, %v); want two different new UUIDs", a, b, errA, errB)
	}
}
