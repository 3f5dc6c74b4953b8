// Package etcdsync keeps Sluice's configuration in etcd (--cluster
// etcd://…): every LOAD … TO RUNTIME of a shared module is written to one
// key per module with a compare-and-swap on the revision the node last
// saw, and every node watches the keys and applies changes through the
// admin's own LOAD path (admin.Server.ImportModule). See
// docs/cluster-etcd.md.
package etcdsync

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadURL is wrapped by every --cluster parse error.
var ErrBadURL = errors.New("--cluster")

// Target is a parsed --cluster URL:
//
//	etcd://host:port[,host:port…]/prefix[?name=N&save_to_disk=0|1]
type Target struct {
	Endpoints  []string // http://host:port, in the order given
	Prefix     string   // "/prefix" without a trailing slash
	Name       string   // this node's name in etcd values and logs; "" = default
	SaveToDisk bool     // SAVE … TO DISK after applying a module from etcd (default true)
}

// ParseURL parses the value of --cluster. Anything it does not understand
// is an error: a setting it would ignore is worse than a refusal.
func ParseURL(s string) (*Target, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s (want etcd://host:port[,host:port…]/prefix[?name=N&save_to_disk=0|1])", ErrBadURL, s, fmt.Sprintf(format, a...))
	}
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		if i := strings.Index(s, "://"); i > 0 {
			return nil, bad("scheme %q is not supported (only etcd://; TLS to etcd is not implemented)", s[:i])
		}
		return nil, bad("missing etcd://")
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, path, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, bad("missing /prefix")
	}
	t := &Target{SaveToDisk: true}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return nil, bad("endpoint %q is not host:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, bad("endpoint %q: bad port", h)
		}
		t.Endpoints = append(t.Endpoints, "http://"+net.JoinHostPort(host, port))
	}
	path = strings.TrimRight(path, "/")
	if path == "" {
		return nil, bad("empty prefix")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, bad("prefix %q has an empty, . or .. segment", path)
		}
	}
	t.Prefix = "/" + path
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, bad("query: %v", err)
		}
		for k, vs := range q {
			if len(vs) != 1 {
				return nil, bad("%s given %d times", k, len(vs))
			}
			v := vs[0]
			switch k {
			case "name":
				if v == "" {
					return nil, bad("empty name")
				}
				t.Name = v
			case "save_to_disk":
				switch v {
				case "1", "true":
					t.SaveToDisk = true
				case "0", "false":
					t.SaveToDisk = false
				default:
					return nil, bad("save_to_disk=%q: want 0 or 1", v)
				}
			default:
				return nil, bad("unknown parameter %q", k)
			}
		}
	}
	return t, nil
}
