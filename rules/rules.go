// Package rules holds Sluice's query processor: the compiled
// mysql_query_rules with their pure Match function (ProxySQL's
// Query_Processor::process_query), first-comment annotations, and the
// multiplexing status flags a query raises. The SQL scanning it works on
// (digest, statement kind, SET parser) is internal/sqlscan.
//
// Nothing here does I/O, takes a lock or logs, so the router can call it on
// the hot path of every COM_QUERY.
package rules

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
)

// ErrBadRule is wrapped by every Compile error; the message names the
// rule_id and the column.
var ErrBadRule = errors.New("rules: bad query rule")

// BadRuleError is one rule Compile left out: its rule_id, and what is wrong
// with it (the error wraps ErrBadRule).
type BadRuleError struct {
	RuleID int
	err    error
}

func (e *BadRuleError) Error() string { return e.err.Error() }
func (e *BadRuleError) Unwrap() error { return e.err }

// BadRuleIDs returns the rule_ids of the rules a Compile error left out.
func BadRuleIDs(err error) []int {
	var ids []int
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var b *BadRuleError
		if errors.As(e, &b) {
			ids = append(ids, b.RuleID)
		}
	}
	return ids
}

// Unset is the value of a Decision field no rule (or annotation) set,
// matching ProxySQL's Query_Processor_Output::init.
const Unset = -1

// CompileOptions carry the mysql-* variables that change rule evaluation.
type CompileOptions struct {
	// Iterations is mysql-query_processor_iterations: how many times a
	// flagOUT may restart evaluation from the first rule (default 0: chains
	// only move forward in rule_id order).
	Iterations int
	// FirstCommentParsing is mysql-query_processor_first_comment_parsing:
	// 0 ignores annotations, 1 applies them before the rules (rules win),
	// 2 after (the default; annotations win), 3 both.
	FirstCommentParsing int
}

// DefaultCompileOptions are the variables' defaults.
func DefaultCompileOptions() CompileOptions { return CompileOptions{FirstCommentParsing: 2} }

func (o CompileOptions) fixed() CompileOptions {
	if o.FirstCommentParsing < 0 || o.FirstCommentParsing > 3 {
		o.FirstCommentParsing = 2
	}
	if o.Iterations < 0 {
		o.Iterations = 0
	}
	return o
}

// Query is what Match knows about one query.
type Query struct {
	User       string
	Schema     string
	ClientAddr string // client IP without port; "" if unknown
	ProxyAddr  string // local address the client connected to
	ProxyPort  int    // local port the client connected to

	DigestHash   uint64
	DigestText   []byte // nil when mysql-query_digests=false: match_digest rules are then skipped
	FirstComment []byte // annotations (Digest.FirstComment)
	Text         []byte // the query as received

	// NextQueryFlagIN is the session's next_query_flagIN, or -1.
	NextQueryFlagIN int
	// Mirror marks the evaluation of a mirrored copy: destination starts as
	// MirrorHostgroup and rules run only from MirrorFlagOUT (-1: no rules).
	Mirror          bool
	MirrorFlagOUT   int
	MirrorHostgroup int
	// StmtExecute marks a COM_STMT_EXECUTE: replace_pattern is not applied.
	StmtExecute bool
	// NowMs is the wall clock in ms for min_epoch_ms annotations; 0 reads
	// the clock only if such an annotation is present.
	NowMs int64
}

