package cluster

import (
	"bytes"
	"database/sql"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// manager returns a Manager with the given peers and self, for the
// decision functions (no goroutine runs).
func manager(self *peer, peers ...*peer) *Manager {
	m := &Manager{log: zerolog.Nop(), peers: make(map[string]*peer), self: self}
	for _, p := range peers {
		m.peers[p.name()] = p
	}
	return m
}

func withSum(host string, port int, version, epoch int64, sum string, diff int64) *peer {
	p := newPeer(config.ProxySQLServer{Hostname: host, Port: port})
	p.checksums["mysql_users"] = &peerChecksum{version: version, epoch: epoch, checksum: sum, diffCheck: diff}
	return p
}

// TestPickConflictRule checks the deterministic rule: newest epoch, then
// the smallest name (hostname, then port as a number); version 1 peers and
// peers that agree with us are no candidates; only the winner's poller
// pulls, once its diff_check reached diffs_before_sync.
func TestPickConflictRule(t *testing.T) {
	self := &peer{host: "10.0.0.2", port: 6032}
	own := storage.ModuleChecksum{Name: "mysql_users", Version: 3, Epoch: 100, Checksum: "0xOWN"}
	cases := []struct {
		name  string
		peers []*peer
		from  int // index of the peer whose poller asks
		own   storage.ModuleChecksum
		want  int // index of the peer pulled from, -1 for none
	}{
		{"newer epoch wins", []*peer{withSum("10.0.0.1", 6032, 2, 101, "0xA", 3), withSum("10.0.0.3", 6032, 5, 102, "0xB", 3)}, 1, own, 1},
		{"only the winner's poller pulls", []*peer{withSum("10.0.0.1", 6032, 2, 101, "0xA", 3), withSum("10.0.0.3", 6032, 5, 102, "0xB", 3)}, 0, own, -1},
		{"older epoch: we keep ours", []*peer{withSum("10.0.0.1", 6032, 2, 99, "0xA", 3)}, 0, own, -1},
		{"equal epoch, the peer's name is smaller: we pull from it", []*peer{withSum("10.0.0.1", 6032, 2, 100, "0xA", 3)}, 0, own, 0},
		{"equal epoch, larger name: it pulls from us", []*peer{withSum("10.0.0.3", 6032, 2, 100, "0xA", 3)}, 0, own, -1},
		{"equal epoch and host, port as a number", []*peer{withSum("10.0.0.2", 999, 2, 100, "0xA", 3)}, 0, own, 0},
		{"equal epochs among peers: smallest name", []*peer{withSum("10.0.0.9", 6032, 2, 105, "0xA", 3), withSum("10.0.0.10", 6032, 2, 105, "0xB", 3)}, 1, own, 1},
		{"version 1 peers are not sources", []*peer{withSum("10.0.0.1", 6032, 1, 200, "0xA", 3)}, 0, own, -1},
		{"not enough diff_check yet", []*peer{withSum("10.0.0.1", 6032, 2, 200, "0xA", 2)}, 0, own, -1},
		{"a peer that agrees is no candidate", []*peer{withSum("10.0.0.1", 6032, 2, 200, "0xOWN", 3), withSum("10.0.0.3", 6032, 2, 150, "0xB", 3)}, 1, own, 1},
		{"just booted: pull even from an older epoch", []*peer{withSum("10.0.0.3", 6032, 2, 50, "0xA", 3)}, 0,
			storage.ModuleChecksum{Name: "mysql_users", Version: 1, Epoch: 100, Checksum: "0x00"}, 0},
		{"self is never a source", []*peer{withSum("10.0.0.2", 6032, 9, 900, "0xA", 9)}, 0, own, -1},
	}
	for _, c := range cases {
		m := manager(self, c.peers...)
		src, ok := m.pick("mysql_users", c.own, 3, c.peers[c.from])
		switch {
		case c.want < 0 && ok:
			t.Errorf("%s: pulled from %s, want no pull", c.name, src.pe.name())
		case c.want >= 0 && !ok:
			t.Errorf("%s: no pull, want from %s", c.name, c.peers[c.want].name())
		case c.want >= 0 && src.pe != c.peers[c.want]:
			t.Errorf("%s: pulled from %s, want %s", c.name, src.pe.name(), c.peers[c.want].name())
		}
	}
}

// TestSetChecksumsDiffCheck follows ProxySQL_Node_Entry::set_checksums: a
// new checksum starts diff_check at 1, an unchanged one (or no new rows)
// increments it, and agreeing with this node resets it to 0.
func TestSetChecksumsDiffCheck(t *testing.T) {
	st, _, err := storage.Open(storage.Options{Datadir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	own, err := st.Checksums()
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: Config{Store: st}, log: zerolog.Nop(), peers: make(map[string]*peer)}
	pe := newPeer(config.ProxySQLServer{Hostname: "h", Port: 1})
	row := func(sum string) [][]sql.NullString {
		v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
		return [][]sql.NullString{{v("mysql_users"), v("2"), v("7"), v(sum)}, {v("ldap_variables"), v("2"), v("7"), v("0x1")}}
	}
	steps := []struct {
		rows    [][]sql.NullString
		changed bool
		want    int64
	}{
		{row("0xA"), true, 1},
		{nil, false, 2},
		{row("0xA"), true, 3},
		{row("0xB"), true, 1},
		{row(own["mysql_users"].Checksum), true, 0},
		{nil, false, 0},
	}
	for i, s := range steps {
		if err := m.setChecksums(pe, s.rows, s.changed); err != nil {
			t.Fatal(err)
		}
		if got := pe.checksums["mysql_users"].diffCheck; got != s.want {
			t.Errorf("step %d: diff_check %d, want %d", i, got, s.want)
		}
	}
	if _, ok := pe.checksums["ldap_variables"]; ok {
		t.Error("a module this node does not have should be skipped")
	}
}

// TestPeerVersion: a ProxySQL 2.6/2.7 node polling this one is shown its
// own @@version (it refuses peers with another); Sluice peers, other
// ProxySQL series and ambiguous addresses get admin-version.
func TestPeerVersion(t *testing.T) {
	rt := &config.Snapshot{}
	own := rt.Var("admin-version")
	pv := func(host, version string, ips ...string) *peer {
		p := newPeer(config.ProxySQLServer{Hostname: host, Port: 6032})
		p.version = version
		for _, ip := range ips {
			p.ips = append(p.ips, net.ParseIP(ip))
		}
		return p
	}
	m := manager(nil,
		pv("proxy-a", "2.7.1-16-g2726c27", "10.0.0.1"),
		pv("10.0.0.2", own, "10.0.0.2"),
		pv("proxy-c", "3.0.1", "10.0.0.3"),
		pv("proxy-d", "2.6.5-1-gabc", "10.0.0.4"),
		pv("proxy-e", "2.7.0-1-gdef", "10.0.0.4"),
	)
	m.cfg.Runtime = func() *config.Snapshot { return rt }
	for ip, want := range map[string]string{"10.0.0.1": "2.7.1-16-g2726c27", "10.0.0.2": "", "10.0.0.3": "", "10.0.0.4": "", "10.0.0.9": "", "bad": ""} {
		got, ok := m.PeerVersion(ip)
		if (want == "") == ok || got != want {
			t.Errorf("PeerVersion(%s) = %q %v, want %q", ip, got, ok, want)
		}
	}
}

// TestVersionOneConflictWarned: two nodes that both only booted, with
// different configurations, never sync (as in ProxySQL); the poller of the
// peer says so every diffs_before_sync*10 checks, and only it.
func TestVersionOneConflictWarned(t *testing.T) {
	var logged bytes.Buffer
	own := storage.ModuleChecksum{Name: "mysql_users", Version: 1, Epoch: 100, Checksum: "0xOWN"}
	for _, diff := range []int64{29, 30, 31, 60} {
		logged.Reset()
		p := withSum("10.0.0.1", 6032, 1, 100, "0xA", diff)
		other := withSum("10.0.0.3", 6032, 1, 100, "0xB", diff)
		m := manager(&peer{host: "10.0.0.2", port: 6032}, p, other)
		m.log = zerolog.New(&logged)
		if _, ok := m.pick("mysql_users", own, 3, p); ok {
			t.Fatalf("diff_check %d: a version 1 peer was pulled from", diff)
		}
		warned := strings.Count(logged.String(), "version 1 (it only booted) does not allow sync")
		if want := map[bool]int{true: 1, false: 0}[diff%30 == 0]; warned != want {
			t.Errorf("diff_check %d: warned %d times, want %d:\n%s", diff, warned, want, logged.String())
		}
	}
}

// TestProxySQLVersion: the peers a node clusters with answer @@version as
// ProxySQL 2.x or Sluice's admin does; a MariaDB server or a ProxySQL 3.x
// is refused (and asked again after 30 s).
func TestProxySQLVersion(t *testing.T) {
	for v, want := range map[string]bool{"2.7.2-10-g8a2f5cb": true, "2.7.1-sluice": true, "2.0.18": true,
		"10.11.19-MariaDB-0+deb12u1": false, "3.0.1-1-gabc": false, "2.": false, "": false, "8.0.36": false, "2.x": false} {
		if got := proxySQLVersion(v); got != want {
			t.Errorf("proxySQLVersion(%q) = %v, want %v", v, got, want)
		}
	}
}
