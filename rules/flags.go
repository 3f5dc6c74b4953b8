package rules

import (
	"bytes"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"strings"
)

// StatusFlags are the per-connection status bits that keep a backend
// connection out of the pool (ProxySQL's STATUS_MYSQL_CONNECTION_*,
// reference §5.2). They are computed from the digest text after each query.
type StatusFlags uint32

// Status flags.
const (
	FlagUserVariable      StatusFlags = 1 << iota // @variables used (or an unparsed SET locked the session)
	FlagPreparedStatement                         // text-protocol PREPARE
	FlagTemporaryTable                            // CREATE [OR REPLACE] TEMPORARY TABLE (or MariaDB's SEQUENCE)
	FlagLockTables                                // LOCK TABLE(S) / FLUSH TABLES [t, …] WITH READ LOCK / FOR EXPORT until UNLOCK TABLES
	FlagGetLock                                   // GET_LOCK(
	FlagFoundRows                                 // SQL_CALC_FOUND_ROWS
	FlagSQLLogBin0                                // SET sql_log_bin=0 until sql_log_bin=1
	FlagHasSavepoint                              // SAVEPOINT inside a transaction, until it ends
	FlagNoMultiplex                               // a rule set multiplex=0, until one sets multiplex=1
	FlagHandler                                   // HANDLER t OPEN: the open handler lives on the connection
	// FlagStoredProcedure: a CALL or EXECUTE IMMEDIATE ran; the procedure
	// or the dynamic statement may have changed session state (SET
	// time_zone, autocommit, @variables) the proxy neither parses nor sees
	// in the response. A rule with multiplex=2 for it says it does not.
	FlagStoredProcedure
	// FlagBackupLock: MariaDB's BACKUP STAGE (until BACKUP STAGE END) or
	// BACKUP LOCK t (until BACKUP UNLOCK) holds its locks on the
	// connection, as LOCK TABLES does.
	FlagBackupLock
	// FlagSequence: MariaDB's NEXTVAL(s) / NEXT VALUE FOR s / SETVAL ran;
	// LASTVAL(s) and PREVIOUS VALUE FOR s read the value the connection
	// generated last, so the session keeps it (as after GET_LOCK).
	FlagSequence
)

var flagNames = []string{
	"USER_VARIABLE", "PREPARED_STATEMENT", "TEMPORARY_TABLE", "LOCK_TABLES", "GET_LOCK",
	"FOUND_ROWS", "SQL_LOG_BIN0", "HAS_SAVEPOINT", "NO_MULTIPLEX", "HANDLER", "STORED_PROCEDURE",
	"BACKUP_LOCK", "SEQUENCE",
}