// Decision is the outcome of Match: every action column of
// mysql_query_rules (reference §3.2) plus the annotations. Integer fields
// hold Unset when nothing set them.
type Decision struct {
	DestinationHostgroup int
	MirrorHostgroup      int
	MirrorFlagOUT        int
	NextQueryFlagIN      int
	CacheTTL             int // ms
	CacheEmptyResult     int
	CacheTimeout         int
	Reconnect            int
	Timeout              int // ms
	Retries              int
	Delay                int // ms
	StickyConn           int
	Multiplex            int // 0 disable, 1 re-enable, 2 ignore this query's @variables
	Log                  int
	GTIDFromHostgroup    int

	ErrorMsg    string // valid when HasErrorMsg: answer ERR 1148
	HasErrorMsg bool
	OKMsg       string // valid when HasOKMsg: answer OK with this info
	HasOKMsg    bool

	MaxLagMs            int64  // annotation max_lag_ms / min_epoch_ms; Unset if absent
	MinGTID             string // annotation min_gtid
	CreateNewConnection bool   // annotation create_new_connection=1

	// FlagIN is the flag value evaluation ended with (the firewall keys on it).
	FlagIN int
	// Applied reports that a rule with apply=1 matched and ended evaluation
	// (fast routing was then skipped).
	Applied bool
	// FastRouted reports that mysql_query_rules_fast_routing set the
	// destination hostgroup.
	FastRouted bool
	// LastRuleID is the rule_id of the last rule that matched, or Unset.
	LastRuleID int
	// Rewritten is set when a rule with replace_pattern matched; NewQuery is
	// then the text to send (and to re-digest for statistics).
	Rewritten bool
	NewQuery  []byte
}

func (d *Decision) reset() {
	nq := d.NewQuery[:0]
	*d = Decision{
		DestinationHostgroup: Unset, MirrorHostgroup: Unset, MirrorFlagOUT: Unset,
		NextQueryFlagIN: Unset, CacheTTL: Unset, CacheEmptyResult: Unset, CacheTimeout: Unset,
		Reconnect: Unset, Timeout: Unset, Retries: Unset, Delay: Unset, StickyConn: Unset,
		Multiplex: Unset, Log: Unset, GTIDFromHostgroup: Unset, MaxLagMs: Unset, LastRuleID: Unset,
		NewQuery: nq,
	}
}

type weightedFlag struct {
	id, weight int
}

type rule struct {
	id     int
	flagIN int

	username, schemaname string
	clientAddr           string
	clientWild           bool
	proxyAddr            string
	proxyPort            int
	digest               uint64
	matchDigest          *compiledRegex
	matchPattern         *compiledRegex
	negate               bool
	global               bool

	flagOUT     int
	flagOUTs    []weightedFlag
	flagOUTSum  int
	hasReplace  bool
	replaceTmpl []byte

	destHG, cacheTTL, cacheEmpty, cacheTimeout, reconnect, timeout, retries, delay int
	nextFlagIN, mirrorFlagOUT, mirrorHG, stickyConn, multiplex, gtidFromHG, log    int

	errorMsg, okMsg string
	hasErr, hasOK   bool
	apply           bool
}

type fastKey struct {
	user, schema string
	flagIN       int
}

// hitCounter is padded to a cache line so that shards of a hot rule do not
// false-share.
type hitCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// RuleSet is a compiled, immutable mysql_query_rules table plus its fast
// routing map. Match is safe for concurrent use.
type RuleSet struct {
	rules []rule
	fast  map[fastKey]int
	opts  CompileOptions

	// Per-rule hit counters, sharded by a random index so that a rule every
	// query matches does not serialise all cores on one cache line.
	hits      []hitCounter
	shards    int
	shardMask uint32
}

// RoutesBySchema reports whether the schema can change where a query
// goes: a fast routing row, or an active rule with a schemaname.
func (rs *RuleSet) RoutesBySchema() bool {
	if len(rs.fast) > 0 {
		return true
	}
	for i := range rs.rules {
		if rs.rules[i].schemaname != "" {
			return true
		}
	}
	return false
}

