package storage

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-proxy/sluice/internal/cnf"
	"github.com/sluice-proxy/sluice/internal/config"
)

// What a config file holds that no table receives is said, never dropped in
// silence: ProxySQL's reader skips a misspelled key (match_patern,
// wieght) without a word, and a query rule whose match key is misspelled
// matches every query.

// topLevelRead are the top-level settings Sluice reads besides the lists of
// cnfSections.
var topLevelRead = []string{"datadir", "errorlog", "uuid", "cluster_sync_interfaces", "admin_variables", "mysql_variables"}

// topLevelNotBuilt are ProxySQL's settings for modules Sluice does not have.
var topLevelNotBuilt = map[string]string{
	"ldap_variables":                 "Sluice has no LDAP authentication",
	"mysql_ldap_mapping":             "Sluice has no LDAP authentication",
	"pgsql_variables":                "Sluice serves no PostgreSQL",
	"pgsql_servers":                  "Sluice serves no PostgreSQL",
	"pgsql_users":                    "Sluice serves no PostgreSQL",
	"pgsql_query_rules":              "Sluice serves no PostgreSQL",
	"pgsql_replication_hostgroups":   "Sluice serves no PostgreSQL",
	"pgsql_hostgroup_attributes":     "Sluice serves no PostgreSQL",
	"pgsql_ldap_mapping":             "Sluice serves no PostgreSQL",
	"sqliteserver_variables":         "Sluice has no SQLite3 server",
	"clickhouse_variables":           "Sluice has no ClickHouse server",
	"clickhouse_users":               "Sluice has no ClickHouse server",
	"restart_on_missing_heartbeats":  "Sluice has no watchdog parent process (use systemd's Restart=, etc/sluice.service)",
	"execute_on_exit_failure":        "Sluice has no watchdog parent process (use systemd's Restart=, etc/sluice.service)",
	"mysql_firewall_whitelist_rules": "ProxySQL does not read it from the file either; use the admin tables",
	"mysql_firewall_whitelist_users": "ProxySQL does not read it from the file either; use the admin tables",
}

// ConfigFileNotices lists, for the config file root, what Sluice ignores in
// it: with no module, top-level settings no table or variable receives (a
// misspelled section name, a ProxySQL module Sluice lacks) and the
// following for every list; with modules, the following for their lists
// only — keys of an entry that no column reads, and entries whose key
// (mysql_servers' hostgroup, address and port…) repeats an earlier one's,
// which they replace. Each notice names the line.
func ConfigFileNotices(root *cnf.Setting, modules ...config.Module) []string {
	if root == nil {
		return nil
	}
	var out []string
	if len(modules) == 0 {
		modules = config.Modules
		for _, s := range root.Children {
			if why, ok := topLevelNotBuilt[s.Name]; ok {
				out = append(out, fmt.Sprintf("%s (line %d) ignored: %s", s.Name, s.Line, why))
			} else if !slices.Contains(topLevelRead, s.Name) && !isSectionName(s.Name) {
				out = append(out, fmt.Sprintf("%s (line %d) ignored: not a setting ProxySQL or Sluice reads (misspelled?)", s.Name, s.Line))
			}
		}
	}
	for _, m := range modules {
		for _, sec := range cnfSections[m] {
			out = append(out, sectionNotices(root.Get(sec.name), sec)...)
		}
	}
	return out
}

func isSectionName(name string) bool {
	for _, secs := range cnfSections {
		for _, sec := range secs {
			if sec.name == name {
				return true
			}
		}
	}
	return false
}

// sectionNotices checks the entries of one list (errors are importConfig's
// to report).
func sectionNotices(list *cnf.Setting, sec cnfSection) []string {
	if list == nil || (list.Kind != cnf.List && list.Kind != cnf.Group) {
		return nil
	}
	known := map[string]bool{}
	for _, c := range sec.cols {
		for _, k := range c.lookupKeys() {
			known[k] = true
		}
	}
	keyCols := strings.Split(sec.orderBy, ", ")
	seen := map[string]int{} // entry key → index of the entry that set it
	var out []string
	for i, e := range list.Children {
		if e.Kind != cnf.Group {
			continue
		}
		for _, k := range e.Children {
			if !known[k.Name] {
				out = append(out, fmt.Sprintf("%s[%d] (line %d): key %s ignored: no %s column reads it (misspelled?)",
					sec.name, i, k.Line, k.Name, sec.table))
			}
		}
		vals, _, err := entryValues(e, sec)
		if err != nil {
			continue
		}
		var key strings.Builder
		for _, kc := range keyCols {
			for j, c := range sec.cols {
				if c.col == kc {
					fmt.Fprintf(&key, "%v\x00", vals[j])
				}
			}
		}
		if first, dup := seen[key.String()]; dup {
			out = append(out, fmt.Sprintf("%s[%d] (line %d) has the same %s as %s[%d] (line %d) and replaces it",
				sec.name, i, e.Line, sec.orderBy, sec.name, first, list.Children[first].Line))
		}
		seen[key.String()] = i
	}
	return out
}
