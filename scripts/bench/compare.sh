#!/usr/bin/env bash
# compare.sh [LABEL=HOST:PORT:PID | LABEL=!REASON] ...
#
# One interleaved comparison of the direct backend (the first instance in
# BENCH_BACKENDS, label "direct") with each proxy given as
# LABEL=HOST:PORT:PID; PID is the proxy process whose CPU and RSS are read
# ("-" = do not measure). LABEL=!REASON lists a proxy that could not even be
# started: it is reported as FAILED with REASON and never run.
#
# Why interleaved: on a small shared machine throughput drifts by several
# percent over minutes (other work, CPU frequency, the backends' own caches).
# Running every target once per round, for every thread count, and rotating
# the target order each round spreads that drift over all targets instead of
# charging it to whichever ran last; ratios are taken against the direct run
# of the same round and then the median over rounds is reported.
#
# Around each run it reads utime+stime from /proc/PID/stat for the proxy (and
# its descendants), the bench backends' mariadbd processes and, system-wide,
# the busy jiffies from /proc/stat; after it, the proxy's RSS. A target that
# does not answer before round 1 is reported as FAILED with the client's
# error and skipped; a run that fails is counted (column "runs ok") and the
# others are still reported; a proxy that dies stops being run.
#
# Env: TEST=oltp_point_select THREADS="4 16" DURATION=10 ROUNDS=2 WARMUP=3
#      PAUSE=1 PS_MODE=auto OUT_DIR=BENCH_DIR/results/compare-DATE-TEST
# Output: OUT_DIR/rounds.tsv (one row per run), OUT_DIR/meta.txt,
#         OUT_DIR/summary.md (also printed on stdout).
set -euo pipefail
BENCH_TAG=compare
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/bench/common.sh
. "$HERE/common.sh"

TEST=${TEST:-oltp_point_select}
THREADS=${THREADS:-"4 16"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-3}
PAUSE=${PAUSE:-1}
PS_MODE=${PS_MODE:-auto}
export PS_MODE
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/compare-$(date +%Y%m%d-%H%M%S)-$TEST}
export RAW_DIR=$OUT_DIR/raw
HZ=$(getconf CLK_TCK)
for v in DURATION ROUNDS WARMUP PAUSE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || bench_die "$v must be a non-negative integer"
done
((DURATION > 0 && ROUNDS > 0)) || bench_die "DURATION and ROUNDS must be > 0"
for t in $THREADS; do [[ $t =~ ^[1-9][0-9]*$ ]] || bench_die "THREADS: '$t' is not a thread count"; done

