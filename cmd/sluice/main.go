// Command sluice is a MySQL-protocol load-balancing proxy with a
// ProxySQL-compatible admin interface.
//
// main only wires: it reads flags and the config file, opens storage,
// builds the proxy (internal/proxy: backends, router, events log), loads
// every module to RUNTIME through the admin plane's own LOAD path, starts
// the listeners, and closes everything in reverse order on SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/internal/cluster"
	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/threads"
	"github.com/sluice-proxy/sluice/internal/tlsconf"
	"github.com/sluice-proxy/sluice/storage"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0"

func main() {
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	if code == restartCode {
		code = reexec(os.Args, os.Stderr)
	}
	os.Exit(code)
}

// restartCode is run's answer after PROXYSQL RESTART: everything is closed
// (listeners, sessions, the store), and main replaces the process with a
// new run of the same binary (reexec).
const restartCode = -1

// errRestart ends serve for PROXYSQL RESTART.
var errRestart = errors.New("restart")

// reexec starts Sluice again in this process (same pid, so systemd and
// scripts that watch it keep it), with the same arguments but --initial and
// --reload: the new run loads the configuration from DISK, as ProxySQL's
// restart does, and must not rebuild or merge it from the config file again.
func reexec(argv []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, append([]string{argv[0]}, restartArgs(argv[1:])...), os.Environ())
	}
	fmt.Fprintln(stderr, "sluice: PROXYSQL RESTART:", err)
	return 1
}

// restartArgs is args without --initial and --reload, in any spelling the
// flag package accepts (-initial, --initial, --initial=true).
func restartArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "initial" || name == "reload") {
			continue
		}
		out = append(out, a)
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "digest" {
		return digestCmd(args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	}
	switch {
	case o.help:
		fmt.Fprint(stdout, usageText)
		return 0
	case o.version:
		fmt.Fprintf(stdout, "Sluice %s (ProxySQL admin compatibility %s)\n", version, config.ProxySQLVersion)
		return 0
	}
	if err := serve(o, stderr); err != nil {
		if errors.Is(err, errRestart) {
			return restartCode
		}
		fmt.Fprintln(stderr, "sluice:", err)
		return 1
	}
	return 0
}

func digestCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, `usage: sluice digest "<sql>"`)
		return 2
	}
	hash, text := sqlscan.DigestString(args[0], sqlscan.DefaultOptions())
	fmt.Fprintf(stdout, "%s\t%s\n", sqlscan.FormatHash(hash), text)
	return 0
}

// findConfig returns the config file to use: -c, or the first of ProxySQL's
// default locations that exists ("" when there is none).
func findConfig(flagPath string) (string, error) {
	if flagPath != "" {
		if _, err := os.Stat(flagPath); err != nil {
			return "", fmt.Errorf("config file: %w", err)
		}
		return filepath.Abs(flagPath)
	}
	for _, p := range []string{"sluice.cnf", "proxysql.cnf", "proxysql.cfg", "/etc/proxysql.cnf", "/etc/proxysql.cfg"} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", nil
}

// adminClient is the mysql command line that reaches the admin interface
// Sluice listens on (its first TCP address, else its Unix socket) as the
// first user of creds (admin-admin_credentials). Only ProxySQL's default
// admin:admin is written out; another password is asked for (-p), never
// logged.
func adminClient(addrs []net.Addr, creds string) string {
	login := "-uadmin -padmin"
	if first, _, _ := strings.Cut(creds, ";"); first != "" && first != "admin:admin" {
		user, _, _ := strings.Cut(first, ":")
		login = "-u" + user + " -p"
	}
	for _, a := range addrs {
		if t, ok := a.(*net.TCPAddr); ok {
			host := t.IP.String()
			if t.IP.IsUnspecified() {
				host = "127.0.0.1"
			}
			return fmt.Sprintf("mysql %s -h%s -P%d", login, host, t.Port)
		}
	}
	for _, a := range addrs {
		if a.Network() == "unix" {
			return "mysql " + login + " -S" + a.String()
		}
	}
	return "mysql " + login + " -h127.0.0.1 -P6032"
}

