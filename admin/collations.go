package admin

import (
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// ensureCollations fills MEMORY's mysql_collations with MariaDB's list when
// it is empty (the table is not configuration: nothing else writes it).
func (s *Server) ensureCollations() {
	res, err := s.cfg.Store.Query(s.ctx, "SELECT COUNT(*) FROM main.mysql_collations", false)
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot read mysql_collations")
		return
	}
	if len(res.Rows) != 1 || res.Rows[0][0].String != "0" {
		return
	}
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO main.mysql_collations (Id, Collation, Charset, `Default`) VALUES ")
	for i, c := range config.Collations {
		if i > 0 {
			b.WriteByte(',')
		}
		def := ""
		if c.Default {
			def = "Yes"
		}
		b.WriteString("(" + strconv.Itoa(c.ID) + "," + sqlQuote(c.Name) + "," + sqlQuote(c.Charset) + "," + sqlQuote(def) + ")")
	}
	if _, err := s.cfg.Store.Query(s.ctx, b.String(), false); err != nil {
		s.log.Warn().Err(err).Msg("cannot fill mysql_collations")
	}
}
