package etcdsync

import (
	"database/sql"
	"fmt"
	"net"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/admin"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/storage"
)

// node is a Sluice control plane in the test process, built as cmd/sluice
// builds it (storage, the proxy as the Applier, the admin on 127.0.0.1),
// without the data port.
type node struct {
	store *storage.Store
	adm   *admin.Server
	db    *sql.DB // admin/admin on the admin port
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	st, _, err := storage.Open(storage.Options{Datadir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.InitDefaults(); err != nil {
		t.Fatal(err)
	}
	p := proxy.New(proxy.Config{Datadir: dir, Store: st, Log: zerolog.Nop()})
	t.Cleanup(func() { p.Close() })
	adm := admin.New(admin.Config{Store: st, Applier: p, Log: zerolog.Nop()})
	for _, m := range config.Modules {
		if err := adm.LoadToRuntime(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := adm.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	addr := adm.Addrs()[0].(*net.TCPAddr)
	db, err := sql.Open("mysql", fmt.Sprintf("admin:admin@tcp(127.0.0.1:%d)/", addr.Port))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return &node{store: st, adm: adm, db: db}
}

func (n *node) exec(t *testing.T, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := n.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// rows returns a query's rows, tab-separated, NULL as "NULL".
func (n *node) rows(t *testing.T, q string) string {
	t.Helper()
	res, err := n.store.Query(t.Context(), q, false)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var b strings.Builder
	for _, r := range res.Rows {
		for i, c := range r {
			if i > 0 {
				b.WriteByte('\t')
			}
			if c.Valid {
				b.WriteString(c.String)
			} else {
				b.WriteString("NULL")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
