package etcdsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/storage"
)

// Importer applies a module through the admin's LOAD path
// (admin.Server.ImportModule).
type Importer interface {
	ImportModule(m config.Module, tables map[string][][]any, saveToDisk bool) error
}

// Config is what a Syncer needs.
type Config struct {
	Target *Target
	Name   string // default node name when Target.Name is empty
	Store  *storage.Store
	Log    zerolog.Logger
	// Timeout bounds each etcd request (default 2 s): a LOAD waits at most
	// this long for its compare-and-swap.
	Timeout time.Duration
	// Probe is how often a connected node checks that etcd answers
	// (default 500 ms); a failed check marks it unreachable.
	Probe time.Duration
}

// modState is what a node knows of one module's key.
type modState struct {
	key      string
	seen     int64  // newest ModRevision of the key this node has taken in (0: none); CAS compares against it
	runs     int64  // ModRevision of the value this node runs: seen, unless that value could not be applied
	writer   string // who wrote that revision
	checksum string // Value.Checksum of it
	syncedAt time.Time
	current  *Value // the value this node runs (what it would seed with)
	pending  *Value // a LOAD made while etcd could not be written
	inflight []byte // the value a LOAD here is writing: its watch event is no news
	lastErr  string
}

// Syncer keeps the shared modules of one node in step with etcd.
type Syncer struct {
	cfg     Config
	name    string
	cli     *clientv3.Client
	log     zerolog.Logger
	imp     Importer
	running bool // Start ran: Close waits for the loop
	resync  chan config.Module

	mu        sync.Mutex
	mods      map[config.Module]*modState
	reachable bool
	synced    bool // a full sync has completed since start
	downSince time.Time
	lastErr   string
	revision  int64 // etcd revision of the last full sync or event seen

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New connects a client (without waiting for etcd).
func New(cfg Config) (*Syncer, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 500 * time.Millisecond
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Target.Endpoints,
		DialTimeout:          cfg.Timeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: time.Second,
		// The prefix read returns the four module keys (and whatever else
		// sits under /modules/): bounded, never the gRPC default of 2 GiB.
		MaxCallRecvMsgSize: 5*MaxValueBytes + 1<<20,
		MaxCallSendMsgSize: MaxValueBytes + 1<<20,
		Logger:             zap.NewNop(),
		// gRPC's default reconnection backoff grows to 2 minutes: after a
		// long outage a node would resync that late. At most 1 s here.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: cfg.Timeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	name := cfg.Target.Name
	if name == "" {
		name = cfg.Name
	}
	s := &Syncer{cfg: cfg, name: name, cli: cli, resync: make(chan config.Module, 64),
		log:  cfg.Log.With().Str("component", "etcdsync").Logger(),
		mods: make(map[config.Module]*modState), done: make(chan struct{})}
	for _, m := range Modules {
		s.mods[m] = &modState{key: s.key(m)}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func (s *Syncer) key(m config.Module) string { return s.cfg.Target.Prefix + "/modules/" + KeyName(m) }

func (s *Syncer) moduleOf(key string) (config.Module, bool) {
	for m, st := range s.mods {
		if st.key == key {
			return m, true
		}
	}
	return 0, false
}

// Start runs the sync loop with imp as the way in, and waits at most wait
// for the first full sync (pull the modules, or seed etcd with this node's
// configuration). A node that cannot reach etcd goes on with its own
// configuration and syncs when etcd answers.
func (s *Syncer) Start(imp Importer, wait time.Duration) {
	s.imp, s.running = imp, true
	first := make(chan struct{})
	go s.run(first)
	select {
	case <-first:
	case <-time.After(wait):
		s.log.Warn().Strs("endpoints", s.cfg.Target.Endpoints).Msg("etcd not reached at start-up: serving the local configuration until it answers")
	}
}

// Close stops the loop and the client.
func (s *Syncer) Close() error {
	s.cancel()
	if s.running {
		<-s.done
	}
	return s.cli.Close()
}

var (
	errDown      = errors.New("etcd unreachable")
	errCompacted = errors.New("watch revision compacted")
)

func (s *Syncer) run(first chan struct{}) {
	defer close(s.done)
	firstDone := false
	for s.ctx.Err() == nil {
		rev, err := s.fullSync()
		if err == nil {
			if !firstDone {
				close(first)
				firstDone = true
			}
			err = s.watch(rev)
		}
		if s.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errCompacted) {
			s.log.Warn().Err(err).Msg("etcd watch lost its revision: full re-read")
			continue
		}
		s.markDown(err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.cfg.Probe):
		}
	}
}

func (s *Syncer) markDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := "unknown"
	if err != nil {
		msg = strings.TrimPrefix(err.Error(), errDown.Error()+": ")
	}
	s.lastErr = msg
	if s.reachable || s.downSince.IsZero() {
		s.downSince = time.Now()
		s.log.Error().Str("error", msg).Strs("endpoints", s.cfg.Target.Endpoints).
			Msg("etcd unreachable: this node keeps serving its last good configuration; LOADs here are kept and written when etcd is back")
	}
	s.reachable = false
}

