#!/usr/bin/env bash
# backends.sh start|stop|status [N]
# backends.sh replicate PRIMARY REPLICA | unreplicate REPLICA
#
# Real MariaDB servers for Sluice's tests and benchmarks, on 127.0.0.1 only.
# Instance i (1..N) listens on 127.0.0.1:(SLUICE_BACKENDS_PORT+i) with its own
# datadir under SLUICE_BACKENDS_DIR/i. "start" installs mariadb-server and
# mariadb-client with apt-get when they are missing (after apt-get update),
# initialises missing datadirs, starts what is not running, waits until each
# instance answers, and (re)applies the test users:
#   root/test    (the seed walkthrough's user; mysql_native_password)
#   sbtest/sbtest, monitor/monitor, and the database sbtest.
# "stop" stops only the instances this script started (by the pid in their
# datadir, checked against the process's command line).
# "replicate P R" makes running instance R a replica of running instance P
# (MariaDB GTID replication, MASTER_USE_GTID=slave_pos, from P's current
# position: data P had before is not copied), with the user repl/repl
# (REPLICATION SLAVE) on P, and sets read_only=1 on R. P needs the binary
# log: start it with SLUICE_BACKENDS_BINLOG=1. Idempotent: a replica already
# running from P is left alone. "unreplicate R" stops and forgets R's
# replication (RESET SLAVE ALL) and sets read_only=0.
# Every instance gets server_id = its port (unique on the host).
#
# Env: SLUICE_BACKENDS_DIR (default ${TMPDIR:-/tmp}/sluice-backends)
#      SLUICE_BACKENDS_PORT (default 23306: instance 1 is 23307)
#      SLUICE_BACKENDS_BINLOG=1: instances started (not already running) get
#        log_bin (ROW format, binlogs kept 1 hour) and log_slave_updates
#      SLUICE_BACKENDS_SSL=1: instances started (not already running) get TLS:
#        a CA, a server certificate (CN and SAN 127.0.0.1) and its key
#        generated with openssl under <instance dir>/ssl when missing
#        (ca.pem, server-cert.pem, server-key.pem), in my.cnf as
#        ssl-ca/ssl-cert/ssl-key; and the user sslonly/sslonly (REQUIRE SSL)
#      SLUICE_BACKENDS_TEMPLATE (default ${TMPDIR:-/tmp}/sluice-datadir-template-UID):
#        the first datadir mariadb-install-db makes for a MariaDB version is
#        kept there, and later new instances (not binlog ones) start from a
#        copy of it: seconds less per server the tests start
#      SLUICE_BACKENDS_EXTRA_PKGS (e.g. "sysbench haproxy" for benchmarks; "php"
#        installs php-cli and php-mysql, for the PDO client tests;
#        "python3-pymysql" installs it and python3-cryptography, for the TLS
#        and caching_sha2_password tests; "java" installs a JDK and MariaDB
#        Connector/J, for the JDBC test; "perl" DBD::MariaDB and DBD::mysql,
#        "node" node-mysql (and nodejs), for the driver test)
set -euo pipefail
# shellcheck source=scripts/mariadb-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/mariadb-common.sh"

BASE=${SLUICE_BACKENDS_DIR:-${TMPDIR:-/tmp}/sluice-backends}
BASE_PORT=${SLUICE_BACKENDS_PORT:-23306}
START_TIMEOUT=${SLUICE_BACKENDS_START_TIMEOUT:-90}
read -r -a EXTRA_PKGS <<<"${SLUICE_BACKENDS_EXTRA_PKGS:-}"
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[backends] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() {
  echo "usage: $0 start|stop|status [N]   (N defaults to 3 for start)" >&2
  echo "       $0 replicate PRIMARY REPLICA | unreplicate REPLICA" >&2
  exit 2
}

