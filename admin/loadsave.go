package admin

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// Sentinel errors of LOAD … FROM CONFIG, with ProxySQL's wording (its
// capital letters included: clients and runbooks match these texts).
var (
	ErrNoConfigFile  = errors.New("Config file unknown")
	ErrBadConfigFile = errors.New("Unable to open or parse config file") //lint:ignore ST1005 ProxySQL's text
)

// loadSaveCommand handles a statement starting with LOAD or SAVE. Anything
// outside the grammar is not intercepted and goes to SQLite (ok=false), which
// answers with a syntax error, as ProxySQL does.
func (s *Server) loadSaveCommand(ss *session, n, u string) (reply, bool) {
	if ls, ok := parseLoadSave(n); ok {
		return s.runLoadSave(ss, n, ls), true
	}
	const userPrefix, userSuffix = "LOAD MYSQL USER ", " TO RUNTIME"
	if strings.HasPrefix(u, userPrefix) && strings.HasSuffix(u, userSuffix) && len(u) > len(userPrefix)+len(userSuffix) {
		name := n[len(userPrefix) : len(n)-len(userSuffix)]
		return s.loadOneUser(ss, name), true
	}
	if m := unsupportedModule(u); m != "" {
		return notSupported(m), true
	}
	if u == "SAVE MYSQL DIGEST TO DISK" {
		ds, ok := s.cfg.Applier.(DigestSaver)
		if !ok {
			return notSupported("SAVE MYSQL DIGEST TO DISK"), true
		}
		n, err := ds.SaveDigestsToDisk()
		if err != nil {
			return adminErr("ProxySQL Admin Error: " + err.Error()), true
		}
		ss.log.Info().Int("entries", n).Msg("Saved stats_mysql_query_digest to disk")
		return &okReply{affected: uint64(n)}, true
	}
	return nil, false
}

// unsupportedModules are ProxySQL modules of features Sluice does not have
// (its debug filters, LDAP, the SQLite3 and ClickHouse servers, ProxySQL
// 3's PostgreSQL side, core dump filters).
var unsupportedModules = []string{"DEBUG", "LDAP VARIABLES", "SQLITESERVER VARIABLES",
	"CLICKHOUSE USERS", "CLICKHOUSE VARIABLES", "PGSQL USERS", "PGSQL SERVERS",
	"PGSQL QUERY RULES", "PGSQL VARIABLES", "PGSQL FIREWALL", "COREDUMP"}

// unsupportedModule returns "LOAD <module>" or "SAVE <module>" when u (a
// LOAD or SAVE, upper case) names one of unsupportedModules, so that a
// ProxySQL runbook's step is refused by name, not as SQLite's "syntax
// error"; "" otherwise.
func unsupportedModule(u string) string {
	verb, rest := u[:len("LOAD")], u[len("LOAD "):]
	for _, m := range unsupportedModules {
		if rest == m || strings.HasPrefix(rest, m+" ") {
			return verb + " " + m
		}
	}
	return ""
}

func notSupported(what string) *errReply {
	return adminErr("ProxySQL Admin Error: " + what + " is not supported by Sluice")
}

