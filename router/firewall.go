package router

import (
	"fmt"
	"time"

	"github.com/sluice-proxy/sluice/internal/live"
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
	if !rt.Router.FirewallEnabled {
		return
	}
	mode, ok := rt.Firewall.Check(s.username, s.clientIP, s.state.Schema, dec.FlagIN, s.query.DigestHash)
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
