#!/usr/bin/env bash
# etcd.sh start|stop|kill|status DIR [CLIENT_PORT [PEER_PORT]]
#
# A single-member etcd for Sluice's --cluster tests, on 127.0.0.1 only, with
# its datadir, log and pid file under DIR. "start" installs Debian's
# etcd-server with apt-get when etcd is missing (after apt-get update),
# starts etcd on CLIENT_PORT (default 25400) / PEER_PORT (default
# CLIENT_PORT+1) unless it already runs from DIR, and waits until it answers
# (bounded: SLUICE_ETCD_START_TIMEOUT, default 30 s). The data in DIR is
# kept, so a stopped or killed etcd restarts with what it had.
# "stop" sends SIGTERM, "kill" SIGKILL, only to the process whose pid is in
# DIR/etcd.pid and whose command line names DIR (never by name).
set -euo pipefail

log() { printf '[etcd] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $# -ge 2 ]] || { echo "usage: $0 start|stop|kill|status DIR [CLIENT_PORT [PEER_PORT]]" >&2; exit 2; }
CMD=$1 DIR=$2
CPORT=${3:-25400}
PPORT=${4:-$((CPORT + 1))}
TIMEOUT=${SLUICE_ETCD_START_TIMEOUT:-30}
export PATH="$PATH:/usr/sbin:/sbin"

ensure_etcd() {
  command -v etcd >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || die "etcd is missing and not root: install etcd-server first"
  log "installing etcd-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/tmp/sluice-apt-etcd.log 2>&1 || die "apt-get update failed (see /tmp/sluice-apt-etcd.log)"
  apt-get install -y -q --no-install-recommends etcd-server >>/tmp/sluice-apt-etcd.log 2>&1 \
    || die "apt-get install etcd-server failed (see /tmp/sluice-apt-etcd.log)"
  command -v etcd >/dev/null 2>&1 || die "etcd still missing after install"
}

# The pid of the etcd started from DIR, or nothing.
etcd_pid() {
  local pid
  [[ -s $DIR/etcd.pid ]] || return 0
  pid=$(tr -dc '0-9' <"$DIR/etcd.pid")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-dir $DIR/data"; then echo "$pid"; fi
}

answers() {
  { exec 3<>"/dev/tcp/127.0.0.1/$CPORT"; } 2>/dev/null || return 1
  printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  local reply
  reply=$(timeout 2 cat <&3 || true)
  exec 3<&- 3>&-
  [[ $reply == *'"health":"true"'* ]]
}

case $CMD in
  start)
    ensure_etcd
    mkdir -p "$DIR"
    if [[ -z $(etcd_pid) ]]; then
      setsid etcd --name sluice-test --data-dir "$DIR/data" \
        --listen-client-urls "http://127.0.0.1:$CPORT" --advertise-client-urls "http://127.0.0.1:$CPORT" \
        --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
        --initial-cluster "sluice-test=http://127.0.0.1:$PPORT" --initial-cluster-state new \
        --listen-metrics-urls "" >>"$DIR/etcd.log" 2>&1 </dev/null &
      echo $! >"$DIR/etcd.pid"
    fi
    for ((i = 0; i < TIMEOUT * 10; i++)); do
      answers && { log "etcd up on 127.0.0.1:$CPORT (pid $(etcd_pid))"; exit 0; }
      # The pid itself, not etcd_pid: until the child has exec'd etcd its
      # command line is still this script's.
      kill -0 "$(tr -dc '0-9' <"$DIR/etcd.pid")" 2>/dev/null ||
        die "etcd exited during start-up (see $DIR/etcd.log): $(tail -n 3 "$DIR/etcd.log" 2>/dev/null)"
      sleep 0.1
    done
    die "etcd not answering on 127.0.0.1:$CPORT after ${TIMEOUT}s (see $DIR/etcd.log)"
    ;;
  stop | kill)
    pid=$(etcd_pid)
    [[ -n $pid ]] || { log "not running"; exit 0; }
    sig=TERM; [[ $CMD == kill ]] && sig=KILL
    kill -s "$sig" "$pid"
    for ((i = 0; i < 100; i++)); do
      [[ -r /proc/$pid/cmdline ]] || exit 0
      [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && exit 0
      sleep 0.1
    done
    die "etcd (pid $pid) still running after SIG$sig"
    ;;
  status)
    pid=$(etcd_pid)
    if [[ -n $pid ]]; then echo "running (pid $pid)"; else echo "stopped"; exit 1; fi
    ;;
  *) die "unknown command $CMD" ;;
esac
