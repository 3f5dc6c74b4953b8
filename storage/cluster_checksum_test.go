package storage

import (
	"database/sql"
	"encoding/binary"
	"strconv"
	"testing"

	spooky "github.com/dgryski/go-spooky"
)

func nsRows(rows ...[]string) [][]sql.NullString {
	out := make([][]sql.NullString, len(rows))
	for i, r := range rows {
		out[i] = make([]sql.NullString, len(r))
		for j, f := range r {
			out[i][j] = sql.NullString{String: f, Valid: true}
		}
	}
	return out
}

// TestClusterChecksumServersV2: mysql_servers_v2 follows ProxySQL's
// compute_servers_tables_raw_checksum — SpookyHash (19, 3) of the non-zero
// raw checksums in order, as 8 little-endian bytes each (checked here with
// the one-shot Hash128, not the streaming hash the code uses) — so empty
// results, wherever they are, change nothing, and the order of the others
// matters; every other row is the sum of the raw checksums.
func TestClusterChecksumServersV2(t *testing.T) {
	servers := nsRows([]string{"10", "127.0.0.1", "3306", "0", "ONLINE", "1", "0", "1000", "0", "0", "0", "w"})
	repl := nsRows([]string{"10", "11", "cluster"})
	var empty [][]sql.NullString

	if got := ClusterChecksum("mysql_servers_v2", empty, empty, empty); got != "0x00" {
		t.Errorf("all empty: %s, want 0x00", got)
	}
	var msg []byte
	for _, r := range [][][]sql.NullString{servers, repl} {
		msg = binary.LittleEndian.AppendUint64(msg, rawChecksum(r))
	}
	h1, h2 := uint64(19), uint64(3)
	spooky.Hash128(msg, &h1, &h2)
	want := formatChecksum(h1)
	if got := ClusterChecksum("mysql_servers_v2", servers, repl, empty, empty, empty, empty, empty, empty); got != want {
		t.Errorf("servers and replication hostgroups: %s, want %s", got, want)
	}
	if got := ClusterChecksum("mysql_servers_v2", empty, servers, empty, repl); got != want {
		t.Errorf("empty results in between: %s, want %s", got, want)
	}
	if got := ClusterChecksum("mysql_servers_v2", repl, servers); got == want {
		t.Errorf("order ignored: %s", got)
	}
	if sum := ChecksumSum(servers, repl); sum == want {
		t.Errorf("mysql_servers_v2 is the plain sum %s", sum)
	}
	if got, sum := ClusterChecksum("mysql_query_rules", servers, repl), formatChecksum(rawChecksum(servers)+rawChecksum(repl)); got != sum {
		t.Errorf("mysql_query_rules: %s, want the sum %s", got, sum)
	}
}

// userRow is a row of ProxySQL's mysql_users PROXY_SELECT.
func userRow(name, pass string, hg, maxConn int, backend, frontend string) []string {
	return []string{name, pass, "0", strconv.Itoa(hg), "db", "0", "1", "0", backend, frontend, strconv.Itoa(maxConn), "", "c"}
}

// TestClusterChecksumUsers: mysql_users follows ProxySQL's
// MySQL_Authentication::get_runtime_checksum. One backend account hashes
// to the SpookyHash (13, 4) of its fields as ProxySQL lays them out
// (checked with the one-shot Hash128); an account that is both frontend
// and backend counts twice; rows in any order give the same checksum
// (accounts are taken in the order of their username hash); accounts with
// a negative default_hostgroup are left out; no user gives 0.
func TestClusterChecksumUsers(t *testing.T) {
	var msg []byte
	msg = append(msg, 0)                                                   // use_ssl
	msg = binary.LittleEndian.AppendUint32(msg, 10)                        // default_hostgroup
	msg = append(msg, 0, 1, 0)                                             // schema_locked, transaction_persistent, fast_forward
	msg = binary.LittleEndian.AppendUint32(msg, 500)                       // max_connections
	msg = append(msg, "u1*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29dbc"...) // username, password, default_schema, comment, attributes ("")
	h1, h2 := uint64(13), uint64(4)
	spooky.Hash128(msg, &h1, &h2)

	u1 := userRow("u1", "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29", 10, 500, "1", "0")
	if got := ClusterChecksum("mysql_users", nsRows(u1)); got != formatChecksum(h1) {
		t.Errorf("one backend account: %s, want %s", got, formatChecksum(h1))
	}
	both := userRow("u1", "*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29", 10, 500, "1", "1")
	if got := ClusterChecksum("mysql_users", nsRows(both)); got != formatChecksum(2*h1) {
		t.Errorf("frontend and backend account: %s, want %s", got, formatChecksum(2*h1))
	}
	u2 := userRow("u2", "pw", 11, 0, "1", "1")
	u3 := userRow("u3", "pw3", 12, 7, "0", "1")
	a := ClusterChecksum("mysql_users", nsRows(both, u2, u3))
	if b := ClusterChecksum("mysql_users", nsRows(u3, both, u2)); a != b {
		t.Errorf("row order changes the checksum: %s, %s", a, b)
	}
	if got := ClusterChecksum("mysql_users", nsRows(both, u2, u3, userRow("u4", "x", -1, 0, "1", "1"))); got != a {
		t.Errorf("an account with default_hostgroup -1 counted: %s, want %s", got, a)
	}
	if got := ClusterChecksum("mysql_users", nsRows(both, userRow("u2", "other", 11, 0, "1", "1"), u3)); got == a {
		t.Error("a changed password leaves the checksum as it was")
	}
	if got := ClusterChecksum("mysql_users", nil); got != "0x00" {
		t.Errorf("no user: %s", got)
	}
}