labels=() hosts=() ports=() pids=() status=()
declare -A failreason=()
add_target() { labels+=("$1") hosts+=("$2") ports+=("$3") pids+=("$4") status+=(ok); }
mapfile -t backends < <(backend_list)
add_target direct "$BENCH_HOST" "$(backend_port "${backends[0]}")" -
for spec in "$@"; do
  label=${spec%%=*}
  rest=${spec#*=}
  [[ $spec == *=* && $label =~ ^[A-Za-z0-9_.-]+$ && $label != direct ]] || bench_die "bad target '$spec' (want LABEL=HOST:PORT:PID or LABEL=!REASON)"
  if [[ $rest == '!'* ]]; then
    add_target "$label" - - -
    status[-1]=failed
    failreason[$label]=${rest#!}
    continue
  fi
  IFS=: read -r h p pid <<<"$rest"
  [[ -n ${h:-} && ${p:-} =~ ^[0-9]+$ && ${pid:-} =~ ^([0-9]+|-)$ ]] || bench_die "bad target '$spec' (want LABEL=HOST:PORT:PID)"
  add_target "$label" "$h" "$p" "$pid"
done
ntargets=${#labels[@]}

proc_tree() { # pid and all its descendants, one per line
  local root=$1 d s
  echo "$root"
  for d in /proc/[0-9]*; do
    read -r s 2>/dev/null <"$d/stat" || continue
    s=${s##*) }
    read -r -a f <<<"$s"
    if [[ ${f[1]} == "$root" ]]; then proc_tree "${d#/proc/}"; fi
  done
}

cpu_ticks() { # summed utime+stime of the given pids
  local total=0 pid s
  for pid in "$@"; do
    read -r s 2>/dev/null <"/proc/$pid/stat" || continue
    s=${s##*) }
    read -r -a f <<<"$s"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

rss_kb() { # summed VmRSS of the given pids
  local total=0 pid v
  for pid in "$@"; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

sys_ticks() { # "busy total" jiffies from /proc/stat (idle and iowait are not busy)
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

backend_pids=()
for i in "${backends[@]}"; do
  bp=$(backend_pid "$i")
  [[ -n $bp ]] && backend_pids+=("$bp")
done
((${#backend_pids[@]})) || bench_die "no running backend among instances ${backends[*]} (scripts/backends.sh start)"
sb_answers "$BENCH_HOST" "${ports[0]}" || bench_die "direct target $BENCH_HOST:${ports[0]} does not answer: $(sb_error "$BENCH_HOST" "${ports[0]}")"

# Check every proxy once before round 1: one that does not answer is
# reported, not run, and does not stop the others from being measured.
for ((i = 1; i < ntargets; i++)); do
  [[ ${status[$i]} == ok ]] || continue
  if [[ ${pids[$i]} != - ]] && ! alive "${pids[$i]}"; then
    status[i]=failed failreason[${labels[$i]}]="process ${pids[$i]} is not running"
  elif ! sb_answers "${hosts[$i]}" "${ports[$i]}"; then
    status[i]=failed failreason[${labels[$i]}]="does not serve sbtest: $(sb_error "${hosts[$i]}" "${ports[$i]}")"
  fi
  [[ ${status[$i]} == ok ]] || bench_log "target ${labels[$i]} FAILED: ${failreason[${labels[$i]}]}"
done

mkdir -p "$OUT_DIR" "$RAW_DIR"
tsv=$OUT_DIR/rounds.tsv
{
  echo "date: $(date -Is)"
  echo "host: nproc=$(nproc) cpu='$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)' mem=$(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
  echo "loadavg_before: $(cat /proc/loadavg)"
  echo "test=$TEST threads='$THREADS' duration=${DURATION}s rounds=$ROUNDS warmup=${WARMUP}s ps_mode=$PS_MODE tables=$TABLES table_size=$TABLE_SIZE"
  echo "backends: ${backends[*]} pids ${backend_pids[*]}"
  for ((i = 0; i < ntargets; i++)); do
    echo "target: ${labels[$i]} ${hosts[$i]}:${ports[$i]} pid=${pids[$i]} status=${status[$i]} ${failreason[${labels[$i]}]:-}"
  done
} >"$OUT_DIR/meta.txt"
printf 'round\tthreads\torder\tlabel\ttarget\tok\tqps\tlat_p95_ms\tlat_avg_ms\tqueries\terrors\tproxy_cpu_s\tproxy_cpu_s_per_kq\tbackend_cpu_s_per_kq\tsys_busy_pct\tproxy_rss_kb\tclient_cpu_s_per_kq\tall_cpu_s_per_kq\treason\n' >"$tsv"

max_threads=0
for t in $THREADS; do ((t > max_threads)) && max_threads=$t; done
if ((WARMUP > 0)); then
  for ((i = 0; i < ntargets; i++)); do
    [[ ${status[$i]} == ok ]] || continue
    bench_log "warmup ${labels[$i]} ${WARMUP}s x $max_threads threads"
    "$HERE/run.sh" "${hosts[$i]}" "${ports[$i]}" "$TEST" "$max_threads" "$WARMUP" >/dev/null 2>"$OUT_DIR/warmup-${labels[$i]}.err" \
      || bench_log "warmup failed for ${labels[$i]} (see $OUT_DIR/warmup-${labels[$i]}.err)"
  done
fi

for ((r = 1; r <= ROUNDS; r++)); do
  for t in $THREADS; do
    for ((k = 0; k < ntargets; k++)); do
      i=$(((k + r - 1) % ntargets))
      [[ ${status[$i]} == ok ]] || continue
      sleep "$PAUSE"
      ptree=()
      if [[ ${pids[$i]} != - ]]; then mapfile -t ptree < <(proc_tree "${pids[$i]}"); fi
      p0=$(cpu_ticks "${ptree[@]}")
      b0=$(cpu_ticks "${backend_pids[@]}")
      read -r s0busy s0tot < <(sys_ticks)
      line=$("$HERE/run.sh" "${hosts[$i]}" "${ports[$i]}" "$TEST" "$t" "$DURATION" 2>>"$OUT_DIR/runs.err") || true
      p1=$(cpu_ticks "${ptree[@]}")
      b1=$(cpu_ticks "${backend_pids[@]}")
      read -r s1busy s1tot < <(sys_ticks)
      rss=-
      if [[ ${pids[$i]} != - ]]; then
        if alive "${pids[$i]}"; then
          rss=$(rss_kb "${ptree[@]}")
        else
          status[i]=died failreason[${labels[$i]}]="process ${pids[$i]} died in round $r (threads $t)"
          bench_log "target ${labels[$i]}: ${failreason[${labels[$i]}]}; not run again"
        fi
      fi
      bench_log "r$r t$t ${labels[$i]}: ${line:-RESULT failed=1 reason=no_output}"
      awk -v line="${line:-RESULT failed=1 reason=no_output}" -v r="$r" -v t="$t" -v k="$((k + 1))" -v label="${labels[$i]}" \
        -v target="${hosts[$i]}:${ports[$i]}" -v pt="$((p1 - p0))" -v bt="$((b1 - b0))" -v hz="$HZ" -v haspid="${pids[$i]}" \
        -v sb="$((s1busy - s0busy))" -v st="$((s1tot - s0tot))" -v rss="$rss" 'BEGIN {
          n = split(line, kv, " ")
          for (j = 2; j <= n; j++) { e = index(kv[j], "="); v[substr(kv[j], 1, e - 1)] = substr(kv[j], e + 1) }
          ok = (v["failed"] == "1") ? 0 : 1
          q = ok ? v["queries"] + 0 : 0
          pcpu = (haspid == "-") ? "-" : sprintf("%.2f", pt / hz)
          pkq = (haspid == "-" || q == 0) ? "-" : sprintf("%.5f", (pt / hz) / (q / 1000))
          bkq = (q == 0) ? "-" : sprintf("%.5f", (bt / hz) / (q / 1000))
          busy = (st > 0) ? sprintf("%.1f", 100 * sb / st) : "-"
          ckq = (q == 0 || v["client_cpu_s"] == "") ? "-" : sprintf("%.5f", v["client_cpu_s"] / (q / 1000))
          akq = (q == 0) ? "-" : sprintf("%.5f", (sb / hz) / (q / 1000))
          printf "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r, t, k, label, target, ok,
            (ok ? v["qps"] : 0), (ok ? v["lat_p95_ms"] : "-"), (ok ? v["lat_avg_ms"] : "-"), q, (ok ? v["errors"] : 0),
            pcpu, pkq, bkq, busy, rss, ckq, akq, (ok ? "-" : v["reason"])
        }' >>"$tsv"
    done
  done
done
echo "loadavg_after: $(cat /proc/loadavg)" >>"$OUT_DIR/meta.txt"

# Targets that never ran, as "label<TAB>reason" lines for the summary.
failed_list=$OUT_DIR/failed.tsv
: >"$failed_list"
for ((i = 0; i < ntargets; i++)); do
  [[ ${status[$i]} == failed ]] && printf '%s\t%s\n' "${labels[$i]}" "${failreason[${labels[$i]}]}" >>"$failed_list"
done

summary=$OUT_DIR/summary.md
awk -F'\t' -v test="$TEST" -v dur="$DURATION" -v rounds="$ROUNDS" -v ps="$PS_MODE" -v failed="$failed_list" '
  function median(list,   n, a, i, j, x) {
    n = split(list, a, " ")
    if (n == 0) return "-"
    for (i = 2; i <= n; i++) { x = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(arr, key, val) { if (val != "-" && val != "") arr[key] = arr[key] " " val }
  function fmt(x, f) { return (x == "-") ? "-" : sprintf(f, x) }
  NR == 1 { next }
  {
    key = $2 SUBSEP $4
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    if (!($2 in tseen)) { tseen[$2] = 1; torder[++nt] = $2 }
    runs[key]++
    if ($6 != 1) { if (!(key in why)) why[key] = $19; next }
    okruns[key]++
    add(qps, key, $7); add(p95, key, $8); add(pkq, key, $13); add(bkq, key, $14); add(busy, key, $15); add(ckq, key, $17); add(akq, key, $18)
    if ($16 != "-" && $16 + 0 > rssmax[key]) rssmax[key] = $16 + 0
    if (!(key in qmin) || $7 + 0 < qmin[key]) qmin[key] = $7 + 0
    if ($7 + 0 > qmax[key]) qmax[key] = $7 + 0
    rq[$1 SUBSEP $2 SUBSEP $4] = $7
    if ($4 == "direct") dq[$1 SUBSEP $2] = $7
    rows[NR] = $1 SUBSEP $2 SUBSEP $4
  }
  END {
    for (x in rows) { split(rows[x], f, SUBSEP); d = dq[f[1] SUBSEP f[2]]
      if (d + 0 > 0) add(ratio, f[2] SUBSEP f[3], sprintf("%.4f", rq[rows[x]] / d)) }
    printf "### %s\n\n%ss per run, %s interleaved rounds, ps_mode=%s; medians over rounds; ratio = median of per-round QPS(target) / QPS(direct)\n\n", test, dur, rounds, ps
    print "| threads | target | QPS (median) | QPS min..max | p95 ms | ratio vs direct | proxy CPU s / 1000 q | backend CPU s / 1000 q | client CPU s / 1000 q | all CPU s / 1000 q | system busy % | proxy RSS MB (max) | runs ok |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (ti = 1; ti <= nt; ti++) for (ki = 1; ki <= nk; ki++) {
      key = order[ki]; split(key, f, SUBSEP); if (f[1] != torder[ti]) continue
      if (okruns[key] == 0) {
        printf "| %s | %s | **FAILED** | - | - | - | - | - | - | - | - | - | 0/%d (%s) |\n", f[1], f[2], runs[key], why[key]
        continue
      }
      r = median(ratio[key])
      printf "| %s | %s | %.0f | %.0f..%.0f | %.3f | %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", f[1], f[2], median(qps[key]), qmin[key], qmax[key],
        median(p95[key]), fmt(r, "%.3f"), fmt(median(pkq[key]), "%.4f"), fmt(median(bkq[key]), "%.4f"),
        fmt(median(ckq[key]), "%.4f"), fmt(median(akq[key]), "%.4f"), fmt(median(busy[key]), "%.1f"),
        (key in rssmax ? sprintf("%.1f", rssmax[key] / 1024) : "-"), okruns[key], runs[key]
    }
    while ((getline fl < failed) > 0) {
      split(fl, g, "\t"); gsub(/\|/, "/", g[2])
      printf "| all | %s | **FAILED** | - | - | - | - | - | - | - | - | - | not run: %s |\n", g[1], g[2]
    }
  }' "$tsv" >"$summary"
for ((i = 0; i < ntargets; i++)); do
  [[ ${status[$i]} == died ]] && printf '\n- **%s died**: %s; later runs skipped.\n' "${labels[$i]}" "${failreason[${labels[$i]}]}" >>"$summary"
done
cat "$summary"
bench_log "rows: $tsv  summary: $summary"
