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
// an error_msg. It reports whether the firewall put the user in OFF mode
// (no SQL injection check then, as ProxySQL).
func (s *session) match(rt *live.Runtime, dec *rules.Decision) (firewallOff bool) {
	if rt.Router.QueryDigests {
		rt.Rules.Match(&s.query, dec)
	} else {
		// mysql-query_digests=false: as in ProxySQL, the query processor
		// has no digest — a rule's digest and match_digest conditions are
		// skipped and no first-comment annotation is read. The statement's
		// kind and the firewall still use it.
		q := s.query
		q.DigestHash, q.DigestText, q.FirstComment = 0, nil, nil
		rt.Rules.Match(&q, dec)
	}
	if !rt.Router.FirewallEnabled {
		return false
	}
	mode, ok := rt.Firewall.Check(s.username, s.clientIP, s.state.Schema, dec.FlagIN, s.query.DigestHash)
	if ok {
		return mode == rules.FirewallOff
	}
	action := "blocked"
	if mode == rules.FirewallDetecting {
		action = "detected unknown"
	}
	s.r.loginLog.Event(time.Now(), s.log.Warn, "more_not_logged").Str("digest", fmt.Sprintf("0x%016X", s.query.DigestHash)).Str("user", s.username).
		Str("schema", s.state.Schema).Int("flagIN", dec.FlagIN).Str("mode", mode.String()).
		Msg("Firewall " + action + " query")
	if mode == rules.FirewallProtecting && !dec.HasErrorMsg {
		dec.HasErrorMsg, dec.ErrorMsg = true, rt.Router.FirewallErrMsg
	}
	return false
}

// sqlInjection is mysql-automatic_detect_sqli, as ProxySQL's: a text query
// that libinjection (its Go port) flags, from a user the firewall does not
// put in OFF mode, whose fingerprint is not an active row of
// mysql_firewall_whitelist_sqli_fingerprints, is logged with the
// fingerprint and the query (passwords masked, clipped), counted
// (automatic_detected_sql_injection), and ends the session. ProxySQL closes
// the connection without a word; Sluice sends an ERR first, so the client
// learns why. firewallOff is what match returned. A whitelisted fingerprint is counted
// (whitelisted_sqli_fingerprint) and the query goes on. It reports
// whether the session must end.
func (s *session) sqlInjection(rt *live.Runtime, q []byte, firewallOff bool) bool {
	if !rt.Router.DetectSQLi || firewallOff {
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
	s.r.loginLog.Event(time.Now(), s.log.Error, "more_not_logged").Str("fingerprint", fp).Str("user", s.username).
		Str("query", clip(string(sqlscan.MaskPasswords(q, s.dialect())), maxLoggedQuery)).
		Msg("SQL injection detected: the client is disconnected")
	s.writeErr(errSQLInjection(fp))
	return true
}