ensure_packages() {
  local need=() bin
  for bin in mariadbd mariadb mariadb-admin mariadb-install-db; do
    command -v "$bin" >/dev/null 2>&1 || need=(mariadb-server mariadb-client)
  done
  for bin in "${EXTRA_PKGS[@]}"; do
    case $bin in
      php) # the PDO tests need the pdo_mysql extension, not just the CLI
        php -r 'exit(extension_loaded("pdo_mysql") ? 0 : 1);' >/dev/null 2>&1 || need+=(php-cli php-mysql) ;;
      java) # the JDBC test runs MariaDB Connector/J from a single-file Java program (needs a JDK)
        { command -v javac >/dev/null 2>&1 && [[ -r /usr/share/java/mariadb-java-client.jar ]]; } \
          || need+=(default-jdk-headless libmariadb-java) ;;
      perl) # the driver test runs DBD::MariaDB and DBD::mysql
        perl -MDBD::MariaDB -MDBD::mysql -e1 >/dev/null 2>&1 || need+=(libdbd-mariadb-perl libdbd-mysql-perl) ;;
      node) # and Node's mysqljs (Debian's node-mysql, with nodejs)
        NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs node -e "require('mysql')" >/dev/null 2>&1 || need+=(node-mysql) ;;
      python3-pymysql) # the TLS tests run PyMySQL (and its RSA exchange) with the system python
        /usr/bin/python3 -c 'import pymysql, cryptography' >/dev/null 2>&1 || need+=(python3-pymysql python3-cryptography) ;;
      *) command -v "$bin" >/dev/null 2>&1 || need+=("$bin") ;;
    esac
  done
  # ip(8): the admin test reaches the admin port from a network namespace.
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  ((${#need[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "missing ${need[*]} and not root: install them first"
  log "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/tmp/sluice-apt.log 2>&1 || die "apt-get update failed (see /tmp/sluice-apt.log)"
  apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/sluice-apt.log 2>&1 \
    || die "apt-get install failed (see /tmp/sluice-apt.log)"
  for bin in mariadbd mariadb mariadb-admin mariadb-install-db; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin still missing after install"
  done
}

inst_dir() { echo "$BASE/$1"; }
inst_port() { echo $((BASE_PORT + $1)); }

# The pid of a running instance, or nothing. The pid file is trusted only when
# the process was started with this instance's defaults file.
inst_pid() {
  local dir pid
  dir=$(inst_dir "$1")
  [[ -s $dir/mysqld.pid ]] || return 0
  pid=$(tr -dc '0-9' <"$dir/mysqld.pid")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--defaults-file=$dir/my.cnf"; then echo "$pid"; fi
}

# make_certs DIR: a CA and a server certificate for 127.0.0.1 signed by it,
# unless DIR has them already. Keys are 0600, owned by the server's user.
make_certs() {
  local d=$1
  [[ -s $d/ca.pem && -s $d/server-cert.pem && -s $d/server-key.pem ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "SLUICE_BACKENDS_SSL=1 needs openssl"
  mkdir -p "$d"
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Sluice test backends CA" \
      -keyout "$d/ca-key.pem" -out "$d/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$d/server-key.pem" -out "$d/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
      -days 3650 -extfile "$d/ext.cnf" -out "$d/server-cert.pem" >/dev/null 2>&1
  ) || die "openssl failed to make the certificates in $d"
  chmod 0644 "$d/ca.pem" "$d/server-cert.pem"
  rm -f "$d/server.csr" "$d/ext.cnf"
}

write_cnf() {
  local i=$1 dir
  dir=$(inst_dir "$i")
  { echo "# generated by scripts/backends.sh - instance $i"; cnf_common "$dir" "$(inst_port "$i")"; } >"$dir/my.cnf"
  if [[ ${SLUICE_BACKENDS_SSL:-0} == 1 ]]; then
    make_certs "$dir/ssl"
    cat >>"$dir/my.cnf" <<CNF
ssl-ca=$dir/ssl/ca.pem
ssl-cert=$dir/ssl/server-cert.pem
ssl-key=$dir/ssl/server-key.pem
CNF
  fi
  if [[ ${SLUICE_BACKENDS_BINLOG:-0} == 1 ]]; then
    cat >>"$dir/my.cnf" <<CNF
log_bin=$dir/data/mariadb-bin
binlog_format=ROW
log_slave_updates=ON
binlog_expire_logs_seconds=3600
max_binlog_size=64M
CNF
  fi
}

sql() { mariadb --no-defaults --socket="$(inst_dir "$1")/mysqld.sock" -uroot --batch --skip-column-names; }

apply_users() {
  local i=$1
  {
    echo "CREATE DATABASE IF NOT EXISTS sbtest;"
    echo "DELETE FROM mysql.global_priv WHERE User='';"
    users_sql
    if [[ ${SLUICE_BACKENDS_SSL:-0} == 1 ]]; then
      cat <<SQL
CREATE USER IF NOT EXISTS 'sslonly'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('sslonly') REQUIRE SSL;
GRANT ALL PRIVILEGES ON *.* TO 'sslonly'@'%';
SQL
    fi
    echo "FLUSH PRIVILEGES;"
  } | sql "$i" >/dev/null
}

wait_ready() {
  local i=$1 pid=$2 dir deadline
  dir=$(inst_dir "$i")
  deadline=$((SECONDS + START_TIMEOUT))
  until mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/error.log" >&2 || true; die "instance $i exited during start-up"; }
    ((SECONDS < deadline)) || { tail -n 30 "$dir/error.log" >&2 || true; die "instance $i not ready after ${START_TIMEOUT}s"; }
    sleep 0.3
  done
}

# template_dir: where a freshly installed datadir is kept for the next
# instances of this MariaDB version (mariadb-install-db takes seconds; a copy
# a fraction of one). Not for binlog instances: their datadir would carry
# another instance's binlog paths.
template_dir() {
  [[ ${SLUICE_BACKENDS_BINLOG:-0} == 1 ]] && return 1
  local key
  key=$(mariadbd --version 2>/dev/null | md5sum | cut -c1-12)
  echo "${SLUICE_BACKENDS_TEMPLATE:-${TMPDIR:-/tmp}/sluice-datadir-template-$(id -u)}/$key"
}

# install_datadir I DIR USER: a new datadir for instance I, copied from the
# template when there is one, else made by mariadb-install-db (then kept as
# the template).
install_datadir() {
  local i=$1 dir=$2 user=$3 tpl try tmp
  tpl=$(template_dir) || tpl=
  if [[ -n $tpl && -f $tpl/.complete ]]; then
    rm -rf "$dir/data"; mkdir -p "$dir/data"
    cp -a "$tpl/." "$dir/data/" && rm -f "$dir/data/.complete" && return 0
    log "copying the datadir template $tpl failed for instance $i; installing"
  fi
  # mariadb-install-db's bootstrap fails now and then on a loaded
  # machine ("Installation of system tables failed"): one more try on a
  # fresh datadir before giving up.
  for try in 1 2; do
    rm -rf "$dir/data"; mkdir -p "$dir/data"; chown -R "$user:" "$dir"
    mariadb-install-db --defaults-file="$dir/my.cnf" --skip-test-db \
      --auth-root-authentication-method=socket >"$dir/install.log" 2>&1 && break
    [[ $try == 2 ]] && { tail -n 30 "$dir/install.log" >&2; die "mariadb-install-db failed for instance $i"; }
    log "mariadb-install-db failed for instance $i; trying once more"
    sleep 1
  done
  # Kept whole or not at all: copied aside, marked complete, then renamed
  # into place (another start may be doing the same at this moment).
  if [[ -n $tpl && ! -e $tpl ]]; then
    mkdir -p "$(dirname "$tpl")"
    tmp=$(mktemp -d "$(dirname "$tpl")/.new.XXXXXX")
    if cp -a "$dir/data/." "$tmp/" && touch "$tmp/.complete" && mv -T "$tmp" "$tpl" 2>/dev/null; then
      log "kept instance $i's new datadir as the template $tpl"
    else
      rm -rf "$tmp"
    fi
  fi
}

start_one() {
  local i=$1 dir port pid user
  dir=$(inst_dir "$i") port=$(inst_port "$i") user=$(run_user)
  pid=$(inst_pid "$i")
  if [[ -n $pid ]]; then
    wait_ready "$i" "$pid"; apply_users "$i"
    log "instance $i already running (pid $pid, port $port)"
    return 0
  fi
  mkdir -p "$dir"
  write_cnf "$i"
  if [[ ! -d $dir/data/mysql ]]; then
    install_datadir "$i" "$dir" "$user"
  fi
  chown -R "$user:" "$dir"
  rm -f "$dir/mysqld.sock" "$dir/mysqld.pid"
  if command -v ss >/dev/null && ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port is already in use by another process"
  fi
  setsid nohup mariadbd --defaults-file="$dir/my.cnf" >>"$dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  wait_ready "$i" "$pid"
  apply_users "$i"
  log "instance $i up (pid $pid, port $port)"
}

stop_one() {
  local i=$1 dir pid deadline
  dir=$(inst_dir "$i") pid=$(inst_pid "$i")
  [[ -n $pid ]] || { log "instance $i not running"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then log "instance $i (pid $pid) still up after 60s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  log "instance $i stopped (was pid $pid)"
}

status_one() {
  local i=$1 pid state=down
  pid=$(inst_pid "$i")
  if [[ -n $pid ]]; then
    if mariadb --no-defaults -h127.0.0.1 -P"$(inst_port "$i")" -uroot -ptest -e 'SELECT 1' >/dev/null 2>&1; then state=up; else state=not-answering; fi
  fi
  printf 'instance=%s port=%s pid=%s state=%s dir=%s\n' "$i" "$(inst_port "$i")" "${pid:--}" "$state" "$(inst_dir "$i")"
  [[ $state == up ]]
}

# sqlq I: one value from instance I (root over the socket).
sqlq() { mariadb --no-defaults --socket="$(inst_dir "$1")/mysqld.sock" -uroot --batch --skip-column-names -e "$2"; }

# slave_field I FIELD: a field of SHOW SLAVE STATUS on instance I ("" when not a replica).
slave_field() {
  mariadb --no-defaults --socket="$(inst_dir "$1")/mysqld.sock" -uroot -e 'SHOW SLAVE STATUS\G' \
    | awk -v f="$2" '$1 == f":" { $1 = ""; sub(/^ /, ""); print; exit }'
}

replicate() {
  local p=$1 r=$2 pport pos deadline
  [[ $p != "$r" ]] || die "replicate: primary and replica are the same instance"
  [[ -n $(inst_pid "$p") ]] || die "replicate: instance $p is not running"
  [[ -n $(inst_pid "$r") ]] || die "replicate: instance $r is not running"
  [[ $(sqlq "$p" 'SELECT @@log_bin') == 1 ]] \
    || die "replicate: instance $p has no binary log (start it with SLUICE_BACKENDS_BINLOG=1)"
  pport=$(inst_port "$p")
  sqlq "$p" "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
    GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';" >/dev/null
  if [[ $(slave_field "$r" Master_Port) == "$pport" && $(slave_field "$r" Slave_IO_Running) == Yes \
        && $(slave_field "$r" Slave_SQL_Running) == Yes ]]; then
    sqlq "$r" 'SET GLOBAL read_only=1' >/dev/null
    log "instance $r already replicates from instance $p"
    return 0
  fi
  pos=$(sqlq "$p" 'SELECT @@gtid_binlog_pos')
  forget_master "$r"
  sqlq "$r" "SET GLOBAL gtid_slave_pos='$pos';
    CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$pport, MASTER_USER='repl', MASTER_PASSWORD='repl',
      MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
    START SLAVE; SET GLOBAL read_only=1;" >/dev/null
  deadline=$((SECONDS + 30))
  until [[ $(slave_field "$r" Slave_IO_Running) == Yes && $(slave_field "$r" Slave_SQL_Running) == Yes ]]; do
    ((SECONDS < deadline)) || die "replicate: instance $r not replicating after 30s: $(slave_field "$r" Last_IO_Error) $(slave_field "$r" Last_SQL_Error)"
    sleep 0.2
  done
  log "instance $r replicates from instance $p (port $pport, from GTID '$pos')"
}

# forget_master I: stop and forget I's replication, if it has any.
forget_master() {
  [[ -n $(slave_field "$1" Master_Host) ]] || return 0
  sqlq "$1" 'STOP SLAVE; RESET SLAVE ALL' >/dev/null
}

unreplicate() {
  local r=$1
  [[ -n $(inst_pid "$r") ]] || die "unreplicate: instance $r is not running"
  forget_master "$r"
  sqlq "$r" 'SET GLOBAL read_only=0' >/dev/null
  log "instance $r no longer replicates"
}


main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1 n=${2:-} i rc=0
  [[ -z $n || $n =~ ^[1-9][0-9]*$ ]] || usage
  case $cmd in
    replicate)
      [[ $# -eq 3 && $3 =~ ^[1-9][0-9]*$ ]] || usage
      replicate "$n" "$3"; return ;;
    unreplicate)
      [[ $# -eq 2 ]] || usage
      unreplicate "$n"; return ;;
  esac
  case $cmd in
    start)
      n=${n:-3}
      [[ $(id -u) -eq 0 ]] || die "must run as root (mariadbd runs as user mysql)"
      ensure_packages
      mkdir -p "$BASE"
      for ((i = 1; i <= n; i++)); do start_one "$i"; done
      for ((i = 1; i <= n; i++)); do status_one "$i" || rc=1; done ;;
    stop)
      if [[ -n $n ]]; then for ((i = 1; i <= n; i++)); do stop_one "$i"; done
      else for i in $(existing); do stop_one "$i"; done; fi ;;
    status)
      if [[ -n $n ]]; then for ((i = 1; i <= n; i++)); do status_one "$i" || rc=1; done
      else for i in $(existing); do status_one "$i" || rc=1; done; fi ;;
    *) usage ;;
  esac
  return $rc
}
main "$@"
