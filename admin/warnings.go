package admin

import (
	"database/sql"
	"strconv"
	"strings"
)

// Warnings on the admin port, as MySQL keeps them: a statement's OK packet
// carries its warning count, SHOW WARNINGS lists them (Level, Code,
// Message), and the next statement that is not SHOW WARNINGS / SHOW COUNT(*)
// WARNINGS clears them. LOAD … TO RUNTIME leaves warnings for the settings
// Sluice accepts but does not act on (Warner), and a SELECT for each table
// it reads that Sluice never fills (TableNoter).

// erNotSupportedYet is the code of those warnings: ER_NOT_SUPPORTED_YET.
const erNotSupportedYet = 1235

// maxWarnings is MySQL's default max_error_count: what SHOW WARNINGS keeps.
const maxWarnings = 64

// resetWarnings clears the previous statement's warnings unless n (a
// normalized statement) only reads them.
func (ss *session) resetWarnings(n string) {
	switch strings.ToUpper(n) {
	case "SHOW WARNINGS", "SHOW COUNT(*) WARNINGS", "SHOW ERRORS", "SHOW COUNT(*) ERRORS":
		return
	}
	ss.warnings = nil
}

// setWarnings makes w the statement's warnings and returns their count.
func (ss *session) setWarnings(w []string) uint16 {
	if len(w) > maxWarnings {
		w = w[:maxWarnings]
	}
	ss.warnings = w
	return uint16(len(w))
}

// okWithWarnings is the OK of a statement that leaves warnings.
func (ss *session) okWithWarnings(w []string) *okReply {
	return &okReply{warnings: ss.setWarnings(w)}
}

// showWarnings is SHOW WARNINGS.
func (ss *session) showWarnings() *resultSet {
	rs := &resultSet{cols: []string{"Level", "Code", "Message"}}
	code := strconv.Itoa(erNotSupportedYet)
	for _, w := range ss.warnings {
		rs.rows = append(rs.rows, []sql.NullString{
			{String: "Warning", Valid: true}, {String: code, Valid: true}, {String: w, Valid: true},
		})
	}
	return rs
}
