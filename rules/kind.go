package rules

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

// eq compares an ASCII keyword case-insensitively; upper is upper case.
func eq(b []byte, upper string) bool {
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

// hasPrefixFold reports whether s starts with upper, ignoring ASCII case.
func hasPrefixFold(s []byte, upper string) bool {
	return len(s) >= len(upper) && eq(s[:len(upper)], upper)
}

// containsFold reports whether s contains upper, ignoring ASCII case.
func containsFold(s []byte, upper string) bool {
	n := len(upper)
	for i := 0; i+n <= len(s); i++ {
		if eq(s[i:i+n], upper) {
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
	case eq(kw, "SELECT"):
		if containsFold(w.s, " FOR UPDATE") {
			return KindSelectForUpdate
		}
		return KindSelect
	case eq(kw, "INSERT"):
		return KindInsert
	case eq(kw, "UPDATE"):
		return KindUpdate
	case eq(kw, "DELETE"):
		return KindDelete
	case eq(kw, "REPLACE"):
		return KindReplace
	case eq(kw, "SET"):
		return KindSet
	case eq(kw, "USE"):
		return KindUse
	case eq(kw, "BEGIN"):
		return KindBegin
	case eq(kw, "COMMIT"):
		return KindCommit
	case eq(kw, "START"):
		if eq(nextKW(), "TRANSACTION") {
			return KindStartTransaction
		}
	case eq(kw, "ROLLBACK"):
		n := nextKW()
		if eq(n, "TO") {
			return KindRollbackSavepoint
		}
		return KindRollback
	case eq(kw, "SAVEPOINT"):
		return KindSavepoint
	case eq(kw, "RELEASE"):
		if eq(nextKW(), "SAVEPOINT") {
			return KindReleaseSavepoint
		}
	case eq(kw, "SHOW"):
		n := nextKW()
		if eq(n, "TABLE") && eq(nextKW(), "STATUS") {
			return KindShowTableStatus
		}
		return KindShow
	case eq(kw, "CALL"):
		return KindCall
	case eq(kw, "PREPARE"):
		return KindPrepare
	case eq(kw, "EXECUTE"):
		return KindExecute
	case eq(kw, "DEALLOCATE"):
		if eq(nextKW(), "PREPARE") {
			return KindDeallocate
		}
	case eq(kw, "DESCRIBE"), eq(kw, "DESC"):
		return KindDescribe
	case eq(kw, "EXPLAIN"):
		return KindExplain
	case eq(kw, "LOCK"):
		if n := nextKW(); eq(n, "TABLE") || eq(n, "TABLES") {
			return KindLockTable
		}
	case eq(kw, "UNLOCK"):
		return KindUnlockTables
	case eq(kw, "KILL"):
		return KindKill
	case eq(kw, "LOAD"):
		return KindLoad
	case eq(kw, "FLUSH"):
		return KindFlush
	case eq(kw, "GRANT"):
		return KindGrant
	case eq(kw, "REVOKE"):
		return KindRevoke
	case eq(kw, "OPTIMIZE"):
		return KindOptimize
	case eq(kw, "PURGE"):
		return KindPurge
	case eq(kw, "TRUNCATE"):
		return KindTruncateTable
	case eq(kw, "RENAME"):
		if eq(nextKW(), "TABLE") {
			return KindRenameTable
		}
	case eq(kw, "RESET"):
		switch n := nextKW(); {
		case eq(n, "MASTER"):
			return KindResetMaster
		case eq(n, "SLAVE"), eq(n, "REPLICA"):
			return KindResetSlave
		}
	case eq(kw, "CHANGE"):
		if eq(nextKW(), "MASTER") {
			return KindChangeMaster
		}
	case eq(kw, "ANALYZE"):
		n := nextKW()
		if eq(n, "NO_WRITE_TO_BINLOG") || eq(n, "LOCAL") {
			n = nextKW()
		}
		if eq(n, "TABLE") {
			return KindAnalyzeTable
		}
	case eq(kw, "ALTER"):
		n := nextKW()
		if eq(n, "ONLINE") || eq(n, "OFFLINE") {
			n = nextKW()
		}
		if eq(n, "IGNORE") {
			n = nextKW()
		}
		switch {
		case eq(n, "TABLE"):
			return KindAlterTable
		case eq(n, "VIEW"):
			return KindAlterView
		}
	case eq(kw, "CREATE"):
		n := nextKW()
		if eq(n, "OR") { // CREATE OR REPLACE VIEW …
			if eq(nextKW(), "REPLACE") {
				n = nextKW()
			}
		}
		switch {
		case eq(n, "DATABASE"), eq(n, "SCHEMA"):
			return KindCreateDatabase
		case eq(n, "INDEX"), eq(n, "UNIQUE"), eq(n, "FULLTEXT"), eq(n, "SPATIAL"):
			return KindCreateIndex
		case eq(n, "TABLE"):
			return KindCreateTable
		case eq(n, "TEMPORARY"):
			return KindCreateTemporary
		case eq(n, "TRIGGER"):
			return KindCreateTrigger
		case eq(n, "USER"):
			return KindCreateUser
		case eq(n, "VIEW"):
			return KindCreateView
		}
	case eq(kw, "DROP"):
		n := nextKW()
		if eq(n, "TEMPORARY") {
			n = nextKW()
		}
		switch {
		case eq(n, "DATABASE"), eq(n, "SCHEMA"):
			return KindDropDatabase
		case eq(n, "INDEX"):
			return KindDropIndex
		case eq(n, "TABLE"), eq(n, "TABLES"):
			return KindDropTable
		case eq(n, "TRIGGER"):
			return KindDropTrigger
		case eq(n, "USER"):
			return KindDropUser
		case eq(n, "VIEW"):
			return KindDropView
		case eq(n, "PREPARE"):
			return KindDeallocate
		}
	}
	return KindUnknown
}