func (s *Syncer) markUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reachable {
		if !s.downSince.IsZero() {
			s.log.Info().Str("down_for", time.Since(s.downSince).Round(time.Millisecond).String()).Int64("revision", s.revision).Msg("etcd reachable again: configuration resynced")
		} else {
			s.log.Info().Int64("revision", s.revision).Msg("etcd reached: configuration synced")
		}
	}
	s.reachable, s.synced, s.lastErr, s.downSince = true, true, "", time.Time{}
}

func (s *Syncer) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.cfg.Timeout)
}

// fullSync reads every module key and brings this node and etcd together:
// a key newer than what the node runs is applied; a missing key is seeded
// with this node's module; a LOAD kept while etcd was unreachable is
// written if nobody changed the module meanwhile, else it loses to etcd.
func (s *Syncer) fullSync() (int64, error) {
	ctx, cancel := s.reqCtx()
	resp, err := s.cli.Get(ctx, s.cfg.Target.Prefix+"/modules/", clientv3.WithPrefix())
	cancel()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errDown, err)
	}
	s.mu.Lock()
	if resp.Header.Revision < s.revision {
		// etcd's history went back: a new cluster, or one restored from
		// a backup. The revisions this node ran mean nothing there.
		s.log.Warn().Int64("etcd_revision", resp.Header.Revision).Int64("seen", s.revision).
			Msg("etcd is at a revision older than one this node saw (a new or restored etcd): its keys are re-read as new")
		s.revision = 0
		for _, st := range s.mods {
			st.seen = 0
		}
	}
	s.mu.Unlock()
	byKey := make(map[string]int, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		byKey[string(kv.Key)] = i
	}
	for _, m := range Modules {
		s.mu.Lock()
		st := s.mods[m]
		seen, pending := st.seen, st.pending
		s.mu.Unlock()
		i, ok := byKey[st.key]
		switch {
		case !ok:
			if err := s.seed(m); err != nil {
				return 0, err
			}
		case resp.Kvs[i].ModRevision != seen && s.own(m, resp.Kvs[i].Value, resp.Kvs[i].ModRevision):
		case resp.Kvs[i].ModRevision != seen:
			if pending != nil {
				s.log.Warn().Str("module", m.String()).Int64("revision", resp.Kvs[i].ModRevision).
					Msg("a LOAD made here while etcd was unreachable lost: another node changed the module meanwhile; its version is applied")
				s.clearPending(m, pending)
			}
			s.apply(m, resp.Kvs[i].Value, resp.Kvs[i].ModRevision)
		case pending != nil:
			if err := s.writePending(m, pending); err != nil {
				return 0, err
			}
		}
	}
	s.mu.Lock()
	s.revision = max(s.revision, resp.Header.Revision)
	s.mu.Unlock()
	s.markUp()
	return resp.Header.Revision, nil
}