// defaultDatadir is where Sluice keeps sluice.db when neither -D nor the
// config file says: /var/lib/sluice for root outside a Sluice source tree
// (ProxySQL's /var/lib/proxysql), else the working directory.
func defaultDatadir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if os.Geteuid() != 0 {
		return wd, nil
	}
	if b, err := os.ReadFile(filepath.Join(wd, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/sluice-proxy/sluice") {
		return wd, nil
	}
	return "/var/lib/sluice", nil
}

func serve(o *options, stderr io.Writer) error {
	cfgPath, err := findConfig(o.config)
	if err != nil {
		return err
	}
	var root *cnf.Setting
	if cfgPath != "" {
		if root, err = cnf.ParseFile(cfgPath); err != nil {
			return fmt.Errorf("unable to open or parse config file %s: %w", cfgPath, err)
		}
	}

	// datadir: -D beats the config file, which beats the working directory.
	datadir := o.datadir
	if datadir == "" && root != nil {
		if s := root.Get("datadir"); s != nil {
			datadir = s.Value
		}
	}
	if datadir == "" {
		if datadir, err = defaultDatadir(); err != nil {
			return err
		}
	}
	if datadir, err = filepath.Abs(datadir); err != nil {
		return err
	}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	unlock, err := lockDatadir(datadir)
	if err != nil {
		return err
	}
	defer unlock()

	// The error log: the config file's errorlog (relative to datadir), else stderr.
	var logPath string
	if root != nil {
		if s := root.Get("errorlog"); s != nil && s.Value != "" {
			logPath = s.Value
			if !filepath.IsAbs(logPath) {
				logPath = filepath.Join(datadir, logPath)
			}
		}
	}
	sink, err := openLogSink(logPath)
	var logOpenErr error
	if err != nil {
		logOpenErr, sink = err, &logSink{}
	}
	defer sink.Close()
	log := newLogger(io.MultiWriter(sink))
	// Caught from here to the end of the close (deferred first: undone
	// last), start-up and graceful close included.
	sg := catchSignals(log, sink)
	defer sg.Close()
	_ = mysql.SetLogger(driverLogger{log.With().Str("component", "cluster-client").Logger()})
	if logOpenErr != nil {
		log.Warn().Err(logOpenErr).Str("errorlog", logPath).Msg("cannot open the error log; logging to stderr")
	}
	log.Info().Str("version", version).Str("datadir", datadir).Str("config", cfgPath).Msg("Sluice starting")
	if msg := syncInterfacesNotice(root); msg != "" {
		log.Warn().Str("config", cfgPath).Msg(msg)
	}
	startPprof(log)

	store, existed, err := storage.Open(storage.Options{Datadir: datadir, Initial: o.initial, Logger: log.With().Str("component", "storage").Logger()})
	if err != nil {
		return err
	}
	// A first start (or --initial) that fails before Sluice runs leaves no
	// sluice.db behind: the next start must read the fixed config file, not
	// find a database of defaults and ignore it. Deferred before the
	// Store's Close, so it runs after everything else is closed.
	ready := false
	defer func() {
		if ready || existed {
			return
		}
		if err := store.DiscardCreated(); err != nil {
			log.Error().Err(err).Msg("removing the configuration database of the failed start")
			return
		}
		log.Info().Bool("initial", o.initial).Msg("start failed: removed the configuration database it created (after --initial, the previous one is back in place)")
	}()
	defer store.Close()
	if err := bootstrap(store, existed, o, cfgPath, root, log); err != nil {
		return err
	}

	// The TLS material of the proxy's ports, generated in the datadir at
	// the first start as ProxySQL does.
	tlsStore, generated, err := tlsconf.Open(datadir)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	if generated {
		log.Info().Str("datadir", datadir).Msg("generated the TLS certificates " + tlsconf.CAFile + ", " + tlsconf.CertFile + ", " + tlsconf.KeyFile)
	}
	p := proxy.New(proxy.Config{Datadir: datadir, Store: store, Log: log, ReopenLog: sink.Reopen,
		Monitor: !o.noMonitor, ReusePort: o.reusePort, TLS: tlsStore})
	defer p.Close()
	var extraAdmin []string
	if o.adminSock != "" {
		extraAdmin = append(extraAdmin, o.adminSock)
	}
	var applier admin.Applier = p
	var shared *clusterApplier // --cluster etcd://…
	if o.clusterURL != nil {
		shared = &clusterApplier{Proxy: p, store: store}
		applier = shared
	}
	adm := admin.New(admin.Config{Store: store, Applier: applier, ConfigPath: cfgPath, Log: log, ExtraIfaces: extraAdmin,
		Audit: p.Audit(), TLS: p.AdminTLS})
	// The variables first: what the other modules' checks read of them
	// (mysql-have_ssl for users with use_ssl=1…) is the configuration's,
	// not the defaults.
	startOrder := []config.Module{config.ModMySQLVariables, config.ModAdminVariables}
	for _, m := range config.Modules {
		if m.VarPrefix() == "" {
			startOrder = append(startOrder, m)
		}
	}
	for _, m := range startOrder {
		if err := adm.LoadToRuntime(m); err != nil {
			if existed && !o.initial {
				return fmt.Errorf("loading %s to runtime from %s: %w (the saved configuration does not load: "+
					"start with --initial to rebuild it from the config file, the old one kept as %s.bak)",
					m, filepath.Join(datadir, storage.DiskFile), err, storage.DiskFile)
			}
			return fmt.Errorf("loading %s to runtime: %w", m, err)
		}
	}
	if shared != nil {
		// Pull the shared modules (or seed etcd) before serving; an
		// unreachable etcd leaves the local configuration in force.
		// Closed before the proxy and the store (deferred earlier).
		syncer, err := startShared(o.clusterURL, store, p, adm, log)
		if err != nil {
			return err
		}
		defer syncer.Close()
		shared.setSyncer(syncer)
	}
	snap := p.Runtime()
	if maxThreads := applyThreads(log, snap); maxThreads > 1 {
		actx, stop := context.WithCancel(context.Background())
		defer stop()
		go adaptThreads(actx, log, threads.Default, maxThreads, func() bool { return p.Runtime().Bool("mysql-threads_adaptive") })
	}
	if err := adm.Listen(snap.Var("admin-mysql_ifaces")); err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer adm.Close()
	// ProxySQL Cluster: one poller per proxysql_servers row, following
	// LOAD PROXYSQL SERVERS and LOAD ADMIN VARIABLES (the credentials).
	// Deferred after adm.Close, so it stops first.
	uuid, uuidErr := nodeUUID(root)
	if uuidErr != nil {
		log.Warn().Err(uuidErr).Str("uuid", uuid).Msg("the config file's uuid is not a UUID; using a new one")
	}
	cl := cluster.New(cluster.Config{Store: store, Admin: adm, Runtime: p.Runtime, Log: log, UUID: uuid})
	defer cl.Close()
	adm.SetPeerVersion(cl.PeerVersion)
	adm.SetRefreshHook(cl.RefreshTables)
	adm.SetLoadHook(func(m config.Module) {
		if m == config.ModProxySQLServers || m == config.ModAdminVariables {
			cl.Reload()
		}
	})
	if o.noStart {
		log.Info().Msg("--no-start: only the admin interface runs; PROXYSQL START starts the monitor and the data port")
	} else if err := p.StartDataPlane(); err != nil {
		return err
	}
	reportFDLimit(log, snap)
	if len(snap.Servers) == 0 {
		log.Warn().Msg(`no backend configured yet: add one with ` + adminClient(adm.Addrs(), snap.Var("admin-admin_credentials")) +
			` -e "INSERT INTO mysql_servers(hostgroup_id,hostname,port) VALUES (0,'127.0.0.1',3306); LOAD MYSQL SERVERS TO RUNTIME; SAVE MYSQL SERVERS TO DISK;"`)
	}
	if len(snap.Users) == 0 {
		log.Warn().Msg(`no user configured yet: clients cannot log in to the data port until one is added (as it is on the servers): ` + adminClient(adm.Addrs(), snap.Var("admin-admin_credentials")) +
			` -e "INSERT INTO mysql_users(username,password,default_hostgroup) VALUES ('app','app-password',0); LOAD MYSQL USERS TO RUNTIME; SAVE MYSQL USERS TO DISK;"`)
	}
	ready = true
	log.Info().Str("admin", snap.Var("admin-mysql_ifaces")).Str("mysql", snap.Var("mysql-interfaces")).Msg("Sluice ready")
	defer sg.Closing() // run first of the defers: the close begins
	select {
	case sig := <-sg.Stop():
		log.Info().Str("signal", sig.String()).Msg("shutting down")
		return nil
	case <-p.Done():
		if p.Restarting() {
			log.Info().Msg("PROXYSQL RESTART: closing, then starting again from the DISK configuration")
			return errRestart
		}
		log.Info().Msg("PROXYSQL SHUTDOWN: shutting down")
		return nil
	}
}

