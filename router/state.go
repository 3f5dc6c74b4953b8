package router

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
)

// The session state the proxy tracks for a client and replays on whichever
// backend connection serves it (reference §5.3) is backend.State: the
// schema, the character set, autocommit and the tracked SET variables. A
// backend connection carries the State it was last synced to, so syncing is
// a comparison, not a guess.

// schemaLockedRefused refuses a login (or COM_CHANGE_USER) that asks for
// another schema than the one a schema_locked user is locked to, as USE
// and COM_INIT_DB are refused: silently given the locked schema, an
// application configured for another database would read and write there.
func schemaLockedRefused(u *config.User, db string) *wire.SQLError {
	if u.SchemaLocked && u.DefaultSchema != "" && db != "" && db != u.DefaultSchema {
		return errSchemaLocked(u.DefaultSchema)
	}
	return nil
}

func initialState(rt *live.Runtime, u *config.User, resp *wire.HandshakeResponse) backend.State {
	st := backend.State{
		Collation:       resp.Charset,
		Autocommit:      true,
		MultiStatements: resp.Capabilities&wire.ClientMultiStatements != 0,
		Caps:            resp.Capabilities & backend.ConnCaps,
	}
	switch {
	case u.SchemaLocked && u.DefaultSchema != "":
		st.Schema = u.DefaultSchema
	case resp.DB != "":
		st.Schema = resp.DB
	case u.DefaultSchema != "":
		st.Schema = u.DefaultSchema
	default:
		st.Schema = rt.Router.DefaultSchema
	}
	if st.Collation == 0 {
		st.Collation = rt.Router.DefaultCollation
	}
	userDefaults(&st, u)
	return st
}

// userDefaults applies what mysql_users.attributes sets for a session at
// login and at COM_RESET_CONNECTION: default-transaction_isolation, as a
// tracked SET replayed on every backend connection the session uses.
func userDefaults(st *backend.State, u *config.User) {
	if u.Attributes == "" {
		return
	}
	a, err := config.ParseUserAttributes(u.Attributes)
	if err != nil || a.TransactionIsolation == "" {
		return // Validate refused a bad value at LOAD
	}
	set := sqlscan.ParseSet([]byte("SET SESSION TRANSACTION ISOLATION LEVEL "+strings.ReplaceAll(a.TransactionIsolation, "-", " ")), 0)
	if set.Outcome == sqlscan.SetTracked {
		applySet(st, &set)
	}
}

// setVar records a tracked variable, replacing an earlier value. The slice
// is copied on write: backend connections may share the old one.
func setVar(st *backend.State, name, sql string) {
	i := sort.Search(len(st.Vars), func(i int) bool { return st.Vars[i].Name >= name })
	nv := make([]backend.Var, 0, len(st.Vars)+1)
	nv = append(nv, st.Vars[:i]...)
	nv = append(nv, backend.Var{Name: name, SQL: sql})
	if i < len(st.Vars) && st.Vars[i].Name == name {
		i++
	}
	st.Vars = append(nv, st.Vars[i:]...)
}

// dropVar forgets a tracked variable, copying on write as setVar does.
func dropVar(st *backend.State, name string) {
	for i := range st.Vars {
		if st.Vars[i].Name == name {
			nv := make([]backend.Var, 0, len(st.Vars)-1)
			st.Vars = append(append(nv, st.Vars[:i]...), st.Vars[i+1:]...)
			return
		}
	}
}

// applySet records a tracked SET statement in the session state.
// noteSQLMode updates the session's sql_mode status bits for a SET the
// proxy answered itself (a SET that ran on a server has them in its OK).
func (s *session) noteSQLMode(set *sqlscan.SetStatement) {
	for i := range set.Assignments {
		a := &set.Assignments[i]
		if a.Name != "sql_mode" || a.Kind == sqlscan.AssignComputed {
			continue
		}
		if strings.EqualFold(a.Value, "DEFAULT") {
			s.modeFlags, s.ownMode = backend.DefaultMode(), false
			continue
		}
		s.modeFlags, s.ownMode = sqlModeFlags(a.Value), true
	}
}

// sqlModeFlags are the status bits of an sql_mode value: NO_BACKSLASH_ESCAPES,
// and ANSI_QUOTES directly or through a combination mode that has it.
func sqlModeFlags(mode string) uint16 {
	var f uint16
	for _, m := range strings.FieldsFunc(strings.ToUpper(mode), func(r rune) bool { return r == ',' || r == ' ' }) {
		switch m {
		case "NO_BACKSLASH_ESCAPES":
			f |= wire.StatusNoBackslashEscapes
		case "ANSI_QUOTES", "ANSI", "ORACLE", "POSTGRESQL", "MSSQL", "DB2", "MAXDB":
			f |= wire.StatusANSIQuotes
		}
	}
	return f
}

func applySet(st *backend.State, set *sqlscan.SetStatement) {
	for _, a := range set.Assignments {
		switch a.Kind {
		case sqlscan.AssignAutocommit:
			st.Autocommit = a.Value == "1"
		case sqlscan.AssignNames, sqlscan.AssignCharset:
			st.Names = a.SQL()
			// SET NAMES (and CHARACTER SET) sets these too: an earlier
			// SET of one of them, replayed after it, would undo it.
			for _, v := range [...]string{"character_set_client", "character_set_results", "character_set_connection", "collation_connection"} {
				dropVar(st, v)
			}
		case sqlscan.AssignIgnored, sqlscan.AssignUserVariable, sqlscan.AssignUnsupported, sqlscan.AssignComputed:
		case sqlscan.AssignIsolation, sqlscan.AssignAccessMode:
			if !a.NextTransaction {
				setVar(st, a.Name, a.SQL())
			}
		default:
			setVar(st, a.Name, a.SQL())
		}
	}
}

