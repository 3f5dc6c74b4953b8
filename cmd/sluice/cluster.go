package main

import (
	"context"
	"slices"

	"github.com/sluice-proxy/sluice/internal/etcdsync"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/storage"
)

// clusterApplier is the proxy with --cluster: it adds stats_sluice_cluster
// to the live tables; everything else is the proxy's.
type clusterApplier struct {
	*proxy.Proxy
	cluster *etcdsync.Syncer
	store   *storage.Store
}

func (a clusterApplier) RefreshTables(names []string) error {
	err := a.Proxy.RefreshTables(names)
	if err == nil && slices.Contains(names, "stats_sluice_cluster") {
		err = a.store.ReplaceTable(context.Background(), "stats_sluice_cluster", etcdsync.StatsColumns, a.cluster.StatsRows())
	}
	return err
}
