package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
)

// The HTTP endpoint on admin-restapi_port (ProxySQL's REST API port, 6070),
// bound to the address of the admin interface: GET /metrics (Prometheus
// text, metrics.go), GET /health, and ProxySQL's /sync/<uri> routes
// (restapi.go), with admin-restapi_enabled (false by default, as in
// ProxySQL: the endpoint has no authentication, and a proxysql.cnf whose
// admin listens on 0.0.0.0 must not open it unasked; etc/sluice.cnf turns
// it on). The address is the admin's, so an admin on 127.0.0.1 keeps the
// endpoint local too.

// httpEndpoint serves the HTTP routes and follows LOAD ADMIN VARIABLES.
type httpEndpoint struct {
	p    *Proxy
	slot httpSlot
	smp  atomic.Pointer[sampler] // the status page's sparklines, while on
	// scripts bounds the /sync/<uri> scripts running at once (restapi.go).
	scripts chan struct{}
}

// httpSlot is one HTTP server that LOAD ADMIN VARIABLES moves or stops:
// the REST endpoint's and the web UI's.
type httpSlot struct {
	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
	at  string // the address it listens on, "" when off
}

// move makes the slot listen on addr ("" stops it). A new address is bound
// before the old server stops, so a bind failure (returned, naming
// variable) leaves things as they were. start builds and runs the server
// on the new listener; stop runs after the old one stopped, with its
// address. Both run with the slot's lock held.
func (sl *httpSlot) move(addr, variable string, start func(net.Listener) *http.Server, stop func(at string)) error {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if addr == sl.at {
		return nil
	}
	var ln net.Listener
	if addr != "" {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("%s: listen on %s: %w", variable, addr, err)
		}
	}
	sl.stopLocked(stop)
	if ln != nil {
		sl.srv, sl.ln, sl.at = start(ln), ln, addr
	}
	return nil
}

func (sl *httpSlot) stopLocked(stop func(at string)) {
	if sl.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = sl.srv.Shutdown(ctx)
	stop(sl.at)
	sl.srv, sl.ln, sl.at = nil, nil, ""
}

// close stops the server, if any.
func (sl *httpSlot) close(stop func(at string)) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.stopLocked(stop)
}

// addr returns the listening address, nil when off.
func (sl *httpSlot) addr() net.Addr {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.ln == nil {
		return nil
	}
	return sl.ln.Addr()
}

func (h *httpEndpoint) sampler() *sampler { return h.smp.Load() }

// restAddr is where the endpoint listens for an admin configuration: the
// host of the first TCP interface of admin-mysql_ifaces, and
// admin-restapi_port; "" when disabled.
func restAddr(snap *config.Snapshot) string {
	if !snap.Bool("admin-restapi_enabled") {
		return ""
	}
	return net.JoinHostPort(adminHost(snap), strconv.FormatInt(snap.Int("admin-restapi_port"), 10))
}

// adminHost is the host of the first TCP interface of admin-mysql_ifaces
// (0.0.0.0 when there is none): the HTTP endpoints listen there.
func adminHost(snap *config.Snapshot) string {
	host := "0.0.0.0"
	for _, iface := range strings.Split(snap.Var("admin-mysql_ifaces"), ";") {
		iface = strings.TrimSpace(iface)
		if iface == "" || strings.HasPrefix(iface, "/") {
			continue
		}
		if h, _, err := net.SplitHostPort(iface); err == nil {
			host = h
		}
		break
	}
	return host
}

// configure makes the endpoint listen on addr ("" stops it); a bind
// failure leaves it as it was and is returned.
func (h *httpEndpoint) configure(addr string) error {
	return h.slot.move(addr, "admin-restapi_port", h.start, h.stopped)
}

