package backend

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/sluice-proxy/sluice/internal/wire"
)

func (c *BackendConn) usable() error {
	if c.closed || c.broken {
		return fmt.Errorf("%w: %s", ErrConnBroken, c.srv.addr)
	}
	if c.aborted.Load() {
		c.broken = true
		return fmt.Errorf("%w: %s: aborted by the proxy", ErrConnBroken, c.srv.addr)
	}
	return nil
}

// do runs one command under ctx and classifies its error: a server ERR
// leaves the connection usable, anything else breaks it.
func (c *BackendConn) do(ctx context.Context, f func() error) error {
	if err := c.usable(); err != nil {
		return err
	}
	done := c.guard(ctx)
	err := f()
	if done() && err != nil {
		if _, ok := IsSQLError(err); !ok {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
	return c.fail(err)
}

// Exec runs a statement for the proxy itself (SET, USE, init_connect),
// discarding any rows. A *wire.SQLError means the server refused it and the
// connection is still usable.
func (c *BackendConn) Exec(ctx context.Context, query string) error {
	return c.do(ctx, func() error { return c.queryText(query, nil) })
}

// Query runs a statement and returns its first result set as text.
func (c *BackendConn) Query(ctx context.Context, query string) (*Result, error) {
	res := &Result{}
	err := c.do(ctx, func() error { return c.queryText(query, res) })
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Ping sends COM_PING.
func (c *BackendConn) Ping(ctx context.Context) error {
	return c.do(ctx, func() error { return c.simple([]byte{wire.ComPing}) })
}

// ResetConnection clears the server-side session (COM_RESET_CONNECTION;
// COM_CHANGE_USER on servers without it): variables go back to the global
// values, user variables, temporary tables, locks and prepared statements
// are dropped. The schema is kept. init_connect runs again.
func (c *BackendConn) ResetConnection(ctx context.Context) error {
	return c.do(ctx, func() error { return c.reset() })
}

// ChangeUser logs the connection in as another user (COM_CHANGE_USER),
// which also resets the session.
func (c *BackendConn) ChangeUser(ctx context.Context, cred *Credentials, schema string, collation uint8) error {
	return c.do(ctx, func() error { return c.changeUser(cred, schema, collation) })
}

func (c *BackendConn) writeCommand(p []byte) error {
	c.w.ResetSeq()
	if err := c.w.WritePacket(p); err != nil {
		return err
	}
	return c.w.Flush()
}

// simple sends a command whose answer is one OK, EOF or ERR packet
// (COM_PING, COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION).
func (c *BackendConn) simple(p []byte) error {
	return c.query(p, nil)
}

// queryText sends q as a COM_QUERY for the proxy itself; res (may be nil)
// receives the first result set.
func (c *BackendConn) queryText(q string, res *Result) error {
	c.cmd = append(append(c.cmd[:0], wire.ComQuery), q...)
	return c.query(c.cmd, res)
}

// query runs command p through the one response walker (Run) with no
// client, and turns a server ERR into the returned error.
func (c *BackendConn) query(p []byte, res *Result) error {
	r, err := c.Run(p, ShapeResult, &Sink{Collect: res})
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	if res != nil {
		res.AffectedRows, res.LastInsertID, res.Status, res.Warnings = r.Affected, r.InsertID, r.Status, r.Warnings
	}
	return nil
}

// ShowWarnings runs SHOW WARNINGS for the proxy itself (the diagnostics
// area stays as it was: the client's own SHOW WARNINGS sees the same).
func (c *BackendConn) ShowWarnings() (*Result, error) {
	var res Result
	if err := c.queryText("SHOW WARNINGS", &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *BackendConn) initDB(schema string) error {
	c.cmd = append(append(c.cmd[:0], wire.ComInitDB), schema...)
	c.srv.initDBs.Add(1)
	if err := c.simple(c.cmd); err != nil {
		return err
	}
	c.state.Schema = schema
	return nil
}

func (c *BackendConn) setOption(multi bool) error {
	opt := wire.OptionMultiStatementsOff
	if multi {
		opt = wire.OptionMultiStatementsOn
	}
	c.cmd = binary.LittleEndian.AppendUint16(append(c.cmd[:0], wire.ComSetOption), opt)
	if err := c.simple(c.cmd); err != nil {
		return err
	}
	c.state.MultiStatements = multi
	c.known |= knownMulti
	return nil
}

// afterReset records what a reset leaves: the schema, nothing else we can
// vouch for.
func (c *BackendConn) afterReset(schema string) {
	c.state = State{Schema: schema, Caps: c.state.Caps, MultiStatements: c.state.MultiStatements}
	c.known = 0
	c.dirty = false
	c.dropStmts()
	c.fp = c.state.Fingerprint()
}

func (c *BackendConn) reset() error {
	err := c.simple([]byte{wire.ComResetConnection})
	if e, ok := IsSQLError(err); ok && e.Code == 1047 {
		return c.changeUser(&c.cred, c.state.Schema, c.state.Collation)
	}
	if err != nil {
		return err
	}
	c.afterReset(c.state.Schema)
	return c.runInitConnect()
}

func (c *BackendConn) changeUser(cred *Credentials, schema string, collation uint8) error {
	old := c.cred
	c.cred = *cred
	c.srv.changeUsers.Add(1)
	plugin, auth, err := c.authResponse(wire.AuthNativePassword, c.salt)
	if err != nil {
		return err
	}
	cs := uint16(collation)
	if cs == 0 {
		cs = 45 // utf8mb4_general_ci; the state records "server default" as unknown
	}
	c.scratch = wire.AppendChangeUser(c.scratch[:0], c.caps, &wire.ChangeUser{
		User: cred.User, AuthResponse: auth, DB: schema, Charset: cs, AuthPlugin: plugin,
		Attrs: []wire.Attr{{Key: "_client_name", Value: "sluice"}},
	})
	if err := c.writeCommand(c.scratch); err != nil {
		return err
	}
	if err := c.authResult(plugin); err != nil {
		// A refused COM_CHANGE_USER leaves the connection unusable:
		// MySQL closes it.
		c.cred = old
		c.broken = true
		return err
	}
	c.afterReset(schema)
	if collation != 0 {
		c.state.Collation = collation
		c.known |= knownCharset
		c.fp = c.state.Fingerprint()
	}
	return c.runInitConnect()
}

func (c *BackendConn) runInitConnect() error {
	o := c.opts
	if o == nil {
		return nil
	}
	if ic := o.initConnect(c.srv.key.Hostgroup); ic != "" {
		return c.queryText(ic, nil)
	}
	return nil
}

// Sync brings the connection to the session state want, logged in as cred,
// with as few round trips as it can: COM_CHANGE_USER when the user differs
// (or COM_RESET_CONNECTION when the connection holds variables the session
// never set), COM_SET_OPTION for multi-statements, one SET statement for
// autocommit, the character set and every differing tracked variable (SET …
// TRANSACTION statements run on their own), and COM_INIT_DB for the schema,
// last, in the session's character set. A connection already in state want costs one comparison.
//
// Empty Schema, and Collation 0 with empty Names, mean "any". A
// *wire.SQLError means the server refused something (unknown database, bad
// variable value): the connection stays usable and will be reset before its
// next use. Any other error means it is broken. o, when not nil, become the
// connection's options (init_connect after a reset, the age limit at Put):
// the holder's runtime.
func (c *BackendConn) Sync(ctx context.Context, o *Options, cred *Credentials, want *State) error {
	if o != nil {
		c.opts = o
	}
	if err := c.usable(); err != nil {
		return err
	}
	if c.known == knownAll && !c.dirty && c.cred.User == cred.User && c.fp == want.Fingerprint() {
		return nil
	}
	if want.Caps != c.state.Caps {
		return fmt.Errorf("%w: client capabilities differ", ErrBadState)
	}
	if !c.differs(cred, want) {
		return nil
	}
	return c.do(ctx, func() error { return c.sync(cred, want) })
}

// differs reports whether Sync has anything to do, honouring the "any"
// meaning of an empty Schema and of Collation 0 with empty Names (the
// fingerprint cannot: the connection's own values are in it).
func (c *BackendConn) differs(cred *Credentials, want *State) bool {
	const need = knownAutocommit | knownMulti
	switch {
	case c.dirty, c.cred.User != cred.User, c.known&need != need,
		want.Schema != "" && want.Schema != c.state.Schema,
		c.state.Autocommit != want.Autocommit, c.state.MultiStatements != want.MultiStatements,
		(want.Names != "" || want.Collation != 0) &&
			(c.known&knownCharset == 0 || c.state.Names != want.Names || c.state.Collation != want.Collation),
		len(c.state.Vars) != len(want.Vars):
		return true
	}
	for i := range want.Vars {
		if c.state.Vars[i] != want.Vars[i] {
			return true
		}
	}
	return false
}

func (c *BackendConn) sync(cred *Credentials, want *State) error {
	// A server's refusal (an ERR) of one step leaves what that step would
	// change as it was — COM_INIT_DB, COM_SET_OPTION and one SET of many
	// assignments fail whole — and the connection keeps the rest of its
	// state (a transaction, temporary tables): it is not reset for it.
	// Only a failed change of user or reset, and a failure among SETs
	// run one by one, leave the state unknown (dirty: reset next time).
	if c.cred.User != cred.User {
		if err := c.changeUser(cred, want.Schema, want.Collation); err != nil {
			c.dirtyOn(err)
			return err
		}
	} else if c.dirty || !VarsSubset(c.state.Vars, want.Vars) {
		if err := c.reset(); err != nil {
			c.dirtyOn(err)
			return err
		}
	}
	if c.known&knownMulti == 0 || c.state.MultiStatements != want.MultiStatements {
		if err := c.setOption(want.MultiStatements); err != nil {
			return err
		}
	}
	next := c.state
	var items []string
	var alone []string
	add := func(stmt string) error {
		if a, ok := assignment(stmt); ok {
			items = append(items, a)
			return nil
		}
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(stmt)), "SET ") {
			return fmt.Errorf("%w: %q is not a SET statement", ErrBadState, stmt)
		}
		alone = append(alone, stmt)
		return nil
	}
	if c.known&knownAutocommit == 0 || c.state.Autocommit != want.Autocommit {
		if want.Autocommit {
			items = append(items, "autocommit=1")
		} else {
			items = append(items, "autocommit=0")
		}
		next.Autocommit = want.Autocommit
	}
	charsetKnown := c.known&knownCharset != 0
	switch {
	case want.Names != "":
		if !charsetKnown || c.state.Names != want.Names {
			if err := add(want.Names); err != nil {
				return err
			}
			c.srv.setNames.Add(1)
		}
		next.Names, next.Collation, charsetKnown = want.Names, want.Collation, true
	case want.Collation != 0:
		if !charsetKnown || c.state.Names != "" || c.state.Collation != want.Collation {
			name, cs, ok := collationName(want.Collation)
			switch {
			case ok && want.Collation == 255 && strings.Contains(c.version, "MariaDB") && IsIdent(cs):
				// MySQL 8 clients open with utf8mb4_0900_ai_ci (255, the
				// largest id a handshake byte holds), which MariaDB does not
				// know (ProxySQL #4841): ask for the character set and let
				// the server pick its collation.
				items = append(items, "NAMES "+cs)
				c.srv.setNames.Add(1)
				next.Names, next.Collation, charsetKnown = "", want.Collation, true
			case ok && IsIdent(name) && IsIdent(cs):
				items = append(items, "NAMES "+cs+" COLLATE "+name)
				c.srv.setNames.Add(1)
				next.Names, next.Collation, charsetKnown = "", want.Collation, true
			}
		}
	}
	for _, v := range want.Vars {
		if !hasVar(c.state.Vars, v) {
			if err := add(v.SQL); err != nil {
				return err
			}
		}
	}
	next.Vars = append([]Var(nil), want.Vars...)
	if len(items) > 0 {
		if err := c.queryText("SET "+strings.Join(items, ", "), nil); err != nil {
			return err
		}
	}
	for i, stmt := range alone {
		if err := c.queryText(stmt, nil); err != nil {
			if len(items) > 0 || i > 0 {
				c.dirtyOn(err)
			}
			return err
		}
	}
	c.state = next
	c.known = knownAll
	if !charsetKnown {
		c.known &^= knownCharset
	}
	c.dirty = false
	var err error
	if want.Schema != "" && want.Schema != c.state.Schema {
		// The schema after the character set: COM_INIT_DB's name is read
		// in the connection's character_set_client, and the session wrote
		// it in its own (a non-ASCII name failed with 1300, or named
		// another schema, on a connection that had served a session of
		// another character set).
		err = c.initDB(want.Schema)
	}
	c.fp = c.state.Fingerprint()
	return err
}

// dirtyOn marks the connection's state unknown after a server's refusal
// (other errors break the connection).
func (c *BackendConn) dirtyOn(err error) {
	if _, ok := IsSQLError(err); ok {
		c.dirty = true
	}
}

func hasVar(vars []Var, v Var) bool {
	for _, x := range vars {
		if x.Name == v.Name {
			return x.SQL == v.SQL
		}
	}
	return false
}
