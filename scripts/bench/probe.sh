#!/usr/bin/env bash
# probe.sh TARGET [test] [threads] [seconds]
#
# Where the CPU of one sysbench run goes, per query, for one target
# (haproxy, sluice or direct, as started by the other scripts here): runs
# sysbench (run.sh) for SECONDS and, over a window of SECONDS-6 seconds
# inside it, reads
#   - the proxy's CPU, context switches and system calls (perf stat on its
#     pid; skipped for direct or without perf),
#   - the backend's and sysbench's user and system time (/proc/<pid>/stat),
#   - inter-processor interrupts (RES: wake-up preemptions; CAL: mostly
#     wake-ups of a task onto an idle CPU; from /proc/interrupts),
#   - TCP segments sent (/proc/net/snmp OutSegs; 4 per query through a
#     proxy when every message is one segment),
#   - the machine's idle share (/proc/stat),
# and divides by the backend's Questions over the same window. One line per
# source on stdout. Single runs are noisy on a shared 2-core machine: pair
# targets and repeat (docs/benchmarks.md, "the client's share").
# Env: PS_MODE=auto|disable (default auto), as run.sh.
set -euo pipefail
BENCH_TAG=probe
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

usage() { echo "usage: $0 haproxy|sluice|direct [test] [threads] [seconds>=10]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
TARGET=$1 TEST=${2:-oltp_point_select} THREADS=${3:-32} SECS=${4:-16}
[[ $TEST =~ ^[a-z_]+$ && $THREADS =~ ^[1-9][0-9]*$ && $SECS =~ ^[0-9]+$ ]] && ((SECS >= 10 && SECS <= 600)) || usage
first=$(backend_list | head -n 1)
bport=$(backend_port "$first")
case $TARGET in
  haproxy) port=$HAPROXY_PORT pid=$("$HERE/haproxy.sh" pid) ;;
  sluice) port=$SLUICE_DATA_PORT pid=$("$HERE/sluice.sh" pid) ;;
  direct) port=$bport pid= ;;
  *) usage ;;
esac
[[ $TARGET == direct || -n $pid ]] || bench_die "$TARGET is not running (scripts/bench/$TARGET.sh start)"
mypid=$(tr -dc '0-9' <"$SLUICE_BACKENDS_DIR/$first/mysqld.pid")
[[ -n $mypid && -d /proc/$mypid ]] || bench_die "backend $first is not running"

questions() { sb_query "$BENCH_HOST" "$bport" "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{print $2}'; }
ipis() { awk '/^ *(RES|CAL):/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n[$1] += $i } END { print n["RES:"] + 0, n["CAL:"] + 0 }' /proc/interrupts; }
outsegs() { awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "OutSegs") c = i; h = 1 } else print $c }' /proc/net/snmp; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12], f[13] }' "/proc/$1/stat"; } # utime stime
idle_total() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $5, t }' /proc/stat; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$HERE/run.sh" "$BENCH_HOST" "$port" "$TEST" "$THREADS" "$SECS" >"$out/run" &
runpid=$!
sleep 4
sb=$(pgrep -n -x sysbench) || bench_die "sysbench did not start"
win=$((SECS - 6))
read -r q0 <<<"$(questions)"
read -r res0 cal0 <<<"$(ipis)"
read -r seg0 <<<"$(outsegs)"
read -r su0 ss0 <<<"$(cpu_ticks "$sb")"
read -r bu0 bs0 <<<"$(cpu_ticks "$mypid")"
read -r id0 tt0 <<<"$(idle_total)"
perfpid=
if [[ -n $pid ]] && command -v perf >/dev/null; then
  perf stat -x, -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter -p "$pid" -o "$out/perf" -- sleep "$win" &
  perfpid=$!
fi
sleep "$win"
read -r q1 <<<"$(questions)"
read -r res1 cal1 <<<"$(ipis)"
read -r seg1 <<<"$(outsegs)"
read -r su1 ss1 <<<"$(cpu_ticks "$sb")"
read -r bu1 bs1 <<<"$(cpu_ticks "$mypid")"
read -r id1 tt1 <<<"$(idle_total)"
[[ -z $perfpid ]] || wait "$perfpid" || true
wait "$runpid" || true
q=$((q1 - q0))
((q > 0)) || bench_die "no queries reached the backend in the window"
hz=$(getconf CLK_TCK)
per() { awk -v d="$1" -v q="$q" -v s="$2" 'BEGIN { printf "%.2f", d * s / q }'; }
us=$(awk -v hz="$hz" 'BEGIN { print 1e6 / hz }')
echo "PROBE target=$TARGET test=$TEST threads=$THREADS ps=${PS_MODE:-auto} window_s=$win queries=$q $(grep -o 'qps=[0-9.]*\|lat_p95_ms=[0-9.]*' "$out/run" | tr '\n' ' ')"
echo "machine idle_pct=$(awk -v a=$((id1 - id0)) -v b=$((tt1 - tt0)) 'BEGIN { printf "%.1f", 100 * a / b }') ipi_res_per_q=$(per $((res1 - res0)) 1) ipi_cal_per_q=$(per $((cal1 - cal0)) 1) tcp_segs_per_q=$(per $((seg1 - seg0)) 1)"
echo "client(sysbench) user_us_per_q=$(per $((su1 - su0)) "$us") sys_us_per_q=$(per $((ss1 - ss0)) "$us")"
echo "backend(mariadbd) user_us_per_q=$(per $((bu1 - bu0)) "$us") sys_us_per_q=$(per $((bs1 - bs0)) "$us")"
if [[ -s $out/perf ]]; then
  awk -F, -v q="$q" '!/^#/ && NF > 2 && $1 ~ /^[0-9.]+$/ {
      v = $1 / q; if ($3 == "task-clock") { v *= 1000; $3 = "cpu_us" }
      sub(/^raw_syscalls:sys_enter$/, "syscalls", $3); gsub(/-/, "_", $3)
      line = line sprintf(" %s_per_q=%.2f", $3, v) }
    END { print "proxy" line }' "$out/perf"
fi
