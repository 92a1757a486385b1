// Package admin serves the operator's endpoints on their own listener,
// apart from client traffic: liveness, readiness, the effective config,
// upstream status, cache stats and purge, compression, WebSocket and job
// queue stats, metrics and reload. It reads and acts on the gateway through a
// Backend and owns the HTTP and JSON: the unversioned paths operators
// have scripted against (unversioned.go) and the versioned JSON API
// under /api/v1/ (api.go, documented in docs/admin-api.md).
//
// The listener is for loopback by default; New refuses any other address
// unless a bearer token guards it. Health serves /healthz and /readyz
// alone, without a token, for a listener that probes from other hosts
// (a kubelet) may reach.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Options configure the admin handler.
type Options struct {
	// Address is where the admin listener binds; it is only checked
	// here, so a token guards any address other than loopback.
	Address string
	// Token, when set, must come as "Authorization: Bearer <token>".
	Token string
	// Backend is the gateway the endpoints report on. If nil, only
	// /healthz, /readyz (always ready), /metrics and /debug/pprof/ are
	// served.
	Backend Backend
	// Metrics, if set, serves GET /metrics.
	Metrics http.Handler
	// Now is the clock of uptimes; nil means time.Now.
	Now func() time.Time
}

// Handler is the admin HTTP handler.
type Handler struct {
	mux   *http.ServeMux
	token []byte
	// csrf refuses a browser's cross-origin POST to the unversioned
	// paths (/api/v1/ has its own, answering in JSON): without a token, a
	// page on any site could otherwise make an operator's browser purge
	// the cache or reload the config.
	csrf *http.CrossOriginProtection
}

var _ http.Handler = (*Handler)(nil)

// New checks the address against the token rule and builds the handler.
func New(o Options) (*Handler, error) {
	if err := CheckAddress(o.Address, o.Token); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	if o.Token != "" {
		h.token = []byte(o.Token)
	}
	var ready func() (bool, any)
	var health func() map[string]string
	if b := o.Backend; b != nil {
		ready = func() (bool, any) { return b.Ready(context.Background()) }
		health = func() map[string]string { return b.Health(context.Background()) }
		handleUnversioned(h.mux, b)
		api := newAPI(b, o.Now)
		h.mux.Handle(apiPrefix, api)
		h.mux.Handle(strings.TrimSuffix(apiPrefix, "/"), api) // a JSON 404, not a redirect
	}
	handleHealth(h.mux, ready, health)
	if o.Metrics != nil {
		h.mux.Handle("GET /metrics", o.Metrics)
	}
	// Profiles are as sensitive as the config: the same token guards them.
	h.mux.HandleFunc("/debug/pprof/", pprof.Index)
	h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	h.mux.Handle("GET /{$}", serveIndex(indexEntries(o.Backend != nil, o.Metrics != nil)))
	return h, nil
}

// ServeHTTP checks the token, then dispatches. A refusal under /api/v1/
// is JSON, as everything there is.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.token != nil && !h.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gateway admin"`)
		if isAPI(r.URL.Path) {
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if !isAPI(r.URL.Path) {
		if err := h.csrf.Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// authorized checks "Bearer <token>". The scheme is case-insensitive
// (RFC 9110 section 11.1), and one or more spaces may follow it (RFC 6750
// section 2.1 allows 1*SP); the token is compared in constant time.
func (h *Handler) authorized(v string) bool {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimLeft(tok, " ")
	return subtle.ConstantTimeCompare([]byte(tok), h.token) == 1
}

// Health returns the handler of the probe-only listener: GET /healthz
// and /readyz as the admin handler serves them, and nothing else. It asks
// for no token, so it may listen on any address; neither endpoint
// reveals a secret or changes state. health, when not nil, gives what
// /healthz lists after its "ok" (see Backend.Health).
func Health(ready func() (bool, any), health func() map[string]string) http.Handler {
	mux := http.NewServeMux()
	handleHealth(mux, ready, health)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// handleHealth registers /healthz (the process serves) and /readyz
// (ready reports true; nil means always). /healthz is "ok" and then, a
// line each, "name: state" of what health reports (the shared cache
// tier): the process serves whatever their state, so it answers 200.
func handleHealth(mux *http.ServeMux, ready func() (bool, any), health func() map[string]string) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		b.WriteString("ok\n")
		if health != nil {
			h := health()
			for _, name := range slices.Sorted(maps.Keys(h)) {
				b.WriteString(name + ": " + h[name] + "\n")
			}
		}
		_, _ = w.Write([]byte(b.String()))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, detail := true, any(nil)
		if ready != nil {
			ok, detail = ready()
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ok, "detail": detail})
	})
}

// CheckAddress refuses a non-loopback admin address without a token:
// the admin endpoints reveal the config and, later, purge the cache.
func CheckAddress(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin: address %q: %w", addr, err)
	}
	if token != "" || IsLoopback(host) {
		return nil
	}
	if host == "" {
		host = "every interface"
	}
	return errors.New("admin: refusing to listen on " + host + " without admin.token; bind to 127.0.0.1 or set a token")
}

// IsLoopback reports whether host names only loopback addresses.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
