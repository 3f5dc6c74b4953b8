package router

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/sluice-proxy/sluice/backend"
	"github.com/sluice-proxy/sluice/internal/live"
	"github.com/sluice-proxy/sluice/internal/qcache"
	"github.com/sluice-proxy/sluice/internal/sqlscan"
	"github.com/sluice-proxy/sluice/internal/wire"
	"github.com/sluice-proxy/sluice/rules"
)

// The query cache (reference §7). A read (cachedKind) that a rule gives a
// cache_ttl, mentioning no user variable, is looked up before it is sent, outside a transaction, by user, schema,
// autocommit, the client's CLIENT_DEPRECATE_EOF and
// MARIADB_CLIENT_CACHE_METADATA (its column counts carry one more byte), and what was asked: the
// query text of a COM_QUERY, or — for a COM_STMT_EXECUTE, as ProxySQL
// (PR #6194) — the destination hostgroup, the prepared statement (its
// schema at PREPARE and text) and the execute packet after the statement
// id, parameter types included (the types an earlier execute sent, when
// this one does not resend them: rewriteExecute fills them in), so the
// per-connection statement id does not matter. A hit is written to the
// client from the stored packets without a backend (hostgroup -1 in the
// digest stats and the events log, no mirror). A miss runs as usual with
// the response's packets copied as they are sent (backend.Sink.Tee), and
// stored if it is one result set, without error, outside a transaction,
// without warnings (mysql-query_cache_handle_warnings=1 stores those too)
// and, when it has no row, if the rule's cache_empty_result (or
// mysql-query_cache_stores_empty_result) allows. Each entry starts with
// its row count (8 bytes), then the packets (wire.Tee's layout).

// cacheable reports whether the query may use the cache. A fast_forward
// user's never does (its COM_QUERY does not even reach the rules; its
// prepared executes do, as before the cache served them, and stay uncached).
func (s *session) cacheable(rt *live.Runtime, dec *rules.Decision) bool {
	return dec.CacheTTL > 0 && rt.Router.QueryCacheBytes > 0 && !s.conns.inTransaction() && !s.user.FastForward
}

// buildCacheKey fills s.cacheKey for query q.
func (s *session) buildCacheKey(q []byte) {
	s.cacheKey = append(s.cacheKeyHead(0), q...)
}

// buildStmtCacheKey fills s.cacheKey for an execute of g on hostgroup hg;
// pkt is the execute packet as rewriteExecute made it (parameter types
// always present), whose statement id (pkt[1:5]) is left out. The
// statement is named as the global statement cache names it (user, the
// schema it was prepared in, text): the session's current schema, in the
// head, may have changed since.
func (s *session) buildStmtCacheKey(hg int, g *globalStmt, pkt []byte) {
	k := s.cacheKeyHead(1)
	k = binary.LittleEndian.AppendUint32(k, uint32(int32(hg)))
	k = append(k, g.key.schema...)
	k = append(k, 0)
	k = binary.LittleEndian.AppendUint32(k, uint32(len(g.text)))
	k = append(k, g.text...)
	s.cacheKey = append(k, pkt[5:]...)
}

// cacheKeyHead starts s.cacheKey with what every key has; proto tells a
// text query (0) from a prepared execute (1). The session's settings
// (backend.State.Settings) are part of it: the same query gives other bytes under
// another character set (SET NAMES latin1) and other values under another
// time_zone, sql_mode or div_precision_increment, so sessions share an
// entry only when their tracked settings are the same.
func (s *session) cacheKeyHead(proto byte) []byte {
	k := append(s.cacheKey[:0], s.username...)
	k = append(k, 0)
	k = append(k, s.state.Schema...)
	k = append(k, 0, b2c(s.depr), b2c(s.c.MetaFollows), b2c(s.state.Autocommit), proto)
	return binary.LittleEndian.AppendUint64(k, s.state.Settings())
}

// stmtCacheable reports whether an execute of cs (packet pkt, as
// rewriteExecute made it) may use the cache, besides what cacheable
// checks: a read (cachedKind), no COM_STMT_SEND_LONG_DATA pending (the
// values are not in the packet), no cursor (flags CURSOR_TYPE_NO_CURSOR,
// and none left open by an earlier execute: its rows come by
// COM_STMT_FETCH from the connection holding it).
func stmtCacheable(cs *clientStmt, pkt []byte) bool {
	return cachedKind(cs.g.kind, cs.g.digestTxt) && cs.longData == nil && cs.cursor == nil && len(pkt) >= 10 && pkt[5] == 0
}

