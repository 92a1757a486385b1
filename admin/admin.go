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
	"path"
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
	// Dashboard, if set with a Backend, serves the live page: GET /ui/
	// and the files under it, which it serves without the token (they
	// hold no data; the page asks the operator for the token), and the
	// data the page reads, GET /api/v1/dashboard and
	// /api/v1/dashboard/events, which need the token as the rest of the
	// API does. It sees the paths without PathPrefix.
	Dashboard http.Handler
	// PathPrefix, when neither "" nor "/", puts every endpoint under it
	// ("/ops": /ops/ui/, /ops/metrics, /ops/api/v1/status), for a front
	// proxy that forwards the prefix unchanged; any other path is a 404.
	// It starts with "/" and does not end with one.
	PathPrefix string
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
	// prefix is Options.PathPrefix, "" for none.
	prefix string
	// ui is whether /ui/ is served, and so whether its static files are
	// exempt from the token.
	ui bool
}

var _ http.Handler = (*Handler)(nil)

// New checks the address against the token rule and builds the handler.
func New(o Options) (*Handler, error) {
	if err := CheckAddress(o.Address, o.Token); err != nil {
		return nil, err
	}
	prefix := o.PathPrefix
	if prefix == "/" {
		prefix = ""
	}
	if prefix != "" && (!strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/")) {
		return nil, fmt.Errorf("admin: path prefix %q must start with \"/\" and not end with one", prefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection(), prefix: prefix}
	if o.Token != "" {
		h.token = []byte(o.Token)
	}
	var ready func() (bool, any)
	var health func() map[string]string
	if b := o.Backend; b != nil {
		ready = func() (bool, any) { return b.Ready(context.Background()) }
		health = func() map[string]string { return b.Health(context.Background()) }
		handleUnversioned(h.mux, b)
		var extra []endpoint
		if d := o.Dashboard; d != nil {
			h.ui = true
			h.mux.Handle("/ui/", d)
			h.mux.Handle("/ui", d)
			extra = dashboardEndpoints(d)
		}
		api := newAPI(b, o.Now, extra...)
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
	h.mux.Handle("GET /{$}", serveIndex(prefix, indexEntries(o.Backend != nil, o.Metrics != nil, h.ui)))
	return h, nil
}

// ServeHTTP takes the path prefix off, checks the token, then
// dispatches. A refusal under /api/v1/ is JSON, as everything there is.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.prefix != "" {
		var ok bool
		if r, ok = h.stripPrefix(w, r); !ok {
			return
		}
	}
	if h.token != nil && !h.isStatic(r) && !h.authorized(r.Header.Get("Authorization")) {
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

// stripPrefix returns r with h.prefix taken off its path, or answers
// for a path outside the prefix (404) and for the prefix itself (a
// redirect to the index under it) and reports false.
func (h *Handler) stripPrefix(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	p := r.URL.Path
	if p == h.prefix {
		// Relative, so that it holds behind a proxy that adds a prefix
		// of its own (http.Redirect would make it absolute).
		w.Header().Set("Location", path.Base(p)+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return nil, false
	}
	rest, ok := strings.CutPrefix(p, h.prefix)
	if !ok || !strings.HasPrefix(rest, "/") {
		http.NotFound(w, r)
		return nil, false
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = rest
	if u.RawPath != "" {
		u.RawPath = strings.TrimPrefix(u.RawPath, h.prefix)
	}
	r2.URL = &u
	return r2, true
}

// isStatic reports whether r asks for the dashboard's page or one of its
// files: built into the binary, holding no data, served without the
// token so that the page can load and ask the operator for it. A path
// that is not clean is not exempt, whatever it starts with.
func (h *Handler) isStatic(r *http.Request) bool {
	if !h.ui || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	p := r.URL.Path
	if p == "/ui" || p == "/ui/" {
		return true
	}
	return strings.HasPrefix(p, "/ui/") && path.Clean(p) == p
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
