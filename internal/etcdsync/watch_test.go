package etcdsync

import (
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLatest: of queued watch events only each key's last is applied, in
// revision order; a delete that comes last wins over an earlier put.
func TestLatest(t *testing.T) {
	ev := func(key string, rev int64, del bool) *clientv3.Event {
		e := &clientv3.Event{Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
		if del {
			e.Type = clientv3.EventTypeDelete
		}
		return e
	}
	in := []*clientv3.Event{ev("/p/a", 5, false), ev("/p/b", 6, false), ev("/p/a", 7, false), ev("/p/c", 8, false), ev("/p/b", 9, true), ev("/p/a", 10, false)}
	var got []int64
	for _, e := range latest(in) {
		got = append(got, e.Kv.ModRevision)
	}
	if want := []int64{8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("latest kept revisions %v, want %v", got, want)
	}
	if out := latest(in); out[1].Type != clientv3.EventTypeDelete {
		t.Fatal("the last event of /p/b (a delete) was not kept")
	}
	if len(latest(nil)) != 0 {
		t.Fatal("events from nothing")
	}
}
