package sqlscan

// MaskPasswords returns q with every string literal that follows the word
// PASSWORD (or a word ending in _PASSWORD) or IDENTIFIED replaced by '***'
// — SET PASSWORD = '…', PASSWORD('…'), CREATE/ALTER USER … IDENTIFIED BY
// '…' [REPLACE '…'], IDENTIFIED WITH 'plugin' BY|AS '…', GRANT …
// IDENTIFIED BY PASSWORD '…', IDENTIFIED VIA … USING PASSWORD('…'),
// CHANGE MASTER TO MASTER_PASSWORD='…' — so that logs never carry a
// password in clear. A plugin name after WITH or VIA is kept. Comments and
// quoted identifiers are skipped. When there is nothing to mask, q itself
// is returned and nothing is allocated. q is read as a server reads it in
// dialect d (where a string ends depends on it). It is the one function
// every log of SQL text goes through (the router's log lines and the
// events log).
func MaskPasswords(q []byte, d Dialect) []byte {
	var out []byte // nil until the first literal to mask
	last := 0      // q[last:] is not copied to out yet
	armed := false
	waitEq := false // SET PASSWORD FOR <user> = '…': the user is not the password
	plugin := false // IDENTIFIED WITH|VIA <plugin>: the plugin name is not the password
	ident := false  // IDENTIFIED seen in this statement (REPLACE '<old password>')
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '#' || (c == '-' && i+2 < len(q) && q[i+1] == '-' && dashComment(q[i+2])):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i += 2
			for i+1 < len(q) && !(q[i] == '*' && q[i+1] == '/') {
				i++
			}
			i += 2
		case c == '\'' || c == '"':
			end := literalEnd(q, i, d)
			if plugin {
				plugin = false
			} else if armed && !waitEq {
				if out == nil {
					out = make([]byte, 0, len(q))
				}
				out = append(out, q[last:i]...)
				out = append(out, c, '*', '*', '*', c)
				last = end
				armed = false
			}
			i = end
		case c == '`':
			i = literalEnd(q, i, d)
		case c == ';':
			armed, waitEq, plugin, ident = false, false, false, false
			i++
		case c == '=':
			waitEq = false
			i++
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j += d.charLen(q, j)
			}
			j = min(j, len(q))
			w := q[i:j]
			plugin = false // an unquoted plugin name fills the WITH/VIA slot
			switch {
			case EqualUpper(w, "IDENTIFIED"):
				armed, waitEq, ident = true, false, true
			case isPasswordWord(w):
				armed, waitEq = true, false
			case ident && EqualUpper(w, "REPLACE"):
				armed, waitEq = true, false
			case armed && (EqualUpper(w, "WITH") || EqualUpper(w, "VIA")):
				plugin = true
			case armed && EqualUpper(w, "FOR"):
				waitEq = true
			}
			i = j
		default:
			i++
		}
	}
	if out == nil {
		return q
	}
	return append(out, q[min(last, len(q)):]...)
}

// literalEnd returns the index just past the quoted literal that starts at
// q[i], or len(q) when it is unterminated.
func literalEnd(q []byte, i int, d Dialect) int { return min(QuoteEnd(q, i, d)+1, len(q)) }

// isPasswordWord reports whether w is PASSWORD or ends in _PASSWORD
// (MASTER_PASSWORD, SOURCE_PASSWORD), in any case.
func isPasswordWord(w []byte) bool {
	const p = "PASSWORD"
	if len(w) < len(p) || !EqualUpper(w[len(w)-len(p):], p) {
		return false
	}
	return len(w) == len(p) || w[len(w)-len(p)-1] == '_'
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}
