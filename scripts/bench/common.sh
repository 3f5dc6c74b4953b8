# common.sh: settings shared by the scripts in scripts/bench (sourced, not run).
#
# Every address is on 127.0.0.1. The backends are the project's own MariaDB
# instances from scripts/backends.sh: instance i listens on
# 127.0.0.1:(SLUICE_BACKENDS_PORT+i) and has the users sbtest/sbtest and
# monitor/monitor and the database sbtest.
#
# Env (all optional):
#   SLUICE_BACKENDS_DIR   backends' base dir (default ${TMPDIR:-/tmp}/sluice-backends)
#   SLUICE_BACKENDS_PORT  instance i listens on this + i (default 23306)
#   BENCH_BACKENDS        instance numbers the proxies balance over and that
#                         prepare.sh loads (default "1"); "direct" is always
#                         the first of them
#   BENCH_DIR             run dir for pid files, configs, results
#                         (default ${TMPDIR:-/tmp}/sluice-bench)
#   HAPROXY_PORT          HAProxy's listener (default 16401)
#   TIPROXY_PORT          TiProxy's listener (default 16501; its API the next port)
#   SLUICE_ADMIN_PORT     Sluice admin (default 16032)
#   SLUICE_DATA_PORT      Sluice data (default 16033)
#   TABLES, TABLE_SIZE    sysbench schema size (default 4 x 10000)
#   BENCH_DB              database holding the sysbench tables (default
#                         sluice_bench: not sbtest, which the integration
#                         tests use on the same backends)

# shellcheck disable=SC2034 # used by the scripts that source this file
BENCH_HOST=127.0.0.1
# shellcheck disable=SC2034
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLUICE_BACKENDS_DIR=${SLUICE_BACKENDS_DIR:-${TMPDIR:-/tmp}/sluice-backends}
SLUICE_BACKENDS_PORT=${SLUICE_BACKENDS_PORT:-23306}
export SLUICE_BACKENDS_DIR SLUICE_BACKENDS_PORT
BENCH_BACKENDS=${BENCH_BACKENDS:-1}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/sluice-bench}
HAPROXY_PORT=${HAPROXY_PORT:-16401}
TIPROXY_PORT=${TIPROXY_PORT:-16501}
SLUICE_ADMIN_PORT=${SLUICE_ADMIN_PORT:-16032}
SLUICE_DATA_PORT=${SLUICE_DATA_PORT:-16033}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
BENCH_DB=${BENCH_DB:-sluice_bench}
export TABLES TABLE_SIZE BENCH_DB
export PATH="$PATH:/usr/sbin:/sbin"

bench_log() { printf '[%s] %s\n' "${BENCH_TAG:-bench}" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

# backend_port I: the TCP port of backend instance I.
backend_port() { echo $((SLUICE_BACKENDS_PORT + $1)); }

# backend_list: the instance numbers in BENCH_BACKENDS, validated.
backend_list() {
  local i
  for i in $BENCH_BACKENDS; do
    [[ $i =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_BACKENDS: '$i' is not an instance number"
    echo "$i"
  done
}

# backend_pid I: the mariadbd pid of instance I, or nothing.
backend_pid() {
  local pf=$SLUICE_BACKENDS_DIR/$1/mysqld.pid pid
  [[ -s $pf ]] || return 0
  pid=$(tr -dc '0-9' <"$pf")
  [[ -n $pid && -d /proc/$pid ]] && echo "$pid"
  return 0
}

# sb_query HOST PORT SQL: runs SQL as sbtest/sbtest (no default database, so
# it works before prepare.sh has created BENCH_DB). The whole
# client call is bounded by timeout(1): a proxy that accepts the TCP
# connection and then says nothing must not hang the harness.
sb_query() {
  timeout -k 2 10 mariadb --no-defaults -h"$1" -P"$2" -usbtest -psbtest \
    --connect-timeout=3 -N -B -e "$3"
}

# sb_answers HOST PORT: true when sbtest can run a query there.
sb_answers() { sb_query "$1" "$2" 'SELECT 1' >/dev/null 2>&1; }

# await_sbtest NAME PORT TRIES: waits, 0.2 s a try, until sbtest can run a
# query through PORT; dies saying why not.
await_sbtest() {
  local i
  for ((i = 0; i < $3; i++)); do
    sb_answers "$BENCH_HOST" "$2" && return 0
    sleep 0.2
  done
  bench_die "$1 is up but sbtest cannot query through $2: $(sb_error "$BENCH_HOST" "$2")"
}

# sb_error HOST PORT: why sbtest cannot run a query there (one line).
sb_error() {
  local out rc=0
  out=$(sb_query "$1" "$2" 'SELECT 1' 2>&1 >/dev/null) || rc=$?
  if ((rc == 124 || rc == 137)); then echo "no answer within 10s"; else head -n1 <<<"${out:-exit status $rc}"; fi
}

# pid_is PID PATTERN: true when PID is alive and its command line contains PATTERN.
pid_is() {
  [[ -n $1 && -r /proc/$1/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

alive() { # PID: running, i.e. present and not a zombie waiting to be reaped
  local s
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}

# stop_pid PID NAME: SIGTERM, wait up to 10s, then SIGKILL. A daemon that
# exited but is not reaped yet (a zombie) counts as stopped.
stop_pid() {
  local pid=$1 name=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do alive "$pid" || return 0; sleep 0.1; done
  bench_log "$name (pid $pid) still up after 10s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# proxy_verb NAME PID PORT PIDFILE DETAIL VERB: the stop, status and pid
# verbs every proxy script has. PID is the running pid ("" when down),
# PIDFILE is removed after a stop, DETAIL ends status's line.
proxy_verb() {
  local name=$1 pid=$2 port=$3 pidf=$4 detail=$5 state
  case $6 in
    stop)
      if [[ -z $pid ]]; then bench_log "not running"; return 0; fi
      stop_pid "$pid" "$name"
      rm -f "$pidf"
      bench_log "stopped (was pid $pid)"
      ;;
    status)
      if [[ -z $pid ]]; then echo "$name state=down"; return 1; fi
      state=not-answering
      sb_answers "$BENCH_HOST" "$port" && state=up
      echo "$name pid=$pid port=$port state=$state rss=$(awk '/^VmRSS:/ {print $2 "kB"}' "/proc/$pid/status") $detail"
      [[ $state == up ]]
      ;;
    pid)
      [[ -n $pid ]] || return 1
      echo "$pid"
      ;;
    *)
      echo "usage: $0 start|stop|status|pid" >&2
      return 2
      ;;
  esac
}
