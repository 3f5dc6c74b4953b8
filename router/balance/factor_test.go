package balance

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestFactorOrder(t *testing.T) {
	L, S, H, M, C, Lo, N := FactorLabel, FactorStatus, FactorHealth, FactorMemory, FactorCPU, FactorLocation, FactorConn
	for _, tc := range []struct {
		policy string
		label  bool
		want   []Factor
	}{
		{"resource", false, []Factor{S, H, M, C, Lo, N}},
		{"", false, []Factor{S, H, M, C, Lo, N}},
		{"resource", true, []Factor{L, S, H, M, C, Lo, N}},
		{"location", true, []Factor{L, S, Lo, H, M, C, N}},
		{"location", false, []Factor{S, Lo, H, M, C, N}},
		{"connection", true, []Factor{L, S, N}},
		{"connection", false, []Factor{S, N}},
	} {
		got, ok := FactorOrder(tc.policy, tc.label)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q label=%v: %v, want %v", tc.policy, tc.label, got, tc.want)
		}
		p, err := New(Config[*fake]{Policy: tc.policy, LabelName: map[bool]string{true: "biz"}[tc.label]})
		if err != nil || !reflect.DeepEqual(p.(*FactorPolicy[*fake]).Order(), tc.want) {
			t.Errorf("New(%q): %v %v", tc.policy, p, err)
		}
	}
	if _, ok := FactorOrder("random", false); ok {
		t.Error("random is not factor-based")
	}
	if p, err := New(Config[*fake]{Policy: "random"}); err != nil {
		t.Error(err)
	} else if _, ok := p.(*WeightedRandom[*fake]); !ok {
		t.Errorf("random: %T", p)
	}
	// TiProxy's full resource policy with a label is 28 bits; Sluice's conn
	// factor has 16 more (commands running, then connections in use), and
	// the whole stays below the unroutable and full bits.
	order, _ := FactorOrder("resource", true)
	bits := 0
	for _, f := range order {
		bits += f.Bits()
	}
	if bits != 44 || uint64(1)<<bits > fullBit {
		t.Errorf("resource+label uses %d bits, want 44", bits)
	}
}

func TestHealthScore(t *testing.T) {
	for _, tc := range []struct {
		failures, total, want uint64
	}{
		{0, 0, 0}, {0, 100, 0},
		{1, 1, 0},    // one lost connection on a quiet server: normal
		{4, 4, 0},    // fewer than HealthMinFailures: normal
		{5, 5, 2},    // failures with nothing else: abnormal
		{10, 100, 0}, // at the recover threshold: normal
		{20, 100, 1}, // between the thresholds: mid
		{30, 100, 2}, // at the fail threshold: abnormal
		{10, 10, 2},  // everything failed
		{5, 1000, 0}, // stray errors
		{29, 100, 1}, // just under fail
	} {
		if got := HealthScore(tc.failures, tc.total); got != tc.want {
			t.Errorf("HealthScore(%d, %d) = %d, want %d", tc.failures, tc.total, got, tc.want)
		}
	}
}

func TestPlace(t *testing.T) {
	proxy := map[string]string{"biz": "a", "zone": "z1"}
	for _, tc := range []struct {
		name      string
		labelName string
		proxy     map[string]string
		server    map[string]string
		want      Placement
	}{
		{"same business and zone", "biz", proxy, map[string]string{"biz": "a", "zone": "z1"}, 0},
		{"other business", "biz", proxy, map[string]string{"biz": "b", "zone": "z1"}, OtherLabel},
		{"no labels at all", "biz", proxy, nil, OtherLabel},
		{"other zone", "biz", proxy, map[string]string{"biz": "a", "zone": "z2"}, Remote},
		{"both differ", "biz", proxy, map[string]string{"biz": "b", "zone": "z2"}, OtherLabel | Remote},
		{"server without zone", "biz", proxy, map[string]string{"biz": "a"}, 0},
		{"no label name", "", proxy, map[string]string{"biz": "b"}, 0},
		{"proxy has no value", "app", proxy, map[string]string{"app": "x"}, 0},
		{"proxy has no labels", "biz", nil, map[string]string{"biz": "b", "zone": "z2"}, 0},
	} {
		if got := Place(tc.labelName, tc.proxy, tc.server); got != tc.want {
			t.Errorf("%s: %b, want %b", tc.name, got, tc.want)
		}
	}
}

// placed builds a factor policy whose Placement comes from fake.place.
func placed(policy string, label bool) Policy[*fake] {
	c := Config[*fake]{Options: seeded(), Policy: policy, Place: func(f *fake) Placement { return f.place }}
	if label {
		c.LabelName = "biz"
	}
	p, err := New(c)
	if err != nil {
		panic(err)
	}
	return p
}

