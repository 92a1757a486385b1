package admin

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"gateway/cache"
	"gateway/proxy"
	"gateway/proxy/balance"
)

// The versioned JSON API: every answer is JSON with Cache-Control:
// no-store, errors are {"error": "..."} with their status, and within v1
// fields are only ever added. docs/admin-api.md is its contract; a test
// keeps the two in step.

const apiPrefix = "/api/v1/"

// isAPI reports whether path belongs to the versioned API.
func isAPI(path string) bool {
	return path == strings.TrimSuffix(apiPrefix, "/") || strings.HasPrefix(path, apiPrefix)
}

// endpoint is one method on one path of the API.
type endpoint struct {
	method, path string
	serve        func(http.ResponseWriter, *http.Request)
}

// api routes the versioned endpoints itself, so that an unknown path is
// a JSON 404 and a wrong method a JSON 405 with Allow.
type api struct {
	b      Backend
	now    func() time.Time
	routes map[string]map[string]http.HandlerFunc // path, method
	csrf   *http.CrossOriginProtection
}

// newAPI routes the API's endpoints and extra, those another package
// serves (the dashboard's).
func newAPI(b Backend, now func() time.Time, extra ...endpoint) *api {
	a := &api{b: b, now: now, routes: map[string]map[string]http.HandlerFunc{}}
	for _, e := range append(a.endpoints(), extra...) {
		if a.routes[e.path] == nil {
			a.routes[e.path] = map[string]http.HandlerFunc{}
		}
		a.routes[e.path][e.method] = e.serve
	}
	// A page on another site must not make an operator's browser purge
	// or reload: a cross-origin POST is refused (curl and other clients
	// that send no Origin are not browsers, and pass).
	a.csrf = http.NewCrossOriginProtection()
	a.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return a
}

// dashboardEndpoints are the data endpoints of the live page, served by
// d (Options.Dashboard).
func dashboardEndpoints(d http.Handler) []endpoint {
	return []endpoint{
		{"GET", "/api/v1/dashboard", d.ServeHTTP},
		{"GET", "/api/v1/dashboard/events", d.ServeHTTP},
	}
}

func (a *api) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/api/v1/status", a.status},
		{"GET", "/api/v1/upstreams", a.upstreams},
		{"GET", "/api/v1/cache/stats", a.cacheStats},
		{"POST", "/api/v1/cache/purge", a.purge},
		{"GET", "/api/v1/compress/stats", a.compressStats},
		{"GET", "/api/v1/websocket/stats", a.webSocketStats},
		{"GET", "/api/v1/jobs/stats", a.jobStats},
		{"GET", "/api/v1/certificates", a.certificates},
		{"GET", "/api/v1/cache/explain", a.explainCache},
		{"POST", "/api/v1/reload", a.reload},
		{"GET", "/api/v1/config", a.config},
	}
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	methods, ok := a.routes[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no endpoint "+r.URL.Path)
		return
	}
	serve := methods[r.Method]
	if serve == nil && r.Method == http.MethodHead {
		serve = methods[http.MethodGet]
	}
	if serve == nil {
		w.Header().Set("Allow", allow(methods))
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed; use "+allow(methods))
		return
	}
	if err := a.csrf.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	serve(w, r)
}

// allow lists the methods of one path for the Allow header; GET implies
// HEAD.
func allow(methods map[string]http.HandlerFunc) string {
	var ms []string
	for m := range methods {
		ms = append(ms, m)
		if m == http.MethodGet {
			ms = append(ms, http.MethodHead)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st := a.b.Status(r.Context())
	ready, _ := a.b.Ready(r.Context())
	writeJSON(w, http.StatusOK, struct {
		Version          string      `json:"version"`
		StartedAt        time.Time   `json:"started_at"`
		UptimeSeconds    int64       `json:"uptime_seconds"`
		Ready            bool        `json:"ready"`
		Draining         bool        `json:"draining"`
		ConfigGeneration uint64      `json:"config_generation"`
		ConfigLoadedAt   time.Time   `json:"config_loaded_at"`
		LastReload       *reloadJSON `json:"last_reload"`
	}{
		Version:          st.Version,
		StartedAt:        st.StartedAt.UTC(),
		UptimeSeconds:    int64(a.now().Sub(st.StartedAt) / time.Second),
		Ready:            ready,
		Draining:         st.Draining,
		ConfigGeneration: st.Generation,
		ConfigLoadedAt:   st.LoadedAt.UTC(),
		LastReload:       lastReload(st.LastReload),
	})
}

// reloadJSON is Status.LastReload in the API.
type reloadJSON struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Summary string    `json:"summary,omitempty"`
	Error   string    `json:"error,omitempty"`
}

func lastReload(r *ReloadAttempt) *reloadJSON {
	if r == nil {
		return nil
	}
	return &reloadJSON{At: r.At.UTC(), OK: r.OK, Summary: r.Summary, Error: r.Error}
}

func (a *api) upstreams(w http.ResponseWriter, r *http.Request) {
	type upstream struct {
		Healthy  bool                   `json:"healthy"`
		Targets  []balance.TargetStatus `json:"targets"`
		Breakers []balance.BreakerState `json:"breakers"`
	}
	out := map[string]upstream{}
	for name, u := range a.b.Upstreams(r.Context()) {
		v := upstream(u)
		if v.Targets == nil {
			v.Targets = []balance.TargetStatus{}
		}
		if v.Breakers == nil {
			v.Breakers = []balance.BreakerState{}
		}
		out[name] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"upstreams": out})
}

