package router

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/rules"
)

// Session state that can follow a session to another backend connection.
//
// backend.State (schema, character set, autocommit, tracked variables) is
// replayed by Sync on whatever connection serves the session. Beyond it, a
// connection a session is pinned to may hold state the session created
// there: user variables and text-protocol prepared statements. The proxy
// carries those too — it captures each user variable's value from the
// backend after a statement that may have changed it (one SELECT @a, @b …
// on the same connection) and records each PREPARE — so that when the
// connection is lost, the next connection of that hostgroup gets them
// replayed and the session goes on as if nothing happened.
//
// What cannot be carried (an open transaction, temporary tables, LOCK
// TABLES, GET_LOCK, a pending SQL_CALC_FOUND_ROWS, an open cursor, unread
// warnings, a SET the proxy could not parse) pins the session; held.pinnedBy
// names it, stats_mysql_processlist shows it, and losing the connection
// then gives the client an error that says what was lost.

// carried is what a session holds on its connection of one hostgroup.
type carried struct {
	hg       int
	userVars []userVar     // by name, as captured last
	prepares []textPrepare // by name, in the order they were prepared
	failed   string        // why the capture could not be done ("" when it could)
}

type userVar struct {
	name    string // lower case
	literal string // SQL literal of its value: 42, 1.5e0, 'text', X'…', NULL
}

type textPrepare struct {
	name string // lower case
	sql  string // the PREPARE statement as the client sent it
	// schema is the session's schema when it was prepared: its table
	// names resolve there, whatever the session uses when it is replayed.
	schema string
	// fromVar and fromLit: PREPARE … FROM @var, and the literal of the
	// text @var held then (the variable may hold another one since).
	fromVar, fromLit string
}

func (c *carried) empty() bool { return len(c.userVars) == 0 && len(c.prepares) == 0 && c.failed == "" }

// carryFor returns the carried state of hostgroup hg, making it when make
// is set (nil otherwise, when there is none).
func (s *session) carryFor(hg int, make bool) *carried {
	for _, c := range s.carry {
		if c.hg == hg {
			return c
		}
	}
	if !make {
		return nil
	}
	c := &carried{hg: hg}
	s.carry = append(s.carry, c)
	return c
}

// noteCarried records, after a successful statement on h, the state it
// left there that the proxy can carry: tracked assignments of a SET that
// also set user variables, user variable values, text PREPAREs. q is the
// statement's text. A SET the proxy could not parse marks h untracked.
func (s *session) noteCarried(rt *live.Runtime, h *held, q []byte, set *sqlscan.SetStatement) {
	if set.Outcome == sqlscan.SetLock {
		if set.UserVariablesOnly() {
			applySet(&s.state, set)
			h.bc.NoteState(&s.state)
		} else if h.untracked == "" {
			h.untracked = set.Reason
		}
	}
	switch s.digest.Kind {
	case sqlscan.KindPrepare:
		if name, ok := preparedName(q, "PREPARE"); ok {
			c := s.carryFor(h.hg, true)
			tp := textPrepare{name: name, sql: string(q), schema: s.state.Schema}
			if v, ok := preparedFromVar(q); ok {
				// The text is what @v holds now: read it back with the
				// other user variables, and keep it with the statement.
				s.captureUserVars(rt, h, q)
				tp.fromVar, tp.fromLit = v, "NULL"
				for _, uv := range c.userVars {
					if uv.name == v {
						tp.fromLit = uv.literal
					}
				}
			}
			c.prepares = append(removePrepare(c.prepares, name), tp)
		}
	case sqlscan.KindDeallocate:
		if name, ok := deallocatedName(q); ok {
			if c := s.carryFor(h.hg, false); c != nil {
				c.prepares = removePrepare(c.prepares, name)
			}
		}
	}
	if bytes.IndexByte(q, '@') >= 0 && (sqlscan.MayAssignUserVars(s.digest.Kind, q) || s.digest.Kind == sqlscan.KindCall) && s.digest.Kind != sqlscan.KindPrepare {
		s.captureUserVars(rt, h, q)
	}
}

