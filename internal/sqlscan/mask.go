package sqlscan

// MaskPasswords returns q with every string literal that follows the word
// PASSWORD or IDENTIFIED replaced by '***' — SET PASSWORD = '…',
// PASSWORD('…'), CREATE/ALTER USER … IDENTIFIED BY '…', GRANT …
// IDENTIFIED BY PASSWORD '…', IDENTIFIED VIA … USING PASSWORD('…') — so
// that logs never carry a password in clear. Comments and quoted
// identifiers are skipped. When there is nothing to mask, q itself is
// returned and nothing is allocated.
func MaskPasswords(q []byte) []byte {
	var out []byte // nil until the first literal to mask
	last := 0      // q[last:] is not copied to out yet
	armed := false
	waitEq := false // SET PASSWORD FOR <user> = '…': the user is not the password
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '#' || (c == '-' && i+2 < len(q) && q[i+1] == '-' && IsSpace(q[i+2])):
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
			end := literalEnd(q, i)
			if armed && !waitEq {
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
			i = literalEnd(q, i)
		case c == ';':
			armed, waitEq = false, false
			i++
		case c == '=':
			waitEq = false
			i++
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			switch w := q[i:j]; {
			case EqualUpper(w, "PASSWORD") || EqualUpper(w, "IDENTIFIED"):
				armed, waitEq = true, false
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
func literalEnd(q []byte, i int) int { return min(skipQuoted(q, i)+1, len(q)) }

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}
