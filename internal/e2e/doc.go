// Package e2e holds Sluice's end-to-end tests: a real sluice binary, real
// MariaDB backends (scripts/backends.sh) and real clients (the mariadb CLI,
// go-sql-driver/mysql, sysbench). Under -race the sluice binary is built
// with the race detector too, SQLite's engine excepted, and exits without
// the detector's pause of a second (testenv.Binary): a test's start and
// stop cost about half a second, not two.
//
// The tests run one after another, so that what one measures (memory,
// CPU, timings under load) is not disturbed by another. A few call
// t.Parallel(): each runs against servers of its own (a Galera cluster,
// an etcd member, replicating or restarting MariaDB instances) and spends most of its
// time waiting on them, so Go runs them after all the others, two at a
// time (-parallel defaults to the CPU count), which keeps `make test` well
// under its 15 minutes. A test added there must not change what the
// shared backends or the other parallel tests rely on, and must get its
// ports from testenv (FreePort, OwnBackends) or fixed ones no other test
// uses.
package e2e