// clientCharsetRefused is MariaDB's and MySQL's answer to a client that
// asks for a character set the server cannot parse statements in (ucs2,
// utf16, utf16le, utf32: ERR 1231), at login or with SET NAMES, SET
// CHARACTER SET or SET character_set_client; nil for any other.
func clientCharsetRefused(cs string) *wire.SQLError {
	switch cs = strings.ToLower(cs); cs {
	case "ucs2", "utf16", "utf16le", "utf32":
		return &wire.SQLError{Code: 1231, State: "42000",
			Message: fmt.Sprintf("Variable 'character_set_client' can't be set to the value of '%s'", cs)}
	}
	return nil
}

// loginCharsetRefused checks the collation a handshake or COM_CHANGE_USER
// names (0: none, the default applies).
func loginCharsetRefused(id uint8) *wire.SQLError {
	if _, cs, ok := backend.CollationName(uint16(id)); ok {
		return clientCharsetRefused(cs)
	}
	return nil
}

// setCharsetRefused checks the assignments of a tracked SET that name a
// character set or collation, as the server would on the SET itself: the
// SET is answered by the proxy, and a refusal left to the server would
// come with the client's next statement instead (and that statement would
// not run). A character set no server has is refused (1115), and so is a
// collation of another character set than the one named (1253); a
// collation the proxy does not know is left to the server (MySQL 8's are
// more than MariaDB's).
func setCharsetRefused(set *sqlscan.SetStatement) *wire.SQLError {
	for _, a := range set.Assignments {
		names := a.Kind == sqlscan.AssignNames || a.Kind == sqlscan.AssignCharset
		if !names && (a.Kind != sqlscan.AssignVariable || !strings.HasPrefix(a.Name, "character_set_") || a.Name == "character_set_filesystem") {
			continue
		}
		if names || a.Name == "character_set_client" {
			if e := clientCharsetRefused(a.Value); e != nil {
				return e
			}
		}
		v := strings.ToLower(a.Value)
		if v == "default" || v == "" || a.Name == "character_set_results" && v == "null" {
			continue
		}
		def, ok := config.CharsetDefault(v)
		if !ok {
			return &wire.SQLError{Code: 1115, State: "42000", Message: fmt.Sprintf("Unknown character set: '%s'", clip(a.Value, 64))}
		}
		if a.Kind == sqlscan.AssignNames && a.Collate != "" {
			if c, ok := config.LookupCollation(a.Collate); ok && c.Charset != def.Charset {
				return &wire.SQLError{Code: 1253, State: "42000",
					Message: fmt.Sprintf("COLLATION '%s' is not valid for CHARACTER SET '%s'", clip(a.Collate, 64), clip(a.Value, 64))}
			}
		}
	}
	return nil
}

// dialect is how the servers read the session's statements
// (sqlscan.Dialect): its client character set, and the quoting bits of its
// sql_mode as the last status the session saw says them. Every reading of
// the client's SQL the proxy does (digest, statement splitting, SET
// parsing, password masking) goes by it.
func (s *session) dialect() sqlscan.Dialect {
	d := s.csDialect()
	if s.modeFlags&wire.StatusNoBackslashEscapes != 0 {
		d |= sqlscan.NoBackslashEscapes
	}
	if s.modeFlags&wire.StatusANSIQuotes != 0 {
		d |= sqlscan.ANSIQuotes
	}
	return d
}

// csMemo is the Dialect of a client character set and the state it was
// worked out from. Every change of that state replaces Names or Vars (a
// new string, a new slice: setVar and dropVar copy on write) or
// Collation, so comparing them finds a stale memo.
type csMemo struct {
	names string
	vars  *backend.Var
	nvars int
	coll  uint8
	d     sqlscan.Dialect
	ok    bool
}

// csDialect is the Dialect of the session's client character set,
// remembered until its state changes (one comparison per query).
func (s *session) csDialect() sqlscan.Dialect {
	if s.csServer != "" {
		return sqlscan.CharsetDialect(s.csServer)
	}
	st, m := &s.state, &s.csMemo
	var vars *backend.Var
	if len(st.Vars) > 0 {
		vars = &st.Vars[0]
	}
	if m.ok && m.names == st.Names && m.vars == vars && m.nvars == len(st.Vars) && m.coll == st.Collation {
		return m.d
	}
	*m = csMemo{names: st.Names, vars: vars, nvars: len(st.Vars), coll: st.Collation,
		d: sqlscan.CharsetDialect(clientCharset(st)), ok: true}
	return m.d
}

// clientCharset is the character set a server reads the session's
// statements in (character_set_client): the last SET
// character_set_client, else the last SET NAMES / SET CHARACTER SET, else
// the collation of the handshake.
func clientCharset(st *backend.State) string {
	for _, v := range st.Vars {
		if v.Name == "character_set_client" {
			_, val, _ := strings.Cut(v.SQL, "=")
			return strings.Trim(strings.TrimSpace(val), "'\"`")
		}
	}
	if st.Names != "" {
		// "SET NAMES cs [COLLATE c]" or "SET CHARACTER SET cs" (Assignment.SQL).
		f := strings.Fields(st.Names)
		if len(f) >= 3 && strings.EqualFold(f[1], "NAMES") {
			return strings.Trim(f[2], "'\"`")
		}
		if len(f) >= 4 {
			return strings.Trim(f[3], "'\"`")
		}
		return ""
	}
	_, cs, _ := backend.CollationName(uint16(st.Collation))
	return cs
}