func (h *httpEndpoint) start(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", h.metrics)
	mux.HandleFunc("GET /health", h.health)
	mux.HandleFunc("GET /api/status", h.status)
	mux.HandleFunc("GET /", h.page)
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
		mux.HandleFunc(m+" /sync/", h.sync) // restapi.go: GET and POST run scripts, others are 405
	}
	// ReadTimeout bounds a slow request body (/sync/<uri>, 1 MiB at most).
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		MaxHeaderBytes: 16 << 10, ErrorLog: httpErrorLog(h.p.log)}
	h.smp.Store(newSampler(h.p))
	go func() { _ = srv.Serve(ln) }()
	h.p.log.Info().Str("addr", ln.Addr().String()).Msg("HTTP endpoint listening (/ status page, /api/status, /metrics, /health, /sync/<uri>)")
	return srv
}

func (h *httpEndpoint) stopped(at string) {
	h.smp.Swap(nil).close()
	h.p.log.Info().Str("addr", at).Msg("HTTP endpoint closed")
}

func (h *httpEndpoint) close() { h.slot.close(h.stopped) }

// addr returns the listening address, nil when off.
func (h *httpEndpoint) addr() net.Addr { return h.slot.addr() }

func (h *httpEndpoint) metrics(w http.ResponseWriter, _ *http.Request) {
	text, err := h.p.PrometheusText()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(text)
}

// Health is the answer of GET /health.
type Health struct {
	// "ok"; "degraded" (200: serving, with a reason — e.g. the cluster
	// store is unreachable and the last good configuration is served); or
	// "unavailable" (503).
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Hostgroups maps each hostgroup to its servers that new requests may
	// use now.
	Hostgroups map[string]int `json:"hostgroups"`
}

// Health reports whether the proxy can serve: its data port is open (not
// draining for a stop) and at least one hostgroup has a routable server.
func (p *Proxy) Health() Health {
	h := Health{Status: "ok", Hostgroups: map[string]int{}}
	any := false
	for _, s := range p.registry.Servers() {
		hg := strconv.Itoa(s.Key().Hostgroup)
		if _, ok := h.Hostgroups[hg]; !ok {
			h.Hostgroups[hg] = 0
		}
		if s.Healthy() && s.Weight() > 0 {
			h.Hostgroups[hg]++
			any = true
		}
	}
	started, paused := p.dataPlane()
	switch {
	case p.router.Closing():
		h.Status, h.Reason = "unavailable", "draining: Sluice is stopping"
	case p.router.Draining():
		h.Status, h.Reason = "unavailable", "draining: PROXYSQL STOP is ending the sessions"
	case !started:
		h.Status, h.Reason = "unavailable", "the data plane is not started (--no-start or PROXYSQL STOP: run PROXYSQL START)"
	case paused:
		h.Status, h.Reason = "unavailable", "paused: PROXYSQL PAUSE closed the data port (open sessions go on); PROXYSQL RESUME opens it"
	case len(h.Hostgroups) == 0:
		h.Status, h.Reason = "unavailable", "no server configured in mysql_servers"
	case !any:
		h.Status, h.Reason = "unavailable", "no hostgroup has a routable server (all SHUNNED, OFFLINE or weight 0)"
	default:
		if f, _ := p.degraded.Load().(func() string); f != nil {
			if why := f(); why != "" {
				h.Status, h.Reason = "degraded", why
			}
		}
	}
	return h
}

// SetDegraded installs f, asked at every health check: a non-empty answer
// makes a proxy that can serve report "degraded" with that reason, still
// with 200, since it serves (an L4 balancer must keep sending it traffic).
func (p *Proxy) SetDegraded(f func() string) { p.degraded.Store(f) }

func (h *httpEndpoint) health(w http.ResponseWriter, _ *http.Request) {
	hl := h.p.Health()
	w.Header().Set("Content-Type", "application/json")
	if hl.Status == "unavailable" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(hl)
}

// HTTPAddr returns the address of the HTTP endpoint, nil when it is off.
func (p *Proxy) HTTPAddr() net.Addr { return p.http.addr() }

// httpErrorLog sends what net/http logs itself (a TLS handshake that
// failed, a client that sent HTTP to the HTTPS port) to the error log,
// which may be a file, instead of stderr.
func httpErrorLog(l zerolog.Logger) *stdlog.Logger {
	return stdlog.New(lineWriter{l.With().Str("component", "http").Logger()}, "", 0)
}

// lineWriter logs each Write as one INFO line.
type lineWriter struct{ l zerolog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Info().Msg(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
