package sqlscan

// StmtKind classifies a statement by its leading keywords. The values are
// the Command rows of stats_mysql_commands_counters (reference §1.2), so
// String gives the counter name directly.
type StmtKind uint8

// Statement kinds, in the order of stats_mysql_commands_counters.
const (
	KindAlterTable StmtKind = iota
	KindAlterView
	KindAnalyzeTable
	KindBegin
	KindCall
	KindChangeMaster
	KindCommit
	KindCreateDatabase
	KindCreateIndex
	KindCreateTable
	KindCreateTemporary
	KindCreateTrigger
	KindCreateUser
	KindCreateView
	KindDeallocate
	KindDelete
	KindDescribe
	KindDropDatabase
	KindDropIndex
	KindDropTable
	KindDropTrigger
	KindDropUser
	KindDropView
	KindExecute
	KindExplain
	KindFlush
	KindGrant
	KindInsert
	KindKill
	KindLoad
	KindLockTable
	KindOptimize
	KindPrepare
	KindPurge
	KindReleaseSavepoint
	KindRenameTable
	KindResetMaster
	KindResetSlave
	KindReplace
	KindRevoke
	KindRollback
	KindRollbackSavepoint
	KindSavepoint
	KindSelect
	KindSelectForUpdate
	KindSet
	KindShowTableStatus
	KindShow
	KindStartTransaction
	KindTruncateTable
	KindUnlockTables
	KindUpdate
	KindUse
	KindUnknown
	numKinds
)

var kindNames = [numKinds]string{
	"ALTER_TABLE", "ALTER_VIEW", "ANALYZE_TABLE", "BEGIN", "CALL", "CHANGE_MASTER", "COMMIT",
	"CREATE_DATABASE", "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMPORARY", "CREATE_TRIGGER",
	"CREATE_USER", "CREATE_VIEW", "DEALLOCATE", "DELETE", "DESCRIBE", "DROP_DATABASE", "DROP_INDEX",
	"DROP_TABLE", "DROP_TRIGGER", "DROP_USER", "DROP_VIEW", "EXECUTE", "EXPLAIN", "FLUSH", "GRANT",
	"INSERT", "KILL", "LOAD", "LOCK_TABLE", "OPTIMIZE", "PREPARE", "PURGE", "RELEASE_SAVEPOINT",
	"RENAME_TABLE", "RESET_MASTER", "RESET_SLAVE", "REPLACE", "REVOKE", "ROLLBACK",
	"ROLLBACK_SAVEPOINT", "SAVEPOINT", "SELECT", "SELECT_FOR_UPDATE", "SET", "SHOW_TABLE_STATUS",
	"SHOW", "START_TRANSACTION", "TRUNCATE_TABLE", "UNLOCK_TABLES", "UPDATE", "USE", "UNKNOWN",
}

// String returns the stats_mysql_commands_counters name of the kind.
func (k StmtKind) String() string {
	if k >= numKinds {
		return "UNKNOWN"
	}
	return kindNames[k]
}

// AllKinds lists every kind in counter-table order, for the router's
// per-command counters.
func AllKinds() []StmtKind {
	out := make([]StmtKind, numKinds)
	for i := range out {
		out[i] = StmtKind(i)
	}
	return out
}

// words splits the head of a digest into space-separated words, the way
// ProxySQL's command-type tokenizer does, without allocating.
type words struct {
	s []byte
}

// next returns the next word, upper-case comparison being left to eq.
func (w *words) next() []byte {
	for len(w.s) > 0 && w.s[0] == ' ' {
		w.s = w.s[1:]
	}
	i := 0
	for i < len(w.s) && w.s[i] != ' ' {
		i++
	}
	tok := w.s[:i]
	w.s = w.s[i:]
	return tok
}