// seed creates a missing key from this node's module (its pending LOAD,
// else what it runs, else MEMORY at start-up). Losing the create to another
// node applies that node's value.
func (s *Syncer) seed(m config.Module) error {
	s.mu.Lock()
	v := s.mods[m].pending
	if v == nil {
		v = s.mods[m].current
	}
	s.mu.Unlock()
	if v == nil {
		var err error
		if v, err = s.encode(m); err != nil {
			return err
		}
	}
	won, err := s.cas(m, 0, v)
	if err != nil {
		return err
	}
	if won {
		s.log.Info().Str("module", m.String()).Str("key", s.key(m)).Msg("etcd had no value for the module: seeded with this node's")
	}
	return nil
}

func (s *Syncer) writePending(m config.Module, v *Value) error {
	s.mu.Lock()
	seen := s.mods[m].seen
	s.mu.Unlock()
	won, err := s.cas(m, seen, v)
	if err != nil {
		return err
	}
	if won {
		s.log.Info().Str("module", m.String()).Msg("a LOAD made here while etcd was unreachable is now written to etcd")
	} else {
		s.log.Warn().Str("module", m.String()).Msg("a LOAD made here while etcd was unreachable lost: another node changed the module meanwhile; its version is applied")
	}
	return nil
}

func (s *Syncer) clearPending(m config.Module, v *Value) {
	s.mu.Lock()
	if s.mods[m].pending == v {
		s.mods[m].pending = nil
	}
	s.mu.Unlock()
}

// cas writes v to m's key if the key's ModRevision is still rev (0: the key
// does not exist). On success the node's state moves to the new revision;
// on a lost race the winner is applied here (from the watch loop only: the
// admin path asks the loop with s.resync instead). err is a failure to
// reach etcd.
func (s *Syncer) cas(m config.Module, rev int64, v *Value) (won bool, err error) {
	data, err := json.Marshal(v)
	if err == nil && len(data) > MaxValueBytes {
		err = fmt.Errorf("value of %d bytes, more than %d", len(data), MaxValueBytes)
	}
	if err != nil {
		// Not etcd's fault: say so, drop what cannot be written, go on.
		s.mu.Lock()
		st := s.mods[m]
		st.lastErr = "cannot write to etcd: " + err.Error()
		if st.pending == v {
			st.pending = nil
		}
		s.mu.Unlock()
		s.log.Error().Err(err).Str("module", m.String()).Msg("cannot write the module to etcd")
		return false, nil
	}
	key := s.key(m)
	ctx, cancel := s.reqCtx()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(data))).
		Else(clientv3.OpGet(key)).
		Commit()
	cancel()
	if err != nil {
		return false, fmt.Errorf("%w: %v", errDown, err)
	}
	if resp.Succeeded {
		s.wrote(m, v, resp.Header.Revision)
		return true, nil
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		s.clearPending(m, v)
		s.apply(m, kvs[0].Value, kvs[0].ModRevision)
	}
	return false, nil
}

// wrote records that this node wrote v at revision rev.
func (s *Syncer) wrote(m config.Module, v *Value, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mods[m]
	if rev >= st.seen {
		st.seen, st.runs, st.writer, st.checksum, st.syncedAt, st.current, st.lastErr = rev, rev, v.Writer, v.Checksum(), time.Now(), v, ""
	}
	if st.pending == v {
		st.pending = nil
	}
	s.revision = max(s.revision, rev)
}

