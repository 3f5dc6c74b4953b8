package admin

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/storage"
)

// The admin side of ProxySQL Cluster: the answers to what a peer sends
// (docs/cluster.md). The poller is internal/cluster.

// erSpecificAccessDenied is ER_SPECIFIC_ACCESS_DENIED_ERROR.
const erSpecificAccessDenied = 1227

// clusterExtra are the statements a peer sends besides the module queries
// of storage.ClusterQueries: the check loop of ProxySQL_Cluster_Monitor_thread
// and the variables queries of the other settings of cluster_sync_interfaces
// and of ProxySQL 3 (whose admin list has admin-pgsql_ifaces).
var clusterExtra = []string{
	"SELECT @@version",
	"SELECT GLOBAL_CHECKSUM()",
	"SELECT * FROM runtime_checksums_values ORDER BY name",
	"SELECT * FROM stats_mysql_global ORDER BY Variable_Name",
	"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'mysql-%' AND variable_name NOT IN ('mysql-threads') ORDER BY variable_name",
	"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'admin-%' ORDER BY variable_name",
	"SELECT * FROM runtime_global_variables WHERE variable_name LIKE 'admin-%' AND variable_name NOT IN ('admin-mysql_ifaces','admin-restapi_port','admin-telnet_admin_ifaces','admin-telnet_stats_ifaces','admin-web_port','admin-pgsql_ifaces') ORDER BY variable_name",
}

// isClusterStatement reports whether n (normalized) is a statement a
// ProxySQL Cluster peer sends. The match is exact but for ASCII case, as
// ProxySQL's strncasecmp on the query.
func isClusterStatement(n string) bool {
	if storage.IsClusterQuery(n) {
		return true
	}
	for _, q := range clusterExtra {
		if strings.EqualFold(n, q) {
			return true
		}
	}
	return strings.HasPrefix(strings.ToUpper(n), "PROXYSQL CLUSTER_NODE_UUID ")
}

// clusterOnly is what the admin-cluster_username user may run: the
// statements of a peer and what clients send on their own after login.
// Anything else is refused, so that the cluster credentials, which every
// node holds, cannot change or read the rest of the configuration.
func (s *Server) clusterOnly(ss *session, n, u string) (reply, bool) {
	if isClusterStatement(n) || isClientNoise(u) || strings.HasPrefix(u, "SELECT @@VERSION_COMMENT") {
		return nil, false
	}
	return &errReply{code: erSpecificAccessDenied, state: "42000",
		msg: "Access denied; user '" + clipName(ss.user) + "' is admin-cluster_username and may run ProxySQL Cluster queries only"}, true
}

// SetPeerVersion sets how a session of admin-cluster_username learns the
// @@version to answer: fn gets the client's IP and returns a version, or
// false for admin-version (internal/cluster's Manager.PeerVersion, which
// shows a ProxySQL node its own version: it refuses peers with another).
func (s *Server) SetPeerVersion(fn func(ip string) (string, bool)) {
	s.peerVersion.Store(&fn)
}

// SetRefreshHook sets a function that regenerates live tables the Applier
// does not produce, called with the same names just before a statement
// that names them runs (internal/cluster's Manager.RefreshTables writes
// stats_proxysql_servers_* then, as ProxySQL generates them on read).
func (s *Server) SetRefreshHook(fn func(names []string)) {
	s.refreshHook.Store(&fn)
}

// clusterVersion answers SELECT @@version to a cluster session.
func (s *Server) clusterVersion(ss *session, u string) (reply, bool) {
	if u != "SELECT @@VERSION" {
		return nil, false
	}
	fn := s.peerVersion.Load()
	if fn == nil {
		return nil, false
	}
	v, ok := (*fn)(ss.host)
	if !ok {
		return nil, false
	}
	return oneRow([]string{"@@version"}, v), true
}

// clusterQuery answers a PROXY_SELECT of ProxySQL Cluster from the rows of
// the module's last LOAD, as ProxySQL answers it from the loaded module.
func (s *Server) clusterQuery(n string) (reply, bool) {
	if !strings.HasPrefix(n, "PROXY_SELECT ") {
		return nil, false
	}
	cols, rows, ok := s.cfg.Store.ClusterAnswer(n)
	if !ok {
		return nil, false
	}
	return &resultSet{cols: cols, rows: rows}, true
}

// clusterClient is one row of stats_proxysql_servers_clients_status.
type clusterClient struct {
	uuid, host string
	port       int
	ifaces     string
	lastSeen   int64
}

// maxClusterClients bounds the peers remembered: a client picks the uuid.
const maxClusterClients = 256

// clusterClients are the peers that registered with PROXYSQL
// CLUSTER_NODE_UUID <uuid> <admin_mysql_ifaces>.
type clusterClients struct {
	mu   sync.Mutex
	list []clusterClient
}

// register is PROXYSQL CLUSTER_NODE_UUID: the peer is recorded (or its
// row refreshed) in stats_proxysql_servers_clients_status.
func (s *Server) registerClusterNode(ss *session, args string) reply {
	uuid, ifaces, ok := strings.Cut(strings.TrimSpace(args), " ")
	uuid, ifaces = strings.TrimSpace(uuid), strings.TrimSpace(ifaces)
	if !ok || uuid == "" || ifaces == "" || len(uuid) > 64 || len(ifaces) > 1024 {
		return adminErr("ProxySQL Admin Error: PROXYSQL CLUSTER_NODE_UUID needs a uuid and the admin interfaces")
	}
	host, portText, err := net.SplitHostPort(ss.remote)
	if err != nil {
		// A Unix socket: ProxySQL takes this command on TCP only.
		return adminErr("ProxySQL Admin Error: PROXYSQL CLUSTER_NODE_UUID is accepted on TCP only")
	}
	port, _ := strconv.Atoi(portText)
	c := &s.clusterClients
	c.mu.Lock()
	row := clusterClient{uuid: uuid, host: host, port: port, ifaces: ifaces, lastSeen: time.Now().Unix()}
	i := slices.IndexFunc(c.list, func(x clusterClient) bool { return x.uuid == uuid && x.host == host })
	switch {
	case i >= 0:
		c.list[i] = row
	case len(c.list) >= maxClusterClients:
		oldest := 0
		for j := range c.list {
			if c.list[j].lastSeen < c.list[oldest].lastSeen {
				oldest = j
			}
		}
		c.list[oldest] = row
	default:
		c.list = append(c.list, row)
	}
	rows := make([][]any, len(c.list))
	for j, x := range c.list {
		rows[j] = []any{x.uuid, x.host, x.port, x.ifaces, x.lastSeen}
	}
	c.mu.Unlock()
	if err := s.cfg.Store.ReplaceTable(context.Background(), "stats_proxysql_servers_clients_status",
		[]string{"uuid", "hostname", "port", "admin_mysql_ifaces", "last_seen_at"}, rows); err != nil {
		return sqliteErr(err)
	}
	ss.log.Info().Str("uuid", uuid).Str("admin_mysql_ifaces", ifaces).Msg("Received PROXYSQL CLUSTER_NODE_UUID")
	return &okReply{}
}