// String lists the set flags, "|"-separated.
func (f StatusFlags) String() string {
	if f == 0 {
		return ""
	}
	var b strings.Builder
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// MultiplexDisabled reports whether the connection must stay attached to
// the session (MySQL_Connection::MultiplexDisabled). HAS_SAVEPOINT only
// matters inside a transaction, which pins the connection by itself.
func (f StatusFlags) MultiplexDisabled() bool {
	return f&^FlagHasSavepoint != 0
}

// KeepVars is the parsed mysql-keep_multiplexing_variables list.
type KeepVars []string

// DefaultKeepMultiplexingVariables is ProxySQL's default.
const DefaultKeepMultiplexingVariables = "tx_isolation,transaction_isolation,version"

// ParseKeepVars splits mysql-keep_multiplexing_variables on spaces and
// commas.
func ParseKeepVars(s string) KeepVars {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// FlagContext is what UpdateFlags needs besides the digest.
type FlagContext struct {
	// Multiplex is the rule outcome (Decision.Multiplex): 0 sets
	// NO_MULTIPLEX, 1 clears it, 2 keeps this query's @variables from
	// disabling multiplexing.
	Multiplex int
	// LegacySetAlgorithm is mysql-set_query_lock_on_hostgroup=0: SET
	// statements disable multiplexing by inspection of the text instead of
	// by the parser's outcome.
	LegacySetAlgorithm bool
	// Set is the parsed statement when the query is a SET (nil otherwise).
	// With the default algorithm a SET raises USER_VARIABLE only when it
	// could not be parsed (SetLock) and no rule set multiplex=2;
	// sql_log_bin assignments drive SQL_LOG_BIN0.
	Set *sqlscan.SetStatement
	// InTransaction reports whether the backend is inside a transaction
	// (SAVEPOINT only matters there).
	InTransaction bool
	// Untracked: the statement changed session state the proxy neither
	// parses nor sees in the response — a multi-statement query with a SET
	// or USE, a prepared SET whose values are parameters. The connection
	// keeps USER_VARIABLE (unless a rule set multiplex=2), with either SET
	// algorithm.
	Untracked bool
	// Keep is mysql-keep_multiplexing_variables.
	Keep KeepVars
}

// legacySessionVars are the SET targets that disable multiplexing under the
// legacy algorithm even without an '@'.
var legacySessionVars = []string{
	"FOREIGN_KEY_CHECKS", "UNIQUE_CHECKS", "AUTO_INCREMENT_INCREMENT", "AUTO_INCREMENT_OFFSET",
	"TIMESTAMP", "GROUP_CONCAT_MAX_LEN",
}

// UpdateFlags returns the connection's flags after running the query whose
// digest is d (MySQL_Connection::ProcessQueryAndSetStatusFlags plus the
// session-side SQL_LOG_BIN0 and HAS_SAVEPOINT handling). It is pure and
// does not allocate.
func UpdateFlags(cur StatusFlags, d *sqlscan.Digest, ctx *FlagContext) StatusFlags {
	text := d.Text
	switch ctx.Multiplex {
	case 0:
		cur |= FlagNoMultiplex
	case 1:
		cur &^= FlagNoMultiplex
	}

	if cur&FlagUserVariable == 0 {
		if ctx.Untracked {
			if ctx.Multiplex != 2 {
				cur |= FlagUserVariable
			}
		} else if sqlscan.HasPrefixFold(text, "SET ") {
			if ctx.LegacySetAlgorithm {
				if ctx.Multiplex != 2 {
					if bytes.IndexByte(text, '@') >= 0 {
						if !keepsMultiplexing(text, ctx.Keep) {
							cur |= FlagUserVariable
						}
					} else {
						for _, v := range legacySessionVars {
							if sqlscan.ContainsFold(text, v) {
								cur |= FlagUserVariable
								break
							}
						}
					}
				}
			} else if ctx.Set != nil && ctx.Set.Outcome == sqlscan.SetLock && ctx.Multiplex != 2 {
				// A rule with multiplex=2 is the documented way to keep an
				// unparsable SET (SET @ApplicationName=…) from pinning the
				// connection.
				cur |= FlagUserVariable
			}
		} else if ctx.Multiplex != 2 && bytes.IndexByte(text, '@') >= 0 && !keepsMultiplexing(text, ctx.Keep) {
			cur |= FlagUserVariable
		}
	}
	if sqlscan.HasPrefixFold(text, "PREPARE ") {
		cur |= FlagPreparedStatement
	}
	// A temporary table, or MariaDB's temporary sequence (a table too).
	if sqlscan.HasPrefixFold(text, "CREATE TEMPORARY ") || sqlscan.HasPrefixFold(text, "CREATE OR REPLACE TEMPORARY ") {
		cur |= FlagTemporaryTable
	}
	if sqlscan.HasPrefixFold(text, "LOCK TABLE") || sqlscan.HasPrefixFold(text, "FLUSH TABLE") &&
		(sqlscan.ContainsFold(text, " WITH READ LOCK") || sqlscan.ContainsFold(text, " FOR EXPORT")) {
		cur |= FlagLockTables
	}
	if cur&FlagLockTables != 0 && sqlscan.HasPrefixFold(text, "UNLOCK TABLE") { // TABLE or TABLES
		cur &^= FlagLockTables
	}
	switch {
	case sqlscan.HasPrefixFold(text, "BACKUP STAGE END"), sqlscan.HasPrefixFold(text, "BACKUP UNLOCK"):
		cur &^= FlagBackupLock
	case sqlscan.HasPrefixFold(text, "BACKUP STAGE "), sqlscan.HasPrefixFold(text, "BACKUP LOCK "):
		cur |= FlagBackupLock
	}
	if sqlscan.HasPrefixFold(text, "HANDLER ") && sqlscan.ContainsFold(text, " OPEN") {
		cur |= FlagHandler
	}
	if ctx.Multiplex != 2 && (sqlscan.HasPrefixFold(text, "CALL ") || sqlscan.HasPrefixFold(text, "EXECUTE IMMEDIATE")) {
		cur |= FlagStoredProcedure
	}
	if sqlscan.HasPrefixFold(text, "SET STATEMENT ") {
		// MariaDB's SET STATEMENT var=… FOR <statement>: the statement is
		// what runs, with its own effects on the session (FOR SET …,
		// FOR CREATE TEMPORARY TABLE …).
		if i := forIndex(text); i >= 0 {
			inner := *d
			inner.Text = text[i:]
			if sqlscan.HasPrefixFold(inner.Text, "SET ") && ctx.Multiplex != 2 {
				cur |= FlagUserVariable
			}
			innerCtx := *ctx
			innerCtx.Set = nil
			cur = UpdateFlags(cur, &inner, &innerCtx)
		}
	}
	// GET_LOCK ( and `GET_LOCK`( are the same call.
	if sqlscan.ContainsFold(text, "GET_LOCK") {
		cur |= FlagGetLock
	}
	if sqlscan.ContainsFold(text, "VAL") && (sqlscan.ContainsFold(text, "NEXTVAL") || sqlscan.ContainsFold(text, "NEXT VALUE FOR") || sqlscan.ContainsFold(text, "SETVAL")) {
		cur |= FlagSequence
	}
	if sqlscan.ContainsFold(text, "SQL_CALC_FOUND_ROWS") {
		cur |= FlagFoundRows
	}

	if ctx.Set != nil {
		for i := range ctx.Set.Assignments {
			a := &ctx.Set.Assignments[i]
			if a.Kind != sqlscan.AssignVariable || a.Name != "sql_log_bin" {
				continue
			}
			switch strings.ToUpper(a.Value) {
			case "0", "OFF", "FALSE":
				cur |= FlagSQLLogBin0
			case "1", "ON", "TRUE":
				cur &^= FlagSQLLogBin0
			}
		}
	}
	switch d.Kind {
	case sqlscan.KindSavepoint:
		if ctx.InTransaction {
			cur |= FlagHasSavepoint
		}
	case sqlscan.KindCommit, sqlscan.KindRollback:
		cur &^= FlagHasSavepoint
	}
	return cur
}

// keepsMultiplexing is MySQL_Connection::IsKeepMultiplexEnabledVariables:
// a SELECT whose every select-list item is an @@variable named (by prefix)
// in keep does not disable multiplexing.
func keepsMultiplexing(text []byte, keep KeepVars) bool {
	if !sqlscan.HasPrefixFold(text, "SELECT ") {
		return false
	}
	rest := text[len("SELECT "):]
	for len(rest) > 0 {
		var item []byte
		if i := bytes.IndexByte(rest, ','); i >= 0 {
			item, rest = rest[:i], rest[i+1:]
		} else {
			item, rest = rest, nil
		}
		if len(item) == 0 {
			continue // strtok skips empty tokens
		}
		for len(item) > 0 && sqlscan.IsSpace(item[0]) {
			item = item[1:]
		}
		if i := bytes.IndexByte(item, ' '); i >= 0 {
			item = item[:i]
		}
		ok := false
		for _, kv := range keep {
			if keepPrefix(item, kv) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// keepPrefix compares item, with every "@@session." and "@@" removed, to
// the prefix kv, ignoring case.
func keepPrefix(item []byte, kv string) bool {
	i, j := 0, 0
	for j < len(kv) {
		if i >= len(item) {
			return false
		}
		if sqlscan.HasPrefixFold(item[i:], "@@SESSION.") {
			i += len("@@SESSION.")
			continue
		}
		if item[i] == '@' && i+1 < len(item) && item[i+1] == '@' {
			i += 2
			continue
		}
		if sqlscan.LowerByte(item[i]) != sqlscan.LowerByte(kv[j]) {
			return false
		}
		i++
		j++
	}
	return true
}

// forIndex returns where the statement of SET STATEMENT … FOR <statement>
// starts in a digest text, or -1.
func forIndex(text []byte) int {
	for i := 0; i+5 <= len(text); i++ {
		if (text[i] == ' ') && sqlscan.HasPrefixFold(text[i+1:], "FOR ") {
			return i + 5
		}
	}
	return -1
}
