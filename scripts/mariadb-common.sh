# shellcheck shell=bash
# Sourced by scripts/backends.sh and scripts/galera.sh: what their MariaDB
# servers share.

# run_user is the user mariadbd runs as.
run_user() { if id mysql >/dev/null 2>&1; then echo mysql; else echo root; fi; }

# existing lists the numbered instance directories under $BASE.
existing() { local d; for d in "$BASE"/*/; do d=${d%/}; d=${d##*/}; [[ $d =~ ^[0-9]+$ ]] && echo "$d"; done | sort -n; }

# cnf_common DIR PORT prints the [mariadbd] section every test server
# starts with: its files under DIR, port PORT on 127.0.0.1 only, small
# buffers, and server_id = PORT.
cnf_common() {
  local dir=$1 port=$2
  cat <<CNF
[mariadbd]
user=$(run_user)
datadir=$dir/data
port=$port
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2
max_connections=2000
max_connect_errors=1000000
max_allowed_packet=256M
thread_cache_size=64
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
server_id=$port
CNF
}

# users_sql prints the statements of the test users: sbtest/sbtest (all
# privileges), monitor/monitor (what ProxySQL's monitor needs) and
# root/test, all mysql_native_password.
users_sql() {
  local h
  for h in '%' '127.0.0.1' 'localhost'; do
    cat <<SQL
CREATE USER IF NOT EXISTS 'sbtest'@'$h' IDENTIFIED VIA mysql_native_password USING PASSWORD('sbtest');
GRANT ALL PRIVILEGES ON *.* TO 'sbtest'@'$h';
CREATE USER IF NOT EXISTS 'monitor'@'$h' IDENTIFIED VIA mysql_native_password USING PASSWORD('monitor');
GRANT USAGE, PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'monitor'@'$h';
SQL
  done
  for h in '%' '127.0.0.1'; do
    cat <<SQL
CREATE USER IF NOT EXISTS 'root'@'$h' IDENTIFIED VIA mysql_native_password USING PASSWORD('test');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'$h' WITH GRANT OPTION;
SQL
  done
}
