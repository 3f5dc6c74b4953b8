package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The stats_history schema (the file StatsFile): samples the admin timer
// takes (internal/proxy/history.go), kept and trimmed exactly as ProxySQL's
// lib/ProxySQL_Statistics.cpp does:
//   - every sample is one row of the raw table, keyed on its Unix time;
//   - right after it, the hours that are complete and not yet in <table>_hour
//     are aggregated there: one row per hour (timestamp/3600*3600), counters
//     by MAX, gauges by AVG (system_cpu by SUM, system_memory by AVG), the
//     same expressions as ProxySQL's;
//   - then raw rows older than 7 days and hour rows older than 365 days
//     are deleted, relative to the new sample's time.
// The _day tables exist, empty, as in ProxySQL (which creates them and
// never fills them). history_mysql_query_digest is appended to by
// SAVE MYSQL DIGEST TO DISK and admin-stats_mysql_query_digest_to_disk,
// and never trimmed, as in ProxySQL.

// Retention of the raw and _hour history tables, in seconds (ProxySQL's
// 3600*24*7 and 3600*24*365).
const (
	HistoryRawRetention  = 3600 * 24 * 7
	HistoryHourRetention = 3600 * 24 * 365
)

// historySeries is one sampled stats_history table: its value columns
// (after timestamp) and the expression that aggregates each into an hour.
type historySeries struct {
	cols []string
	hour []string
}

// HistorySeries names the tables RecordHistory fills.
const (
	HistMySQLConnections = "mysql_connections"
	HistSystemCPU        = "system_cpu"
	HistSystemMemory     = "system_memory"
	HistMySQLQueryCache  = "mysql_query_cache"
)

var historyTables = map[string]historySeries{
	HistMySQLConnections: {
		cols: []string{"Client_Connections_aborted", "Client_Connections_connected", "Client_Connections_created",
			"Server_Connections_aborted", "Server_Connections_connected", "Server_Connections_created",
			"ConnPool_get_conn_failure", "ConnPool_get_conn_immediate", "ConnPool_get_conn_success",
			"Questions", "Slow_queries", "GTID_consistent_queries"},
		hour: []string{"MAX(Client_Connections_aborted)", "AVG(Client_Connections_connected)", "MAX(Client_Connections_created)",
			"MAX(Server_Connections_aborted)", "AVG(Server_Connections_connected)", "MAX(Server_Connections_created)",
			"MAX(ConnPool_get_conn_failure)", "MAX(ConnPool_get_conn_immediate)", "MAX(ConnPool_get_conn_success)",
			"MAX(Questions)", "MAX(Slow_queries)", "MAX(GTID_consistent_queries)"},
	},
	HistSystemCPU: {
		cols: []string{"tms_utime", "tms_stime"},
		hour: []string{"SUM(tms_utime)", "SUM(tms_stime)"},
	},
	HistSystemMemory: {
		cols: []string{"allocated", "resident", "active", "mapped", "metadata", "retained"},
		hour: []string{"AVG(allocated)", "AVG(resident)", "AVG(active)", "AVG(mapped)", "AVG(metadata)", "AVG(retained)"},
	},
	HistMySQLQueryCache: {
		cols: []string{"count_GET", "count_GET_OK", "count_SET", "bytes_IN", "bytes_OUT", "Entries_Purged", "Entries_In_Cache", "Memory_Bytes"},
		hour: []string{"MAX(count_GET)", "MAX(count_GET_OK)", "MAX(count_SET)", "MAX(bytes_IN)", "MAX(bytes_OUT)",
			"MAX(Entries_Purged)", "AVG(Entries_In_Cache)", "AVG(Memory_bytes)"},
	},
}

// HistoryColumns returns the value columns of a sampled history table (after
// timestamp), in order, or nil for a table RecordHistory does not fill.
func HistoryColumns(table string) []string {
	return historyTables[table].cols
}

