package storage

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestTypedTablesMatchDDL: every typed table's descriptor lists the DDL's
// columns, in order, for MEMORY, DISK and the runtime_ twin, so a schema
// change the descriptor misses fails here.
func TestTypedTablesMatchDDL(t *testing.T) {
	s, _ := openTemp(t)
	if len(typedTables) == 0 {
		t.Fatal("no typed tables")
	}
	for name, tt := range typedTables {
		if tt.tableName() != name {
			t.Errorf("typedTables[%q] is %q", name, tt.tableName())
		}
		want := tt.columnNames()
		tables := [][2]string{{"main", name}, {"disk", name}}
		if !noRuntimeTwin[name] {
			tables = append(tables, [2]string{"main", "runtime_" + name})
		}
		for _, st := range tables {
			var got []string
			for _, r := range mustRows(t, s, "PRAGMA "+st[0]+".table_info("+st[1]+")") {
				got = append(got, r[1].String)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s.%s has columns\n%v\nthe descriptor lists\n%v", st[0], st[1], got, want)
			}
		}
		// The config file list of the table uses the same columns.
		found := false
		for _, secs := range cnfSections {
			for _, sec := range secs {
				if sec.table != name {
					continue
				}
				found = true
				var cols []string
				for _, c := range sec.cols {
					cols = append(cols, c.col)
				}
				if !reflect.DeepEqual(cols, want) {
					t.Errorf("config file section %s has columns %v, want %v", sec.name, cols, want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no config file section", name)
		}
	}
}

// TestTypedTablesCoverStructs: every field of a row type is the field of
// exactly one column, so a field added to internal/config without a column
// (or mapped twice) fails here. Every typed slice of config.Snapshot has a
// descriptor.
func TestTypedTablesCoverStructs(t *testing.T) {
	checkCovers(t, serversTable)
	checkCovers(t, serversBalanceTable)
	checkCovers(t, replicationHostgroupsTable)
	checkCovers(t, hostgroupAttributesTable)
	checkCovers(t, usersTable)
	checkCovers(t, queryRulesTable)
	checkCovers(t, fastRoutingTable)
	checkCovers(t, schedulerTable)
	checkCovers(t, proxySQLServersTable)
	var slices int
	st := reflect.TypeOf(config.Snapshot{})
	for i := 0; i < st.NumField(); i++ {
		if f := st.Field(i).Type; f.Kind() == reflect.Slice && f.Elem().Kind() == reflect.Struct {
			slices++
		}
	}
	if slices != len(typedTables) || len(typedTables) != 9 {
		t.Errorf("config.Snapshot has %d typed slices, typedTables %d, this test checks 9", slices, len(typedTables))
	}
}

func checkCovers[T any](t *testing.T, tb *table[T]) {
	t.Helper()
	var v T
	leaves := map[uintptr]string{}
	rv := reflect.ValueOf(&v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		name := rv.Type().Field(i).Name
		if f.Kind() == reflect.Array {
			for j := 0; j < f.Len(); j++ {
				leaves[f.Index(j).Addr().Pointer()] = name
			}
			continue
		}
		leaves[f.Addr().Pointer()] = name
	}
	seen := map[uintptr]bool{}
	for i, p := range tb.fields(&v) {
		a := reflect.ValueOf(p).Pointer()
		if _, ok := leaves[a]; !ok {
			t.Errorf("%s.%s: field is not a field of %T", tb.name, tb.cols[i].name, v)
		}
		if seen[a] {
			t.Errorf("%s.%s: field mapped twice", tb.name, tb.cols[i].name)
		}
		seen[a] = true
	}
	for a, name := range leaves {
		if !seen[a] {
			t.Errorf("%s: %T.%s has no column", tb.name, v, name)
		}
	}
}

// TestTypedTablesRoundTrip: what LOAD reads, SAVE … TO MEMORY writes back
// unchanged, column by column and with SQL types (quote() tells NULL, ”
// and 0 apart), NULL-ness of the query rules' and scheduler's NULL-able
// columns included; a second read gives the same snapshot. The two known
// rewrites are a lower-case server status (upper-cased) and a NULL
// default_schema of a user (written back as ”).
func TestTypedTablesRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	mustExec(t, s,
		"INSERT INTO mysql_servers VALUES (2, 'b', 3307, 3308, 'offline_soft', 10, 1, 50, 30, 1, 200, 'c2'), (1, 'a', 3306, 0, 'ONLINE', 1, 0, 1000, 0, 0, 0, '')",
		"INSERT INTO mysql_servers_balance VALUES ('a', 3306, '{\"zone\":\"z1\"}', 'http://a/metrics', 'bal')",
		"INSERT INTO mysql_replication_hostgroups VALUES (1, 2, 'super_read_only', 'rh')",
		"INSERT INTO mysql_hostgroup_attributes VALUES (1, 5, 0, 20, 'SET x=1', 0, 1, 100, '[\"a\"]', '{\"b\":1}', '{\"weight\":2}', 'hga')",
		"INSERT INTO mysql_users VALUES ('app', 'pw', 1, 1, 3, 'db', 1, 0, 1, 1, 0, 77, '{\"a\":1}', 'c'), "+
			"('app', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 1, 0, 3, NULL, 0, 1, 0, 0, 1, 5, '', '')",
		"INSERT INTO mysql_query_rules VALUES (1, 1, 'u', 's', 2, '10.0.0.1', '10.0.0.2', 6033, '0x1', 'md', 'mp', 1, 'CASELESS,GLOBAL', 3, 'rp', 4, "+
			"100, 1, 50, 0, 1000, 3, 10, 5, 6, 7, 'err', 'ok', 1, 2, 8, 1, 1, '{\"x\":1}', 'all set')",
		"INSERT INTO mysql_query_rules (rule_id, active, re_modifiers) VALUES (2, 1, NULL)",
		"INSERT INTO mysql_query_rules_fast_routing VALUES ('app', 'db', 1, 3, 'fr')",
		"INSERT INTO scheduler VALUES (5, 1, 2000, '/bin/job', 'a1', NULL, '', NULL, 'a5', 'sc')",
		"INSERT INTO proxysql_servers VALUES ('peer', 6032, 3, 'ps')",
	)
	quoted := func(name string) [][]string {
		t.Helper()
		var cols []string
		for _, r := range mustRows(t, s, "PRAGMA main.table_info("+name+")") {
			cols = append(cols, "quote("+r[1].String+")")
		}
		return strs(mustRows(t, s, "SELECT "+strings.Join(cols, ", ")+" FROM main."+name+" ORDER BY 1, 2, 3"))
	}
	want := map[string][][]string{}
	for name := range typedTables {
		want[name] = quoted(name)
	}
	want["mysql_servers"][1][4] = "'OFFLINE_SOFT'"
	want["mysql_users"][0][5] = "''"
	if r := want["mysql_query_rules"][1]; r[2] != "NULL" || r[12] != "NULL" || r[34] != "NULL" {
		t.Fatalf("rule 2 does not start with NULLs: %v", r)
	}

	mods := []config.Module{config.ModMySQLServers, config.ModMySQLUsers, config.ModMySQLQueryRules, config.ModScheduler, config.ModProxySQLServers}
	snap := &config.Snapshot{}
	var err error
	for _, m := range mods {
		if snap, err = s.BuildSnapshot(snap, m); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteRuntime(snap, m); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RuntimeToMemory(snap, m); err != nil {
			t.Fatal(err)
		}
	}
	for name := range typedTables {
		if got := quoted(name); !reflect.DeepEqual(got, want[name]) {
			t.Errorf("%s after LOAD and SAVE TO MEMORY\n got %v\nwant %v", name, got, want[name])
		}
	}
	again := &config.Snapshot{}
	for _, m := range mods {
		if again, err = s.BuildSnapshot(again, m); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(again, snap) {
		t.Errorf("snapshot after SAVE TO MEMORY\n%+v\nwant\n%+v", again, snap)
	}
}