// keyword trims a token to its leading letters and underscores so that
// "SELECT?" or "select@@version" still classify; ProxySQL compares whole
// space-separated tokens and counts such statements as UNKNOWN.
func keyword(tok []byte) []byte {
	i := 0
	for i < len(tok) {
		c := tok[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' {
			i++
			continue
		}
		break
	}
	return tok[:i]
}

// EqualUpper compares an ASCII keyword case-insensitively; upper is upper case.
func EqualUpper(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// HasPrefixFold reports whether s starts with upper, ignoring ASCII case.
func HasPrefixFold(s []byte, upper string) bool {
	return len(s) >= len(upper) && EqualUpper(s[:len(upper)], upper)
}

// ContainsFold reports whether s contains upper, ignoring ASCII case.
func ContainsFold(s []byte, upper string) bool {
	n := len(upper)
	for i := 0; i+n <= len(s); i++ {
		if EqualUpper(s[i:i+n], upper) {
			return true
		}
	}
	return false
}

// Classify returns the kind of the statement whose digest text is text,
// following Query_Processor::__query_parser_command_type. It departs from
// ProxySQL where ProxySQL's parser has plain bugs: LOCK TABLES, TRUNCATE
// [TABLE], ROLLBACK WORK, USE, DROP DATABASE/INDEX, EXPLAIN and
// SELECT … FOR UPDATE get their own counters instead of UNKNOWN.
func Classify(text []byte) StmtKind {
	w := words{s: text}
	var tok []byte
	for {
		tok = w.next()
		if len(tok) == 0 {
			return KindUnknown
		}
		for len(tok) > 0 && tok[0] == '(' {
			tok = tok[1:]
		}
		if len(tok) > 0 {
			break
		}
	}
	kw := keyword(tok)
	nextKW := func() []byte { return keyword(w.next()) }

	switch {
	case EqualUpper(kw, "SELECT"):
		if ContainsFold(w.s, " FOR UPDATE") {
			return KindSelectForUpdate
		}
		return KindSelect
	case EqualUpper(kw, "INSERT"):
		return KindInsert
	case EqualUpper(kw, "UPDATE"):
		return KindUpdate
	case EqualUpper(kw, "DELETE"):
		return KindDelete
	case EqualUpper(kw, "REPLACE"):
		return KindReplace
	case EqualUpper(kw, "SET"):
		return KindSet
	case EqualUpper(kw, "USE"):
		return KindUse
	case EqualUpper(kw, "BEGIN"):
		return KindBegin
	case EqualUpper(kw, "COMMIT"):
		return KindCommit
	case EqualUpper(kw, "START"):
		if EqualUpper(nextKW(), "TRANSACTION") {
			return KindStartTransaction
		}
	case EqualUpper(kw, "ROLLBACK"):
		n := nextKW()
		if EqualUpper(n, "TO") {
			return KindRollbackSavepoint
		}
		return KindRollback
	case EqualUpper(kw, "SAVEPOINT"):
		return KindSavepoint
	case EqualUpper(kw, "RELEASE"):
		if EqualUpper(nextKW(), "SAVEPOINT") {
			return KindReleaseSavepoint
		}
	case EqualUpper(kw, "SHOW"):
		n := nextKW()
		if EqualUpper(n, "TABLE") && EqualUpper(nextKW(), "STATUS") {
			return KindShowTableStatus
		}
		return KindShow
	case EqualUpper(kw, "CALL"):
		return KindCall
	case EqualUpper(kw, "PREPARE"):
		return KindPrepare
	case EqualUpper(kw, "EXECUTE"):
		return KindExecute
	case EqualUpper(kw, "DEALLOCATE"):
		if EqualUpper(nextKW(), "PREPARE") {
			return KindDeallocate
		}
	case EqualUpper(kw, "DESCRIBE"), EqualUpper(kw, "DESC"):
		return KindDescribe
	case EqualUpper(kw, "EXPLAIN"):
		return KindExplain
	case EqualUpper(kw, "LOCK"):
		if n := nextKW(); EqualUpper(n, "TABLE") || EqualUpper(n, "TABLES") {
			return KindLockTable
		}
	case EqualUpper(kw, "UNLOCK"):
		return KindUnlockTables
	case EqualUpper(kw, "KILL"):
		return KindKill
	case EqualUpper(kw, "LOAD"):
		return KindLoad
	case EqualUpper(kw, "FLUSH"):
		return KindFlush
	case EqualUpper(kw, "GRANT"):
		return KindGrant
	case EqualUpper(kw, "REVOKE"):
		return KindRevoke
	case EqualUpper(kw, "OPTIMIZE"):
		return KindOptimize
	case EqualUpper(kw, "PURGE"):
		return KindPurge
	case EqualUpper(kw, "TRUNCATE"):
		return KindTruncateTable
	case EqualUpper(kw, "RENAME"):
		if EqualUpper(nextKW(), "TABLE") {
			return KindRenameTable
		}
	case EqualUpper(kw, "RESET"):
		switch n := nextKW(); {
		case EqualUpper(n, "MASTER"):
			return KindResetMaster
		case EqualUpper(n, "SLAVE"), EqualUpper(n, "REPLICA"):
			return KindResetSlave
		}
	case EqualUpper(kw, "CHANGE"):
		if EqualUpper(nextKW(), "MASTER") {
			return KindChangeMaster
		}
	case EqualUpper(kw, "ANALYZE"):
		n := nextKW()
		if EqualUpper(n, "NO_WRITE_TO_BINLOG") || EqualUpper(n, "LOCAL") {
			n = nextKW()
		}
		if EqualUpper(n, "TABLE") {
			return KindAnalyzeTable
		}
	case EqualUpper(kw, "ALTER"):
		n := nextKW()
		if EqualUpper(n, "ONLINE") || EqualUpper(n, "OFFLINE") {
			n = nextKW()
		}
		if EqualUpper(n, "IGNORE") {
			n = nextKW()
		}
		switch {
		case EqualUpper(n, "TABLE"):
			return KindAlterTable
		case EqualUpper(n, "VIEW"):
			return KindAlterView
		}
	case EqualUpper(kw, "CREATE"):
		n := nextKW()
		if EqualUpper(n, "OR") { // CREATE OR REPLACE VIEW …
			if EqualUpper(nextKW(), "REPLACE") {
				n = nextKW()
			}
		}
		switch {
		case EqualUpper(n, "DATABASE"), EqualUpper(n, "SCHEMA"):
			return KindCreateDatabase
		case EqualUpper(n, "INDEX"), EqualUpper(n, "UNIQUE"), EqualUpper(n, "FULLTEXT"), EqualUpper(n, "SPATIAL"):
			return KindCreateIndex
		case EqualUpper(n, "TABLE"):
			return KindCreateTable
		case EqualUpper(n, "TEMPORARY"):
			return KindCreateTemporary
		case EqualUpper(n, "TRIGGER"):
			return KindCreateTrigger
		case EqualUpper(n, "USER"):
			return KindCreateUser
		case EqualUpper(n, "VIEW"):
			return KindCreateView
		}
	case EqualUpper(kw, "DROP"):
		n := nextKW()
		if EqualUpper(n, "TEMPORARY") {
			n = nextKW()
		}
		switch {
		case EqualUpper(n, "DATABASE"), EqualUpper(n, "SCHEMA"):
			return KindDropDatabase
		case EqualUpper(n, "INDEX"):
			return KindDropIndex
		case EqualUpper(n, "TABLE"), EqualUpper(n, "TABLES"):
			return KindDropTable
		case EqualUpper(n, "TRIGGER"):
			return KindDropTrigger
		case EqualUpper(n, "USER"):
			return KindDropUser
		case EqualUpper(n, "VIEW"):
			return KindDropView
		case EqualUpper(n, "PREPARE"):
			return KindDeallocate
		}
	}
	return KindUnknown
}