// cachedKind reports whether a statement of kind k (digest text d) may be
// answered from the cache: one that reads — SELECT, SHOW, and a WITH,
// VALUES or TABLE statement. ProxySQL stores whatever result set a
// cache_ttl rule meets; a hit on a CALL's or an INSERT … RETURNING's would
// skip its writes, and EXPLAIN ANALYZE runs its statement.
func cachedKind(k sqlscan.StmtKind, d []byte) bool {
	switch k {
	case sqlscan.KindSelect, sqlscan.KindShow, sqlscan.KindShowTableStatus:
		return true
	case sqlscan.KindUnknown:
		return sqlscan.HasPrefixFold(d, "WITH ") || sqlscan.HasPrefixFold(d, "VALUES") || sqlscan.HasPrefixFold(d, "TABLE ")
	}
	return false
}

// readsUserVars reports whether q mentions a user variable (@x): its
// answer depends on the session that asks (ProxySQL would serve one
// session's @x to another), so it is never cached.
func readsUserVars(q []byte, d sqlscan.Dialect) bool {
	return bytes.IndexByte(q, '@') >= 0 && len(sqlscan.UserVarNames(q, d, nil)) > 0
}

func b2c(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}

// serveCached writes a stored response to the client. ok is false when
// the cache has none; sent is false when the client connection failed.
func (s *session) serveCached(rt *live.Runtime) (res backend.Response, ok, sent bool) {
	data, ok := s.r.qcache.Get(s.cacheKey, time.Now(), rt.Router.QueryCacheSoftTTLPct)
	if !ok || len(data) < 8 {
		return res, false, true
	}
	res.Rows, res.ResultSets = binary.LittleEndian.Uint64(data), 1
	err := wire.EachPacket(data[8:], s.c.WritePacket)
	if err == nil {
		err = s.c.Flush()
	}
	return res, true, err == nil
}

// runCaching runs s.req, and when caching copies its response as it is
// sent and stores it if it may be cached (the text and the execute path).
func (s *session) runCaching(rt *live.Runtime, dec *rules.Decision, caching bool) (backend.Response, *held, bool) {
	if !caching {
		return s.run(rt, &s.req)
	}
	s.startCapture(rt)
	res, h, ok := s.run(rt, &s.req)
	if ok && h != nil {
		s.storeCaptured(rt, dec, &res)
	}
	s.sink.Tee = nil
	return res, h, ok
}

// maxCaptured bounds the copy of one response kept for the cache: a larger
// one streams on uncopied and is not cached.
const maxCaptured = 64 << 20

// startCapture makes the response of the query about to run be copied, up
// to the cache's size bound or maxCaptured.
func (s *session) startCapture(rt *live.Runtime) {
	s.tee.Reset(int(min(rt.Router.QueryCacheBytes, maxCaptured)))
	s.sink.Tee = &s.tee
}

// storeCaptured stores the captured response, if it may be cached.
func (s *session) storeCaptured(rt *live.Runtime, dec *rules.Decision, res *backend.Response) {
	s.sink.Tee = nil
	// A read whose terminator was given the client's autocommit=0
	// (sink.ClearAutocommit) is not stored: a hit replays status bits as
	// they were sent.
	if s.tee.Over || res.Err != nil || res.ResultSets != 1 || s.sink.ClearAutocommit ||
		res.Status&(wire.StatusInTrans|wire.StatusMoreResultsExists) != 0 {
		return
	}
	if res.Warnings > 0 && !rt.Router.QueryCacheHandleWarnings {
		return
	}
	if res.Rows == 0 {
		empty := rt.Router.QueryCacheStoresEmpty
		if dec.CacheEmptyResult != rules.Unset {
			empty = dec.CacheEmptyResult != 0
		}
		if !empty {
			return
		}
	}
	data := make([]byte, 8, 8+len(s.tee.Buf))
	binary.LittleEndian.PutUint64(data, res.Rows)
	data = append(data, s.tee.Buf...)
	s.r.qcache.SetLimit(rt.Router.QueryCacheBytes)
	s.r.qcache.Set(bytes.Clone(s.cacheKey), data, time.Duration(dec.CacheTTL)*time.Millisecond, time.Now())
	if cap(s.tee.Buf) > 64<<10 {
		s.tee.Buf = nil // a large response's buffer is not kept by an idle session
	}
}

// QueryCache returns the query cache (stats_mysql_global, PROXYSQL FLUSH
// QUERY CACHE).
func (r *Router) QueryCache() *qcache.Cache { return r.qcache }