func (a *api) cacheStats(w http.ResponseWriter, r *http.Request) {
	st, err := a.b.CacheStats(r.Context())
	enabled := err == nil
	if err != nil && !errors.Is(err, ErrDisabled) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if name := r.URL.Query().Get("route"); name != "" {
		s, ok := st.Routes[name]
		if !ok {
			writeError(w, http.StatusNotFound, "no cached route named "+name)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Route string `json:"route"`
			cache.RouteStats
		}{name, s})
		return
	}
	if st.Routes == nil {
		st.Routes = map[string]cache.RouteStats{}
	}
	if st.NotStored == nil {
		// Without a cache the reasons are still listed, at 0, so that
		// the answer has one shape whatever the config.
		st.NotStored = map[string]uint64{}
		for _, reason := range cache.NotStoredReasons() {
			st.NotStored[reason] = 0
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Enabled bool `json:"enabled"`
		CacheStats
	}{enabled, st})
}

func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	p, err := cache.ParsePurge(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := a.b.PurgeCache(r.Context(), p)
	switch {
	case errors.Is(err, ErrDisabled):
		writeError(w, http.StatusNotFound, "no route caches")
	case errors.Is(err, cache.ErrStore):
		writeJSON(w, http.StatusInternalServerError, purgeFailed{failedPurge(res, p), err.Error()})
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, purged(res, p))
	}
}

func (a *api) compressStats(w http.ResponseWriter, r *http.Request) {
	routes, err := a.b.CompressStats(r.Context())
	if err != nil && !errors.Is(err, ErrDisabled) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Enabled bool `json:"enabled"`
		compressStats
	}{err == nil, sumCompress(routes)})
}

func (a *api) webSocketStats(w http.ResponseWriter, r *http.Request) {
	routes := a.b.WebSocketStats(r.Context())
	if name := r.URL.Query().Get("route"); name != "" {
		s, ok := routes[name]
		if !ok {
			writeError(w, http.StatusNotFound, "no route named "+name)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Route string `json:"route"`
			proxy.WSStats
		}{name, s})
		return
	}
	writeJSON(w, http.StatusOK, sumWebSocket(routes))
}

func (a *api) jobStats(w http.ResponseWriter, r *http.Request) {
	st, err := a.b.JobStats(r.Context())
	switch {
	case errors.Is(err, ErrDisabled):
		writeError(w, http.StatusNotFound, noAsync)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

func (a *api) explainCache(w http.ResponseWriter, r *http.Request) {
	code, v, msg := explainCache(r, a.b)
	if msg != "" {
		writeError(w, code, msg)
		return
	}
	writeJSON(w, code, v)
}

func (a *api) certificates(w http.ResponseWriter, r *http.Request) {
	st, err := a.b.Certificates(r.Context())
	switch {
	case errors.Is(err, ErrDisabled):
		writeError(w, http.StatusNotFound, noACME)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// noACME is why there are no certificates to report.
const noACME = "no listener obtains certificates by ACME"

// noAsync is why there are no job stats.
const noAsync = "no route is async"

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	res, err := a.b.Reload(r.Context())
	if err != nil {
		var lines []string
		for l := range strings.SplitSeq(err.Error(), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		writeJSON(w, http.StatusBadRequest, struct {
			OK     bool     `json:"ok"`
			Error  string   `json:"error"`
			Errors []string `json:"errors"`
		}{false, err.Error(), lines})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK               bool   `json:"ok"`
		Summary          string `json:"summary"`
		ConfigGeneration uint64 `json:"config_generation"`
	}{true, res.Summary, res.Generation})
}

func (a *api) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"config": a.b.Config(r.Context())})
}

// writeError writes the API's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