// RecordHistory appends one sample taken at Unix time ts to the
// stats_history table (one of the Hist* names; values in the order of
// HistoryColumns), aggregates the complete hours into <table>_hour and
// trims both, in one transaction.
func (s *Store) RecordHistory(ctx context.Context, table string, ts int64, values []int64) error {
	ser, ok := historyTables[table]
	if !ok {
		return fmt.Errorf("storage: %s is not a sampled stats_history table", table)
	}
	if len(values) != len(ser.cols) {
		return fmt.Errorf("storage: stats_history.%s takes %d values, got %d", table, len(ser.cols), len(values))
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	raw, hour := "stats_history."+table, "stats_history."+table+"_hour"
	err := s.inTx(ctx, "DEFERRED", func() error {
		args := make([]any, 0, 1+len(values))
		args = append(args, ts)
		for _, v := range values {
			args = append(args, v)
		}
		// OR REPLACE: two samples in one second (an interval shortened
		// by a LOAD) keep the later one instead of failing.
		q := "INSERT OR REPLACE INTO " + raw + " (timestamp, " + strings.Join(ser.cols, ", ") + ") VALUES (?" +
			strings.Repeat(", ?", len(values)) + ")"
		if _, err := s.conn.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		var last sql.NullInt64
		if err := s.conn.QueryRowContext(ctx, "SELECT MAX(timestamp) FROM "+hour).Scan(&last); err != nil {
			return err
		}
		thisHour := ts / 3600 * 3600
		agg := "INSERT INTO " + hour + " SELECT timestamp/3600*3600, " + strings.Join(ser.hour, ", ") + " FROM " + raw
		switch {
		case !last.Valid:
			if _, err := s.conn.ExecContext(ctx, agg+" WHERE timestamp < ? GROUP BY timestamp/3600", thisHour); err != nil {
				return err
			}
		case ts >= last.Int64+3600:
			if _, err := s.conn.ExecContext(ctx, agg+" WHERE timestamp >= ? AND timestamp < ? GROUP BY timestamp/3600", last.Int64+3600, thisHour); err != nil {
				return err
			}
		}
		if _, err := s.conn.ExecContext(ctx, "DELETE FROM "+raw+" WHERE timestamp < ?", ts-HistoryRawRetention); err != nil {
			return err
		}
		_, err := s.conn.ExecContext(ctx, "DELETE FROM "+hour+" WHERE timestamp < ?", ts-HistoryHourRetention)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: record stats_history.%s: %w", table, sqlError(err))
	}
	return nil
}

// DigestHistoryColumns are the columns of history_mysql_query_digest after
// dump_time: stats_mysql_query_digest's.
var DigestHistoryColumns = []string{"hostgroup", "schemaname", "username", "client_address", "digest", "digest_text",
	"count_star", "first_seen", "last_seen", "sum_time", "min_time", "max_time", "sum_rows_affected", "sum_rows_sent"}

// SaveDigests appends rows (DigestHistoryColumns each) to
// stats_history.history_mysql_query_digest with dump_time ts, in one
// transaction (SAVE MYSQL DIGEST TO DISK).
func (s *Store) SaveDigests(ctx context.Context, ts int64, rows [][]any) error {
	for i, r := range rows {
		if len(r) != len(DigestHistoryColumns) {
			return fmt.Errorf("storage: digest row %d has %d values for %d columns", i, len(r), len(DigestHistoryColumns))
		}
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cols := append([]string{"dump_time"}, DigestHistoryColumns...)
	full := make([][]any, len(rows))
	for i, r := range rows {
		full[i] = append([]any{ts}, r...)
	}
	err := s.inTx(ctx, "DEFERRED", func() error {
		return s.insertBatches(ctx, "stats_history.history_mysql_query_digest", cols, full)
	})
	if err != nil {
		return fmt.Errorf("storage: save digests: %w", sqlError(err))
	}
	return nil
}