// apply brings revision rev of module m (data: the key's value) into this
// node through the admin's LOAD path. Only the sync loop calls it, so
// applies happen one at a time, in revision order.
func (s *Syncer) apply(m config.Module, data []byte, rev int64) {
	s.mu.Lock()
	older := rev <= s.mods[m].seen
	s.mu.Unlock()
	if older {
		// Read before a LOAD here wrote this revision or a newer one (a
		// full sync racing a LOAD, a watch event of this node's own write
		// the LOAD recorded meanwhile): the node already runs it.
		return
	}
	v, vm, err := Decode(data)
	if err == nil && vm != m {
		err = fmt.Errorf("etcdsync: key of %s holds %s", m, vm)
	}
	var tables map[string][][]any
	if err == nil {
		tables, err = importRows(s.ctx, s.cfg.Store, m, v)
	}
	start := time.Now()
	if err == nil {
		err = s.imp.ImportModule(m, tables, s.cfg.Target.SaveToDisk)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mods[m]
	st.seen = max(st.seen, rev)
	s.revision = max(s.revision, rev)
	if err != nil {
		st.lastErr = err.Error()
		s.log.Error().Err(err).Str("module", m.String()).Int64("revision", rev).
			Msg("cannot apply the module from etcd: this node keeps its previous configuration of it")
		return
	}
	st.runs, st.writer, st.checksum, st.syncedAt, st.current, st.lastErr = rev, v.Writer, v.Checksum(), time.Now(), v, ""
	s.log.Info().Str("module", m.String()).Int64("revision", rev).Str("writer", v.Writer).
		Dur("took", time.Since(start)).Msg("applied the module from etcd")
}

// watch follows the prefix from rev+1 until etcd stops answering, the
// watch's revision is compacted (errCompacted), or Close.
func (s *Syncer) watch(rev int64) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	ch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.cfg.Target.Prefix+"/modules/",
		clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(s.cfg.Probe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-ch:
			// Responses that queued up while the loop was applying are
			// taken together: of several writes of one module only the
			// last is applied (each value is the whole module).
			var evs []*clientv3.Event
			var err error
			for n := 0; ; n++ {
				if err = watchErr(wr, ok); err != nil {
					break
				}
				evs = append(evs, wr.Events...)
				if n == maxDrain {
					break
				}
				select {
				case wr, ok = <-ch:
					continue
				default:
				}
				break
			}
			for _, ev := range latest(evs) {
				s.event(ev)
			}
			if err != nil {
				return err
			}
		case m := <-s.resync:
			if err := s.reread(m); err != nil {
				return err // the full re-read after the reconnection applies the key
			}
		case <-tick.C:
			if err := s.probe(); err != nil {
				return err
			}
		}
	}
}

// maxDrain bounds the watch responses taken at once.
const maxDrain = 64

func watchErr(wr clientv3.WatchResponse, ok bool) error {
	switch {
	case !ok:
		return fmt.Errorf("%w: watch closed", errDown)
	case wr.CompactRevision != 0:
		return fmt.Errorf("%w: %d", errCompacted, wr.CompactRevision)
	case wr.Err() != nil:
		return fmt.Errorf("%w: watch: %v", errDown, wr.Err())
	}
	return nil
}

// latest keeps the last event of each key, in revision order.
func latest(evs []*clientv3.Event) []*clientv3.Event {
	last := make(map[string]int, len(evs))
	for i, ev := range evs {
		last[string(ev.Kv.Key)] = i
	}
	out := make([]*clientv3.Event, 0, len(last))
	for i, ev := range evs {
		if last[string(ev.Kv.Key)] == i {
			out = append(out, ev)
		}
	}
	return out
}

func (s *Syncer) event(ev *clientv3.Event) {
	m, ok := s.moduleOf(string(ev.Kv.Key))
	if !ok {
		return
	}
	s.mu.Lock()
	st := s.mods[m]
	seen := st.seen
	if ev.Kv.ModRevision > s.revision {
		s.revision = ev.Kv.ModRevision
	}
	if ev.Type == clientv3.EventTypeDelete {
		st.seen = 0
		s.mu.Unlock()
		s.log.Warn().Str("key", st.key).Msg("the module's key was deleted from etcd: this node keeps its configuration; the next LOAD of the module writes it again")
		return
	}
	s.mu.Unlock()
	if ev.Kv.ModRevision <= seen || s.own(m, ev.Kv.Value, ev.Kv.ModRevision) {
		return // this node's own write, or already applied
	}
	s.apply(m, ev.Kv.Value, ev.Kv.ModRevision)
}

