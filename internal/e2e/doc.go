// Package e2e holds Sluice's end-to-end tests: a real sluice binary, real
// MariaDB backends (scripts/backends.sh) and real clients (the mariadb CLI,
// go-sql-driver/mysql, sysbench).
package e2e
