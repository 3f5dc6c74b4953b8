package proxy

import (
	"database/sql"
	"reflect"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

func TestSchedulerArgv(t *testing.T) {
	s := func(v string) sql.NullString { return sql.NullString{String: v, Valid: true} }
	for _, tc := range []struct {
		args [5]sql.NullString
		want []string
	}{
		{want: []string{"/bin/job"}},
		{args: [5]sql.NullString{s("a"), s(""), s("c")}, want: []string{"/bin/job", "a", "", "c"}},
		// execve's argv ends at the first NULL: arg4 after a NULL arg3 is not passed.
		{args: [5]sql.NullString{s("a"), s("b"), {}, s("d"), s("e")}, want: []string{"/bin/job", "a", "b"}},
		{args: [5]sql.NullString{s("1"), s("2"), s("3"), s("4"), s("5")}, want: []string{"/bin/job", "1", "2", "3", "4", "5"}},
	} {
		if got := argv(config.SchedulerJob{Filename: "/bin/job", Args: tc.args}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("argv(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