// own reports whether revision rev of m's key, holding value, is this
// node's already: a revision it runs (a LOAD here recorded it since the
// caller read seen), or what a LOAD here is writing right now (its
// compare-and-swap committed, the LOAD has not yet recorded the revision),
// which is recorded then.
func (s *Syncer) own(m config.Module, value []byte, rev int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.mods[m]
	if rev <= st.seen {
		return true
	}
	if st.inflight == nil || !bytes.Equal(st.inflight, value) {
		return false
	}
	st.seen = max(st.seen, rev)
	st.runs = max(st.runs, rev)
	return true
}

// reread applies the current value of m's key unless the node already runs
// that revision: after a LOAD here lost its compare-and-swap, the node's
// runtime holds the loser until this (or the watch) applies the winner.
func (s *Syncer) reread(m config.Module) error {
	ctx, cancel := s.reqCtx()
	resp, err := s.cli.Get(ctx, s.key(m))
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %v", errDown, err)
	}
	if len(resp.Kvs) == 0 {
		return s.seed(m)
	}
	s.mu.Lock()
	done := resp.Kvs[0].ModRevision <= s.mods[m].seen
	s.mu.Unlock()
	if done {
		// The watch already applied it, after the lost LOAD (which held
		// the admin mutex): the runtime holds it.
		return nil
	}
	s.apply(m, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	return nil
}

