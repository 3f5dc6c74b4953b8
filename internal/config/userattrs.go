package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// UserAttributes is mysql_users.attributes, parsed: the JSON object
// ProxySQL reads default-transaction_isolation and spiffe_id from.
type UserAttributes struct {
	// TransactionIsolation is default-transaction_isolation, spelled as
	// the server's variable ("READ-COMMITTED"), or "": the session starts
	// (and COM_RESET_CONNECTION returns) with it.
	TransactionIsolation string
	SpiffeID             string   // spiffe_id: a client-certificate identity (not implemented; refused at LOAD)
	Other                []string // keys Sluice does not know, sorted
}

var isolationLevels = []string{"READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"}

// ParseUserAttributes parses mysql_users.attributes ("" is no attribute).
func ParseUserAttributes(s string) (UserAttributes, error) {
	var a UserAttributes
	if strings.TrimSpace(s) == "" {
		return a, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return a, fmt.Errorf("attributes must be a JSON object: %v", err)
	}
	for k, raw := range m {
		switch k {
		case "default-transaction_isolation":
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return a, fmt.Errorf("attributes.default-transaction_isolation must be a string, got %s", raw)
			}
			level := strings.ToUpper(strings.Join(strings.Fields(strings.ReplaceAll(v, "-", " ")), "-"))
			ok := false
			for _, l := range isolationLevels {
				ok = ok || l == level
			}
			if !ok {
				return a, fmt.Errorf("attributes.default-transaction_isolation %q is not one of %s", v, strings.Join(isolationLevels, ", "))
			}
			a.TransactionIsolation = level
		case "spiffe_id":
			if err := json.Unmarshal(raw, &a.SpiffeID); err != nil {
				return a, fmt.Errorf("attributes.spiffe_id must be a string, got %s", raw)
			}
		default:
			a.Other = append(a.Other, k)
		}
	}
	sort.Strings(a.Other)
	return a, nil
}
