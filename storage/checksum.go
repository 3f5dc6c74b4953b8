package storage

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	spooky "github.com/dgryski/go-spooky"

	"github.com/sluice-proxy/sluice/internal/config"
)

// checksumNames are the rows of runtime_checksums_values, in the order
// ProxySQL's generate_global_checksum hashes them.
var checksumNames = []string{
	"admin_variables", "mysql_query_rules", "mysql_servers", "mysql_servers_v2",
	"mysql_users", "mysql_variables", "proxysql_servers",
}

// checksumValue is one row of runtime_checksums_values.
type checksumValue struct {
	version  int64
	epoch    int64
	checksum string
	// loaded is set by the first RecordLoad after Open: that load is the
	// boot load, which ProxySQL reports as version 1.
	loaded bool
}

// moduleChecksumNames maps a module to its runtime_checksums_values rows.
// LOAD MYSQL SERVERS bumps both mysql_servers and mysql_servers_v2. Modules
// without a row (scheduler, firewall, restapi) have none, as in ProxySQL.
func moduleChecksumNames(m config.Module) []string {
	switch m {
	case config.ModAdminVariables:
		return []string{"admin_variables"}
	case config.ModMySQLQueryRules:
		return []string{"mysql_query_rules"}
	case config.ModMySQLServers:
		return []string{"mysql_servers", "mysql_servers_v2"}
	case config.ModMySQLUsers:
		return []string{"mysql_users"}
	case config.ModMySQLVariables:
		return []string{"mysql_variables"}
	case config.ModProxySQLServers:
		return []string{"proxysql_servers"}
	}
	return nil
}

// rawChecksum is ProxySQL's SQLite3_result::raw_checksum: SpookyHash with
// seeds (19, 3) over every field of every row, a NULL hashed as "", and 0
// for an empty result.
func rawChecksum(rows [][]sql.NullString) uint64 {
	if len(rows) == 0 {
		return 0
	}
	h := spooky.New(19, 3)
	for _, r := range rows {
		for _, f := range r {
			if f.Valid {
				_, _ = h.Write([]byte(f.String))
			}
		}
	}
	return h.Sum64()
}

// formatChecksum is ProxySQL's rendering of a checksum: the low and then the
// high 32-bit half in upper-case hex, neither zero-padded ("0x%X%X"), so 0 is
// "0x00".
func formatChecksum(h uint64) string {
	return fmt.Sprintf("0x%X%X", uint32(h), uint32(h>>32))
}

