package rules

import (
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"testing"
)

func TestUpdateFlags(t *testing.T) {
	keep := ParseKeepVars(DefaultKeepMultiplexingVariables)
	g := sqlscan.NewDigester(sqlscan.DefaultOptions())
	run := func(cur StatusFlags, q string, ctx FlagContext) StatusFlags {
		var d sqlscan.Digest
		g.Digest(&d, []byte(q), 0)
		if ctx.Keep == nil {
			ctx.Keep = keep
		}
		if ctx.Multiplex == 0 && ctx.Set == nil {
			ctx.Multiplex = Unset
		}
		if d.Kind == sqlscan.KindSet && ctx.Set == nil {
			st := sqlscan.ParseSet([]byte(q), 0)
			ctx.Set = &st
		}
		return UpdateFlags(cur, &d, &ctx)
	}
	cases := []struct {
		name string
		cur  StatusFlags
		q    string
		ctx  FlagContext
		want StatusFlags
	}{
		{"plain select", 0, "SELECT 1", FlagContext{}, 0},
		{"user variable read", 0, "SELECT @x", FlagContext{}, FlagUserVariable},
		{"user variable in where", 0, "SELECT * FROM t WHERE a=@x", FlagContext{}, FlagUserVariable},
		{"keep @@version", 0, "select @@version_comment limit 1", FlagContext{}, 0},
		{"keep @@session.tx_isolation", 0, "SELECT @@SESSION.tx_isolation, @@transaction_isolation", FlagContext{}, 0},
		{"not kept @@sql_mode", 0, "SELECT @@sql_mode", FlagContext{}, FlagUserVariable},
		{"mixed keep", 0, "SELECT @@version, @x", FlagContext{}, FlagUserVariable},
		{"multiplex=2 ignores @", 0, "SELECT @x", FlagContext{Multiplex: 2}, 0},
		{"tracked SET keeps multiplexing", 0, "SET time_zone='UTC'", FlagContext{}, 0},
		{"unparsed SET locks", 0, "SET @x=1", FlagContext{}, FlagUserVariable},
		{"unparsed SET with multiplex=2", 0, "SET @ApplicationName='x'", FlagContext{Multiplex: 2}, 0},
		{"SET with @@ but tracked", 0, "SET @@session.sql_mode='TRADITIONAL'", FlagContext{}, 0},
		{"legacy SET with @", 0, "SET @@session.sql_mode='TRADITIONAL'", FlagContext{LegacySetAlgorithm: true}, FlagUserVariable},
		{"legacy SET session var", 0, "SET FOREIGN_KEY_CHECKS=0", FlagContext{LegacySetAlgorithm: true}, FlagUserVariable},
		{"legacy SET other var", 0, "SET time_zone='UTC'", FlagContext{LegacySetAlgorithm: true}, 0},
		{"prepare", 0, "PREPARE s FROM 'SELECT 1'", FlagContext{}, FlagPreparedStatement},
		{"untracked change pins", 0, "SELECT ?; SET time_zone=?", FlagContext{Untracked: true}, FlagUserVariable},
		{"untracked change, legacy SET algorithm", 0, "SET time_zone = ?", FlagContext{Untracked: true, LegacySetAlgorithm: true}, FlagUserVariable},
		{"untracked change with multiplex=2", 0, "SET time_zone = ?", FlagContext{Untracked: true, Multiplex: 2}, 0},
		{"temporary table", 0, "CREATE TEMPORARY TABLE t (a int)", FlagContext{}, FlagTemporaryTable},
		{"MariaDB's CREATE OR REPLACE TEMPORARY TABLE", 0, "CREATE OR REPLACE TEMPORARY TABLE t (a int)", FlagContext{}, FlagTemporaryTable},
		{"handler open", 0, "HANDLER t OPEN AS h", FlagContext{}, FlagHandler},
		{"handler read", 0, "HANDLER h READ FIRST", FlagContext{}, 0},
		{"lock tables", 0, "LOCK TABLES t WRITE", FlagContext{}, FlagLockTables},
		{"ftwrl", 0, "FLUSH TABLES WITH READ LOCK", FlagContext{}, FlagLockTables},
		{"flush named tables with read lock", 0, "FLUSH TABLES t1, t2 WITH READ LOCK", FlagContext{}, FlagLockTables},
		{"flush tables for export", 0, "FLUSH TABLE t1 FOR EXPORT", FlagContext{}, FlagLockTables},
		{"plain flush", 0, "FLUSH TABLES", FlagContext{}, 0},
		{"unlock tables", FlagLockTables | FlagGetLock, "UNLOCK TABLES", FlagContext{}, FlagGetLock},
		{"get_lock", 0, "SELECT GET_LOCK('a', 10)", FlagContext{Multiplex: 2}, FlagGetLock},
		{"found rows", 0, "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", FlagContext{}, FlagFoundRows},
		{"temporary sequence", 0, "CREATE TEMPORARY SEQUENCE s", FlagContext{}, FlagTemporaryTable},
		{"unlock table", FlagLockTables, "UNLOCK TABLE", FlagContext{}, 0},
		{"backup stage", 0, "BACKUP STAGE START", FlagContext{}, FlagBackupLock},
		{"backup stage end", FlagBackupLock, "BACKUP STAGE END", FlagContext{}, 0},
		{"backup lock", 0, "BACKUP LOCK t", FlagContext{}, FlagBackupLock},
		{"backup unlock", FlagBackupLock | FlagGetLock, "BACKUP UNLOCK", FlagContext{}, FlagGetLock},
		{"nextval", 0, "SELECT NEXTVAL(s)", FlagContext{}, FlagSequence},
		{"next value for", 0, "INSERT INTO t VALUES (NEXT VALUE FOR s)", FlagContext{}, FlagSequence},
		{"setval", 0, "SELECT SETVAL(s, 100)", FlagContext{}, FlagSequence},
		{"values are not a sequence", 0, "INSERT INTO t VALUES (1)", FlagContext{}, 0},
		{"sql_log_bin=0", 0, "SET sql_log_bin=0", FlagContext{}, FlagSQLLogBin0},
		{"sql_log_bin=1", FlagSQLLogBin0, "SET sql_log_bin = ON", FlagContext{}, 0},
		{"savepoint in trx", 0, "SAVEPOINT s1", FlagContext{InTransaction: true}, FlagHasSavepoint},
		{"savepoint outside trx", 0, "SAVEPOINT s1", FlagContext{}, 0},
		{"commit clears savepoint", FlagHasSavepoint, "COMMIT", FlagContext{}, 0},
		{"rollback to savepoint keeps it", FlagHasSavepoint, "ROLLBACK TO SAVEPOINT s1", FlagContext{}, FlagHasSavepoint},
		{"rule multiplex=0", 0, "SELECT 1", FlagContext{Multiplex: 0, Set: &sqlscan.SetStatement{}}, FlagNoMultiplex},
		{"rule multiplex=1", FlagNoMultiplex | FlagTemporaryTable, "SELECT 1", FlagContext{Multiplex: 1}, FlagTemporaryTable},
		{"flags are sticky", FlagPreparedStatement, "SELECT 1", FlagContext{}, FlagPreparedStatement},
	}
	for _, c := range cases {
		if got := run(c.cur, c.q, c.ctx); got != c.want {
			t.Errorf("%s: %q: got %v want %v", c.name, c.q, got, c.want)
		}
	}
}

func TestFlagsMisc(t *testing.T) {
	f := FlagUserVariable | FlagLockTables
	if f.String() != "USER_VARIABLE|LOCK_TABLES" || !f.MultiplexDisabled() {
		t.Errorf("%v", f)
	}
	if FlagHasSavepoint.MultiplexDisabled() || StatusFlags(0).MultiplexDisabled() {
		t.Errorf("savepoint alone must not disable multiplexing")
	}
	kv := ParseKeepVars(" tx_isolation, version ,,x")
	if len(kv) != 3 || kv[0] != "tx_isolation" || kv[2] != "x" {
		t.Errorf("%q", kv)
	}
	var d sqlscan.Digest
	sqlscan.NewDigester(sqlscan.DefaultOptions()).Digest(&d, []byte("SELECT @@version"), 0)
	ctx := FlagContext{Multiplex: Unset, Keep: kv}
	if n := testing.AllocsPerRun(100, func() { UpdateFlags(0, &d, &ctx) }); n != 0 {
		t.Errorf("UpdateFlags allocates %.1f", n)
	}
}
