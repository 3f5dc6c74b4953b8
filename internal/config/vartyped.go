package config

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Typed reads of global variables. Every variable Sluice acts on is read
// through these, so there is one parser per type, one boolean spelling
// (ParseBool) and one default per variable: the one in varDefs. A value that
// does not parse (a snapshot built by hand, a variable missing from it)
// reads as that default. Names must be in varDefs; TestCodeReadsKnownVars
// walks the code's reads against the list.

// Int returns an integer variable.
func (s *Snapshot) Int(name string) int64 {
	if n, err := strconv.ParseInt(strings.TrimSpace(s.Var(name)), 10, 64); err == nil {
		return n
	}
	return defaultInt(name)
}

// Float returns a decimal variable.
func (s *Snapshot) Float(name string) float64 {
	if f, err := strconv.ParseFloat(strings.TrimSpace(s.Var(name)), 64); err == nil && !math.IsNaN(f) {
		return f
	}
	d, _ := LookupVar(name)
	f, _ := strconv.ParseFloat(d.Default, 64)
	return f
}

// Bool returns a boolean variable (true/false, 1/0).
func (s *Snapshot) Bool(name string) bool {
	if b, ok := ParseBool(s.Var(name)); ok {
		return b
	}
	d, _ := LookupVar(name)
	b, _ := ParseBool(d.Default)
	return b
}

// Millis returns an integer variable that counts milliseconds.
func (s *Snapshot) Millis(name string) time.Duration {
	return time.Duration(s.Int(name)) * time.Millisecond
}

// Seconds returns an integer variable that counts seconds.
func (s *Snapshot) Seconds(name string) time.Duration {
	return time.Duration(s.Int(name)) * time.Second
}

// Str returns a string variable, trimmed of surrounding white space.
func (s *Snapshot) Str(name string) string { return strings.TrimSpace(s.Var(name)) }

func defaultInt(name string) int64 {
	d, _ := LookupVar(name)
	n, _ := strconv.ParseInt(d.Default, 10, 64)
	return n
}
