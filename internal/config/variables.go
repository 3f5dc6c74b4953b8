package config

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// VarKind is the value type of a global variable.
type VarKind int

// Kinds of global variables.
const (
	VarString VarKind = iota
	VarInt
	VarBool
	VarJSONObject // "" or a JSON object of string values (Sluice's label variables)
	VarFloat      // a decimal number in [Min, Max] (Sluice's migration rates)
	VarNetworks   // "", "*" or a comma-separated list of networks (CIDR) and addresses
	VarCharset    // a character set known to MariaDB or MySQL (mysql-default_charset)
	VarCollation  // a collation with an id below 256 (mysql-default_collation_connection)
)

// VarDef describes one mysql-* or admin-* global variable: its ProxySQL
// name, default and accepted values.
type VarDef struct {
	Name     string // full name, with the "mysql-" or "admin-" prefix
	Default  string
	Kind     VarKind
	Min, Max int64 // inclusive range of a VarInt or VarFloat
	ReadOnly bool  // never changes (admin-version)
	SetOnce  bool  // read at start-up only; a change needs SAVE … TO DISK and a restart
	// Values, when not empty, enumerates the accepted values of a VarString,
	// matched case-insensitively (ProxySQL accepts "own_gtid" for OWN_GTID).
	Values []string
	// NonEmpty: an empty VarString is refused, as ProxySQL's set_variable
	// refuses it (mysql-server_version, mysql-default_schema).
	NonEmpty bool
}

var varIndex = func() map[string]*VarDef {
	m := make(map[string]*VarDef, len(varDefs))
	for i := range varDefs {
		m[varDefs[i].Name] = &varDefs[i]
		// ProxySQL spells one name with capitals (mysql-query_cache_size_MB);
		// index its lower-case form too so LookupVar stays case-insensitive.
		if lc := strings.ToLower(varDefs[i].Name); lc != varDefs[i].Name {
			m[lc] = &varDefs[i]
		}
	}
	return m
}()

// LookupVar returns the definition of a variable by its full name. Names are
// matched case-insensitively, as SQLite's NOCASE lookups on admin do.
func LookupVar(name string) (VarDef, bool) {
	if d, ok := varIndex[name]; ok {
		return *d, true
	}
	if d, ok := varIndex[strings.ToLower(name)]; ok {
		return *d, true
	}
	return VarDef{}, false
}

// VarDefs returns every known variable, sorted by name.
func VarDefs() []VarDef {
	out := make([]VarDef, len(varDefs))
	copy(out, varDefs)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Check reports whether value is acceptable for the variable.
func (d VarDef) Check(value string) error {
	switch d.Kind {
	case VarInt:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", d.Name, value)
		}
		if n < d.Min || n > d.Max {
			return fmt.Errorf("%s: %d is out of range [%d, %d]", d.Name, n, d.Min, d.Max)
		}
	case VarFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("%s: %q is not a number", d.Name, value)
		}
		if f < float64(d.Min) || f > float64(d.Max) {
			return fmt.Errorf("%s: %v is out of range [%d, %d]", d.Name, f, d.Min, d.Max)
		}
	case VarJSONObject:
		if strings.TrimSpace(value) == "" {
			return nil
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(value), &m); err != nil {
			return fmt.Errorf("%s: %q is not a JSON object of strings: %v", d.Name, value, err)
		}
	case VarNetworks:
		if _, err := ParseNetworks(value); err != nil {
			return fmt.Errorf("%s: %v", d.Name, err)
		}
	case VarCharset:
		return checkCharset(value)
	case VarCollation:
		return checkCollation(value)
	case VarBool:
		if _, ok := ParseBool(value); !ok {
			return fmt.Errorf("%s: %q is not a boolean (true/false)", d.Name, value)
		}
	case VarString:
		if d.NonEmpty && value == "" {
			return fmt.Errorf("%s: an empty value is not accepted", d.Name)
		}
		if len(d.Values) == 0 {
			return nil
		}
		for _, v := range d.Values {
			if strings.EqualFold(value, v) {
				return nil
			}
		}
		return fmt.Errorf("%s: %q is not one of %s", d.Name, value, strings.Join(d.Values, ", "))
	}
	return nil
}

// ParseBool accepts the spellings ProxySQL accepts for boolean variables.
func ParseBool(v string) (b, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}
