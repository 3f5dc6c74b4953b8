package etcdsync

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestEncodingRoundTrip: every shared module read from one node's MEMORY,
// encoded to the documented JSON, decoded and imported into another node
// through admin.ImportModule gives the same MEMORY and runtime rows (NULLs
// kept, the importer's own mysql-interfaces kept) and equal runtime
// checksums.
func TestEncodingRoundTrip(t *testing.T) {
	a, b := newNode(t), newNode(t)
	a.exec(t,
		"INSERT INTO mysql_servers(hostgroup_id, hostname, port, weight, comment) VALUES (1, '10.0.0.1', 3306, 5, 'a'), (2, '10.0.0.2', 3307, 1, '')",
		"INSERT INTO mysql_replication_hostgroups(writer_hostgroup, reader_hostgroup, comment) VALUES (1, 2, 'rh')",
		"INSERT INTO mysql_users(username, password, default_hostgroup, comment) VALUES ('u1', '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29', 1, 'hash'), ('u2', 'clear', 2, '')",
		"INSERT INTO mysql_query_rules(rule_id, active, match_digest, destination_hostgroup, apply, comment) VALUES (5, 1, '^SELECT', 2, 1, NULL), (6, 1, 'tab\there ''q''', 1, 0, 'x')",
		"INSERT INTO mysql_query_rules_fast_routing(username, schemaname, flagIN, destination_hostgroup, comment) VALUES ('u1', 's', 0, 2, 'fr')",
		"UPDATE global_variables SET variable_value='8.0.1-rt' WHERE variable_name='mysql-server_version'",
		"UPDATE global_variables SET variable_value='127.0.0.1:1111' WHERE variable_name='mysql-interfaces'",
	)
	b.exec(t, "UPDATE global_variables SET variable_value='127.0.0.1:2222' WHERE variable_name='mysql-interfaces'", "LOAD MYSQL VARIABLES TO RUNTIME")
	for _, m := range Modules {
		a.exec(t, "LOAD "+m.String()+" TO RUNTIME")
	}
	for _, m := range Modules {
		tables, err := readMemory(t.Context(), a.store, m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(&Value{Format: FormatVersion, Module: m.String(), Writer: "a", Tables: tables})
		if err != nil {
			t.Fatal(err)
		}
		if m == config.ModMySQLVariables && strings.Contains(string(data), "mysql-interfaces") {
			t.Fatal("mysql-interfaces is node-local but was encoded")
		}
		v, vm, err := Decode(data)
		if err != nil || vm != m {
			t.Fatalf("%s: decode: %v (module %v)", m, err, vm)
		}
		rows, err := importRows(t.Context(), b.store, m, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.adm.ImportModule(m, rows, true); err != nil {
			t.Fatalf("%s: import: %v", m, err)
		}
		again, err := readMemory(t.Context(), b.store, m)
		if err != nil {
			t.Fatal(err)
		}
		if w := (&Value{Tables: again}); w.Checksum() != v.Checksum() {
			t.Fatalf("%s: MEMORY after import differs:\n%v\n%v", m, again, v.Tables)
		}
	}
	for _, q := range []string{
		"SELECT name, checksum FROM runtime_checksums_values WHERE name IN ('mysql_servers', 'mysql_users', 'mysql_query_rules') ORDER BY name",
		"SELECT * FROM runtime_mysql_query_rules ORDER BY rule_id",
		"SELECT * FROM runtime_mysql_users ORDER BY username, backend",
		"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'mysql-%' AND variable_name <> 'mysql-interfaces' ORDER BY variable_name",
	} {
		if x, y := a.rows(t, q), b.rows(t, q); x != y {
			t.Fatalf("%s:\nsource\n%s\nimporter\n%s", q, x, y)
		}
	}
	// saveToDisk: the importer's DISK holds the source's MEMORY.
	if x, y := a.rows(t, "SELECT * FROM main.mysql_servers"), b.rows(t, "SELECT * FROM disk.mysql_servers"); x != y || x == "" {
		t.Fatalf("importer's DISK:\n%s\nsource's MEMORY:\n%s", y, x)
	}
	if got := b.rows(t, "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-interfaces'"); got != "127.0.0.1:2222\n" {
		t.Fatalf("importer's mysql-interfaces became %q", got)
	}
	if got := b.rows(t, "SELECT comment FROM mysql_query_rules WHERE rule_id=5"); got != "NULL\n" {
		t.Fatalf("NULL comment came back as %q", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	ok := `{"format":1,"module":"MYSQL USERS","tables":{"mysql_users":{"columns":["a","b"],"rows":[["1",null]]}}}`
	if _, m, err := Decode([]byte(ok)); err != nil || m != config.ModMySQLUsers {
		t.Fatalf("valid value: %v", err)
	}
	for in, want := range map[string]string{
		`nope`: "not JSON",
		`{"format":2,"module":"MYSQL USERS","tables":{}}`:                                                    "format 2",
		`{"format":1,"module":"ADMIN VARIABLES","tables":{}}`:                                                "not one Sluice shares",
		`{"format":1,"module":"MYSQL USERS","tables":{}}`:                                                    "lacks table mysql_users",
		`{"format":1,"module":"MYSQL USERS","tables":{"mysql_users":{"columns":["a"],"rows":[]},"x":{}}}`:    `table "x" is not part of`,
		`{"format":1,"module":"MYSQL USERS","tables":{"mysql_users":{"columns":["a"],"rows":[["1","2"]]}}}`:  "row 0 has 2 values for 1 columns",
		`{"format":1,"module":"MYSQL USERS","writer":"` + strings.Repeat("w", 256) + `","tables":{}}`:        "writer name of 256 bytes",
		`{"format":1,"module":"MYSQL USERS","tables":{},"pad":"` + strings.Repeat("x", MaxValueBytes) + `"}`: "more than",
	} {
		if _, _, err := Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", in, err, want)
		}
	}
}
