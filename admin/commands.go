package admin

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// checksumGroups are the table groups CHECKSUM accepts (§2.5).
var checksumGroups = map[string]bool{
	"MYSQL SERVERS": true, "MYSQL USERS": true, "MYSQL QUERY RULES": true, "MYSQL VARIABLES": true,
	"MYSQL REPLICATION HOSTGROUPS": true, "MYSQL GROUP REPLICATION HOSTGROUPS": true,
	"MYSQL GALERA HOSTGROUPS": true, "MYSQL AURORA HOSTGROUPS": true,
	"MYSQL HOSTGROUP ATTRIBUTES": true, "MYSQL SERVERS SSL PARAMS": true,
}

// checksumCommand is CHECKSUM [DISK|MEMORY|MEM] <group>: one row with the
// columns table and checksum. Other text goes on to SQLite.
func (s *Server) checksumCommand(ss *session, u string) (reply, bool) {
	rest := u[len("CHECKSUM "):]
	layer := "MEMORY"
	for _, p := range []string{"DISK ", "MEMORY ", "MEM "} {
		if strings.HasPrefix(rest, p) {
			layer, rest = strings.TrimSpace(p), rest[len(p):]
			break
		}
	}
	if layer == "MEM" {
		layer = "MEMORY"
	}
	if !checksumGroups[rest] {
		return nil, false
	}
	if ss.stats {
		return nil, false
	}
	sum, err := s.cfg.Store.Checksum(layer, rest)
	if err != nil {
		return sqliteErr(err), true
	}
	return oneRow([]string{"table", "checksum"}, rest, sum), true
}

// unsupportedProxySQL are PROXYSQL commands ProxySQL has and Sluice cannot
// honour itself; an Applier that implements Commander may take them.
var unsupportedProxySQL = map[string]bool{
	"STOP": true, "PAUSE": true, "RESUME": true,
	"FLUSH QUERY CACHE": true, "FLUSH MYSQL CLIENT HOSTS": true, "FLUSH CONFIGDB": true,
	"RELOAD TLS": true, "MEMPROFILE START": true, "MEMPROFILE STOP": true,
	"COREDUMP": true, "COMPRESSEDCOREDUMP": true,
}

// proxysqlCommand handles PROXYSQL … (§2.3). Unknown commands go on to
// SQLite, which answers with a syntax error, as in ProxySQL.
func (s *Server) proxysqlCommand(ss *session, u string) (reply, bool) {
	cmd := strings.TrimSpace(u[len("PROXYSQL "):])
	switch cmd {
	case "FLUSH LOGS":
		ss.log.Info().Msg("Received PROXYSQL FLUSH LOGS command")
		if err := s.cfg.Applier.FlushLogs(); err != nil {
			return adminErr("ProxySQL Admin Error: " + err.Error()), true
		}
		return &okReply{}, true
	case "SHUTDOWN", "SHUTDOWN SLOW", "KILL":
		ss.log.Info().Msgf("Received PROXYSQL %s command", cmd)
		// The OK goes out first; Shutdown closes this server, so it must
		// not run on this session's goroutine while the session is active.
		// SHUTDOWN and KILL stop at once, as ProxySQL's exit() since 2.1;
		// SHUTDOWN SLOW closes gracefully, as SIGTERM does.
		stop := s.cfg.Applier.Shutdown
		if st, ok := s.cfg.Applier.(Stopper); ok && cmd != "SHUTDOWN SLOW" {
			stop = st.ShutdownNow
		}
		ss.after = append(ss.after, func() { go stop() })
		return &okReply{}, true
	case "RESTART":
		r, ok := s.cfg.Applier.(Restarter)
		if !ok {
			return notSupported("PROXYSQL RESTART"), true
		}
		ss.log.Info().Msg("Received PROXYSQL RESTART command")
		// As SHUTDOWN: the OK goes out before everything closes.
		ss.after = append(ss.after, func() { go r.Restart() })
		return &okReply{}, true
	case "READONLY", "READWRITE":
		if err := s.setReadOnly(cmd == "READONLY"); err != nil {
			return adminErr(err.Error()), true
		}
		return &okReply{}, true
	case "START":
		st, ok := s.cfg.Applier.(Starter)
		if !ok {
			return adminErr("ProxySQL already started"), true
		}
		if err := st.StartDataPlane(); err != nil {
			return adminErr(err.Error()), true
		}
		ss.log.Info().Msg("Received PROXYSQL START command: the data plane is up")
		return &okReply{}, true
	}
	base := cmd
	if strings.HasPrefix(cmd, "COREDUMP ") || strings.HasPrefix(cmd, "COMPRESSEDCOREDUMP ") {
		base = cmd[:strings.IndexByte(cmd, ' ')]
	}
	if !unsupportedProxySQL[base] {
		return nil, false
	}
	if c, ok := s.cfg.Applier.(Commander); ok {
		handled, err := c.ProxySQLCommand(cmd)
		var refusal CommandRefusal
		if errors.As(err, &refusal) {
			return adminErr(string(refusal)), true
		}
		if err != nil {
			return adminErr("ProxySQL Admin Error: " + err.Error()), true
		}
		if handled {
			ss.log.Info().Msgf("Received PROXYSQL %s command", cmd)
			return &okReply{}, true
		}
	}
	return notSupported("PROXYSQL " + base), true
}