// Compile checks and compiles the active rules (sorted by rule_id) and the
// fast routing table. A rule that ProxySQL would reject or silently
// mis-evaluate (bad regex, bad digest, replace_pattern without
// match_pattern, bad attributes JSON) is left out of the set, which never
// is nil, and named by its rule_id in the error (errors.Join of one error
// per bad rule, each wrapping ErrBadRule): a LOAD refuses the set, and the
// start-up from a saved configuration runs it rather than not start, as
// ProxySQL runs a rule whose regex does not compile (it never matches).
func Compile(rs []config.QueryRule, fast []config.FastRoute, opts ...CompileOptions) (*RuleSet, error) {
	o := DefaultCompileOptions()
	if len(opts) > 0 {
		o = opts[0].fixed()
	}
	set := &RuleSet{opts: o, fast: make(map[fastKey]int, len(fast))}
	active := make([]config.QueryRule, 0, len(rs))
	for _, r := range rs {
		if r.Active {
			active = append(active, r)
		}
	}
	sort.SliceStable(active, func(i, j int) bool { return active[i].RuleID < active[j].RuleID })
	set.rules = make([]rule, 0, len(active))
	var bad []error
	for i := range active {
		cr, err := compileRule(&active[i])
		if err != nil {
			bad = append(bad, err)
			continue
		}
		set.rules = append(set.rules, cr)
	}
	for _, f := range fast {
		set.fast[fastKey{f.Username, f.Schemaname, f.FlagIN}] = f.DestinationHostgroup
	}

	shards := 1
	for shards < runtime.GOMAXPROCS(0) && shards < 16 {
		shards <<= 1
	}
	for shards > 1 && len(set.rules)*shards*64 > 1<<20 {
		shards >>= 1
	}
	set.shards = shards
	set.shardMask = uint32(shards - 1)
	set.hits = make([]hitCounter, len(set.rules)*shards)
	return set, errors.Join(bad...)
}

func compileRule(r *config.QueryRule) (rule, error) {
	bad := func(col string, err error) error {
		return &BadRuleError{RuleID: r.RuleID, err: fmt.Errorf("%w: rule_id %d: bad %s: %w", ErrBadRule, r.RuleID, col, err)}
	}
	cr := rule{
		id:         r.RuleID,
		flagIN:     r.FlagIN,
		username:   r.Username.String,
		schemaname: r.Schemaname.String,
		proxyAddr:  r.ProxyAddr.String,
		proxyPort:  Unset,
		negate:     r.NegateMatchPattern,
		apply:      r.Apply,
		flagOUT:    Unset,
	}
	if r.ClientAddr.Valid && r.ClientAddr.String != "" {
		cr.clientAddr = r.ClientAddr.String
		cr.clientWild = strings.ContainsRune(cr.clientAddr, '%')
	}
	if r.ProxyPort.Valid {
		cr.proxyPort = int(r.ProxyPort.Int64)
	}
	if r.Digest.Valid && strings.TrimSpace(r.Digest.String) != "" {
		d, err := strconv.ParseUint(strings.TrimSpace(r.Digest.String), 0, 64)
		if err != nil {
			return rule{}, bad("digest", err)
		}
		cr.digest = d
	}

	caseless := false
	if r.ReModifiers.Valid {
		for _, tok := range strings.Split(r.ReModifiers.String, ",") {
			tok = strings.ToUpper(strings.TrimSpace(tok))
			if strings.HasPrefix(tok, "CASELESS") {
				caseless = true
			}
			if strings.HasPrefix(tok, "GLOBAL") {
				cr.global = true
			}
		}
	}
	if r.MatchDigest.Valid {
		re, err := compileRegex(r.MatchDigest.String, caseless)
		if err != nil {
			return rule{}, bad("match_digest", err)
		}
		cr.matchDigest = re
	}
	if r.MatchPattern.Valid {
		re, err := compileRegex(r.MatchPattern.String, caseless)
		if err != nil {
			return rule{}, bad("match_pattern", err)
		}
		cr.matchPattern = re
	}
	if r.ReplacePattern.Valid {
		if cr.matchPattern == nil {
			return rule{}, bad("replace_pattern", errors.New("replace_pattern requires match_pattern"))
		}
		tmpl, err := translateRewrite(r.ReplacePattern.String, cr.matchPattern.numSubexp())
		if err != nil {
			return rule{}, bad("replace_pattern", err)
		}
		cr.hasReplace = true
		cr.replaceTmpl = []byte(tmpl)
	}
	if r.FlagOUT.Valid {
		cr.flagOUT = int(r.FlagOUT.Int64)
	}
	if strings.TrimSpace(r.Attributes) != "" {
		fo, err := parseFlagOUTs(r.Attributes)
		if err != nil {
			return rule{}, bad("attributes", err)
		}
		for _, w := range fo {
			cr.flagOUTSum += w.weight
		}
		if cr.flagOUTSum > 0 {
			cr.flagOUTs = fo
		}
	}

	ni := func(v sql.NullInt64) int {
		if !v.Valid {
			return Unset
		}
		return int(v.Int64)
	}
	cr.destHG = ni(r.DestinationHostgroup)
	cr.cacheTTL = ni(r.CacheTTL)
	cr.cacheEmpty = ni(r.CacheEmptyResult)
	cr.cacheTimeout = ni(r.CacheTimeout)
	cr.reconnect = ni(r.Reconnect)
	cr.timeout = ni(r.Timeout)
	cr.retries = ni(r.Retries)
	cr.delay = ni(r.Delay)
	cr.nextFlagIN = ni(r.NextQueryFlagIN)
	cr.mirrorFlagOUT = ni(r.MirrorFlagOUT)
	cr.mirrorHG = ni(r.MirrorHostgroup)
	cr.stickyConn = ni(r.StickyConn)
	cr.multiplex = ni(r.Multiplex)
	cr.gtidFromHG = ni(r.GTIDFromHostgroup)
	cr.log = ni(r.Log)
	if r.ErrorMsg.Valid {
		cr.errorMsg, cr.hasErr = r.ErrorMsg.String, true
	}
	if r.OKMsg.Valid {
		cr.okMsg, cr.hasOK = r.OKMsg.String, true
	}
	return cr, nil
}

