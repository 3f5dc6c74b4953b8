package main

import (
	"net"
	"testing"
)

// TestAdminClientHint: the start-up hint logs in as the first admin user;
// only ProxySQL's default admin:admin is written out, another password is
// asked for, never logged.
func TestAdminClientHint(t *testing.T) {
	addrs := []net.Addr{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6032}}
	for creds, want := range map[string]string{
		"admin:admin":               "mysql -uadmin -padmin -h127.0.0.1 -P6032",
		"admin:admin;radmin:radmin": "mysql -uadmin -padmin -h127.0.0.1 -P6032",
		"ops:s3cret;radmin:radmin":  "mysql -uops -p -h127.0.0.1 -P6032",
		"":                          "mysql -uadmin -padmin -h127.0.0.1 -P6032",
	} {
		if got := adminClient(addrs, creds); got != want {
			t.Errorf("adminClient(%q) = %q, want %q", creds, got, want)
		}
	}
}