func (s *Server) runLoadSave(ss *session, n string, ls loadSave) reply {
	ss.log.Info().Str("command", clipCommand(n)).Msg("Received command")
	if s.readOnly.Load() {
		return sqliteErr(errReadOnly)
	}
	st := s.cfg.Store
	m := ls.Module
	switch ls.Dir {
	case MemoryToRuntime:
		warns, err := s.loadToRuntime(m, false)
		if err == nil {
			warns, err = s.published(m, warns)
		}
		if err != nil {
			ss.log.Warn().Err(err).Str("module", m.String()).Msg("LOAD TO RUNTIME failed")
			return adminErr(err.Error())
		}
		return ss.okWithWarnings(warns)
	case RuntimeToMemory:
		snap := s.cfg.Applier.Runtime()
		if ls, ok := s.cfg.Applier.(LiveServerser); ok && m == config.ModMySQLServers && snap != nil {
			snap = snap.Clone()
			snap.Servers = ls.LiveServers()
		}
		if _, err := st.RuntimeToMemory(snap, m); err != nil {
			return sqliteErr(err)
		}
		return &okReply{}
	case DiskToMemory, MemoryToDisk:
		copyFn := st.DiskToMemory
		if ls.Dir == MemoryToDisk {
			copyFn = st.MemoryToDisk
		}
		rows, err := copyFn(m)
		if err != nil {
			return sqliteErr(err)
		}
		// Variables are copied by an INSERT OR REPLACE that ProxySQL runs
		// through SQLite, so the client sees its row count; table modules
		// answer a plain OK.
		if m.VarPrefix() == "" {
			rows = 0
		}
		return &okReply{affected: uint64(max(rows, 0))}
	case ConfigToMemory:
		rows, notices, err := s.loadFromConfig(m)
		if err != nil {
			ss.log.Warn().Err(err).Str("module", m.String()).Msg("LOAD FROM CONFIG failed")
			return adminErr(configErrText(err))
		}
		for _, n := range notices {
			ss.log.Warn().Str("config", s.cfg.ConfigPath).Str("module", m.String()).Msg(n)
		}
		return &okReply{affected: uint64(max(rows, 0)), warnings: ss.setWarnings(notices)}
	}
	return adminErr(fmt.Sprintf("unknown direction %v", ls.Dir))
}

// configErrText is the client-facing text of a LOAD FROM CONFIG error.
func configErrText(err error) string {
	switch {
	case errors.Is(err, ErrNoConfigFile):
		return ErrNoConfigFile.Error()
	case errors.Is(err, ErrBadConfigFile):
		// ProxySQL's words, then where the parser stopped.
		return err.Error()
	}
	return "ProxySQL Admin Error: " + err.Error()
}

// loadFromConfig re-reads the config file and merges module m into MEMORY;
// it returns what the file holds for m that no column reads
// (storage.ConfigFileNotices), the LOAD's warnings.
func (s *Server) loadFromConfig(m config.Module) (int64, []string, error) {
	path := s.cfg.ConfigPath
	if path == "" {
		return 0, nil, ErrNoConfigFile
	}
	root, err := cnf.ParseFile(path)
	if err != nil {
		return 0, nil, fmt.Errorf("%w %s: %w", ErrBadConfigFile, path, err)
	}
	n, skipped, err := s.cfg.Store.LoadConfigFile(root, m)
	if err != nil {
		return 0, nil, err
	}
	var warns []string
	for _, e := range skipped {
		s.log.Error().Str("config", path).Msg(e.Error())
		warns = append(warns, e.Error())
	}
	return n, append(warns, storage.ConfigFileNotices(root, m)...), nil
}

// LoadToRuntime runs LOAD <m> TO RUNTIME, exactly as an operator's command
// would (cmd/sluice uses it at start-up). It holds the admin mutex.
func (s *Server) LoadToRuntime(m config.Module) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.loadToRuntime(m, true)
	return err
}

// loadToRuntime builds a snapshot from MEMORY with module m replaced, checks
// variables, hands it to the Applier and, once it is live, rewrites the
// runtime_* tables and bumps the module's checksum version. On any error
// RUNTIME stays as it was. It returns the LOAD's warnings (logged here).
// atStart is the load of start-up (see Warner). The caller holds s.mu.
func (s *Server) loadToRuntime(m config.Module, atStart bool) ([]string, error) {
	return s.loadToRuntimeAt(m, atStart, time.Time{})
}

// loadToRuntimeAt is loadToRuntime with the epoch the module's checksum row
// gets: epoch zero means now (a local LOAD); a module imported from a
// ProxySQL Cluster peer keeps the peer's, as ProxySQL does.
func (s *Server) loadToRuntimeAt(m config.Module, atStart bool, epoch time.Time) ([]string, error) {
	rt := s.cfg.Applier.Runtime()
	snap, err := s.cfg.Store.BuildSnapshot(rt, m)
	if err != nil {
		return nil, err
	}
	var checked []string
	if m.VarPrefix() != "" {
		checked = s.checkVariables(m, rt, snap)
	}
	if atStart {
		// A row saved to DISK that no LOAD would take must not keep the
		// proxy from starting: it is left out of RUNTIME, with a warning.
		for _, why := range snap.DropInvalid(m) {
			msg := why + " (left out of the runtime; loaded anyway at start-up: fix it in MEMORY, then LOAD " + m.String() + " TO RUNTIME)"
			s.log.Warn().Str("module", m.String()).Msg(msg)
			checked = append(checked, msg)
		}
	}
	if m == config.ModAdminVariables {
		if err := s.bindIfaces(rt, snap); err != nil {
			return nil, err
		}
	}
	warns, err := s.apply(m, snap, atStart)
	if err != nil {
		return nil, err
	}
	return append(checked, warns...), s.afterApply(m, snap, epoch)
}

