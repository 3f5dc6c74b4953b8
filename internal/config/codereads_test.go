package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// varName matches a global variable's name in a string literal.
var varName = regexp.MustCompile(`^(mysql|admin)-[A-Za-z_]+$`)

// notVariables are literals that look like variable names and are not:
// ProxySQL's command-line flags.
var notVariables = map[string]bool{"admin-socket": true}

// TestCodeReadsKnownVars walks every non-test Go file of the module and
// checks that each string literal naming a mysql-* or admin-* variable is
// in the variable list: a variable the code reads but global_variables
// lacks could never be set (SET would answer OK and change nothing).
func TestCodeReadsKnownVars(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	seen := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "var", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil || !varName.MatchString(v) || notVariables[v] {
				return true
			}
			seen++
			if _, ok := LookupVar(v); !ok {
				t.Errorf("%s reads %q, which is not in global_variables (internal/config/variables_list.go)", path, v)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("found only %d variable names in the code: the walk is broken", seen)
	}
}

// TestTypedReads: the typed accessors parse with one boolean spelling and
// fall back to the list's default.
func TestTypedReads(t *testing.T) {
	s := &Snapshot{MySQLVars: map[string]string{
		"mysql-multiplexing":                       "0",
		"mysql-max_connections":                    " 42 ",
		"mysql-connect_timeout_server":             "bogus",
		"mysql-autocommit_false_is_transaction":    "TRUE",
		"mysql-balance_conn_migrations_per_second": " 2.5",
		"mysql-balance_conn_count_ratio_threshold": "NaN",
	}}
	if f := s.Float("mysql-balance_conn_migrations_per_second"); f != 2.5 {
		t.Errorf("Float = %v", f)
	}
	if f := s.Float("mysql-balance_conn_count_ratio_threshold"); f != 1.2 {
		t.Errorf("NaN: %v, want the default 1.2", f)
	}
	d, _ := LookupVar("mysql-balance_conn_count_ratio_threshold")
	for _, bad := range []string{"abc", "0.5", "NaN", "101"} {
		if d.Check(bad) == nil {
			t.Errorf("%q accepted for %s", bad, d.Name)
		}
	}
	if d.Check("1.5") != nil {
		t.Error("1.5 refused")
	}
	if s.Bool("mysql-multiplexing") {
		t.Error(`"0" read as true`)
	}
	if !s.Bool("mysql-autocommit_false_is_transaction") {
		t.Error(`"TRUE" read as false`)
	}
	if n := s.Int("mysql-max_connections"); n != 42 {
		t.Errorf("Int = %d", n)
	}
	if d := s.Millis("mysql-connect_timeout_server"); d.Milliseconds() != 1000 {
		t.Errorf("unparsable value: %v, want the default 1000ms", d)
	}
	if !s.Bool("mysql-query_digests") {
		t.Error("missing variable: want its default true")
	}
	if d := s.Seconds("mysql-shun_recovery_time_sec"); d.Seconds() != 10 {
		t.Errorf("Seconds = %v", d)
	}
}
