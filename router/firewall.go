package router

import (
	"fmt"
	"time"

	"github.com/corazawaf/libinjection-go"

	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/stats"
	"github.com/sluice-proxy/sluice/rules"
)

// match runs the query rules on s.query into dec, then the firewall
// (rules/firewall.go) when mysql-firewall_whitelist_enabled: every command
// the rules see (COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE) comes
// through here. A query the whitelist does not list is logged (at most 10
// lines a second with failed logins), and in PROTECTING mode answered with
// ERR 1148 and mysql-firewall_whitelist_errormsg, unless a rule already set
// an error_msg.
func (s *session) match(rt *live.Runtime, dec *rules.Decision) {
	rt.Rules.Match(&s.query, dec)
	s.firewallOff = false
	if !rt.Router.FirewallEnabled {
		return
	}
	mode, ok := rt.Firewall.Check(s.username, s.clientIP, s.state.Schema, dec.FlagIN, s.query.DigestHash)
	s.firewallOff = mode == rules.FirewallOff
	if ok {
		return
	}
	action := "blocked"
	if mode == rules.FirewallDetecting {
		action = "detected unknown"
	}
	if ok, held := s.r.loginLog.Allow(time.Now()); ok {
		ev := s.log.Warn().Str("digest", fmt.Sprintf("0x%016X", s.query.DigestHash)).Str("user", s.username).
			Str("schema", s.state.Schema).Int("flagIN", dec.FlagIN).Str("mode", mode.String())
		if held > 0 {
			ev = ev.Uint64("more_not_logged", held)
		}
		ev.Msg("Firewall " + action + " query")
	}
	if mode == rules.FirewallProtecting && !dec.HasErrorMsg {
		dec.HasErrorMsg, dec.ErrorMsg = true, rt.Router.FirewallErrMsg
	}
}

// sqlInjection is mysql-automatic_detect_sqli, as ProxySQL's: a text query
// that libinjection (its Go port) flags, from a user the firewall does not
// put in OFF mode, whose fingerprint is not an active row of
// mysql_firewall_whitelist_sqli_fingerprints, is logged with the
// fingerprint and the query (passwords masked, clipped), counted
// (automatic_detected_sql_injection), and ends the session. ProxySQL closes
// the connection without a word; Sluice sends an ERR first, so the client
// learns why. A whitelisted fingerprint is counted
// (mysql_whitelisted_sqli_fingerprint) and the query goes on. It reports
// whether the session must end.
func (s *session) sqlInjection(rt *live.Runtime, q []byte) bool {
	if !rt.Router.DetectSQLi || s.firewallOff {
		return false
	}
	sqli, fp := libinjection.IsSQLi(string(q))
	if !sqli {
		return false
	}
	if rt.Firewall.SQLiWhitelisted(fp) {
		s.r.stats.Add(s.id, stats.WhitelistedSQLiFingerprint, 1)
		return false
	}
	s.r.stats.Add(s.id, stats.AutomaticDetectedSQLInjection, 1)
	if ok, held := s.r.loginLog.Allow(time.Now()); ok {
		ev := s.log.Error().Str("fingerprint", fp).Str("user", s.username).
			Str("query", clip(string(sqlscan.MaskPasswords(q)), maxLoggedQuery))
		if held > 0 {
			ev = ev.Uint64("more_not_logged", held)
		}
		ev.Msg("SQL injection detected: the client is disconnected")
	}
	s.writeErr(errSQLInjection(fp))
	return true
}