// bindIfaces binds a changed admin-mysql_ifaces before the LOAD goes live,
// as the data port binds mysql-interfaces: an address that cannot be bound
// (a port out of range or in use) fails the LOAD, with RUNTIME and the
// listeners as they were, instead of a runtime value nothing serves.
func (s *Server) bindIfaces(rt, snap *config.Snapshot) error {
	if rt == nil {
		return nil // start-up: cmd/sluice calls Listen
	}
	old, next := rt.Var("admin-mysql_ifaces"), snap.Var("admin-mysql_ifaces")
	s.lmu.Lock()
	listening := len(s.listeners) > 0 && !s.closed
	s.lmu.Unlock()
	if !listening || next == old || strings.TrimSpace(next) == "" {
		return nil
	}
	err := s.Listen(next)
	if err == nil {
		return nil
	}
	_ = s.Listen(old) // close what the failed attempt opened
	// The new addresses may clash with the old ones on the same port
	// (0.0.0.0:6032 → 127.0.0.1:6032): close the old ones first and try
	// again; if that fails too, the old ones are bound again.
	s.closeUnwanted(next)
	if err2 := s.Listen(next); err2 == nil {
		return nil
	}
	if err3 := s.Listen(old); err3 != nil {
		s.log.Error().Err(err3).Str("admin-mysql_ifaces", old).Msg("cannot listen again on the admin interfaces the failed LOAD replaced")
	}
	return fmt.Errorf("global_variables (admin-mysql_ifaces): %w", err)
}

// apply hands snap to the Applier and logs the warnings of the LOAD.
func (s *Server) apply(m config.Module, snap *config.Snapshot, atStart bool) ([]string, error) {
	w, ok := s.cfg.Applier.(Warner)
	if !ok {
		return nil, s.cfg.Applier.Apply(m, snap)
	}
	warns, err := w.ApplyWarn(m, snap, atStart)
	for _, msg := range warns {
		s.log.Warn().Str("module", m.String()).Msg(msg)
	}
	return warns, err
}

// afterApply records a successful Apply: runtime_* tables, the checksum
// version (with epoch, or now when it is zero), and admin-read_only when
// admin variables changed. Then the load hook runs.
func (s *Server) afterApply(m config.Module, snap *config.Snapshot, epoch time.Time) error {
	if epoch.IsZero() {
		epoch = time.Now()
	}
	if err := s.cfg.Store.WriteRuntime(snap, m); err != nil {
		return fmt.Errorf("runtime is loaded but runtime tables were not written: %w", err)
	}
	if err := s.cfg.Store.RecordLoad(m, epoch); err != nil {
		return fmt.Errorf("runtime is loaded but its checksum was not recorded: %w", err)
	}
	if m == config.ModAdminVariables {
		b, _ := config.ParseBool(snap.Var("admin-read_only"))
		s.readOnly.Store(b) // admin-mysql_ifaces was bound before the LOAD went live (bindIfaces)
	}
	if h := s.loadHook.Load(); h != nil {
		(*h)(m)
	}
	return nil
}

// SetLoadHook sets a function called after every successful LOAD … TO
// RUNTIME (the operator's, start-up's, or an import's), with the admin
// mutex held: it must not call back into the Server. The ProxySQL Cluster
// poller uses it to follow LOAD PROXYSQL SERVERS and the cluster variables.
func (s *Server) SetLoadHook(fn func(config.Module)) {
	s.loadHook.Store(&fn)
}