// failedPrepare forgets the text PREPARE of the name a failed PREPARE q
// named: once it has parsed the PREPARE statement, the server deallocates a
// statement of that name before it prepares the new one, so after the error
// there is none, and a move must not bring the old one back. A PREPARE the
// server could not parse (PREPARE s FROM 'x' garbage) left it alone.
func (s *session) failedPrepare(h *held, q []byte) {
	if !wellFormedPrepare(q, s.dialect()) {
		return
	}
	if name, ok := preparedName(q, "PREPARE"); ok {
		if c := s.carryFor(h.hg, false); c != nil {
			c.prepares = removePrepare(c.prepares, name)
		}
	}
}

// wellFormedPrepare reports whether q is PREPARE name FROM followed by one
// string literal or @variable and nothing else: a statement the server
// parses.
func wellFormedPrepare(q []byte, d sqlscan.Dialect) bool {
	if _, ok := preparedFromVar(q); ok {
		return true
	}
	t := bytes.TrimRight(q, "; \t\r\n")
	f := bytes.Fields(t)
	if len(f) < 4 || !strings.EqualFold(string(f[0]), "PREPARE") || !strings.EqualFold(string(f[2]), "FROM") {
		return false
	}
	// f[3] and what follows it: past three words and the spaces after them.
	i := 0
	for w := 0; w < 3; w++ {
		for i < len(t) && sqlscan.IsSpace(t[i]) {
			i++
		}
		for i < len(t) && !sqlscan.IsSpace(t[i]) {
			i++
		}
	}
	for i < len(t) && sqlscan.IsSpace(t[i]) {
		i++
	}
	lit := t[i:]
	if lit[0] != '\'' && lit[0] != '"' {
		return false
	}
	return sqlscan.QuoteEnd(lit, 0, d) == len(lit)-1
}

