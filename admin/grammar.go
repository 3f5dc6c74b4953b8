package admin

import (
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// Direction is where a LOAD/SAVE command copies a module from and to.
type Direction int

// The five directions of ProxySQL's LOAD/SAVE grammar.
const (
	MemoryToRuntime Direction = iota // LOAD … TO RUNTIME
	RuntimeToMemory                  // SAVE … TO MEMORY
	DiskToMemory                     // LOAD … FROM DISK
	MemoryToDisk                     // SAVE … TO DISK
	ConfigToMemory                   // LOAD … FROM CONFIG
)

func (d Direction) String() string {
	switch d {
	case MemoryToRuntime:
		return "MEMORY→RUNTIME"
	case RuntimeToMemory:
		return "RUNTIME→MEMORY"
	case DiskToMemory:
		return "DISK→MEMORY"
	case MemoryToDisk:
		return "MEMORY→DISK"
	case ConfigToMemory:
		return "CONFIG→MEMORY"
	}
	return "UNKNOWN"
}

// loadSave is one parsed LOAD/SAVE command.
type loadSave struct {
	Module config.Module
	Dir    Direction
}

// spellings lists, per direction, the verb and every tail ProxySQL accepts
// after the module name (is_admin_command_or_alias and the alias vectors of
// lib/ProxySQL_Admin.cpp). Every module takes every spelling.
var spellings = []struct {
	verb  string
	tails []string
	dir   Direction
}{
	{"LOAD", []string{"FROM MEMORY", "FROM MEM", "TO RUNTIME", "TO RUN"}, MemoryToRuntime},
	{"SAVE", []string{"TO MEMORY", "TO MEM", "FROM RUNTIME", "FROM RUN"}, RuntimeToMemory},
	{"LOAD", []string{"TO MEMORY", "TO MEM", "FROM DISK"}, DiskToMemory},
	{"SAVE", []string{"FROM MEMORY", "FROM MEM", "TO DISK"}, MemoryToDisk},
	{"LOAD", []string{"FROM CONFIG"}, ConfigToMemory},
}

// loadSaveCommands maps the normalized upper-case text of every LOAD/SAVE
// alias of every module to what it does. It is built once, so the grammar
// has exactly one definition and the tests can enumerate it.
var loadSaveCommands = func() map[string]loadSave {
	m := make(map[string]loadSave)
	for _, mod := range config.Modules {
		for _, sp := range spellings {
			for _, tail := range sp.tails {
				m[sp.verb+" "+mod.String()+" "+tail] = loadSave{Module: mod, Dir: sp.dir}
			}
		}
	}
	return m
}()

// parseLoadSave matches a normalized statement (see normalize) against the
// LOAD/SAVE grammar. The match is exact and case-insensitive.
func parseLoadSave(n string) (loadSave, bool) {
	ls, ok := loadSaveCommands[strings.ToUpper(n)]
	return ls, ok
}

// normalize is ProxySQL's query_no_space: whitespace runs collapse to one
// space, leading whitespace goes, and trailing ';' and spaces are stripped
// in a loop (bug #925). Quoted text is collapsed too, exactly as ProxySQL
// does; passthrough statements are sent to SQLite in their original form.
func normalize(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	space := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	s := b.String()
	for len(s) > 0 && (s[len(s)-1] == ';' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// isUserName reports whether name is acceptable to LOAD MYSQL USER <name>
// TO RUNTIME: ProxySQL restricts it to [A-Za-z0-9+_-].
func isUserName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '_') {
			return false
		}
	}
	return true
}