// checkVariables vets the variables of module m in snap before they go
// live, as ProxySQL's flush_*_variables___database_to_runtime does:
//   - unknown names are logged and kept (Sluice ignores them);
//   - invalid values and changes to read-only variables are refused: the
//     runtime value goes back into the snapshot and into MEMORY;
//   - set-once variables keep their new MEMORY value, which takes effect
//     after SAVE … TO DISK and a restart; the snapshot keeps the runtime one.
//     The first load of a module (at start-up) sets them;
//   - known variables missing from MEMORY are put back with their runtime
//     value.
//
// Each refusal and each value kept for a restart is logged and returned as
// a warning of the LOAD (its OK packet's warning count, SHOW WARNINGS):
// ProxySQL only logs them, which leaves the client believing the value runs.
func (s *Server) checkVariables(m config.Module, rt, snap *config.Snapshot) (warns []string) {
	var cur, next map[string]string
	if rt != nil {
		if m == config.ModAdminVariables {
			cur = rt.AdminVars
		} else {
			cur = rt.MySQLVars
		}
	}
	if m == config.ModAdminVariables {
		next = maps.Clone(snap.AdminVars)
		defer func() { snap.AdminVars = next }()
	} else {
		next = maps.Clone(snap.MySQLVars)
		defer func() { snap.MySQLVars = next }()
	}
	first := cur == nil
	runtimeValue := func(name string, d config.VarDef) string {
		if v, ok := cur[name]; ok {
			return v
		}
		return d.Default
	}
	// A known variable deleted from MEMORY comes back with its runtime
	// value, as ProxySQL dumps runtime back to MEMORY after a load.
	for _, d := range config.VarDefs() {
		if !strings.HasPrefix(d.Name, m.VarPrefix()) {
			continue
		}
		if _, ok := next[d.Name]; !ok {
			v := runtimeValue(d.Name, d)
			next[d.Name] = v
			if err := s.cfg.Store.SetVariable(d.Name, v); err != nil {
				s.log.Error().Err(err).Str("variable", d.Name).Msg("cannot restore variable in MEMORY")
			}
		}
	}
	for _, name := range sortedKeys(next) {
		val := next[name]
		d, ok := config.LookupVar(name)
		if !ok {
			// A typo or another ProxySQL version's variable: said to the
			// client too, so that nothing is accepted and ignored unseen.
			hint := ""
			if _, ok := config.LookupVar(name + "_msec"); ok {
				// ProxySQL's older names (ping_interval_server…): the
				// variable of milliseconds that replaced it.
				hint = " (ProxySQL renamed it: " + name + "_msec, in milliseconds)"
			}
			s.log.Warn().Str("variable", name).Str("value", logValue(name, val)).
				Msg("Unknown global variable: kept in MEMORY, not used by Sluice" + hint)
			warns = append(warns, fmt.Sprintf("Unknown global variable %s: kept in MEMORY, not used by Sluice%s", name, hint))
			// Not in RUNTIME: runtime_global_variables lists what runs.
			delete(next, name)
			continue
		}
		if d.Kind == config.VarBool {
			// RUNTIME holds a boolean as ProxySQL shows it
			// (runtime_global_variables, SELECT @@…): true or false,
			// whichever spelling MEMORY has.
			if b, ok := config.ParseBool(val); ok {
				val = strconv.FormatBool(b)
				next[name] = val
			}
		}
		rtv := runtimeValue(name, d)
		bad := d.Check(val)
		if bad == nil && d.ReadOnly && val != rtv {
			bad = fmt.Errorf("%s is read-only", name)
		}
		if bad != nil {
			msg := fmt.Sprintf("Impossible to set variable %s with value \"%s\". Resetting to current \"%s\".",
				name, logValue(name, val), logValue(name, rtv))
			s.log.Error().Err(bad).Msg(msg)
			warns = append(warns, msg+" ("+bad.Error()+")")
			next[name] = rtv
			if err := s.cfg.Store.SetVariable(name, rtv); err != nil {
				s.log.Error().Err(err).Str("variable", name).Msg("cannot reset variable in MEMORY")
			}
			continue
		}
		if d.SetOnce && !first && val != rtv {
			msg := fmt.Sprintf("Variable %s is read at start-up only: the new value \"%s\" stays in MEMORY and takes effect after SAVE %s TO DISK and a restart; runtime keeps \"%s\".",
				name, logValue(name, val), m, logValue(name, rtv))
			s.log.Warn().Msg(msg)
			warns = append(warns, msg)
			next[name] = rtv
		}
	}
	if m == config.ModMySQLVariables {
		if w := s.reconcileCharset(next, cur); w != "" {
			warns = append(warns, w)
		}
	}
	return warns
}