func TestScorePacking(t *testing.T) {
	p := placed("resource", false).(*FactorPolicy[*fake])
	s := srv("s", 1)
	s.fails, s.ops = 5, 10 // health 2
	s.place = Remote
	s.conns = 3
	// status(1) health(2) memory(2) cpu(5) location(1) conn(32: busy 16,
	// in use 16)
	want := uint64(2)<<(2+5+1+32) | uint64(1)<<32 | 3<<16 | 3
	if got := p.Score(s, time.Time{}, 1, true); got != want {
		t.Fatalf("score %#x, want %#x", got, want)
	}
	// Location is neutral with a single candidate.
	if got := p.Score(s, time.Time{}, 1, false); got != want&^(1<<32) {
		t.Fatalf("single candidate: %#x", got)
	}
	// A factor's score is clamped to its width: it never spills into the
	// factor above it.
	s.fails, s.place, s.conns, s.max = 0, 0, 1_000_000, 2_000_000
	if got := p.Score(s, time.Time{}, 1, true); got != 0xffffffff {
		t.Fatalf("clamped conn: %#x", got)
	}
	// The conn factor compares commands running, then connections in use,
	// per unit of weight, scaled to the heaviest candidate.
	s.conns, s.idle, s.weight = 3, 1, 2
	if got := p.Score(s, time.Time{}, 4, true); got != 4<<16|6 {
		t.Fatalf("conn per weight: %#x, want %#x", got, 4<<16|6)
	}
	s.idle = 0
	// Unroutable and full servers carry the bits above every factor.
	s.healthy = false
	if got := p.Score(s, time.Time{}, 4, true); got&unroutableBit == 0 || got&(1<<(2+2+5+1+32)) == 0 {
		t.Fatalf("unhealthy: %#x", got)
	}
	s.healthy, s.conns, s.max, s.weight = true, 5, 5, 1
	if got := p.Score(s, time.Time{}, 1, true); got != fullBit|5<<16|5 {
		t.Fatalf("full: %#x", got)
	}
}

func TestFactorPick(t *testing.T) {
	type server struct {
		conns, weight   int // weight 0 stands for 1, unless zero
		zero, unhealthy bool
		fails, ops      uint64
		place           Placement
	}
	for _, tc := range []struct {
		name    string
		policy  string
		label   bool
		servers []server
		want    int // index of the server that must always win, -1: none
	}{
		{"an unhealthy server never wins", "resource", false,
			[]server{{conns: 0, unhealthy: true}, {conns: 50}}, 1},
		{"an unhealthy server never wins, even alone", "connection", false,
			[]server{{unhealthy: true}}, -1},
		{"label mismatch is never routable", "resource", true,
			[]server{{place: OtherLabel}}, -1},
		{"label mismatch loses to a busy, sick, remote server", "resource", true,
			[]server{{place: OtherLabel}, {conns: 900, fails: 9, ops: 10, place: Remote}}, 1},
		{"label mismatch with room loses to a full match", "resource", true,
			[]server{{place: OtherLabel}, {conns: 100}}, 1},
		{"without a label name, labels do not matter", "resource", false,
			[]server{{conns: 5, place: OtherLabel}, {conns: 6}}, 0},
		{"the lower-conn server wins under connection", "connection", false,
			[]server{{conns: 5}, {conns: 2}, {conns: 3}}, 1},
		{"connection ignores health", "connection", false,
			[]server{{conns: 1, fails: 9, ops: 10}, {conns: 2}}, 0},
		{"connection ignores location", "connection", false,
			[]server{{conns: 1, place: Remote}, {conns: 2}}, 0},
		{"conn is per unit of weight", "connection", false,
			[]server{{conns: 2, weight: 1}, {conns: 3, weight: 3}}, 1},
		{"health beats conn under resource", "resource", false,
			[]server{{conns: 0, fails: 5, ops: 10}, {conns: 40}}, 1},
		{"mid health beats abnormal, loses to normal", "resource", false,
			[]server{{fails: 20, ops: 100}, {fails: 5, ops: 10}}, 0},
		{"mid health loses to normal", "resource", false,
			[]server{{fails: 20, ops: 100}, {conns: 10, fails: 1, ops: 100}}, 1},
		{"location beats conn under location", "location", false,
			[]server{{conns: 0, place: Remote}, {conns: 10}}, 1},
		{"location beats conn under resource too", "resource", false,
			[]server{{conns: 0, place: Remote}, {conns: 10}}, 1},
		{"location beats health under location", "location", false,
			[]server{{place: Remote}, {fails: 5, ops: 10}}, 1},
		{"health beats location under resource", "resource", false,
			[]server{{place: Remote}, {fails: 5, ops: 10}}, 0},
		{"weight 0 is never chosen", "resource", false,
			[]server{{conns: 0, zero: true}, {conns: 9}}, 1},
	} {
		p := placed(tc.policy, tc.label)
		var servers []*fake
		for i, s := range tc.servers {
			f := srv(string(rune('a'+i)), 1)
			switch {
			case s.zero:
				f.weight = 0
			case s.weight != 0:
				f.weight = s.weight
			}
			f.conns, f.healthy, f.fails, f.ops, f.place = s.conns, !s.unhealthy, s.fails, s.ops, s.place
			servers = append(servers, f)
		}
		// The error a client waits for names label isolation when it alone
		// leaves nothing to pick.
		if got := p.(*FactorPolicy[*fake]).LabelRefusesAll(servers); got != (tc.want < 0 && tc.label) {
			t.Errorf("%s: LabelRefusesAll = %v", tc.name, got)
		}
		for range 50 {
			got := p.Pick(servers)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("%s: picked %s, want none", tc.name, got.name)
			case tc.want >= 0 && got != servers[tc.want]:
				t.Fatalf("%s: picked %v, want %s", tc.name, got, servers[tc.want].name)
			}
		}
	}
}

