package etcdsync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// FormatVersion is the version of the value encoding (docs/cluster-etcd.md).
const FormatVersion = 1

// MaxValueBytes bounds a module's value, read or written (etcd's own
// default request limit is 1.5 MiB; a larger one must be raised there too).
const MaxValueBytes = 16 << 20

// maxWriterLen bounds the node name a value carries.
const maxWriterLen = 255

// Modules are the modules kept in etcd. The others stay node-local:
// ADMIN VARIABLES (each node's ports and credentials), SCHEDULER, PROXYSQL
// SERVERS, MYSQL FIREWALL, RESTAPI.
var Modules = []config.Module{config.ModMySQLServers, config.ModMySQLUsers, config.ModMySQLQueryRules, config.ModMySQLVariables}

// LocalVariables are the variables of a shared variables module that stay
// node-local: they are not written to etcd, and a node keeps its own value
// when it applies the module.
var LocalVariables = []string{"mysql-interfaces"}

// Synced reports whether module m is kept in etcd.
func Synced(m config.Module) bool { return slices.Contains(Modules, m) }

// KeyName is the last segment of module m's key: "mysql_servers",
// "mysql_users", "mysql_query_rules", "mysql_variables".
func KeyName(m config.Module) string {
	return strings.ReplaceAll(strings.ToLower(m.String()), " ", "_")
}

// Table is one MEMORY table of a module: column names, and rows of values
// as SQLite gives them as text (nil is NULL).
type Table struct {
	Columns []string    `json:"columns"`
	Rows    [][]*string `json:"rows"`
}

// Value is what a module's key holds (JSON).
type Value struct {
	Format    int              `json:"format"`
	Module    string           `json:"module"`     // "MYSQL SERVERS"
	Writer    string           `json:"writer"`     // the node that ran the LOAD
	LoadID    string           `json:"load_id"`    // unique per write
	WrittenAt time.Time        `json:"written_at"` // the writer's clock
	Tables    map[string]Table `json:"tables"`     // MEMORY table name → content
}

// Decode parses a key's value and checks it is a module this build knows,
// with the tables that module has.
func Decode(data []byte) (*Value, config.Module, error) {
	if len(data) > MaxValueBytes {
		return nil, 0, fmt.Errorf("etcdsync: value of %d bytes, more than %d", len(data), MaxValueBytes)
	}
	var v Value
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, 0, fmt.Errorf("etcdsync: value is not JSON: %w", err)
	}
	if v.Format != FormatVersion {
		return nil, 0, fmt.Errorf("etcdsync: value format %d, this Sluice reads %d", v.Format, FormatVersion)
	}
	m, ok := config.ParseModule(v.Module)
	if !ok || !Synced(m) {
		return nil, 0, fmt.Errorf("etcdsync: module %.64q is not one Sluice shares", v.Module)
	}
	if len(v.Writer) > maxWriterLen {
		return nil, 0, fmt.Errorf("etcdsync: writer name of %d bytes, more than %d", len(v.Writer), maxWriterLen)
	}
	for name, t := range v.Tables {
		if !slices.Contains(m.Tables(), name) {
			return nil, 0, fmt.Errorf("etcdsync: table %.64q is not part of %s", name, m)
		}
		for i, r := range t.Rows {
			if len(r) != len(t.Columns) {
				return nil, 0, fmt.Errorf("etcdsync: %s row %d has %d values for %d columns", name, i, len(r), len(t.Columns))
			}
		}
	}
	for _, name := range m.Tables() {
		if _, ok := v.Tables[name]; !ok {
			return nil, 0, fmt.Errorf("etcdsync: %s value lacks table %s", m, name)
		}
	}
	return &v, m, nil
}