// reconcileCharset makes mysql-default_charset and
// mysql-default_collation_connection agree, as ProxySQL does at LOAD: when
// the collation belongs to another character set, the collation wins and
// the character set follows it, unless only the character set changed
// since the runtime, and then the collation becomes that set's default.
// The value changed is written to MEMORY too; the returned warning ("" when
// they agree) says which.
func (s *Server) reconcileCharset(next, cur map[string]string) string {
	const csVar, collVar = "mysql-default_charset", "mysql-default_collation_connection"
	cs, coll := next[csVar], next[collVar]
	def, ok1 := config.CharsetDefault(cs)
	c, ok2 := config.LookupCollation(coll)
	if !ok1 || !ok2 || c.Charset == def.Charset {
		return ""
	}
	// What ran before: the runtime, or at start the built-in defaults (a
	// proxysql.cnf that sets only default_charset changed only it).
	prevCS, prevColl := cur[csVar], cur[collVar]
	if cur == nil {
		d1, _ := config.LookupVar(csVar)
		d2, _ := config.LookupVar(collVar)
		prevCS, prevColl = d1.Default, d2.Default
	}
	name, val := csVar, c.Charset
	if cs != prevCS && coll == prevColl {
		name, val = collVar, def.Name
	}
	msg := fmt.Sprintf("Found incompatible values for %s (%s) and %s (%s): changing %s to %s",
		csVar, cs, collVar, coll, name, val)
	s.log.Error().Msg(msg)
	next[name] = val
	if err := s.cfg.Store.SetVariable(name, val); err != nil {
		s.log.Error().Err(err).Str("variable", name).Msg("cannot set variable in MEMORY")
	}
	return msg
}

// logValue hides secrets in logs (ProxySQL's issue #599: never log
// passwords); admin-hash_passwords is a switch, not one.
func logValue(name, v string) string {
	if strings.Contains(name, "password") && !strings.HasSuffix(name, "hash_passwords") || strings.Contains(name, "credentials") {
		return "********"
	}
	return v
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// loadOneUser is LOAD MYSQL USER <name> TO RUNTIME: the rows of one user in
// MEMORY replace that user's rows at runtime; every other user stays.
func (s *Server) loadOneUser(ss *session, name string) reply {
	if !isUserName(name) {
		return adminErr("Invalid name " + name)
	}
	if s.readOnly.Load() {
		return sqliteErr(errReadOnly)
	}
	if s.publisher != nil {
		// A cluster store holds whole modules: a runtime with one user
		// from MEMORY and the others from before has no MEMORY form to
		// publish.
		return adminErr("LOAD MYSQL USER " + name + " TO RUNTIME is not available when the configuration is shared (--cluster): run LOAD MYSQL USERS TO RUNTIME")
	}
	ss.log.Info().Str("user", name).Msg("Loading user")
	rt := s.cfg.Applier.Runtime()
	fromMem, err := s.cfg.Store.BuildSnapshot(rt, config.ModMySQLUsers)
	if err != nil {
		return adminErr(err.Error())
	}
	snap := fromMem
	if rt != nil {
		snap = rt.Clone()
		users := make([]config.User, 0, len(rt.Users)+2)
		for _, u := range rt.Users {
			if u.Username != name {
				users = append(users, u)
			}
		}
		for _, u := range fromMem.Users {
			if u.Username == name {
				users = append(users, u)
			}
		}
		snap.Users = users
	}
	warns, err := s.apply(config.ModMySQLUsers, snap, false)
	if err != nil {
		return adminErr(err.Error())
	}
	if err := s.afterApply(config.ModMySQLUsers, snap, time.Time{}); err != nil {
		return adminErr(err.Error())
	}
	return ss.okWithWarnings(warns)
}
