#!/usr/bin/env bash
# prepare.sh [INSTANCE ...]
#
# Loads the sysbench OLTP tables (sbtest1..TABLES, TABLE_SIZE rows each) into
# database BENCH_DB (default sluice_bench, created if missing) of each given
# backend instance of scripts/backends.sh (default: the instances in
# BENCH_BACKENDS, i.e. "1"). A backend that
# already holds exactly the expected rows is left alone unless FORCE=1; any
# other state is cleaned up and loaded again, so a half-finished load from an
# interrupted run is never benchmarked.
# Env: TABLES=4 TABLE_SIZE=10000 FORCE=0 (plus common.sh's).
set -euo pipefail
BENCH_TAG=prepare
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"

FORCE=${FORCE:-0}
[[ $TABLES =~ ^[1-9][0-9]*$ && $TABLE_SIZE =~ ^[1-9][0-9]*$ ]] || bench_die "TABLES and TABLE_SIZE must be positive integers"
command -v sysbench >/dev/null || bench_die "sysbench missing: SLUICE_BACKENDS_EXTRA_PKGS=\"sysbench haproxy\" scripts/backends.sh start"

instances=("$@")
((${#instances[@]})) || mapfile -t instances < <(backend_list)

sb_common=(--db-driver=mysql --mysql-host="$BENCH_HOST" --mysql-user=sbtest --mysql-password=sbtest
  --mysql-db="$BENCH_DB" --tables="$TABLES" --table-size="$TABLE_SIZE")

rows_present() { # total rows in sbtest1..TABLES, or -1 when a table is missing
  local port=$1 t q="" n
  for ((t = 1; t <= TABLES; t++)); do q+="${q:+ + }(SELECT COUNT(*) FROM \`$BENCH_DB\`.sbtest$t)"; done
  if n=$(sb_query "$BENCH_HOST" "$port" "SELECT $q" 2>/dev/null) && [[ $n =~ ^[0-9]+$ ]]; then echo "$n"; else echo -1; fi
}

mkdir -p "$BENCH_DIR"
want=$((TABLES * TABLE_SIZE))
for i in "${instances[@]}"; do
  [[ $i =~ ^[1-9][0-9]*$ ]] || bench_die "'$i' is not an instance number"
  port=$(backend_port "$i")
  sb_answers "$BENCH_HOST" "$port" || bench_die "backend $i ($BENCH_HOST:$port) does not answer as sbtest: $(sb_error "$BENCH_HOST" "$port") (start it: scripts/backends.sh start)"
  [[ $BENCH_DB =~ ^[A-Za-z0-9_]+$ ]] || bench_die "BENCH_DB: '$BENCH_DB' is not a plain database name"
  sb_query "$BENCH_HOST" "$port" "CREATE DATABASE IF NOT EXISTS \`$BENCH_DB\`" >/dev/null \
    || bench_die "cannot create database $BENCH_DB on backend $i"
  have=$(rows_present "$port")
  if [[ $FORCE != 1 && $have == "$want" ]]; then
    bench_log "backend $i ($port) already has $TABLES tables x $TABLE_SIZE rows"
    continue
  fi
  bench_log "backend $i ($port): loading $TABLES tables x $TABLE_SIZE rows (found $have)"
  plog=$BENCH_DIR/prepare-$port.log
  t0=$SECONDS
  # cleanup drops only sbtest1..TABLES; both steps are bounded so a stuck
  # server cannot hang the harness.
  timeout -k 5 300 sysbench oltp_common "${sb_common[@]}" --mysql-port="$port" cleanup >"$plog" 2>&1 \
    || { tail -n 20 "$plog" >&2; bench_die "sysbench cleanup failed on backend $i"; }
  timeout -k 5 900 sysbench oltp_common "${sb_common[@]}" --mysql-port="$port" prepare >>"$plog" 2>&1 \
    || { tail -n 20 "$plog" >&2; bench_die "sysbench prepare failed on backend $i"; }
  have=$(rows_present "$port")
  [[ $have == "$want" ]] || bench_die "backend $i: expected $want rows after prepare, found $have"
  bench_log "backend $i ($port): loaded in $((SECONDS - t0))s"
done
