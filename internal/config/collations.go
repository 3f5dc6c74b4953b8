package config

import (
	"fmt"
	"strings"
)

// Collation is one row of mysql_collations.
type Collation struct {
	ID      int
	Name    string
	Charset string
	Default bool // the default collation of its character set
}

// mysql8Collations are MySQL 8 collations a handshake can carry (one byte)
// that MariaDB lacks: a MySQL 8 client opens with utf8mb4_0900_ai_ci.
var mysql8Collations = []Collation{{255, "utf8mb4_0900_ai_ci", "utf8mb4", false}}

// canonCharset spells a character set as MariaDB lists it: MySQL's utf8 is
// utf8mb3.
func canonCharset(cs string) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	if cs == "utf8" {
		return "utf8mb3"
	}
	return cs
}

// LookupCollation finds a collation by name (case-insensitive; utf8_… is
// utf8mb3_…, as in MariaDB).
func LookupCollation(name string) (Collation, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if rest, ok := strings.CutPrefix(n, "utf8_"); ok {
		n = "utf8mb3_" + rest
	}
	for _, list := range [][]Collation{Collations, mysql8Collations} {
		for _, c := range list {
			if c.Name == n {
				return c, true
			}
		}
	}
	return Collation{}, false
}

// CharsetDefault returns the default collation of a character set.
func CharsetDefault(charset string) (Collation, bool) {
	cs := canonCharset(charset)
	for _, c := range Collations {
		if c.Charset == cs && c.Default {
			return c, true
		}
	}
	return Collation{}, false
}

// HandshakeCollation is the collation the data port announces in its
// handshake and gives a client that names none (ProxySQL's
// mysql-default_charset and mysql-default_collation_connection): the
// collation when it belongs to the character set, else the character set's
// default — setting only mysql-default_charset=utf8mb4 gives
// utf8mb4_general_ci. The handshake has one byte for it: ids above 255
// cannot be announced.
func HandshakeCollation(charset, collation string) (Collation, error) {
	def, ok := CharsetDefault(charset)
	if !ok {
		return Collation{}, fmt.Errorf("mysql-default_charset: unknown character set %q", charset)
	}
	if c, ok := LookupCollation(collation); ok && c.Charset == def.Charset && c.ID <= 255 {
		return c, nil
	}
	if def.ID > 255 {
		return Collation{}, fmt.Errorf("mysql-default_charset: %s's default collation %s (id %d) does not fit the handshake's one byte", def.Charset, def.Name, def.ID)
	}
	return def, nil
}

// checkCharset and checkCollation are the checks of the two variables.
func checkCharset(value string) error {
	_, err := HandshakeCollation(value, "") // no collation: the character set's default
	return err
}

func checkCollation(value string) error {
	c, ok := LookupCollation(value)
	if !ok {
		return fmt.Errorf("mysql-default_collation_connection: unknown collation %q", value)
	}
	if c.ID > 255 {
		return fmt.Errorf("mysql-default_collation_connection: %s (id %d) does not fit the handshake's one byte", c.Name, c.ID)
	}
	return nil
}
