package storage

import (
	"database/sql"
	"encoding/binary"
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