// killCommand is KILL CONNECTION <id> on a data-port session.
func (s *Server) killCommand(arg string) reply {
	arg = strings.TrimSpace(arg)
	id, err := strconv.ParseUint(arg, 10, 64)
	if err == nil {
		if k, ok := s.cfg.Applier.(Killer); ok && k.KillSession(id) {
			return &okReply{}
		}
	}
	return adminErr("Unknown thread id: " + arg)
}

// saveConfigFile is SELECT CONFIG INTO OUTFILE <path> and SAVE CONFIG TO
// FILE <path>: the text of SELECT CONFIG FILE, written to path.
func (s *Server) saveConfigFile(ss *session, arg string) reply {
	path := strings.TrimSpace(arg)
	if len(path) >= 2 && (path[0] == '\'' || path[0] == '"') && path[len(path)-1] == path[0] {
		path = path[1 : len(path)-1]
	}
	if path == "" {
		return adminErr("ProxySQL Admin Error: empty file name") // ProxySQL's words
	}
	text, err := s.cfg.Store.ConfigFileText()
	if err != nil {
		return sqliteErr(err)
	}
	if err := writeFileAtomic(path, []byte(text)); err != nil {
		return adminErr(fmt.Sprintf("ProxySQL Admin Error: cannot write %s: %v", path, err))
	}
	ss.log.Info().Str("file", path).Msg("config saved to file")
	return &okReply{info: "File " + path + " is saved."}
}

// writeFileAtomic writes through a temporary file and a rename, so a
// failure never leaves a half-written config behind.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// setReadOnly is PROXYSQL READONLY / READWRITE: admin-read_only changes in
// RUNTIME (runtime_global_variables, SELECT @@admin-read_only), not in
// MEMORY, as ProxySQL's set_read_only does.
func (s *Server) setReadOnly(on bool) error {
	s.readOnly.Store(on)
	rt := s.cfg.Applier.Runtime()
	if rt == nil {
		return nil
	}
	v := strconv.FormatBool(on)
	if rt.Var("admin-read_only") == v {
		return nil
	}
	snap := rt.Clone()
	snap.AdminVars = maps.Clone(rt.AdminVars)
	snap.AdminVars["admin-read_only"] = v
	if _, err := s.apply(config.ModAdminVariables, snap, false); err != nil {
		return err
	}
	return s.cfg.Store.WriteRuntime(snap, config.ModAdminVariables)
}