// Checksum is a digest of the tables only (not who wrote them or when):
// equal configurations have equal checksums. The first 16 hex digits of a
// SHA-256 of the canonical JSON of Tables (map keys sorted).
func (v *Value) Checksum() string {
	b, _ := json.Marshal(v.Tables)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// readMemory encodes module m's MEMORY tables (what a LOAD just put at
// RUNTIME), without the node-local variables.
func readMemory(ctx context.Context, st *storage.Store, m config.Module) (map[string]Table, error) {
	out := make(map[string]Table, len(m.Tables()))
	for _, t := range m.Tables() {
		q := "SELECT * FROM main." + t + " ORDER BY rowid"
		if p := m.VarPrefix(); p != "" {
			q = "SELECT * FROM main.global_variables WHERE variable_name LIKE '" + p + "%' AND variable_name NOT IN (" +
				quoteList(LocalVariables) + ") ORDER BY variable_name"
		}
		res, err := st.Query(ctx, q, false)
		if err != nil {
			return nil, fmt.Errorf("etcdsync: read MEMORY %s: %w", t, err)
		}
		tab := Table{Columns: res.Columns, Rows: make([][]*string, 0, len(res.Rows))}
		for _, r := range res.Rows {
			row := make([]*string, len(r))
			for i, c := range r {
				if c.Valid {
					s := c.String
					row[i] = &s
				}
			}
			tab.Rows = append(tab.Rows, row)
		}
		out[t] = tab
	}
	return out, nil
}

// importRows turns v's tables into ImportModule's form: rows in the local
// table's column order (columns matched by name; a column one side has and
// the other lacks is an error). For a variables module the node-local
// variables get this node's runtime values.
func importRows(ctx context.Context, st *storage.Store, m config.Module, v *Value) (map[string][][]any, error) {
	out := make(map[string][][]any, len(v.Tables))
	for name, t := range v.Tables {
		res, err := st.Query(ctx, "SELECT * FROM main."+name+" LIMIT 0", false)
		if err != nil {
			return nil, fmt.Errorf("etcdsync: columns of %s: %w", name, err)
		}
		local := res.Columns
		if len(local) != len(t.Columns) {
			return nil, fmt.Errorf("etcdsync: %s has %d columns in etcd, %d here (%v)", name, len(t.Columns), len(local), local)
		}
		idx := make([]int, len(local))
		for i, c := range local {
			j := slices.Index(t.Columns, c)
			if j < 0 {
				return nil, fmt.Errorf("etcdsync: %s: column %s is not in etcd's value (%.200q)", name, c, t.Columns)
			}
			idx[i] = j
		}
		rows := make([][]any, 0, len(t.Rows)+len(LocalVariables))
		for _, r := range t.Rows {
			row := make([]any, len(local))
			for i, j := range idx {
				if r[j] != nil {
					row[i] = *r[j]
				}
			}
			rows = append(rows, row)
		}
		if p := m.VarPrefix(); p != "" {
			rows = slices.DeleteFunc(rows, func(r []any) bool { s, _ := r[0].(string); return slices.Contains(LocalVariables, s) })
			loc, err := st.Query(ctx, "SELECT variable_name, variable_value FROM main.runtime_global_variables WHERE variable_name IN ("+
				quoteList(LocalVariables)+") AND variable_name LIKE '"+p+"%' ORDER BY variable_name", false)
			if err != nil {
				return nil, fmt.Errorf("etcdsync: node-local variables: %w", err)
			}
			for _, r := range loc.Rows {
				rows = append(rows, []any{r[0].String, r[1].String})
			}
			// Variables are written with INSERT OR REPLACE (those not
			// given keep their value): only the ones MEMORY does not
			// already hold need writing, one statement each.
			mem, err := st.Query(ctx, "SELECT variable_name, variable_value FROM main.global_variables WHERE variable_name LIKE '"+p+"%'", false)
			if err != nil {
				return nil, fmt.Errorf("etcdsync: MEMORY variables: %w", err)
			}
			have := make(map[string]sql.NullString, len(mem.Rows))
			for _, r := range mem.Rows {
				have[r[0].String] = r[1]
			}
			rows = slices.DeleteFunc(rows, func(r []any) bool {
				name, _ := r[0].(string)
				cur, ok := have[name]
				val, isStr := r[1].(string)
				return ok && (cur.Valid && isStr && cur.String == val || !cur.Valid && r[1] == nil)
			})
		}
		out[name] = rows
	}
	return out, nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}
