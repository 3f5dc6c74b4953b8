package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-proxy/sluice/internal/ratelog"
)

// ErrInvalid is wrapped by every validation error, so callers can tell a
// refused configuration from an I/O failure.
var ErrInvalid = errors.New("config: invalid")

var hashedPassword = regexp.MustCompile(`^\*[0-9A-Fa-f]{40}$`)

// IsHashedPassword reports whether a mysql_users password is stored as a
// mysql_native_password hash ("*" + 40 hex digits) rather than clear text.
func IsHashedPassword(p string) bool { return len(p) == 41 && hashedPassword.MatchString(p) }

func invalid(table, key, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s: %s", ErrInvalid, table, key, fmt.Sprintf(format, args...))
}

// Validate checks the parts of the snapshot that module m owns. SQLite's
// CHECK constraints already hold for rows that came from the admin tables;
// Validate catches what they cannot express (duplicates across rows, JSON
// shapes, values the proxy cannot act on). The error names the table and key.
// Regular expressions are checked by rules.Compile, which reports the rule_id.
func (s *Snapshot) Validate(m Module) error {
	switch m {
	case ModMySQLServers:
		return s.validateServers()
	case ModMySQLUsers:
		return s.validateUsers()
	case ModMySQLVariables, ModAdminVariables:
		return s.validateVars(m)
	case ModMySQLQueryRules:
		return s.validateRules()
	}
	return nil
}

// maxHostname bounds mysql_servers.hostname.
const maxHostname = 255

var serverStatuses = map[string]bool{"ONLINE": true, "SHUNNED": true, "OFFLINE_SOFT": true, "OFFLINE_HARD": true}

func (s *Snapshot) validateServers() error {
	type key struct {
		hg   int
		host string
		port int
	}
	seen := make(map[key]bool, len(s.Servers))
	for _, sv := range s.Servers {
		k := fmt.Sprintf("(hostgroup_id=%d, hostname='%s', port=%d)", sv.HostgroupID, ratelog.Clip(sv.Hostname, 64), sv.Port)
		switch {
		case sv.HostgroupID < 0:
			return invalid("mysql_servers", k, "hostgroup_id must be >= 0")
		case strings.TrimSpace(sv.Hostname) == "":
			return invalid("mysql_servers", k, "hostname is empty")
		case len(sv.Hostname) > maxHostname:
			// No DNS name (253) or Unix socket path (108) is longer; every
			// log line about the server would carry it.
			return invalid("mysql_servers", k, "hostname is longer than %d bytes", maxHostname)
		case sv.Port < 0 || sv.Port > 65535:
			return invalid("mysql_servers", k, "port out of range 0..65535")
		case !serverStatuses[sv.Status]:
			return invalid("mysql_servers", k, "unknown status %q", sv.Status)
		case sv.Weight < 0 || sv.Weight > 10000000:
			return invalid("mysql_servers", k, "weight out of range 0..10000000")
		case sv.MaxConnections < 0:
			return invalid("mysql_servers", k, "max_connections must be >= 0")
		}
		kk := key{sv.HostgroupID, sv.Hostname, sv.Port}
		if seen[kk] {
			return invalid("mysql_servers", k, "duplicate server")
		}
		seen[kk] = true
	}
	for _, b := range s.ServersBalance {
		if b.Labels == "" {
			continue
		}
		var labels map[string]string
		if err := json.Unmarshal([]byte(b.Labels), &labels); err != nil {
			return invalid("mysql_servers_balance", fmt.Sprintf("(hostname='%s', port=%d)", b.Hostname, b.Port),
				"labels must be a JSON object of strings: %v", err)
		}
	}
	for _, a := range s.HostgroupAttributes {
		if a.HostgroupSettings == "" {
			continue
		}
		var hs map[string]json.RawMessage
		if err := json.Unmarshal([]byte(a.HostgroupSettings), &hs); err != nil {
			return invalid("mysql_hostgroup_attributes", fmt.Sprintf("(hostgroup_id=%d)", a.HostgroupID),
				"hostgroup_settings must be a JSON object: %v", err)
		}
		if raw, ok := hs["handle_warnings"]; ok {
			var n int
			if err := json.Unmarshal(raw, &n); err != nil || n < -1 || n > 1 {
				return invalid("mysql_hostgroup_attributes", fmt.Sprintf("(hostgroup_id=%d)", a.HostgroupID),
					"hostgroup_settings.handle_warnings must be 0 or 1 (-1: the global mysql-handle_warnings), got %s", raw)
			}
		}
		if raw, ok := hs["monitor_slave_lag_when_null"]; ok {
			var n int
			if err := json.Unmarshal(raw, &n); err != nil || n > 604800 {
				return invalid("mysql_hostgroup_attributes", fmt.Sprintf("(hostgroup_id=%d)", a.HostgroupID),
					"hostgroup_settings.monitor_slave_lag_when_null must be an integer <= 604800, got %s", raw)
			}
		}
	}
	for _, r := range s.ReplicationHostgroups {
		if r.WriterHostgroup == r.ReaderHostgroup {
			return invalid("mysql_replication_hostgroups", fmt.Sprintf("(writer_hostgroup=%d)", r.WriterHostgroup),
				"reader_hostgroup equals writer_hostgroup")
		}
	}
	return nil
}