func TestFactorTiesAreWeighted(t *testing.T) {
	// Idle servers tie on every factor: the weights decide, as ProxySQL's.
	servers := []*fake{srv("a", 1), srv("b", 3), srv("zero", 0)}
	p := placed("resource", false)
	counts := map[string]int{}
	const n = 40_000
	for range n {
		counts[p.Pick(servers).name]++
	}
	if got := float64(counts["a"]) / n; math.Abs(got-0.25) > 0.02 {
		t.Fatalf("a picked %.3f of the time, want 0.25 (%v)", got, counts)
	}
	if counts["zero"] != 0 {
		t.Fatal("weight 0 picked")
	}
}

// TestFactorIdleHeldNotLoad: connections that sessions hold idle between
// commands weigh less than commands running: a server holding ten idle
// ones gets the next command when the other runs more commands than it
// (every command used to go to the server with fewer held connections,
// whatever ran where); between equals, the fewer held wins, so new
// sessions spread evenly.
func TestFactorIdleHeldNotLoad(t *testing.T) {
	held, fresh := srv("held", 1), srv("fresh", 1)
	held.conns, held.idle = 10, 10
	p := placed("resource", false)
	if got := p.Pick([]*fake{held, fresh}); got != fresh {
		t.Fatalf("idle everywhere: picked %s, want the server with fewer held connections", got.name)
	}
	fresh.conns = 2 // two commands running there, none on held
	if got := p.Pick([]*fake{held, fresh}); got != held {
		t.Fatalf("picked %s, want held: its connections are idle, fresh runs two commands", got.name)
	}
	held.idle = 8 // two running on each: back to the fewer held
	if got := p.Pick([]*fake{held, fresh}); got != fresh {
		t.Fatalf("equal commands running: picked %s, want fresh", got.name)
	}
}

func TestFactorManyServers(t *testing.T) {
	// More than 64 servers: the scores live in a slice, not the stack array.
	servers := make([]*fake, 100)
	for i := range servers {
		servers[i] = srv("s", 1)
		servers[i].healthy = i >= 90
		servers[i].conns = 100 - i // the last one is the idlest
	}
	p := placed("connection", false)
	for range 100 {
		if got := p.Pick(servers); got != servers[99] {
			t.Fatalf("picked %v", got)
		}
	}
}

func TestPickAllocs(t *testing.T) {
	servers := make([]*fake, 64)
	for i := range servers {
		servers[i] = srv("s", 1+i%3)
		servers[i].conns = i % 5
		servers[i].fails, servers[i].ops = uint64(i%4)*5, 50
		servers[i].place = Placement(i % 4)
	}
	for _, name := range []string{"resource", "location", "connection", "random"} {
		p := placed(name, true)
		if a := testing.AllocsPerRun(200, func() { p.Pick(servers) }); a != 0 {
			t.Errorf("%s: %.1f allocations per Pick, want 0", name, a)
		}
	}
}

// TestOneCandidateNoDraw: with one server to choose from (a hostgroup of
// one, or one server ahead of the rest), a pick draws no random number.
func TestOneCandidateNoDraw(t *testing.T) {
	noDraw := Options{DefaultMaxLatencyMs: 1000, Rand: func(int) int {
		t.Fatal("a random number was drawn for one candidate")
		return 0
	}}
	alone, sick := srv("alone", 3), srv("sick", 1)
	sick.healthy = false
	wr := &WeightedRandom[*fake]{Options: noDraw}
	if got := wr.Pick([]*fake{alone}); got != alone {
		t.Fatalf("weighted random picked %v", got)
	}
	for _, policy := range []string{"resource", "location", "connection"} {
		p, err := New(Config[*fake]{Options: noDraw, Policy: policy, Place: func(f *fake) Placement { return f.place }})
		if err != nil {
			t.Fatal(err)
		}
		for _, servers := range [][]*fake{{alone}, {sick, alone}} {
			if got := p.Pick(servers); got != alone {
				t.Fatalf("%s picked %v from %d servers", policy, got, len(servers))
			}
		}
	}
}