// initChecksums seeds runtime_checksums_values with version 1 ("just
// booted") and the checksum of the (still empty) runtime tables.
func (s *Store) initChecksums(ctx context.Context, now time.Time) error {
	return s.inTx(ctx, "IMMEDIATE", func() error {
		for _, n := range checksumNames {
			sum, err := s.computeChecksum(ctx, n)
			if err != nil {
				return err
			}
			s.checksums[n] = &checksumValue{version: 1, epoch: now.Unix(), checksum: sum}
			if err := s.writeChecksum(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) writeChecksum(ctx context.Context, name string) error {
	v := s.checksums[name]
	_, err := s.conn.ExecContext(ctx,
		"INSERT OR REPLACE INTO main.runtime_checksums_values (name, version, epoch, checksum) VALUES (?, ?, ?, ?)",
		name, v.version, v.epoch, v.checksum)
	if err != nil {
		return fmt.Errorf("storage: write checksum %s: %w", name, err)
	}
	return nil
}

// RecordLoad records that module m was loaded to RUNTIME (after
// WriteRuntime): its runtime_checksums_values rows get the checksum of the
// module's runtime rows as ProxySQL Cluster peers fetch them (cluster.go),
// epoch = now, and version+1. The first load after
// Open keeps version 1, because in ProxySQL version 1 means "as booted" and
// cluster peers do not sync from it; every later load increments it.
// Modules without a checksum row are a no-op.
func (s *Store) RecordLoad(m config.Module, now time.Time) error {
	names := moduleChecksumNames(m)
	if names == nil {
		return nil
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ctx := context.Background()
	return s.inTx(ctx, "IMMEDIATE", func() error {
		for _, n := range names {
			sum, err := s.computeChecksum(ctx, n)
			if err != nil {
				return err
			}
			v := s.checksums[n]
			if v.loaded {
				v.version++
			}
			v.loaded = true
			v.epoch = now.Unix()
			v.checksum = sum
			if err := s.writeChecksum(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// GlobalChecksum is SELECT GLOBAL_CHECKSUM(): ProxySQL's
// generate_global_checksum, a SpookyHash with seeds (9, 5) over, for each
// checksum row with a version, its checksum text and its version as 8
// little-endian bytes, halved so that it fits a signed BIGINT.
func (s *Store) GlobalChecksum() (uint64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	h := spooky.New(9, 5)
	var ver [8]byte
	for _, n := range checksumNames {
		v := s.checksums[n]
		if v == nil || v.version == 0 {
			continue
		}
		_, _ = h.Write([]byte(v.checksum))
		binary.LittleEndian.PutUint64(ver[:], uint64(v.version))
		_, _ = h.Write(ver[:])
	}
	return h.Sum64() / 2, nil
}

// checksumQueries are the statements of CHECKSUM [DISK|MEMORY|MEM] <table>,
// ProxySQL's, with the schema left to fill in.
var checksumQueries = map[string]string{
	"MYSQL SERVERS":                      "SELECT * FROM %s.mysql_servers ORDER BY hostgroup_id, hostname, port",
	"MYSQL USERS":                        "SELECT * FROM %s.mysql_users ORDER BY username",
	"MYSQL QUERY RULES":                  "SELECT * FROM %s.mysql_query_rules ORDER BY rule_id",
	"MYSQL VARIABLES":                    "SELECT * FROM %s.global_variables WHERE variable_name LIKE 'mysql-%%' ORDER BY variable_name",
	"MYSQL REPLICATION HOSTGROUPS":       "SELECT * FROM %s.mysql_replication_hostgroups ORDER BY writer_hostgroup",
	"MYSQL GROUP REPLICATION HOSTGROUPS": "SELECT * FROM %s.mysql_group_replication_hostgroups ORDER BY writer_hostgroup",
	"MYSQL GALERA HOSTGROUPS":            "SELECT * FROM %s.mysql_galera_hostgroups ORDER BY writer_hostgroup",
	"MYSQL AURORA HOSTGROUPS":            "SELECT * FROM %s.mysql_aws_aurora_hostgroups ORDER BY writer_hostgroup",
	"MYSQL HOSTGROUP ATTRIBUTES":         "SELECT * FROM %s.mysql_hostgroup_attributes ORDER BY hostgroup_id",
	"MYSQL SERVERS SSL PARAMS":           "SELECT * FROM %s.mysql_servers_ssl_params ORDER BY hostname, port, username",
}

// Checksum serves CHECKSUM [DISK|MEMORY|MEM] <table>: the checksum of the
// table's rows in DISK or MEMORY (layer "" means MEMORY), formatted as
// ProxySQL does. table is the command's wording, for example "MYSQL SERVERS"
// or "mysql query rules"; an unknown one gives ErrUnknownTable.
func (s *Store) Checksum(layer, table string) (string, error) {
	var schema string
	switch strings.ToUpper(strings.TrimSpace(layer)) {
	case "DISK":
		schema = "disk"
	case "", "MEMORY", "MEM":
		schema = "main"
	default:
		return "", fmt.Errorf("storage: unknown layer %q for CHECKSUM", layer)
	}
	key := strings.Join(strings.Fields(strings.ToUpper(table)), " ")
	q, ok := checksumQueries[key]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownTable, table)
	}
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	rows, err := s.rawRows(context.Background(), fmt.Sprintf(q, schema))
	if err != nil {
		return "", fmt.Errorf("storage: checksum %s: %w", key, err)
	}
	return formatChecksum(rawChecksum(rows)), nil
}