// parseFlagOUTs reads {"flagOUTs":[{"id":N,"weight":W},…]}. Like ProxySQL,
// entries whose id or weight is not an unsigned integer are ignored.
func parseFlagOUTs(attrs string) ([]weightedFlag, error) {
	var a struct {
		FlagOUTs json.RawMessage `json:"flagOUTs"`
	}
	if err := json.Unmarshal([]byte(attrs), &a); err != nil {
		return nil, err
	}
	if len(a.FlagOUTs) == 0 {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(a.FlagOUTs, &items); err != nil {
		return nil, fmt.Errorf("flagOUTs must be an array of objects: %w", err)
	}
	var out []weightedFlag
	for _, it := range items {
		id, ok1 := jsonUint(it["id"])
		w, ok2 := jsonUint(it["weight"])
		if ok1 && ok2 {
			out = append(out, weightedFlag{id: id, weight: w})
		}
	}
	return out, nil
}

func jsonUint(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw), 10, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// WithOptions returns the rule set evaluated with other variables
// (mysql-query_processor_*). The compiled rules and their hit counters are
// shared, so a LOAD MYSQL VARIABLES TO RUNTIME takes effect without
// recompiling the rules or resetting stats_mysql_query_rules.
func (rs *RuleSet) WithOptions(o CompileOptions) *RuleSet {
	c := *rs
	c.opts = o.fixed()
	return &c
}

// Options returns the variables the rule set is evaluated with.
func (rs *RuleSet) Options() CompileOptions { return rs.opts }

// Len returns the number of active rules.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Hits returns the matches counted per rule_id since Compile
// (stats_mysql_query_rules).
func (rs *RuleSet) Hits() map[int]uint64 {
	m := make(map[int]uint64, len(rs.rules))
	for i := range rs.rules {
		var n uint64
		for s := 0; s < rs.shards; s++ {
			n += rs.hits[i*rs.shards+s].n.Load()
		}
		m[rs.rules[i].id] += n
	}
	return m
}

func (rs *RuleSet) hit(i int) {
	s := 0
	if rs.shardMask != 0 {
		s = int(rand.Uint32() & rs.shardMask)
	}
	rs.hits[i*rs.shards+s].n.Add(1)
}

// Match evaluates the rules for q into out, exactly as ProxySQL's
// Query_Processor::process_query does (reference §3.2). It performs no I/O,
// takes no lock and, unless a replace_pattern rewrites the query, does not
// allocate.
func (rs *RuleSet) Match(q *Query, out *Decision) {
	out.reset()
	flagIN := 0
	if q.NextQueryFlagIN >= 0 {
		flagIN = q.NextQueryFlagIN
	}
	fcp := rs.opts.FirstCommentParsing
	if !q.Mirror && len(q.FirstComment) > 0 && (fcp == 1 || fcp == 3) {
		applyAnnotations(q, out)
	}

	iterate := true
	if q.Mirror {
		out.DestinationHostgroup = q.MirrorHostgroup
		if q.MirrorFlagOUT != Unset {
			flagIN = q.MirrorFlagOUT
		} else {
			iterate = false
		}
	}

	text := cString(q.Text)
	var digestText []byte
	if q.DigestText != nil {
		digestText = cString(q.DigestText)
	}
	reiterate := rs.opts.Iterations
	for iterate {
		iterate = false
		for i := range rs.rules {
			r := &rs.rules[i]
			subject := text
			if out.Rewritten {
				subject = out.NewQuery
			}
			if !r.matches(q, flagIN, digestText, subject) {
				continue
			}
			rs.hit(i)
			out.LastRuleID = r.id
			setFlagOUT := false
			if r.flagOUTSum > 0 {
				n := rand.IntN(r.flagOUTSum)
				for _, w := range r.flagOUTs {
					if n < w.weight {
						flagIN = w.id
						setFlagOUT = true
						break
					}
					n -= w.weight
				}
			}
			if r.flagOUT >= 0 {
				flagIN = r.flagOUT
				setFlagOUT = true
			}
			r.apply1(out)
			if !q.StmtExecute && r.hasReplace {
				rs.rewrite(r, subject, out)
			}
			if r.apply {
				out.Applied = true
				break
			}
			if setFlagOUT && reiterate > 0 {
				reiterate--
				iterate = true
				break
			}
		}
	}
	out.FlagIN = flagIN

	if !out.Applied && !q.Mirror && len(rs.fast) > 0 {
		hg, ok := rs.fast[fastKey{q.User, q.Schema, flagIN}]
		if !ok {
			hg, ok = rs.fast[fastKey{"", q.Schema, flagIN}]
		}
		if ok {
			out.DestinationHostgroup = hg
			out.FastRouted = true
		}
	}
	if !q.Mirror && len(q.FirstComment) > 0 && (fcp == 2 || fcp == 3) {
		applyAnnotations(q, out)
	}
}

func (r *rule) matches(q *Query, flagIN int, digestText, subject []byte) bool {
	if r.flagIN != flagIN {
		return false
	}
	if r.username != "" && r.username != q.User {
		return false
	}
	if r.schemaname != "" && r.schemaname != q.Schema {
		return false
	}
	if r.clientAddr != "" && q.ClientAddr != "" {
		if r.clientWild {
			if !wildMatch(r.clientAddr, q.ClientAddr) {
				return false
			}
		} else if r.clientAddr != q.ClientAddr {
			return false
		}
	}
	if r.proxyAddr != "" && q.ProxyAddr != "" && r.proxyAddr != q.ProxyAddr {
		return false
	}
	if r.proxyPort >= 0 && r.proxyPort != q.ProxyPort {
		return false
	}
	if r.digest != 0 && q.DigestHash != 0 && r.digest != q.DigestHash {
		return false
	}
	if r.matchDigest != nil && digestText != nil {
		if r.matchDigest.match(digestText) == r.negate {
			return false
		}
	}
	if r.matchPattern != nil {
		if r.matchPattern.match(subject) == r.negate {
			return false
		}
	}
	return true
}

// apply1 copies the rule's non-NULL actions: later matches overwrite
// earlier ones.
func (r *rule) apply1(out *Decision) {
	set := func(dst *int, v int) {
		if v >= 0 {
			*dst = v
		}
	}
	set(&out.Reconnect, r.reconnect)
	set(&out.Timeout, r.timeout)
	set(&out.Retries, r.retries)
	set(&out.Delay, r.delay)
	set(&out.NextQueryFlagIN, r.nextFlagIN)
	set(&out.MirrorFlagOUT, r.mirrorFlagOUT)
	set(&out.MirrorHostgroup, r.mirrorHG)
	if r.hasErr {
		out.ErrorMsg, out.HasErrorMsg = r.errorMsg, true
	}
	if r.hasOK {
		out.OKMsg, out.HasOKMsg = r.okMsg, true
	}
	set(&out.CacheTTL, r.cacheTTL)
	set(&out.CacheEmptyResult, r.cacheEmpty)
	set(&out.CacheTimeout, r.cacheTimeout)
	set(&out.StickyConn, r.stickyConn)
	set(&out.Multiplex, r.multiplex)
	set(&out.GTIDFromHostgroup, r.gtidFromHG)
	set(&out.Log, r.log)
	set(&out.DestinationHostgroup, r.destHG)
}

func (rs *RuleSet) rewrite(r *rule, subject []byte, out *Decision) {
	out.NewQuery = r.matchPattern.replace(subject, r.replaceTmpl, r.global)
	out.Rewritten = true
}

// cString cuts b at its first NUL, as ProxySQL's C-string handling of the
// query and digest does.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// wildMatch matches s against a pattern where '%' stands for any run of
// characters (client_addr '10.0.%' or '%').
func wildMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '%':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '%' {
		p++
	}
	return p == len(pattern)
}

