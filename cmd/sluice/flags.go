package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluice-proxy/sluice/internal/etcdsync"
)

// options are the command-line flags, with ProxySQL's spellings.
type options struct {
	config     string
	datadir    string
	foreground bool
	noMonitor  bool
	initial    bool
	reload     bool
	version    bool
	help       bool
	exitOnErr  bool
	noStart    bool   // -n: admin only until PROXYSQL START
	reusePort  bool   // -r: SO_REUSEPORT on the data port
	adminSock  string // -S: an admin Unix socket, added to admin-mysql_ifaces
	idle       bool   // --idle-threads: accepted, nothing to do in Go
	noVerCheck bool   // --no-version-check: accepted, Sluice never calls home
	sqlite3Srv bool   // --sqlite3-server: refused (not implemented)
	clickhouse bool   // --clickhouse-server: refused (not implemented)
	cluster    string // --cluster etcd://…: configuration shared in etcd
	clusterURL *etcdsync.Target
}

const usageText = `Usage: sluice [options]
       sluice digest "<sql>"

Sluice is a MySQL-protocol load-balancing proxy with a ProxySQL-compatible admin
interface (port 6032) and a data port (6033).

Options:
  -c, --config FILE    config file in proxysql.cnf syntax (default: ./sluice.cnf,
                       ./proxysql.cnf, ./proxysql.cfg, /etc/proxysql.cnf, /etc/proxysql.cfg)
  -D, --datadir DIR    data directory (beats "datadir" in the config file; default:
                       /var/lib/sluice when run as root outside the source tree, else cwd)
  -f, --foreground     accepted for ProxySQL compatibility; Sluice never daemonizes
  -e, --exit-on-error  accepted for ProxySQL compatibility; Sluice has no restarting
                       parent process (use systemd's Restart=, etc/sluice.service)
  -M, --no-monitor     do not start the backend monitor
  -n, --no-start       start only the admin interface; PROXYSQL START starts the rest
  -r, --reuseport      open the data port with SO_REUSEPORT (several processes may share it)
  -S, --admin-socket P also serve the admin interface on the Unix socket P
      --idle-threads   accepted for ProxySQL compatibility; Go's runtime already parks
                       idle connections without a thread each
      --no-version-check  accepted; Sluice never checks for new versions
      --cluster URL    keep MYSQL SERVERS/USERS/QUERY RULES/VARIABLES in etcd, shared by every
                       node started with the same URL: etcd://host:port[,host:port…]/prefix
                       [?name=NODE&save_to_disk=0|1] (docs/cluster-etcd.md; also SLUICE_CLUSTER)
      --initial        rename sluice.db to sluice.db.bak and rebuild it from the config file
      --reload         merge the config file into the existing sluice.db
  -V, --version        print the version and exit
  -h, --help           this help

Subcommands:
  digest "<sql>"       print ProxySQL's digest of a query: 0xHASH<TAB>digest text
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	str := func(p *string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, "", "")
		}
	}
	boolean := func(p *bool, names ...string) {
		for _, n := range names {
			fs.BoolVar(p, n, false, "")
		}
	}
	str(&o.config, "c", "config")
	str(&o.datadir, "D", "d", "datadir", "directory")
	boolean(&o.foreground, "f", "foreground")
	boolean(&o.exitOnErr, "e", "exit-on-error")
	boolean(&o.noMonitor, "M", "no-monitor")
	boolean(&o.initial, "initial")
	boolean(&o.reload, "reload")
	boolean(&o.version, "V", "version")
	boolean(&o.help, "h", "help", "usage")
	boolean(&o.noStart, "n", "no-start")
	boolean(&o.reusePort, "r", "reuseport")
	str(&o.adminSock, "S", "admin-socket")
	boolean(&o.idle, "idle-threads")
	boolean(&o.noVerCheck, "no-version-check")
	boolean(&o.sqlite3Srv, "sqlite3-server")
	boolean(&o.clickhouse, "clickhouse-server")
	str(&o.cluster, "cluster")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			o.help = true
			return o, nil
		}
		return nil, fmt.Errorf("%v (see sluice --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see sluice --help)", strings.Join(fs.Args(), " "))
	}
	if o.initial && o.reload {
		return nil, fmt.Errorf("--initial and --reload exclude each other")
	}
	if o.sqlite3Srv {
		return nil, fmt.Errorf("--sqlite3-server is not implemented by Sluice")
	}
	if o.clickhouse {
		return nil, fmt.Errorf("--clickhouse-server is not implemented by Sluice")
	}
	if o.cluster == "" {
		o.cluster = os.Getenv("SLUICE_CLUSTER")
	}
	if o.cluster != "" {
		t, err := etcdsync.ParseURL(o.cluster)
		if err != nil {
			return nil, err
		}
		o.clusterURL = t
	}
	if o.adminSock != "" && !strings.HasPrefix(o.adminSock, "/") {
		return nil, fmt.Errorf("--admin-socket %q: want an absolute path", o.adminSock)
	}
	return o, nil
}
