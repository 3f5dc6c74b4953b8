package cnf

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dump renders a tree compactly: groups {a=… b=…}, lists (…), arrays […],
// scalars kind:value with strings quoted.
func dump(s *Setting) string {
	var b strings.Builder
	dumpTo(&b, s)
	return b.String()
}

func dumpTo(b *strings.Builder, s *Setting) {
	if s.Name != "" {
		b.WriteString(s.Name + "=")
	}
	switch s.Kind {
	case Group, List, Array:
		open, closing := "{", "}"
		if s.Kind == List {
			open, closing = "(", ")"
		} else if s.Kind == Array {
			open, closing = "[", "]"
		}
		b.WriteString(open)
		for i, c := range s.Children {
			if i > 0 {
				b.WriteByte(' ')
			}
			dumpTo(b, c)
		}
		b.WriteString(closing)
	case String:
		b.WriteString("str:" + strconv.Quote(s.Value))
	default:
		b.WriteString(s.Kind.String() + ":" + s.Value)
	}
}

func mustParse(t *testing.T, text string) *Setting {
	t.Helper()
	root, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return root
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "{}"},
		{"only comments", "# a\n// b\n/* c\nd */\n", "{}"},
		{"terminators", "a = 1; b : 2, c=3\nd=4;", "{a=int:1 b=int:2 c=int:3 d=int:4}"},
		{"no whitespace", "a=1;b=2", "{a=int:1 b=int:2}"},
		{"names", "*a-b_c9 = 1\ntruex = 2\nFALSE_ = 3", "{*a-b_c9=int:1 truex=int:2 FALSE_=int:3}"},
		{"integers", "a=0x1F b=0xffL c=5L d=5LL e=-7 f=+8 g=010 h=3000000000 i=0",
			"{a=int:0x1F b=int:0xffL c=int:5L d=int:5LL e=int:-7 f=int:+8 g=int:010 h=int:3000000000 i=int:0}"},
		{"floats", "a=1.5 b=1. c=.5 d=1e5 e=-2.5e-3 f=. g=+.e5 h=3E+2",
			"{a=float:1.5 b=float:1. c=float:.5 d=float:1e5 e=float:-2.5e-3 f=float:. g=float:+.e5 h=float:3E+2}"},
		{"float then name", "a=[1.5, 2.]", "{a=[float:1.5 float:2.]}"},
		{"bools", "a=TRUE b=False c=true", "{a=bool:true b=bool:false c=bool:true}"},
		{"escapes", `a="q\"b\\n\n\t\r\f\x41\x7e"`, `{a=str:"q\"b\\n\n\t\r\fA~"}`},
		{"lone backslash", `a="c:\q\x4g\\"`, `{a=str:"c:\\q\\x4g\\"}`},
		{"concatenation", "a = \"ab\" /* x */ \"cd\" # c\n \"ef\";", `{a=str:"abcdef"}`},
		{"multi-line string", "a=\"x\ny\"\nb=1", `{a=str:"x\ny" b=int:1}`},
		{"utf8", `a="héllo ✓"`, `{a=str:"héllo ✓"}`},
		{"groups", "g = { a = 1; h : { b = \"x\" } }", `{g={a=int:1 h={b=str:"x"}}}`},
		{"empty aggregates", "g={} l=() a=[]", "{g={} l=() a=[]}"},
		{"list of groups", "l=( {a=1}, {a=2} )", "{l=({a=int:1} {a=int:2})}"},
		{"mixed list", `l=(1, "s", 2.5, true, [1,2], (3), {x=1})`,
			`{l=(int:1 str:"s" float:2.5 bool:true [int:1 int:2] (int:3) {x=int:1})}`},
		{"trailing and repeated commas", "l=(1,,2,) a=[1,2,,]", "{l=(int:1 int:2) a=[int:1 int:2]}"},
		{"array of strings", `a=["x" "y", "z"]`, `{a=[str:"xy" str:"z"]}`},
		{"hex and int in one array", "a=[1, 0x10]", "{a=[int:1 int:0x10]}"},
		{"crlf", "a=1\r\nb=\"x\"\r\n", `{a=int:1 b=str:"x"}`},
		{"comment at eof without newline", "a=1 # done", "{a=int:1}"},
		{"slash comment", "a=1 // done\nb=2", "{a=int:1 b=int:2}"},
		{"unterminated block comment ends the file", "a=1 /* never closed\nb=2", "{a=int:1}"},
		{"same name in different groups", "a={x=1} b={x=2} l=({x=1},{x=2})", "{a={x=int:1} b={x=int:2} l=({x=int:1} {x=int:2})}"},
		{"at sign inside a string", `a="@include \"x\""`, `{a=str:"@include \"x\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dump(mustParse(t, tt.in))
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	root := mustParse(t, "a=1\n\nb=\n{\n  c=2\n}\nl=(\n {x=1},\n 5)\n")
	checks := []struct {
		s    *Setting
		line int
	}{
		{root.Get("a"), 1},
		{root.Get("b"), 3},
		{root.Get("b").Get("c"), 5},
		{root.Get("l"), 7},
		{root.Get("l").Children[0], 8},
		{root.Get("l").Children[0].Get("x"), 8},
		{root.Get("l").Children[1], 9},
	}
	for i, c := range checks {
		if c.s == nil || c.s.Line != c.line {
			t.Errorf("check %d: got %+v, want line %d", i, c.s, c.line)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"missing equals", "a=1\n\nfoo 5", `line 3: expected '=' or ':' after setting name "foo", found integer 5`},
		{"missing equals at eof", "foo", `line 1: expected '=' or ':' after setting name "foo", found end of input`},
		{"duplicate", "a=1\nb=2\na=3", `line 3: duplicate setting name "a" (first set on line 1)`},
		{"duplicate in group", "g={\n x=1\n x=2 }", `line 3: duplicate setting name "x" (first set on line 2)`},
		{"unterminated string", "a=1\nb=\"abc\n\ndef", "line 2: unterminated string"},
		{"mismatched array", "a=[1,\n\"x\"]", "line 2: mismatched element type in array: expected int, found string"},
		{"int and int64 in one array", "a=[1, 1L]", "line 1: mismatched element type in array: expected int, found int64"},
		{"aggregate in array", "a=[{}]", "line 1: an array holds only scalar values"},
		{"unclosed group", "a={\n b=1\n", "line 3: unexpected end of input: the group opened on line 1 is not closed with '}'"},
		{"unclosed list", "a=(1,\n2", "line 2: unexpected end of input: the list opened on line 1 is not closed with ')'"},
		{"missing comma", "a=(1\n 2)", "line 2: expected ',' or ')' in the list opened on line 1, found integer 2"},
		{"leading comma", "a=(,1)", "line 1: expected a value or ')' in the list opened on line 1, found ','"},
		{"no name", "= 1", "line 1: expected a setting name, found '='"},
		{"bool as name", "true = 1", "line 1: expected a setting name, found boolean true"},
		{"stray close", "a=1 ]", "line 1: expected a setting name, found ']'"},
		{"missing value", "a=\n;", `line 2: expected a value after "a" =, found ';'`},
		{"name as value", "a=b", `line 1: expected a value after "a" =, found name "b"`},
		{"garbage", "a=\n\n  $", "line 3: unexpected character '$'"},
		{"control byte", "a=\x01", "line 1: unexpected character 0x01"},
		{"at sign", "a=1 @include \"x\"", "line 1: unexpected character '@' (an @include directive must start its line)"},
		{"include without file", "a=1\n  @include \"x.cnf\"\n", "line 2: @include is not allowed when parsing text without a file; use ParseFile"},
		{"bad octal", "a=09", "line 1: integer out of range: 09 is not a valid octal constant"},
		{"wide hex", "a=0x1FFFFFFFF", "line 1: integer out of range: hex constant 0x1FFFFFFFF is wider than 32 bits"},
		{"huge decimal", "a=99999999999999999999", "line 1: integer out of range: 99999999999999999999 does not fit in 64 bits"},
		{"huge decimal64", "a=99999999999999999999L", "does not fit in 64 bits"},
		{"slash", "a=/1", "line 1: unexpected character '/'"},
		{"group missing close in list", "l=({a=1)", "line 1: expected a setting name or '}', found ')'"},
		{"too deep", "a=" + strings.Repeat("(", MaxDepth+1), "nest deeper than 1000 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q)\n got error %q\nwant it to contain %q", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Errorf("error %v is not a *ParseError with a line", err)
			}
		})
	}
}

func TestDepthLimitAllowsMaxDepth(t *testing.T) {
	in := "a=" + strings.Repeat("(", MaxDepth) + strings.Repeat(")", MaxDepth)
	root := mustParse(t, in)
	s := root.Get("a")
	for i := 1; i < MaxDepth; i++ {
		if s.Kind != List || len(s.Children) != 1 {
			t.Fatalf("level %d: %v", i, s.Kind)
		}
		s = s.Children[0]
	}
	out, err := Parse(Format(root))
	if err != nil || !out.Equal(root) {
		t.Fatalf("round trip of %d nested lists: %v", MaxDepth, err)
	}
}

func TestAccessors(t *testing.T) {
	root := mustParse(t, `i=42 o=010 h=0xFFFFFFFF h64=0xFFFFFFFFFFFFFFFFL big=3000000000 l=07L
		f=2.5 dot=. b=TRUE s="x" g={n=1} neg=-9223372036854775808`)
	ints := map[string]int64{"i": 42, "o": 8, "h": -1, "h64": -1, "big": 3000000000, "l": 7, "neg": -9223372036854775808}
	for name, want := range ints {
		got, err := root.Get(name).Int()
		if err != nil || got != want {
			t.Errorf("%s.Int() = %d, %v; want %d", name, got, err, want)
		}
	}
	if f, err := root.Get("f").Float(); err != nil || f != 2.5 {
		t.Errorf("f.Float() = %v, %v", f, err)
	}
	if f, err := root.Get("dot").Float(); err != nil || f != 0 {
		t.Errorf("dot.Float() = %v, %v", f, err)
	}
	if f, err := root.Get("i").Float(); err != nil || f != 42 {
		t.Errorf("i.Float() = %v, %v", f, err)
	}
	if b, err := root.Get("b").Bool(); err != nil || !b {
		t.Errorf("b.Bool() = %v, %v", b, err)
	}
	if root.Get("s").Str() != "x" || root.Get("i").Str() != "42" || root.Get("g").Str() != "" {
		t.Error("Str")
	}
	if _, err := root.Get("s").Int(); !errors.Is(err, ErrType) {
		t.Errorf("s.Int() error = %v, want ErrType", err)
	}
	if _, err := root.Get("missing").Bool(); !errors.Is(err, ErrType) {
		t.Errorf("missing.Bool() error = %v, want ErrType", err)
	}
	if root.Get("g").Get("n") == nil || root.Get("nope").Get("n") != nil || root.Get("i").Get("x") != nil {
		t.Error("Get chain")
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "*": true, "a-b_c*9": true, "threads": true,
		"": false, "9a": false, "-a": false, "a.b": false, "a b": false, "true": false, "FALSE": false, "trueish": true,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestConstructors(t *testing.T) {
	root := NewGroup("",
		NewInt("small", -5), NewInt("big", 1<<40), NewFloat("f", 3), NewFloat("g", 0.25),
		NewBool("b", false), NewString("s", "a\"b"),
		NewList("l", NewGroup("", NewInt("x", 1))), NewArray("a", NewInt("", 1), NewInt("", 2)))
	text := string(Format(root))
	for _, want := range []string{"small=-5\n", "big=1099511627776L\n", "f=3.0\n", "g=0.25\n", "b=false\n", `s="a\"b"`, "a=[1, 2]\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("Format output lacks %q:\n%s", want, text)
		}
	}
	back := mustParse(t, text)
	if !back.Equal(root) {
		t.Errorf("round trip differs:\n got %s\nwant %s", dump(back), dump(root))
	}
	if v, _ := back.Get("big").Int(); v != 1<<40 {
		t.Errorf("big = %d", v)
	}
}

func TestFormatRoundTripAllBytes(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	root := NewGroup("", NewString("s", string(all)), NewList("l", NewString("", "\\\"\n"), NewList("", NewArray(""))))
	back, err := Parse(Format(root))
	if err != nil {
		t.Fatalf("Parse(Format): %v\n%s", err, Format(root))
	}
	if !back.Equal(root) {
		t.Fatalf("round trip differs:\n got %s\nwant %s", dump(back), dump(root))
	}
}

func TestSampleFiles(t *testing.T) {
	for _, name := range []string{"proxysql-style.cnf", "reference-9.1.cnf"} {
		t.Run(name, func(t *testing.T) {
			root, err := ParseFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if got := root.Get("datadir").Str(); got != "/var/lib/proxysql" {
				t.Errorf("datadir = %q", got)
			}
			if got := root.Get("admin_variables").Get("admin_credentials").Str(); got != "admin:admin" {
				t.Errorf("admin_credentials = %q", got)
			}
			if v, err := root.Get("mysql_variables").Get("threads").Int(); err != nil || v != 4 {
				t.Errorf("threads = %d, %v", v, err)
			}
			servers := root.Get("mysql_servers")
			if servers == nil || servers.Kind != List || len(servers.Children) == 0 {
				t.Fatalf("mysql_servers = %+v", servers)
			}
			if got := servers.Children[0].Get("address").Str(); got != "127.0.0.1" {
				t.Errorf("first server address = %q", got)
			}
			rules := root.Get("mysql_query_rules")
			if got := rules.Children[0].Get("match_pattern").Str(); got != "^SELECT .* FOR UPDATE$" {
				t.Errorf("first rule match_pattern = %q", got)
			}
			back, err := Parse(Format(root))
			if err != nil {
				t.Fatalf("Parse(Format): %v", err)
			}
			if !back.Equal(root) {
				t.Errorf("round trip differs:\n got %s\nwant %s", dump(back), dump(root))
			}
		})
	}
}

func TestSampleFileDetails(t *testing.T) {
	root, err := ParseFile(filepath.Join("testdata", "proxysql-style.cnf"))
	if err != nil {
		t.Fatal(err)
	}
	servers := root.Get("mysql_servers").Children
	if len(servers) != 3 {
		t.Fatalf("%d servers, want 3 (one is commented out)", len(servers))
	}
	if got := servers[2].Get("address").Str(); got != "/var/lib/mysql/mysql.sock" {
		t.Errorf("socket server address = %q", got)
	}
	if users := root.Get("mysql_users").Children; len(users) != 2 || users[1].Get("username").Str() != "user1" {
		t.Errorf("users = %s", dump(root.Get("mysql_users")))
	}
	if b, _ := root.Get("mysql_variables").Get("have_compress").Bool(); !b {
		t.Error("have_compress should be true")
	}
	if got := root.Get("mysql_replication_hostgroups").Children[1].Get("comment").Str(); got != "test repl 2" {
		t.Errorf("second replication hostgroup comment = %q", got)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.cnf"), "a=1\n@include \"sub/inc.cnf\"\nc=3\nl=(\n  @include \"elems.cnf\"\n)\n")
	writeFile(t, filepath.Join(dir, "sub", "inc.cnf"), "b=2\n\t@include \"deeper.cnf\" # trailing comment\n")
	writeFile(t, filepath.Join(dir, "sub", "deeper.cnf"), "d=4")
	writeFile(t, filepath.Join(dir, "elems.cnf"), "1, 2")
	root, err := ParseFile(filepath.Join(dir, "main.cnf"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(root), "{a=int:1 b=int:2 d=int:4 c=int:3 l=(int:1 int:2)}"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	// Line numbers after an include are those of the including file.
	if root.Get("c").Line != 3 || root.Get("b").Line != 1 {
		t.Errorf("lines: c=%d b=%d", root.Get("c").Line, root.Get("b").Line)
	}
}

func TestIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "missing.cnf"), "a=1\n@include \"nope.cnf\"\n")
	writeFile(t, filepath.Join(dir, "self.cnf"), "@include \"self.cnf\"\n")
	writeFile(t, filepath.Join(dir, "bad.cnf"), "a=1\n@include \"badinc.cnf\"\n")
	writeFile(t, filepath.Join(dir, "badinc.cnf"), "x=1\n\ny=;\n")
	writeFile(t, filepath.Join(dir, "dup.cnf"), "x=1\n@include \"dupinc.cnf\"\n")
	writeFile(t, filepath.Join(dir, "dupinc.cnf"), "x=2\n")
	tests := []struct{ file, want string }{
		{"missing.cnf", "missing.cnf: line 2: cannot open include file"},
		{"self.cnf", "self.cnf: line 1: include file nesting too deep"},
		{"bad.cnf", "badinc.cnf: line 3: expected a value after \"y\" =, found ';'"},
		{"dup.cnf", "dupinc.cnf: line 1: duplicate setting name \"x\""},
	}
	for _, tt := range tests {
		_, err := ParseFile(filepath.Join(dir, tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFile(%s) error = %v, want it to contain %q", tt.file, err, tt.want)
		}
	}
	if _, err := ParseFile(filepath.Join(dir, "absent.cnf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFile(absent) error = %v, want os.ErrNotExist", err)
	}
}
