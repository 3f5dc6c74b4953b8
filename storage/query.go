package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// Result is the outcome of a passthrough statement.
type Result struct {
	Columns      []string
	Rows         [][]sql.NullString
	AffectedRows int64
	LastInsertID int64
	HasRows      bool // a result set (even empty), not an OK
}

// plainVacuum reports whether q is VACUUM, optionally of one schema, and
// nothing else.
func plainVacuum(q string) bool {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(q), "; \t\r\n"))
	return len(f) >= 1 && len(f) <= 2 && strings.EqualFold(f[0], "VACUUM") &&
		(len(f) == 1 || isIdent(f[1]))
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Query runs any SQL on the admin database, as ProxySQL hands unknown admin
// statements to SQLite. A statement that has result columns returns them
// (every value as text, NULL kept); any other returns the rows it changed.
// Several statements separated by ';' run in order, and the last result set
// is returned. readOnly is for stats sessions only: the statement runs with
// PRAGMA query_only=ON, and ATTACH, DETACH, pragmas other than the
// introspection ones, and reading MEMORY or DISK tables (main.*, disk.*: the
// configuration, passwords included; the stats user's ProxySQL database does
// not have them either) fail with ErrNotAllowed ("Command not allowed").
// For every session, ATTACH and VACUUM INTO are confined to the datadir and
// pragmas that would change how DISK is kept are refused (confine.go), with
// an ErrNotAllowed that says why.
//
// SQLite's errors come back as *SQLError whose message is SQLite's text.
func (s *Store) Query(ctx context.Context, query string, readOnly bool) (*Result, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if readOnly {
		if _, err := s.conn.ExecContext(ctx, "PRAGMA query_only=ON"); err != nil {
			return nil, sqlError(err)
		}
		s.restricted.Store(true)
		defer func() {
			s.restricted.Store(false)
			// Not under ctx: a cancelled context must not leave the
			// connection read-only for the admin.
			_, _ = s.conn.ExecContext(context.Background(), "PRAGMA query_only=OFF")
		}()
	}
	// A statement string may open a transaction (BEGIN, SAVEPOINT) and not
	// close it; left open it would block every later layer copy. The admin
	// answers BEGIN/COMMIT itself, so nothing legitimate spans two calls.
	defer s.rollback()

	s.denied.Store(false)
	s.denyWhy.Store(nil)
	// A plain VACUUM attaches a temporary database with an empty name,
	// which the confinement cannot tell from a computed file name: it is
	// let through as ProxySQL lets it (VACUUM INTO stays confined).
	s.confined.Store(!plainVacuum(query))
	res, err := s.run(ctx, query)
	s.confined.Store(false)
	if err != nil {
		if s.denied.Load() {
			if why := s.denyWhy.Load(); why != nil {
				return nil, fmt.Errorf("%w: %s", ErrNotAllowed, *why)
			}
			return nil, ErrNotAllowed
		}
		return nil, sqlError(err)
	}
	return res, nil
}

// run executes query and shapes its outcome.
func (s *Store) run(ctx context.Context, query string) (*Result, error) {
	var before int64
	if err := s.conn.QueryRowContext(ctx, "SELECT total_changes()").Scan(&before); err != nil {
		return nil, err
	}
	rows, err := s.conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	if len(cols) > 0 {
		defer rows.Close()
		_, data, err := readAll(rows, MaxResultBytes)
		if err != nil {
			return nil, err
		}
		return &Result{Columns: cols, Rows: data, HasRows: true}, nil
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	res := &Result{}
	var after, changes int64
	if err := s.conn.QueryRowContext(ctx, "SELECT total_changes(), changes(), last_insert_rowid()").Scan(&after, &changes, &res.LastInsertID); err != nil {
		return nil, err
	}
	// changes() keeps the count of the last INSERT/UPDATE/DELETE even after
	// a CREATE or a PRAGMA; total_changes() tells whether this call changed
	// anything at all.
	if after != before {
		res.AffectedRows = changes
	}
	return res, nil
}

// MaxResultBytes bounds what one admin statement's result set may hold in
// memory (its text, plus a word per value): a SELECT of millions of rows
// (a cross join of stats tables) is refused with an error naming the bound
// instead of growing the process — and the data plane in it — without
// limit.
const MaxResultBytes = 256 << 20

// ErrResultTooLarge is the error of a result set over MaxResultBytes.
var ErrResultTooLarge = fmt.Errorf("result set larger than %d MiB: narrow it with WHERE or LIMIT", MaxResultBytes>>20)

// readAll reads every row of rows as text; with limit > 0, at most about
// limit bytes of it (ErrResultTooLarge past that).
func readAll(rows *sql.Rows, limit int) ([]string, [][]sql.NullString, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]sql.NullString
	size := 0
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]sql.NullString, len(cols))
		for i, v := range vals {
			row[i] = text(v)
			size += len(row[i].String) + 24
		}
		if limit > 0 && size > limit {
			return nil, nil, ErrResultTooLarge
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// text renders a value as sqlite3_column_text does.
func text(v any) sql.NullString {
	switch x := v.(type) {
	case nil:
		return sql.NullString{}
	case string:
		return sql.NullString{String: x, Valid: true}
	case []byte:
		return sql.NullString{String: string(x), Valid: true}
	case int64:
		return sql.NullString{String: strconv.FormatInt(x, 10), Valid: true}
	case float64:
		return sql.NullString{String: realText(x), Valid: true}
	case bool:
		if x {
			return sql.NullString{String: "1", Valid: true}
		}
		return sql.NullString{String: "0", Valid: true}
	case time.Time:
		return sql.NullString{String: x.Format("2006-01-02 15:04:05.999999999-07:00"), Valid: true}
	}
	return sql.NullString{String: fmt.Sprint(v), Valid: true}
}

// realText formats a REAL as SQLite's "%!.15g": 15 significant digits, and
// always a decimal point ("1.0", "1.0e+20").
func realText(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return ""
	}
	s := strconv.FormatFloat(f, 'g', 15, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if !hasExp {
		return mant
	}
	return mant + "e" + exp
}

var driverSuffix = regexp.MustCompile(` \(\d+\)( \(SQLITE_BUSY\))?$`)

// sqlError turns a driver error into an *SQLError carrying SQLite's own
// message. The modernc driver reports "<errstr>: <errmsg> (<code>)"; ProxySQL
// shows only <errmsg>.
func sqlError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	msg := driverSuffix.ReplaceAllString(se.Error(), "")
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		msg = detail
	}
	return &SQLError{Msg: msg, Code: se.Code(), Err: err}
}
