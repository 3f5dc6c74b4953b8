package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/internal/etcdsync"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/storage"
)

// clusterApplier is the proxy with --cluster etcd://…: it adds
// stats_sluice_cluster to the live tables; everything else is the proxy's.
type clusterApplier struct {
	*proxy.Proxy
	store  *storage.Store
	syncer atomic.Pointer[etcdsync.Syncer] // set once the sync loop runs
}

func (a *clusterApplier) setSyncer(s *etcdsync.Syncer) { a.syncer.Store(s) }

func (a *clusterApplier) RefreshTables(names []string) error {
	err := a.Proxy.RefreshTables(names)
	if s := a.syncer.Load(); err == nil && s != nil && slices.Contains(names, "stats_sluice_cluster") {
		err = a.store.ReplaceTable(context.Background(), "stats_sluice_cluster", etcdsync.StatsColumns, s.StatsRows())
	}
	return err
}

// startShared connects to etcd, makes /health follow it, runs the first
// sync (at most 5 s) and makes every operator's LOAD of a shared module go
// to etcd. The default node name is <hostname>/<admin-mysql_ifaces> as
// loaded.
func startShared(t *etcdsync.Target, store *storage.Store, p *proxy.Proxy, adm *admin.Server, log zerolog.Logger) (*etcdsync.Syncer, error) {
	host, _ := os.Hostname()
	s, err := etcdsync.New(etcdsync.Config{Target: t, Store: store, Log: log,
		Name: host + "/" + strings.ReplaceAll(p.Runtime().Var("admin-mysql_ifaces"), ";", ",")})
	if err != nil {
		return nil, err
	}
	if rt := p.Runtime(); rt != nil && len(rt.ProxySQLServers) > 0 {
		// Both would write the same modules (docs/cluster-etcd.md): said
		// at start rather than left to surprise.
		log.Warn().Int("proxysql_servers", len(rt.ProxySQLServers)).
			Msg("--cluster etcd and ProxySQL Cluster (proxysql_servers rows) are both configured: they are not meant to be combined, both write the same modules; remove the proxysql_servers rows or the --cluster flag")
	}
	p.SetDegraded(s.Degraded)
	s.Start(adm, 5*time.Second)
	adm.SetPublisher(s)
	return s, nil
}
