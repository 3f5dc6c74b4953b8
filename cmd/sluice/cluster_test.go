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
