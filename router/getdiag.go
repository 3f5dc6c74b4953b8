package router

import (
	"bytes"
	"encoding/hex"
	"strconv"
)

// GET [CURRENT] DIAGNOSTICS reads the diagnostics area of the connection it
// runs on. When the session still holds the connection its previous
// statement ran on (diagHeld), it runs there. Otherwise any pooled
// connection would do — and its area holds whatever another session left
// there, an error that may quote that session's data. So the statement is
// rewritten into the SET of the same user variables from what the session
// knows of its previous statement (its error, warning count and ROW_COUNT),
// and that SET runs as the client's statement would have.

// diagnosticsAsSet returns the SET that stands for q, a GET DIAGNOSTICS, or
// false when q is not one the proxy reads (a local variable as target, a
// comment inside): then it goes to the server as written.
func (s *session) diagnosticsAsSet(q []byte) ([]byte, bool) {
	t, ok := getDiagnostics(q)
	if !ok {
		return nil, false
	}
	e := s.diagErr
	number := int(s.diagWarnings)
	if e != nil {
		number = 1
	}
	var cond []byte // the condition number as written: a literal or a user variable
	if t.word("CONDITION") {
		if cond = t.operand(); cond == nil {
			return nil, false
		}
	}
	out := []byte("SET ")
	for first := true; ; first = false {
		if !first && !t.punct(',') {
			break
		}
		target := t.userVar()
		if target == nil || !t.punct('=') {
			return nil, false
		}
		item := t.ident()
		var v []byte
		switch {
		case cond == nil && bytes.EqualFold(item, []byte("NUMBER")):
			v = strconv.AppendInt(nil, int64(number), 10)
		case cond == nil && bytes.EqualFold(item, []byte("ROW_COUNT")):
			v = strconv.AppendInt(nil, s.rowCount, 10)
		case cond != nil && isConditionItem(item):
			v = []byte("NULL") // no condition, or one whose text only a server had
			if e != nil {
				// The one condition: IF(n = 1, value, NULL), as the
				// number may be a user variable.
				v = append(append(append([]byte("IF(("), cond...), ") = 1, "...), conditionValue(item, e.Code, e.State, e.Message)...)
				v = append(v, ", NULL)"...)
			}
		default:
			return nil, false
		}
		if !first {
			out = append(out, ", "...)
		}
		out = append(append(append(out, target...), " = "...), v...)
	}
	if !t.end() {
		return nil, false
	}
	return out, true
}

func isConditionItem(item []byte) bool {
	for _, n := range [...]string{"CLASS_ORIGIN", "SUBCLASS_ORIGIN", "RETURNED_SQLSTATE", "MESSAGE_TEXT", "MYSQL_ERRNO",
		"CONSTRAINT_CATALOG", "CONSTRAINT_SCHEMA", "CONSTRAINT_NAME", "CATALOG_NAME", "SCHEMA_NAME", "TABLE_NAME",
		"COLUMN_NAME", "CURSOR_NAME", "ROW_NUMBER"} {
		if bytes.EqualFold(item, []byte(n)) {
			return true
		}
	}
	return false
}

// conditionValue is a condition item of an error as MariaDB gives it for
// one a statement raised: the origins and the names are empty, ROW_NUMBER
// 0. Strings are written in hex, read the same under any sql_mode.
func conditionValue(item []byte, code uint16, state, msg string) []byte {
	str := func(v string) []byte {
		if v == "" {
			return []byte("''")
		}
		b := append([]byte("CONVERT(X'"), hex.EncodeToString([]byte(v))...)
		return append(b, "' USING utf8mb4)"...)
	}
	switch {
	case bytes.EqualFold(item, []byte("MESSAGE_TEXT")):
		return str(msg)
	case bytes.EqualFold(item, []byte("MYSQL_ERRNO")):
		return strconv.AppendUint(nil, uint64(code), 10)
	case bytes.EqualFold(item, []byte("RETURNED_SQLSTATE")):
		return str(state)
	case bytes.EqualFold(item, []byte("ROW_NUMBER")):
		return []byte("0")
	}
	return str("")
}

// getDiagnostics reads the head of q, GET [CURRENT] DIAGNOSTICS, and
// returns the tokens after it.
func getDiagnostics(q []byte) (diagTokens, bool) {
	t := diagTokens{rest: q}
	if !t.word("GET") {
		return t, false
	}
	t.word("CURRENT")
	return t, t.word("DIAGNOSTICS")
}

// diagTokens reads the few token kinds of GET DIAGNOSTICS. A comment
// anywhere makes it give up (the statement then goes to the server).
type diagTokens struct{ rest []byte }

func (t *diagTokens) skip() {
	t.rest = bytes.TrimLeft(t.rest, " \t\r\n")
}

func (t *diagTokens) end() bool {
	t.skip()
	t.rest = bytes.TrimRight(t.rest, " \t\r\n;")
	return len(t.rest) == 0
}

func (t *diagTokens) punct(c byte) bool {
	t.skip()
	if len(t.rest) > 0 && t.rest[0] == c {
		t.rest = t.rest[1:]
		return true
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ident reads an unquoted identifier or keyword.
func (t *diagTokens) ident() []byte {
	t.skip()
	i := 0
	for i < len(t.rest) && isIdentByte(t.rest[i]) {
		i++
	}
	w := t.rest[:i]
	t.rest = t.rest[i:]
	return w
}

// word reads the keyword w if it comes next.
func (t *diagTokens) word(w string) bool {
	save := t.rest
	if bytes.EqualFold(t.ident(), []byte(w)) {
		return true
	}
	t.rest = save
	return false
}

// userVar reads @name, @`name`, @'name' or @"name", as written.
func (t *diagTokens) userVar() []byte {
	t.skip()
	if len(t.rest) < 2 || t.rest[0] != '@' || t.rest[1] == '@' {
		return nil
	}
	i := 1
	if q := t.rest[1]; q == '`' || q == '\'' || q == '"' {
		for i = 2; ; i++ {
			if i >= len(t.rest) || t.rest[i] == '\\' {
				return nil // unterminated, or an escape the dialect decides
			}
			if t.rest[i] == q {
				if i+1 < len(t.rest) && t.rest[i+1] == q {
					i++ // doubled
					continue
				}
				i++
				break
			}
		}
	} else {
		for i < len(t.rest) && (isIdentByte(t.rest[i]) || t.rest[i] == '.') {
			i++
		}
		if i == 1 {
			return nil
		}
	}
	v := t.rest[:i]
	t.rest = t.rest[i:]
	return v
}

// operand reads a condition number: digits or a user variable.
func (t *diagTokens) operand() []byte {
	t.skip()
	if v := t.userVar(); v != nil {
		return v
	}
	i := 0
	for i < len(t.rest) && t.rest[i] >= '0' && t.rest[i] <= '9' {
		i++
	}
	if i == 0 || i < len(t.rest) && isIdentByte(t.rest[i]) {
		return nil
	}
	v := t.rest[:i]
	t.rest = t.rest[i:]
	return v
}