// probe checks etcd answers, and writes a LOAD kept while it did not.
func (s *Syncer) probe() error {
	ctx, cancel := s.reqCtx()
	_, err := s.cli.Get(ctx, s.cfg.Target.Prefix+"/modules/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %v", errDown, err)
	}
	for _, m := range Modules {
		s.mu.Lock()
		p := s.mods[m].pending
		s.mu.Unlock()
		if p != nil {
			if err := s.writePending(m, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// encode reads module m from MEMORY into a new Value written by this node.
func (s *Syncer) encode(m config.Module) (*Value, error) {
	tables, err := readMemory(s.ctx, s.cfg.Store, m)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Value{Format: FormatVersion, Module: m.String(), Writer: s.name, LoadID: hex.EncodeToString(id),
		WrittenAt: time.Now().UTC(), Tables: tables}, nil
}

// ErrConflict is wrapped by the error a LOAD gets when another node changed
// the module first.
var ErrConflict = errors.New("etcd conflict")

// Published is admin.Publisher: an operator's LOAD of m succeeded on this
// node (admin mutex held); write it to etcd with a compare-and-swap on the
// revision this node runs. A lost race is an ERR for the LOAD, and the
// sync loop applies the winner at once. With etcd unreachable the LOAD
// stays in force here, is kept, and is written when etcd answers again
// (unless another node changed the module meanwhile): a warning says so.
func (s *Syncer) Published(m config.Module) (string, error) {
	if !Synced(m) {
		return "", nil
	}
	v, err := s.encode(m)
	if err != nil {
		return "", fmt.Errorf("LOAD %s TO RUNTIME is in force on this node but cannot be written to etcd: %w", m, err)
	}
	s.mu.Lock()
	st := s.mods[m]
	seen, reachable := st.seen, s.reachable
	s.mu.Unlock()
	keep := func(why string) (string, error) {
		s.mu.Lock()
		st.pending, st.current = v, v
		s.mu.Unlock()
		s.log.Warn().Str("module", m.String()).Str("reason", why).Msg("LOAD kept on this node only until etcd answers")
		return fmt.Sprintf("etcd is unreachable (%s): %s is loaded on this node only; it is written to etcd when etcd answers again, unless another node changed the module meanwhile (then that version replaces it here)", why, m), nil
	}
	if !reachable {
		s.mu.Lock()
		why := s.lastErr
		s.mu.Unlock()
		if why == "" {
			why = "not reached yet"
		}
		return keep(why)
	}
	data, err := json.Marshal(v)
	if err == nil && len(data) > MaxValueBytes {
		err = fmt.Errorf("its value is %d bytes, more than %d", len(data), MaxValueBytes)
	}
	if err != nil {
		return "", fmt.Errorf("LOAD %s TO RUNTIME is in force on this node but cannot be written to etcd: %w", m, err)
	}
	s.mu.Lock()
	st.inflight = data
	s.mu.Unlock()
	ctx, cancel := s.reqCtx()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(st.key), "=", seen)).
		Then(clientv3.OpPut(st.key, string(data))).
		Else(clientv3.OpGet(st.key)).
		Commit()
	cancel()
	if resp != nil && resp.Succeeded {
		s.wrote(m, v, resp.Header.Revision)
	}
	s.mu.Lock()
	st.inflight = nil
	s.mu.Unlock()
	if err != nil {
		return keep(err.Error())
	}
	if resp.Succeeded {
		s.log.Info().Str("module", m.String()).Int64("revision", resp.Header.Revision).Msg("LOAD written to etcd")
		return "", nil
	}
	winner, rev := "(deleted)", int64(0)
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		rev = kvs[0].ModRevision
		if w, _, err := Decode(kvs[0].Value); err == nil {
			winner = w.Writer
		}
	}
	select {
	case s.resync <- m:
	default: // the loop is behind; a full re-read follows its reconnection anyway
	}
	s.log.Warn().Str("module", m.String()).Int64("seen", seen).Int64("revision", rev).Str("winner", winner).
		Msg("LOAD lost a conflict in etcd: the winner's version is applied here")
	return "", fmt.Errorf("%w: LOAD %s TO RUNTIME lost to another node: etcd key %s is at revision %d (written by %s) while this node ran revision %d; that version wins and replaces this node's RUNTIME and MEMORY of the module; make the change again on top of it",
		ErrConflict, m, st.key, rev, winner, seen)
}

// Degraded is "" while etcd answers, else why not (for /health).
func (s *Syncer) Degraded() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reachable {
		return ""
	}
	why := s.lastErr
	if why == "" {
		why = "not reached yet"
	}
	since := ""
	if !s.downSince.IsZero() {
		since = " since " + s.downSince.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("cluster: etcd %s unreachable%s (%s): serving the last good configuration (revision %d)",
		strings.Join(s.cfg.Target.Endpoints, ","), since, why, s.revision)
}

// StatsColumns are the columns of stats_sluice_cluster.
var StatsColumns = []string{"module", "etcd_key", "revision", "writer", "synced_at", "checksum", "pending", "etcd_state", "etcd_down_since", "last_error"}

// StatsRows are the rows of stats_sluice_cluster: one per shared module.
func (s *Syncer) StatsRows() [][]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "connected"
	switch {
	case !s.reachable && !s.synced:
		state = "connecting"
	case !s.reachable:
		state = "unreachable"
	}
	var down int64
	if !s.downSince.IsZero() {
		down = s.downSince.Unix()
	}
	rows := make([][]any, 0, len(Modules))
	for _, m := range Modules {
		st := s.mods[m]
		var at int64
		if !st.syncedAt.IsZero() {
			at = st.syncedAt.Unix()
		}
		pending := 0
		if st.pending != nil {
			pending = 1
		}
		errText := st.lastErr
		if errText == "" {
			errText = s.lastErr
		}
		rows = append(rows, []any{m.String(), st.key, st.runs, st.writer, at, st.checksum, pending, state, down, errText})
	}
	return rows
}
