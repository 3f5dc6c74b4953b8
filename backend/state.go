package backend

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/charset"

	"github.com/sluice-proxy/sluice/internal/wire"
)

// Var is one tracked session variable and the complete statement that sets
// it, as the SET parser renders it ("SET sql_mode='ANSI'",
// "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"). The statement
// is sent as is: it must come from the proxy's own parser, never straight
// from a client.
type Var struct {
	Name string // lower case; the sort key
	SQL  string
}

// State is the session state the proxy tracks for a client and replays on
// whichever backend connection serves it (reference §5.3). The zero value
// is "nothing requested": no schema, the server's default character set,
// autocommit on, no variables.
type State struct {
	Schema string
	// Collation is the collation id of the handshake (or COM_CHANGE_USER);
	// 0 means the server default. Names, when set, wins over it.
	Collation uint8
	// Names is the "SET NAMES …" or "SET CHARACTER SET …" statement the
	// client ran last, "" if none.
	Names      string
	Autocommit bool
	// Vars are the tracked variables the client set, sorted by Name.
	Vars []Var
	// MultiStatements mirrors the client's CLIENT_MULTI_STATEMENTS
	// (switched on a connection with COM_SET_OPTION).
	MultiStatements bool
	// Caps are the client's capabilities that change what a server
	// answers (ConnCaps: CLIENT_FOUND_ROWS, CLIENT_IGNORE_SPACE,
	// CLIENT_PS_MULTI_RESULTS). They are fixed when a connection is opened:
	// a connection opened with others never serves the session.
	Caps uint32
}

// ConnCaps are the client capabilities a backend connection is opened
// with, as the client asked for them: affected rows counted as found rows,
// function names followed by spaces (IGNORE_SPACE in the session's
// sql_mode, which MariaDB Connector/J asks for), and the OUT-parameter
// result set of a prepared CALL, which clients without
// CLIENT_PS_MULTI_RESULTS (PHP's mysqlnd, go-sql-driver) do not read.
const ConnCaps = wire.ClientFoundRows | wire.ClientIgnoreSpace | wire.ClientPSMultiResults

// Settings hashes the settings that shape what a statement returns and how
// it parses — the character set and collation (handshake or SET NAMES) and
// the tracked variables — and nothing else (FNV-1a, no allocation). Two
// sessions with equal Settings get the same bytes and metadata for the same
// statement in the same schema: the query cache and the prepared-statement
// cache share entries only between them.
func (s *State) Settings() uint64 {
	h := fnvHash(14695981039346656037)
	h.mix(uint64(s.Collation))
	h.add(s.Names)
	for i := range s.Vars {
		h.add(s.Vars[i].Name)
		h.add(s.Vars[i].SQL)
	}
	return uint64(h)
}

// Fingerprint hashes the whole state — the settings, the schema and the
// flags — so comparing a connection to a session is usually one integer
// comparison (no allocation).
func (s *State) Fingerprint() uint64 {
	h := fnvHash(s.Settings())
	flags := byte(0)
	if s.Autocommit {
		flags |= 1
	}
	if s.MultiStatements {
		flags |= 2
	}
	h.mix(uint64(flags))
	h.mix(uint64(s.Caps))
	h.add(s.Schema)
	return uint64(h)
}

// fnvHash is an FNV-1a state.
type fnvHash uint64

func (h *fnvHash) mix(v uint64) {
	*h ^= fnvHash(v)
	*h *= 1099511628211
}

// add hashes b and a field separator.
func (h *fnvHash) add(b string) {
	for i := 0; i < len(b); i++ {
		h.mix(uint64(b[i]))
	}
	h.mix(0xff)
}

// Equal reports whether two states are the same.
func (s *State) Equal(o *State) bool {
	if s.Schema != o.Schema || s.Collation != o.Collation || s.Names != o.Names || s.Autocommit != o.Autocommit ||
		s.MultiStatements != o.MultiStatements || s.Caps != o.Caps || len(s.Vars) != len(o.Vars) {
		return false
	}
	for i := range s.Vars {
		if s.Vars[i] != o.Vars[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that shares nothing with s.
func (s *State) Clone() State {
	c := *s
	c.Vars = append([]Var(nil), s.Vars...)
	return c
}

// VarsSubset reports whether every variable set on the connection (have)
// is also set by the session (want), whatever the values: then syncing only
// sends SET for the ones that differ. Otherwise the connection holds a
// setting the session never asked for, and only a reset (or
// COM_CHANGE_USER) removes it. A changed value never needs a reset — that
// would also roll back an open transaction. Both slices are sorted by Name.
func VarsSubset(have, want []Var) bool {
	j := 0
	for _, h := range have {
		for j < len(want) && want[j].Name < h.Name {
			j++
		}
		if j == len(want) || want[j].Name != h.Name {
			return false
		}
	}
	return true
}

// Quality grades how well a pooled connection fits a request, as ProxySQL's
// connection_quality_level does (reference §5.1).
type Quality int

// Quality levels, worst first.
const (
	QualityNone       Quality = iota // incompatible: open a new connection
	QualityChangeUser                // needs COM_CHANGE_USER or a reset
	QualitySync                      // needs SET / COM_INIT_DB / COM_SET_OPTION
	QualityPerfect                   // ready as is
)

// collationName returns the name and character set of a collation id, or
// false when unknown.
func collationName(id uint8) (name, cs string, ok bool) { return CollationName(uint16(id)) }

// CollationName returns the name and character set of a collation id (as
// a handshake or a column definition carries it), or false when unknown or
// when either is not a plain identifier (so both can be spliced into SQL).
func CollationName(id uint16) (name, cs string, ok bool) {
	c, err := charset.GetCollationByID(int(id))
	if err != nil || !IsIdent(c.Name) || !IsIdent(c.CharsetName) {
		return "", "", false
	}
	return c.Name, c.CharsetName, true
}

// IsIdent reports whether s (a name of a character set or collation, say)
// is safe to splice into SQL unquoted.
func IsIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// assignment turns a "SET …" statement into an item that can be joined with
// others in one SET statement, or returns false when it must run alone
// (SET [SESSION] TRANSACTION … must be the only item of its statement).
func assignment(stmt string) (string, bool) {
	s := strings.TrimSpace(stmt)
	if len(s) < 4 || !strings.EqualFold(s[:4], "SET ") {
		return "", false
	}
	rest := strings.TrimSpace(s[4:])
	upper := strings.ToUpper(rest)
	if strings.HasPrefix(upper, "TRANSACTION") || strings.HasPrefix(upper, "SESSION TRANSACTION") ||
		strings.HasPrefix(upper, "LOCAL TRANSACTION") || strings.HasPrefix(upper, "GLOBAL") {
		return "", false
	}
	return rest, true
}
