#!/usr/bin/env bash
# run.sh HOST PORT [test] [threads] [seconds]
#
# One sysbench run against HOST:PORT (a backend or a proxy in front of one)
# as sbtest/sbtest on the tables prepare.sh loaded into BENCH_DB, printing ONE parsable line on stdout:
#   RESULT target=H:P test=T threads=N secs=S ps=MODE qps=.. tps=.. lat_avg_ms=..
#          lat_p95_ms=.. lat_p99_ms=.. lat_max_ms=.. queries=.. errors=..
#          reconnects=.. client_cpu_s=.. raw=FILE
# or, when the run fails, "RESULT target=.. qps=0 failed=1 reason=.. raw=FILE"
# with exit status 1. client_cpu_s is the CPU (user+sys) sysbench itself used.
# Percentiles come from sysbench's histogram (3-decimal ms) rather than its
# 2-decimal summary, which rounds sub-millisecond loopback latencies away.
# The run is bounded: sysbench stops itself after SECS, and timeout(1) kills
# it SECS+RUN_GRACE seconds after the start whatever it is doing (a proxy that
# accepts connections and then stalls must not hang the harness).
# test: oltp_point_select (default), oltp_read_only, or any sysbench OLTP test.
# Env: PS_MODE=auto|disable (auto = server-side prepared statements, sysbench's
#      default; disable = text protocol), TABLES=4, TABLE_SIZE=10000,
#      RUN_GRACE=30, SB_EXTRA="more sysbench args", RAW_DIR=BENCH_DIR/raw.
set -euo pipefail
BENCH_TAG=run
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"

usage() { echo "usage: $0 HOST PORT [test] [threads] [seconds]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
HOST=$1 PORT=$2 TEST=${3:-oltp_point_select} THREADS=${4:-8} SECS=${5:-20}
PS_MODE=${PS_MODE:-auto}
RUN_GRACE=${RUN_GRACE:-30}
RAW_DIR=${RAW_DIR:-$BENCH_DIR/raw}

# Benchmark traffic stays on this machine.
case $HOST in
  127.* | localhost | ::1) ;;
  *) echo "run.sh: refusing non-loopback target '$HOST'" >&2; exit 2 ;;
esac
[[ $PORT =~ ^[0-9]+$ && $THREADS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $RUN_GRACE =~ ^[0-9]+$ ]] || usage
[[ $TEST =~ ^[a-z_]+$ && $PS_MODE =~ ^(auto|disable)$ ]] || usage
command -v sysbench >/dev/null || bench_die "sysbench missing: SLUICE_BACKENDS_EXTRA_PKGS=\"sysbench haproxy\" scripts/backends.sh start"

mkdir -p "$RAW_DIR"
raw="$RAW_DIR/$(date +%Y%m%d-%H%M%S)-$PORT-$TEST-t$THREADS-$$.log"
extra=()
[[ -z ${SB_EXTRA:-} ]] || read -r -a extra <<<"$SB_EXTRA"

child_ticks() { # utime+stime of this shell's reaped children (cutime+cstime)
  local s f
  read -r s </proc/$$/stat
  s=${s##*) }
  read -r -a f <<<"$s"
  echo $((f[13] + f[14]))
}

fail() { # reason
  echo "run.sh: $HOST:$PORT $TEST t$THREADS: $1; tail of $raw:" >&2
  tail -n 8 "$raw" >&2 || true
  echo "RESULT target=$HOST:$PORT test=$TEST threads=$THREADS secs=$SECS ps=$PS_MODE qps=0 failed=1 reason=$(tr ' =' '__' <<<"$1") raw=$raw"
  exit 1
}

c0=$(child_ticks)
rc=0
timeout -k 5 $((SECS + RUN_GRACE)) sysbench "$TEST" --db-driver=mysql --mysql-host="$HOST" --mysql-port="$PORT" \
  --mysql-user=sbtest --mysql-password=sbtest --mysql-db="$BENCH_DB" \
  --tables="$TABLES" --table-size="$TABLE_SIZE" --db-ps-mode="$PS_MODE" \
  --threads="$THREADS" --time="$SECS" --events=0 --report-interval=0 \
  --percentile=95 --histogram=on "${extra[@]}" run >"$raw" 2>&1 || rc=$?
client_cpu=$(awk -v t="$(($(child_ticks) - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
((rc != 124 && rc != 137)) || fail "killed after $((SECS + RUN_GRACE))s"

line=$(awk -v target="$HOST:$PORT" -v test="$TEST" -v ccpu="$client_cpu" -v threads="$THREADS" -v secs="$SECS" \
  -v ps="$PS_MODE" -v raw="$raw" '
  /^Latency histogram/ { inhist = 1; next }
  inhist && /^ *[0-9.]+ \|/ { n++; hv[n] = $1; hc[n] = $NF; htot += $NF; next }
  inhist && /^$/ { inhist = 0 }
  /^ *queries:/ { queries = $2; qps = $3; gsub(/[^0-9.]/, "", qps) }
  /^ *transactions:/ { tps = $3; gsub(/[^0-9.]/, "", tps) }
  /^ *ignored errors:/ { errors = $3 }
  /^ *reconnects:/ { reconnects = $2 }
  /^ *total number of events:/ { events = $5 }
  /^ *max:/ { lmax = $2 }
  /^ *sum:/ { lsum = $2 }
  function pct(p,   i, c, want) {
    if (htot == 0) return "nan"
    want = p * htot; c = 0
    for (i = 1; i <= n; i++) { c += hc[i]; if (c >= want) return hv[i] }
    return hv[n]
  }
  END {
    if (queries == "") exit 1
    avg = (events > 0) ? sprintf("%.4f", lsum / events) : "nan"
    printf "RESULT target=%s test=%s threads=%s secs=%s ps=%s qps=%s tps=%s lat_avg_ms=%s lat_p95_ms=%s lat_p99_ms=%s lat_max_ms=%s queries=%s errors=%s reconnects=%s client_cpu_s=%s raw=%s\n",
      target, test, threads, secs, ps, qps, tps, avg, pct(0.95), pct(0.99), lmax, queries, errors, reconnects, ccpu, raw
  }' "$raw") || line=""

((rc == 0)) || fail "sysbench exit status $rc"
[[ -n $line ]] || fail "no sysbench summary"
queries=$(sed -n 's/.* queries=\([0-9]*\) .*/\1/p' <<<"$line")
((${queries:-0} > 0)) || fail "no queries completed"
echo "$line"
