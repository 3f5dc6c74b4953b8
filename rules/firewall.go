package rules

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// The query firewall (ProxySQL's mysql_firewall_whitelist_*): with
// mysql-firewall_whitelist_enabled, a query is looked up by the client's
// (username, client_address) in mysql_firewall_whitelist_users, then by
// (username, ''); a user in neither is in PROTECTING mode. OFF lets every
// query through. DETECTING and PROTECTING let through the queries whose
// (username, the matched client_address, schemaname, final flagIN,
// digest) is an active row of mysql_firewall_whitelist_rules; any other is
// logged (DETECTING) or answered with ERR 1148 and
// mysql-firewall_whitelist_errormsg (PROTECTING) unless a rule already set
// an error_msg. Only active rows count.

// FirewallMode is a whitelist user's mode.
type FirewallMode int

// Modes, as in mysql_firewall_whitelist_users.mode.
const (
	FirewallOff FirewallMode = iota
	FirewallDetecting
	FirewallProtecting
)

func (m FirewallMode) String() string {
	switch m {
	case FirewallDetecting:
		return "DETECTING"
	case FirewallProtecting:
		return "PROTECTING"
	}
	return "OFF"
}

// Firewall is the compiled whitelist. The zero value (or nil) has no users:
// every query is PROTECTING and unlisted.
type Firewall struct {
	users map[fwUser]FirewallMode
	rules map[fwRule]struct{}
	sqli  map[string]bool // active mysql_firewall_whitelist_sqli_fingerprints
}

type fwUser struct{ user, client string }

type fwRule struct {
	user, client, schema string
	flagIN               int
	digest               uint64
}

// CompileFirewall builds the whitelist from the raw rows of
// mysql_firewall_whitelist_users (active, username, client_address, mode,
// comment), mysql_firewall_whitelist_rules (active, username,
// client_address, schemaname, flagIN, digest, comment) and
// mysql_firewall_whitelist_sqli_fingerprints (active, fingerprint).
func CompileFirewall(users, rules, sqli [][]sql.NullString) (*Firewall, error) {
	f := &Firewall{users: make(map[fwUser]FirewallMode), rules: make(map[fwRule]struct{}), sqli: make(map[string]bool)}
	for _, r := range sqli {
		if len(r) >= 2 && r[0].String == "1" {
			f.sqli[r[1].String] = true
		}
	}
	for _, r := range users {
		if len(r) < 4 {
			return nil, fmt.Errorf("mysql_firewall_whitelist_users: a row of %d columns", len(r))
		}
		if r[0].String != "1" {
			continue
		}
		var mode FirewallMode
		switch strings.ToUpper(r[3].String) {
		case "OFF":
			mode = FirewallOff
		case "DETECTING":
			mode = FirewallDetecting
		case "PROTECTING":
			mode = FirewallProtecting
		default:
			return nil, fmt.Errorf("mysql_firewall_whitelist_users (%s, %s): mode %q is not OFF, DETECTING or PROTECTING", r[1].String, r[2].String, r[3].String)
		}
		f.users[fwUser{r[1].String, r[2].String}] = mode
	}
	for _, r := range rules {
		if len(r) < 6 {
			return nil, fmt.Errorf("mysql_firewall_whitelist_rules: a row of %d columns", len(r))
		}
		if r[0].String != "1" {
			continue
		}
		flagIN, err := strconv.Atoi(strings.TrimSpace(r[4].String))
		if err != nil {
			return nil, fmt.Errorf("mysql_firewall_whitelist_rules (%s, %s): flagIN %q is not an integer", r[1].String, r[2].String, r[4].String)
		}
		d := strings.TrimSpace(r[5].String)
		digest, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(d, "0x"), "0X"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("mysql_firewall_whitelist_rules (%s, %s): digest %q is not a hexadecimal digest (0x…)", r[1].String, r[2].String, d)
		}
		f.rules[fwRule{r[1].String, r[2].String, r[3].String, flagIN, digest}] = struct{}{}
	}
	return f, nil
}

// Check returns the mode that applies to user connecting from client and
// whether the query (schema, final flagIN, digest) is whitelisted for it.
func (f *Firewall) Check(user, client, schema string, flagIN int, digest uint64) (FirewallMode, bool) {
	if f == nil {
		return FirewallProtecting, false
	}
	mode, ok := f.users[fwUser{user, client}]
	if !ok {
		client = ""
		if mode, ok = f.users[fwUser{user, ""}]; !ok {
			return FirewallProtecting, false // by default, everything is blocked
		}
	}
	if mode == FirewallOff {
		return mode, true
	}
	_, allowed := f.rules[fwRule{user, client, schema, flagIN, digest}]
	return mode, allowed
}

// SQLiWhitelisted reports whether a libinjection fingerprint is an active
// row of mysql_firewall_whitelist_sqli_fingerprints.
func (f *Firewall) SQLiWhitelisted(fingerprint string) bool { return f != nil && f.sqli[fingerprint] }