// applyAnnotations parses the first comment the way
// Query_Processor::query_parser_first_comment does: ';'-separated
// key=value tokens, values that must start with a digit, and overrides the
// corresponding outputs.
func applyAnnotations(q *Query, out *Decision) {
	c := q.FirstComment
	for len(c) > 0 {
		var tok []byte
		if i := bytes.IndexByte(c, ';'); i >= 0 {
			tok, c = c[:i], c[i+1:]
		} else {
			tok, c = c, nil
		}
		key, value := split2(tok, '=')
		key = bytes.TrimSpace(key)
		value = bytes.TrimSpace(value)
		if len(key) == 0 {
			continue
		}
		digit := len(value) > 0 && value[0] >= '0' && value[0] <= '9'
		switch {
		case sqlscan.EqualUpper(key, "CACHE_TTL"):
			if digit {
				out.CacheTTL = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "QUERY_DELAY"):
			if digit {
				out.Delay = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "QUERY_RETRIES"):
			if digit {
				out.Retries = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "QUERY_TIMEOUT"):
			if digit {
				out.Timeout = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "HOSTGROUP"):
			if digit {
				out.DestinationHostgroup = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "MIRROR"):
			if digit {
				out.MirrorHostgroup = int(atoi(value))
			}
		case sqlscan.EqualUpper(key, "MAX_LAG_MS"):
			if digit {
				if t := atoi(value); t >= 0 && t <= 600000 {
					out.MaxLagMs = t
				}
			}
		case sqlscan.EqualUpper(key, "MIN_EPOCH_MS"):
			if digit {
				now := q.NowMs
				if now == 0 {
					now = time.Now().UnixMilli()
				}
				if diff := now - atoi(value); diff >= 0 && diff <= 600000 {
					out.MaxLagMs = diff
				}
			}
		case sqlscan.EqualUpper(key, "MIN_GTID"):
			if validGTID(value) {
				out.MinGTID = string(value)
			}
		case sqlscan.EqualUpper(key, "CREATE_NEW_CONNECTION"):
			if atoi(value) == 1 {
				out.CreateNewConnection = true
			}
		}
	}
}

// split2 is c_split_2 with TOKENIZER_NO_EMPTIES: the first two non-empty
// pieces of s split on sep.
func split2(s []byte, sep byte) (a, b []byte) {
	n := 0
	for len(s) > 0 && n < 2 {
		var piece []byte
		if i := bytes.IndexByte(s, sep); i >= 0 {
			piece, s = s[:i], s[i+1:]
		} else {
			piece, s = s, nil
		}
		if len(piece) == 0 {
			continue
		}
		if n == 0 {
			a = piece
		} else {
			b = piece
		}
		n++
	}
	return a, b
}

// atoi parses a leading optional sign and digits, saturating instead of
// overflowing.
func atoi(b []byte) int64 {
	i := 0
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if n < (1<<62)/10 {
			n = n*10 + int64(b[i]-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}

// validGTID is Query_Processor::is_valid_gtid: "uuid:trx" with a non-empty
// uuid and something after the colon.
func validGTID(v []byte) bool {
	if len(v) < 3 {
		return false
	}
	i := bytes.IndexByte(v, ':')
	if i < 1 {
		return false
	}
	return len(v) >= i+2
}
