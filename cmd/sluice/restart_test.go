package main

import (
	"reflect"
	"testing"
)

// TestRestartArgs: PROXYSQL RESTART starts again with the same arguments
// but the ones that would rebuild or merge the configuration from the file.
func TestRestartArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-c", "etc/sluice.cnf", "-D", "var", "--initial"}, []string{"-c", "etc/sluice.cnf", "-D", "var"}},
		{[]string{"-initial", "-M", "--reload=true", "-reload"}, []string{"-M"}},
		{[]string{"-c", "initial", "-D", "reload"}, []string{"-c", "initial", "-D", "reload"}}, // values, not flags
		{[]string{"--initial=false", "-f"}, []string{"-f"}},
		{nil, []string{}},
	} {
		if got := restartArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("restartArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
