// Package sqlscan holds the SQL scanning Sluice does on the bytes a client
// sends: ProxySQL's digest (normalised query text and its SpookyHash64, one
// tokenizer pass that also yields the first comment), statement
// classification, and the SET statement parser. The query rules, the
// stats and the router all build on it; it imports nothing of Sluice's own.
//
// Nothing here does I/O, takes a lock or logs, so the router can call it on
// the hot path of every COM_QUERY.
package sqlscan

import (
	"fmt"

	spooky "github.com/dgryski/go-spooky"
)

// Options mirror the mysql-query_digests_* variables that shape the digest
// text. The zero value is not useful; start from DefaultOptions.
type Options struct {
	Lowercase           bool // mysql-query_digests_lowercase
	ReplaceNull         bool // mysql-query_digests_replace_null
	NoDigits            bool // mysql-query_digests_no_digits
	GroupingLimit       int  // mysql-query_digests_grouping_limit
	GroupsGroupingLimit int  // mysql-query_digests_groups_grouping_limit
	KeepComment         bool // mysql-query_digests_keep_comment
	MaxQueryLength      int  // mysql-query_digests_max_query_length: size of the digest buffer
	MaxDigestLength     int  // mysql-query_digests_max_digest_length: bytes of the text that are hashed
}

// DefaultOptions returns ProxySQL 2.6+ defaults.
func DefaultOptions() Options {
	return Options{
		GroupingLimit:       3,
		GroupsGroupingLimit: 10,
		MaxQueryLength:      65000,
		MaxDigestLength:     2048,
	}
}

// Digest is the result of digesting one query. A session keeps one Digest
// and passes it to every call so that its buffers are reused: on the common
// path Digest allocates nothing once Text has grown to the largest query
// seen.
type Digest struct {
	// Text is ProxySQL's digest text (mysql_query_digest_and_first_comment_2).
	Text []byte
	// Hash is SpookyHash64 (seed 0) of the first MaxDigestLength bytes of Text.
	Hash uint64
	// FirstComment is the body of the first /* … */ comment, without the
	// delimiters (and without the "!" of an executable comment). It carries
	// the annotations of reference §3.2 (hostgroup=…;query_timeout=…).
	FirstComment []byte
	// Kind classifies the statement by its leading keywords.
	Kind StmtKind

	cmd []byte // scratch for /*! … */ and kept comments (ProxySQL's cur_cmd_cmnt)
}

// FormatHash renders a digest hash the way ProxySQL prints it everywhere
// (stats tables, events log): "0x" and 16 upper-case hex digits.
func FormatHash(h uint64) string {
	return fmt.Sprintf("0x%016X", h)
}

// Digester computes digests with fixed Options. It holds no mutable state
// and is safe for concurrent use; the per-call scratch lives in the Digest.
type Digester struct {
	opts Options
}

// NewDigester returns a Digester for opts.
func NewDigester(opts Options) *Digester {
	if opts.MaxQueryLength < 0 {
		opts.MaxQueryLength = 0
	}
	if opts.GroupingLimit < 0 {
		opts.GroupingLimit = 0
	}
	if opts.GroupsGroupingLimit < 0 {
		opts.GroupsGroupingLimit = 0
	}
	return &Digester{opts: opts}
}

// Options returns the options the Digester was built with.
func (g *Digester) Options() Options { return g.opts }

// Digest fills dst with the digest of query, read as a server reads it in
// dialect d, reusing dst's buffers. In the zero Dialect the text is
// ProxySQL's; in another, a string ends where the server ends it.
func (g *Digester) Digest(dst *Digest, query []byte, d Dialect) {
	if text, ok := fastDigestText(&g.opts, dst, query, d); ok {
		dst.Text = text
		dst.FirstComment = dst.FirstComment[:0]
	} else {
		dst.Text = digestText(&g.opts, dst, query, d)
	}
	n := len(dst.Text)
	if g.opts.MaxDigestLength >= 0 && n > g.opts.MaxDigestLength {
		n = g.opts.MaxDigestLength
	}
	// ProxySQL: SpookyHash::Hash64(text, strnlen(text, max_digest_length), 0),
	// which is Hash128 with hash1 = hash2 = 0 returning hash1. go-spooky's
	// Hash64 is Hash128 with hash1 = seed (0) and hash2 = 0: the same
	// function (checked against published ProxySQL digests in the tests).
	dst.Hash = spooky.Hash64(dst.Text[:n])
	dst.Kind = Classify(dst.Text)
}

// DigestString digests one query; it backs `sluice digest "<sql>"`. Pass
// DefaultOptions() or the runtime's Options: a zero Options digests
// everything to "".
func DigestString(sql string, opts Options) (hash uint64, text string) {
	var d Digest
	NewDigester(opts).Digest(&d, []byte(sql), 0)
	return d.Hash, string(d.Text)
}