// bootstrap fills MEMORY and DISK as ProxySQL does at start-up (reference
// §9.2): defaults, then DISK → MEMORY, then — only on the first start, with
// --initial or with --reload — the config file into MEMORY and MEMORY → DISK.
func bootstrap(store *storage.Store, existed bool, o *options, cfgPath string, root *cnf.Setting, log zerolog.Logger) error {
	if err := store.InitDefaults(); err != nil {
		return err
	}
	for _, m := range config.Modules {
		if _, err := store.DiskToMemory(m); err != nil {
			return fmt.Errorf("copying %s from disk: %w", m, err)
		}
	}
	useFile := o.initial || o.reload || !existed
	switch {
	case root == nil && useFile:
		log.Info().Msg("no config file: starting from built-in defaults")
		return nil
	case root == nil:
		return nil
	case !useFile:
		log.Info().Str("config", cfgPath).Msg("config file ignored: sluice.db already exists (start with --reload to merge it, --initial to rebuild from it, or run LOAD … FROM CONFIG)")
		return nil
	}
	for _, m := range config.Modules {
		_, skipped, err := store.LoadConfigFile(root, m)
		if err != nil {
			return fmt.Errorf("config file %s: %w", cfgPath, err)
		}
		for _, e := range skipped {
			log.Error().Str("config", cfgPath).Msg(e.Error())
		}
	}
	for _, n := range storage.ConfigFileNotices(root) {
		log.Warn().Str("config", cfgPath).Msg(n)
	}
	for _, m := range config.Modules {
		if _, err := store.MemoryToDisk(m); err != nil {
			return fmt.Errorf("saving %s to disk: %w", m, err)
		}
	}
	log.Info().Str("config", cfgPath).Bool("initial", o.initial).Bool("reload", o.reload).Msg("config file loaded into MEMORY and DISK")
	return nil
}