func (s *Snapshot) validateUsers() error {
	front := make(map[string]bool, len(s.Users))
	back := make(map[string]bool, len(s.Users))
	for _, u := range s.Users {
		k := fmt.Sprintf("(username='%s')", u.Username)
		if u.Username == "" {
			return invalid("mysql_users", k, "username is empty")
		}
		if strings.HasPrefix(u.Password, "*") && len(u.Password) == 41 && !IsHashedPassword(u.Password) {
			return invalid("mysql_users", k, "password looks like a mysql_native_password hash but is not 40 hex digits")
		}
		if u.MaxConnections < 0 {
			return invalid("mysql_users", k, "max_connections must be >= 0")
		}
		if _, err := ParseUserAttributes(u.Attributes); err != nil {
			return invalid("mysql_users", k, "%v", err)
		}
		if u.Frontend {
			if front[u.Username] {
				return invalid("mysql_users", k, "duplicate frontend user")
			}
			front[u.Username] = true
		}
		if u.Backend {
			if back[u.Username] {
				return invalid("mysql_users", k, "duplicate backend user")
			}
			back[u.Username] = true
		}
		if u.Attributes != "" && !json.Valid([]byte(u.Attributes)) {
			return invalid("mysql_users", k, "attributes is not valid JSON")
		}
	}
	return nil
}

func (s *Snapshot) validateRules() error {
	seen := make(map[int]bool, len(s.QueryRules))
	for _, r := range s.QueryRules {
		k := fmt.Sprintf("(rule_id=%d)", r.RuleID)
		if seen[r.RuleID] {
			return invalid("mysql_query_rules", k, "duplicate rule_id")
		}
		seen[r.RuleID] = true
		if r.ReplacePattern.Valid && !r.MatchPattern.Valid {
			return invalid("mysql_query_rules", k, "replace_pattern needs match_pattern")
		}
		if r.Attributes != "" && !json.Valid([]byte(r.Attributes)) {
			return invalid("mysql_query_rules", k, "attributes is not valid JSON")
		}
	}
	for _, f := range s.FastRouting {
		if f.DestinationHostgroup < 0 {
			return invalid("mysql_query_rules_fast_routing",
				fmt.Sprintf("(username='%s', schemaname='%s', flagIN=%d)", f.Username, f.Schemaname, f.FlagIN),
				"destination_hostgroup must be >= 0")
		}
	}
	return nil
}

// validateVars checks only what would make the proxy unable to run; values
// that are merely out of range are reverted one by one by the admin LOAD
// (as ProxySQL does) before Validate is called.
func (s *Snapshot) validateVars(m Module) error {
	vars := s.MySQLVars
	if m == ModAdminVariables {
		vars = s.AdminVars
	}
	for name, v := range vars {
		d, ok := LookupVar(name)
		if !ok {
			continue
		}
		if err := d.Check(v); err != nil {
			return fmt.Errorf("%w: global_variables (variable_name='%s'): %v", ErrInvalid, name, err)
		}
		if name == "mysql-monitor_replication_lag_use_percona_heartbeat" && v != "" && !heartbeatTable.MatchString(v) {
			// It is written into the monitor's query: a table name only.
			return fmt.Errorf("%w: global_variables (variable_name='%s'): %q is not a table name (schema.table, "+
				"each part letters, digits, _ or $, optionally in backquotes)", ErrInvalid, name, v)
		}
	}
	return nil
}

// heartbeatTable is the form of mysql-monitor_replication_lag_use_percona_heartbeat:
// the pt-heartbeat table, [schema.]table.
var heartbeatTable = regexp.MustCompile("^(`?[A-Za-z0-9_$]+`?\\.)?`?[A-Za-z0-9_$]+`?$")

// DropInvalid leaves out of the snapshot the rows of module m that Validate
// refuses (mysql_servers, mysql_users, mysql_query_rules) and the variables
// it refuses (they keep their defaults), and says why each went. It is for
// the start-up load: there, refusing the whole module — one mistyped user
// attribute saved to DISK — kept the proxy from starting at all, where
// ProxySQL leaves such a row out with a warning. What is dropped stays in
// MEMORY and DISK, to be fixed and loaded. The other parts of the module
// (hostgroup attributes, labels, fast routing) must validate, or nothing is
// dropped and Validate's error stands.
func (s *Snapshot) DropInvalid(m Module) []string {
	if s.Validate(m) == nil {
		return nil
	}
	switch m {
	case ModMySQLServers:
		return dropRows(&s.Servers, s.validateServers)
	case ModMySQLUsers:
		return dropRows(&s.Users, s.validateUsers)
	case ModMySQLQueryRules:
		return dropRows(&s.QueryRules, s.validateRules)
	case ModMySQLVariables, ModAdminVariables:
		vars := s.MySQLVars
		if m == ModAdminVariables {
			vars = s.AdminVars
		}
		var why []string
		for name, v := range vars {
			one := &Snapshot{MySQLVars: map[string]string{name: v}, AdminVars: map[string]string{name: v}}
			if err := one.validateVars(m); err != nil {
				why = append(why, err.Error())
				delete(vars, name)
			}
		}
		return why
	}
	return nil
}

// dropRows keeps the rows of *rows that check accepts: each row alone
// first, then, if rows together still fail (a duplicate), each with the
// rows kept before it.
func dropRows[T any](rows *[]T, check func() error) []string {
	all := *rows
	*rows = nil
	if check() != nil {
		*rows = all
		return nil
	}
	var why []string
	kept := make([]T, 0, len(all))
	for _, r := range all {
		*rows = []T{r}
		if err := check(); err != nil {
			why = append(why, err.Error())
			continue
		}
		kept = append(kept, r)
	}
	*rows = kept
	if check() == nil {
		return why
	}
	all, kept = kept, make([]T, 0, len(kept))
	for _, r := range all {
		*rows = append(kept, r)
		if err := check(); err != nil {
			why = append(why, err.Error())
			continue
		}
		kept = append(kept, r)
	}
	*rows = kept
	return why
}
