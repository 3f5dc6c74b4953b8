package etcdsync

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in        string
		endpoints []string
		prefix    string
		name      string
		save      bool
	}{
		{"etcd://127.0.0.1:2379/sluice", []string{"http://127.0.0.1:2379"}, "/sluice", "", true},
		{"etcd://a:1,b:2,[::1]:3/x/y/", []string{"http://a:1", "http://b:2", "http://[::1]:3"}, "/x/y", "", true},
		{"etcd://h:2379/p?name=n1&save_to_disk=0", []string{"http://h:2379"}, "/p", "n1", false},
		{"etcd://h:2379/p?save_to_disk=true", []string{"http://h:2379"}, "/p", "", true},
	}
	for _, c := range good {
		got, err := ParseURL(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !slices.Equal(got.Endpoints, c.endpoints) || got.Prefix != c.prefix || got.Name != c.name || got.SaveToDisk != c.save {
			t.Fatalf("%s: %+v", c.in, got)
		}
	}
	bad := map[string]string{
		"127.0.0.1:2379/p":                   "missing etcd://",
		"etcds://h:1/p":                      `scheme "etcds" is not supported`,
		"http://h:1/p":                       `scheme "http" is not supported`,
		"etcd://h:1":                         "missing /prefix",
		"etcd://h:1/":                        "empty prefix",
		"etcd://h/p":                         `endpoint "h" is not host:port`,
		"etcd://h:0/p":                       "bad port",
		"etcd://h:99999/p":                   "bad port",
		"etcd://h:1,/p":                      `endpoint "" is not host:port`,
		"etcd://h:1/a//b":                    "empty, . or .. segment",
		"etcd://h:1/a/../b":                  "empty, . or .. segment",
		"etcd://h:1/p?save_to_disk=yes":      `save_to_disk="yes"`,
		"etcd://h:1/p?name=":                 "empty name",
		"etcd://h:1/p?ttl=3":                 `unknown parameter "ttl"`,
		"etcd://h:1/p?name=a&name=b":         "name given 2 times",
		"etcd://h:1/p?save_to_disk=1&x=%zz":  "query",
		"etcd://user:pw@h:1/p":               "not host:port",
		"etcd://h:1/p?name=a;save_to_disk=0": "query",
	}
	for in, want := range bad {
		_, err := ParseURL(in)
		if err == nil || !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %v, want one containing %q", in, err, want)
		}
	}
}