// newUUID is this process's identity in PROXYSQL CLUSTER_NODE_UUID: a random
// (version 4) UUID, new at each start, as ProxySQL's.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// uuidText is a UUID as ProxySQL's config file gives it.
var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// nodeUUID is this node's UUID for PROXYSQL CLUSTER_NODE_UUID: the config
// file's top-level uuid, as ProxySQL reads it, else a new one at each
// start. A uuid that is not a UUID gives a new one and an error.
func nodeUUID(root *cnf.Setting) (string, error) {
	if root != nil {
		if s := root.Get("uuid"); s != nil {
			if uuidText.MatchString(s.Value) {
				return strings.ToLower(s.Value), nil
			}
			return newUUID(), fmt.Errorf("uuid %q in the config file is not a UUID", s.Value)
		}
	}
	return newUUID(), nil
}

// syncInterfacesNotice is the warning for a config file that sets
// ProxySQL's top-level cluster_sync_interfaces to true (or to something not
// a boolean): ProxySQL Cluster then also syncs the interface variables;
// Sluice never does. "" when there is nothing to say.
func syncInterfacesNotice(root *cnf.Setting) string {
	if root == nil {
		return ""
	}
	s := root.Get("cluster_sync_interfaces")
	if s == nil {
		return ""
	}
	if on, err := s.Bool(); err == nil && !on {
		return ""
	}
	return "cluster_sync_interfaces=" + s.Value + ": not implemented in Sluice, ProxySQL Cluster never syncs the interface variables " +
		"(mysql-interfaces, admin-mysql_ifaces, admin-restapi_port, admin-web_port, admin-telnet_admin_ifaces, admin-telnet_stats_ifaces) " +
		"nor mysql-threads, each node keeps its own (set cluster_sync_interfaces=false)"
}
