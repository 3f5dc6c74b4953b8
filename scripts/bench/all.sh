#!/usr/bin/env bash
# all.sh: the whole sysbench comparison in one command (make bench-sysbench).
#
#   1. scripts/backends.sh start (with sysbench and haproxy installed too) for
#      the instances in BENCH_BACKENDS (default 1);
#   2. prepare.sh: the sysbench tables on them (database BENCH_DB=sluice_bench);
#   3. haproxy.sh start and sluice.sh start;
#   4. compare.sh for each test in TESTS: direct vs haproxy vs sluice,
#      interleaved rounds;
#   5. prints the summary and writes it to RESULTS (a markdown file);
#   6. stops the HAProxy and Sluice it started (KEEP=1 leaves them running).
#      The backends are left running: they belong to scripts/backends.sh
#      (make backends-stop stops them).
# A proxy that fails to start or to serve sbtest is reported as FAILED in the
# table and the other targets are still measured. Defaults take about five
# minutes on 2 cores.
# Env: TESTS="oltp_point_select oltp_read_only" THREADS="4 16" DURATION=10
#      ROUNDS=2 WARMUP=3 PAUSE=1 PS_MODE=auto TABLES=4 TABLE_SIZE=10000
#      TARGETS="haproxy sluice" KEEP=0 (add sluice-base, with SLUICE_BASE_REV or
#      SLUICE_BASE_BIN, to compare two Sluice builds in the same run; add
#      tiproxy, with TIPROXY_BIN, to measure TiProxy in the same run)
#      RESULTS=BENCH_DIR/results/sysbench-DATE.md
set -euo pipefail
BENCH_TAG=all
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/bench/common.sh
. "$HERE/common.sh"

TESTS=${TESTS:-"oltp_point_select oltp_read_only"}
export THREADS=${THREADS:-"4 16"}
export DURATION=${DURATION:-10}
export ROUNDS=${ROUNDS:-2}
export WARMUP=${WARMUP:-3}
export PAUSE=${PAUSE:-1}
export PS_MODE=${PS_MODE:-auto}
TARGETS=${TARGETS:-"haproxy sluice"}
KEEP=${KEEP:-0}
stamp=$(date +%Y%m%d-%H%M%S)
RUN_OUT=$BENCH_DIR/results/sysbench-$stamp
RESULTS=${RESULTS:-$RUN_OUT.md}
for t in $TESTS; do [[ $t =~ ^[a-z_]+$ ]] || bench_die "TESTS: bad test name '$t'"; done
for t in $TARGETS; do [[ $t =~ ^(haproxy|tiproxy|sluice|sluice-base)$ ]] || bench_die "TARGETS: unknown target '$t' (haproxy, tiproxy, sluice, sluice-base)"; done

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  bench_log "warning: load average $load_start on $(nproc) CPUs before the run: other work will skew the figures"
fi
started=()
cleanup() {
  local s
  ((KEEP)) && return 0
  for s in "${started[@]}"; do "$HERE/$s.sh" stop || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. backends (idempotent: starts only what is not running) and tools
max=0
for i in $(backend_list); do ((i > max)) && max=$i; done
SLUICE_BACKENDS_EXTRA_PKGS="sysbench haproxy" "$REPO/scripts/backends.sh" start "$max" >/dev/null \
  || bench_die "scripts/backends.sh start $max failed"
# 2. data
"$HERE/prepare.sh"

# 3. proxies: each becomes LABEL=HOST:PORT:PID, or LABEL=!REASON when it
# cannot be started at all.
specs=()
for t in $TARGETS; do
  case $t in
    haproxy) port=$HAPROXY_PORT ;;
    tiproxy) port=$TIPROXY_PORT ;;
    sluice) port=$SLUICE_DATA_PORT ;;
    sluice-base) port=$((SLUICE_DATA_PORT + 100)) ;;
  esac
  pid=$("$HERE/$t.sh" pid 2>/dev/null || true)
  errf=$BENCH_DIR/$t-start.err
  mkdir -p "$BENCH_DIR"
  rc=0
  "$HERE/$t.sh" start 2>"$errf" || rc=$?
  cat "$errf" >&2
  [[ -n $pid ]] || started+=("$t") # stop on exit only what this run started
  pid=$("$HERE/$t.sh" pid 2>/dev/null || true)
  if ((rc == 0 || rc == 3)) && [[ -n $pid ]]; then
    # rc 3: running but not serving; compare.sh reports the client's error.
    specs+=("$t=$BENCH_HOST:$port:$pid")
  else
    reason=$(grep -m1 -o 'ERROR: .*' "$errf" | sed 's/^ERROR: //' || true)
    specs+=("$t=!start failed: ${reason:-exit status $rc}")
  fi
done

# 4. one interleaved comparison per test
mkdir -p "$RUN_OUT"
for test in $TESTS; do
  bench_log "== $test: threads $THREADS, ${DURATION}s x $ROUNDS rounds"
  TEST=$test OUT_DIR=$RUN_OUT/$test "$HERE/compare.sh" "${specs[@]}" >/dev/null \
    || bench_die "compare.sh failed for $test (see $RUN_OUT/$test)"
done

# 5. one results file
{
  echo "## sysbench: direct vs $(tr ' ' '/' <<<"$TARGETS")"
  echo
  echo "- date: $(date -Is)"
  echo "- commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- $(sysbench --version), $(haproxy -v 2>/dev/null | head -n1 | cut -d' ' -f1-3), $(mariadb --no-defaults -h"$BENCH_HOST" -P"$(backend_port "$(backend_list | head -n1)")" -usbtest -psbtest -N -B -e 'SELECT VERSION()' 2>/dev/null || echo 'MariaDB ?')"
  if [[ " $TARGETS " == *" tiproxy "* ]]; then echo "- TiProxy: $("${TIPROXY_BIN:-false}" --version 2>/dev/null | head -n1 || echo '?')"; fi
  echo "- backends: instances $(backend_list | tr '\n' ' ')(direct = the first), $TABLES tables x $TABLE_SIZE rows; ps_mode=$PS_MODE"
  echo "- raw rows: $RUN_OUT/<test>/rounds.tsv"
  echo
  for test in $TESTS; do
    cat "$RUN_OUT/$test/summary.md"
    echo
  done
} >"$RESULTS"
cat "$RESULTS"
bench_log "results written to $RESULTS"