// readComputed reads back, on h, the tracked variables a SET gave computed
// values (set.Computed) and turns set into the SetTracked statement of
// those values. It leaves set a SetLock when they cannot be read or
// written as literals.
func (s *session) readComputed(rt *live.Runtime, h *held, set *sqlscan.SetStatement) {
	var b strings.Builder
	b.WriteString("SELECT ")
	n := 0
	for _, a := range set.Assignments {
		if a.Kind == sqlscan.AssignComputed {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString("@@SESSION." + a.Name) // a tracked variable's name: an identifier
			n++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
	defer cancel()
	res, err := h.bc.Query(ctx, b.String())
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != n {
		s.log.Debug().Err(err).Msg("reading back computed session variables failed")
		return
	}
	out := make([]sqlscan.Assignment, len(set.Assignments))
	copy(out, set.Assignments)
	i := 0
	for k, a := range out {
		if a.Kind != sqlscan.AssignComputed {
			continue
		}
		v := res.Rows[0][i]
		lit := "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(v.String) + "'"
		if !v.Valid {
			lit = "NULL"
		} else if isNumber(v.String, false) {
			lit = v.String
		}
		// The literal is written with backslash escapes, in the zero Dialect.
		one := sqlscan.ParseSet([]byte("SET "+a.Name+" = "+lit), 0)
		if one.Outcome != sqlscan.SetTracked || len(one.Assignments) != 1 {
			return
		}
		out[k] = one.Assignments[0]
		i++
	}
	set.Assignments, set.Outcome, set.Reason, set.Computed = out, sqlscan.SetTracked, "", false
}

// captureUserVars reads back, on h, the values of the user variables q
// mentions.
func (s *session) captureUserVars(rt *live.Runtime, h *held, q []byte) {
	s.varNames = sqlscan.UserVarNames(q, s.dialect(), s.varNames[:0])
	if len(s.varNames) == 0 {
		return
	}
	// Each variable's value (its type tells numbers from strings), and a
	// string's own bytes, character set and collation: SELECT @v alone
	// converts a string to the connection's character set.
	// FOUND_ROWS() first: this SELECT resets it on the server, and the
	// client may ask for it next (SQL_CALC_FOUND_ROWS with @rownum := …).
	var b strings.Builder
	b.WriteString("SELECT FOUND_ROWS()")
	for _, n := range s.varNames {
		v := quoteUserVar(n)
		b.WriteString(", " + v + ", HEX(" + v + "), CHARSET(" + v + "), COLLATION(" + v + ")")
	}
	c := s.carryFor(h.hg, true)
	ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
	defer cancel()
	res, err := h.bc.Query(ctx, b.String())
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1+4*len(s.varNames) {
		// The values stay as the connection has them; if it is lost, the
		// session is told its user variables went with it.
		c.failed = "user variables (they could not be read back)"
		s.log.Debug().Err(err).Msg("capturing user variables failed")
		return
	}
	if n, err := strconv.ParseUint(res.Rows[0][0].String, 10, 64); err == nil {
		s.foundRows, s.foundRowsKnown = n, true
	}
	for i, n := range s.varNames {
		row := res.Rows[0][1+4*i:]
		lit := userVarLiteral(res.Types[1+4*i], row[0], row[1].String, row[2].String, row[3].String)
		c.userVars = setUserVar(c.userVars, n, lit)
	}
}

// replay sets the carried state of hostgroup h.hg on h, a connection that
// has just joined the session in place of a lost one. On success h holds
// what the lost connection held, and is pinned as it was.
func (s *session) replay(rt *live.Runtime, h *held, c *carried) error {
	if c.failed != "" {
		return fmt.Errorf("%s", c.failed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rt.Router.ConnectTimeoutMax)
	defer cancel()
	if len(c.userVars) > 0 {
		var b strings.Builder
		b.WriteString("SET ")
		for i, v := range c.userVars {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteUserVar(v.name))
			b.WriteString(" = ")
			b.WriteString(v.literal)
		}
		if err := h.bc.Exec(ctx, b.String()); err != nil {
			return fmt.Errorf("user variables: %w", err)
		}
		h.flags |= rules.FlagUserVariable
	}
	for _, p := range c.prepares {
		if err := s.replayPrepare(ctx, h, c, &p); err != nil {
			return fmt.Errorf("prepared statement %s: %w", p.name, err)
		}
		h.flags |= rules.FlagPreparedStatement
	}
	return nil
}

// replayPrepare prepares p again on h as it was prepared: in the schema
// of its PREPARE, from the text its variable held then; h is left in the
// session's schema and its variables as they are now.
func (s *session) replayPrepare(ctx context.Context, h *held, c *carried, p *textPrepare) error {
	cur := h.bc.State().Schema
	if p.schema != "" && p.schema != cur {
		if cur == "" {
			return fmt.Errorf("prepared in schema %s, and the connection cannot go back to no schema", p.schema)
		}
		if err := h.bc.Exec(ctx, "USE "+quoteIdent(p.schema)); err != nil {
			return err
		}
		err := s.prepareAgain(ctx, h, c, p)
		// Back in the session's schema, or the connection's state is not
		// what the proxy records: the replay fails and it is discarded.
		if berr := h.bc.Exec(ctx, "USE "+quoteIdent(cur)); berr != nil {
			return berr
		}
		return err
	}
	return s.prepareAgain(ctx, h, c, p)
}

// prepareAgain runs p's PREPARE on h, from the text its variable held
// when it was prepared.
func (s *session) prepareAgain(ctx context.Context, h *held, c *carried, p *textPrepare) error {
	if p.fromVar == "" {
		return h.bc.Exec(ctx, p.sql)
	}
	v := quoteUserVar(p.fromVar)
	now := "NULL"
	for _, uv := range c.userVars {
		if uv.name == p.fromVar {
			now = uv.literal
		}
	}
	if err := h.bc.Exec(ctx, "SET "+v+" = "+p.fromLit); err != nil {
		return err
	}
	if err := h.bc.Exec(ctx, "PREPARE "+quoteIdent(p.name)+" FROM "+v); err != nil {
		return err
	}
	return h.bc.Exec(ctx, "SET "+v+" = "+now)
}

// quoteIdent writes `name` with backquotes doubled.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// preparedFromVar reads the variable of "PREPARE name FROM @var".
func preparedFromVar(q []byte) (string, bool) {
	f := bytes.Fields(bytes.TrimRight(q, "; \t\r\n"))
	if len(f) != 4 || !strings.EqualFold(string(f[2]), "FROM") || len(f[3]) < 2 || f[3][0] != '@' || f[3][1] == '@' {
		return "", false
	}
	name := string(f[3][1:])
	if len(name) >= 2 && (name[0] == '`' || name[0] == '\'' || name[0] == '"') && name[len(name)-1] == name[0] {
		name = name[1 : len(name)-1]
	}
	return sqlscan.LowerASCII(name), name != ""
}

// pinMask is the set of reasons why the state on a connection cannot
// follow the session elsewhere: bits of pinReasons.
type pinMask uint16

const (
	pinTransaction pinMask = 1 << iota
	pinTemporaryTable
	pinLockTables
	pinGetLock
	pinFoundRows
	pinSQLLogBin0
	pinCursor
	pinWarnings
	pinUntrackedSet
	pinNextTransaction
	pinStoredProcedure
	pinHandler
	pinBackupLock
	pinSequence
)

var pinReasons = [...]string{
	"an open transaction", "temporary tables", "LOCK TABLES", "GET_LOCK locks",
	"a pending SQL_CALC_FOUND_ROWS", "sql_log_bin=0", "an open cursor", "unread warnings",
	"a SET the proxy cannot replay", "a SET TRANSACTION for the next transaction",
	"a stored procedure call (its session changes cannot be replayed)",
	"an open HANDLER", "BACKUP STAGE or BACKUP LOCK", "sequence values (LASTVAL)",
}

// flagPins are the status flags whose state cannot be carried (user
// variables and text PREPAREs can: see carry).
var flagPins = [...]struct {
	flag rules.StatusFlags
	pin  pinMask
}{
	{rules.FlagTemporaryTable, pinTemporaryTable}, {rules.FlagLockTables, pinLockTables},
	{rules.FlagGetLock, pinGetLock}, {rules.FlagFoundRows, pinFoundRows},
	{rules.FlagSQLLogBin0, pinSQLLogBin0}, {rules.FlagStoredProcedure, pinStoredProcedure},
	{rules.FlagHandler, pinHandler}, {rules.FlagBackupLock, pinBackupLock}, {rules.FlagSequence, pinSequence},
}

// pins returns why h cannot be left without losing session state (0: all
// it holds can be carried).
func (h *held) pins() pinMask {
	var m pinMask
	if h.inTrx || h.maybeTrx {
		m |= pinTransaction
	}
	for _, fp := range flagPins {
		if h.flags&fp.flag != 0 {
			m |= fp.pin
		}
	}
	if h.cursors > 0 {
		m |= pinCursor
	}
	if h.warnings {
		m |= pinWarnings
	}
	if h.untracked != "" {
		m |= pinUntrackedSet
	}
	if h.nextTrx {
		m |= pinNextTransaction
	}
	return m
}

// transientPins end by themselves within a few statements — the end of the
// transaction, the next statement — unlike a temporary table or a lock.
const transientPins = pinTransaction | pinNextTransaction | pinFoundRows | pinWarnings | pinCursor

// waitsForBoundary reports whether h cannot move now only for state that
// ends soon (a transaction): a move asked meanwhile waits for it.
func (h *held) waitsForBoundary() bool {
	p := h.pins()
	return p != 0 && p&^transientPins == 0
}

// pinnedBy names the state on h that cannot follow the session to another
// connection, "" when all of it can.
func (h *held) pinnedBy() string { return m2text(h.pins(), h.untracked) }

// m2text renders a pin mask, with the reason of an untracked SET.
func m2text(m pinMask, untracked string) string {
	if m == 0 {
		return ""
	}
	var b strings.Builder
	for i, r := range pinReasons {
		if m&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r)
		if pinMask(1<<i) == pinUntrackedSet && untracked != "" {
			b.WriteString(" (" + untracked + ")")
		}
	}
	return b.String()
}

// quoteUserVar writes @`name` with backquotes doubled.
func quoteUserVar(name string) string {
	return "@" + quoteIdent(name)
}

// userVarLiteral is the SQL literal that gives a user variable the value
// v had, of the same kind: integers and decimals as numbers, doubles with
// an exponent (so they stay DOUBLE), strings as their own bytes in hex
// (HEX(@v)) with their own character set and collation (CHARSET(@v),
// COLLATION(@v)), binary strings as plain hex. Hex keeps the literal
// independent of the session's sql_mode (NO_BACKSLASH_ESCAPES) and of its
// character set; a value that does not look like its type is sent as a
// string.
func userVarLiteral(typ byte, v sql.NullString, hex, cs, coll string) string {
	if !v.Valid {
		return "NULL"
	}
	switch typ {
	case 0x01, 0x02, 0x03, 0x08, 0x09, 0x0d: // TINY, SHORT, LONG, LONGLONG, INT24, YEAR
		if isNumber(v.String, false) {
			return v.String
		}
	case 0x00, 0xf6: // DECIMAL, NEWDECIMAL
		if isNumber(v.String, false) {
			return v.String
		}
	case 0x04, 0x05: // FLOAT, DOUBLE
		if isNumber(v.String, true) {
			if strings.ContainsAny(v.String, "eE") {
				return v.String
			}
			return v.String + "e0"
		}
	}
	if !isHex(hex) {
		hex = fmt.Sprintf("%X", v.String)
	}
	if cs != "" && cs != "binary" && backend.IsIdent(cs) && backend.IsIdent(coll) {
		return fmt.Sprintf("_%s X'%s' COLLATE %s", cs, hex, coll)
	}
	return fmt.Sprintf("X'%s'", hex)
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isNumber reports whether s is a plain decimal number (with an exponent
// when exp is set).
func isNumber(s string, exp bool) bool {
	if s == "" {
		return false
	}
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '-' || c == '+':
			if i != 0 && !(exp && (s[i-1] == 'e' || s[i-1] == 'E')) {
				return false
			}
		case c == '.':
		case (c == 'e' || c == 'E') && exp:
		default:
			return false
		}
	}
	return digits
}

func setUserVar(vars []userVar, name, lit string) []userVar {
	for i := range vars {
		if vars[i].name == name {
			vars[i].literal = lit
			return vars
		}
	}
	return append(vars, userVar{name: name, literal: lit})
}

func removePrepare(ps []textPrepare, name string) []textPrepare {
	for i := range ps {
		if ps[i].name == name {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}

// preparedName reads the statement name after the keyword kw ("PREPARE
// name FROM …", "EXECUTE name").
func preparedName(q []byte, kw string) (string, bool) {
	f := bytes.Fields(q)
	if len(f) < 2 || !strings.EqualFold(string(f[0]), kw) {
		return "", false
	}
	name := string(f[1])
	if len(name) >= 2 && name[0] == '`' && name[len(name)-1] == '`' {
		name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
	}
	return sqlscan.LowerASCII(name), name != ""
}

// deallocatedName reads the name of "DEALLOCATE PREPARE name" or "DROP
// PREPARE name".
func deallocatedName(q []byte) (string, bool) {
	f := bytes.Fields(bytes.TrimRight(q, "; \t\r\n"))
	if len(f) != 3 || !strings.EqualFold(string(f[1]), "PREPARE") ||
		!(strings.EqualFold(string(f[0]), "DEALLOCATE") || strings.EqualFold(string(f[0]), "DROP")) {
		return "", false
	}
	name := string(f[2])
	if len(name) >= 2 && name[0] == '`' && name[len(name)-1] == '`' {
		name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
	}
	return sqlscan.LowerASCII(name), true
}
