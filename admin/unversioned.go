package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
	"gateway/proxy/balance"

	"golang.org/x/net/http/httpguts"
)

// handleUnversioned registers the paths the admin listener served before
// /api/v1/, answering as they did: text errors, the old body shapes, 404
// for a feature the config leaves off. New endpoints go to /api/v1/ only;
// the old shapes only ever gain a field an operator reading them needs (a
// target's active_check, the reason of a purge that touched nothing).
func handleUnversioned(mux *http.ServeMux, b Backend) {
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Config(r.Context()))
	})
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) {
		type upstream struct {
			Healthy bool                   `json:"healthy"`
			Targets []balance.TargetStatus `json:"targets"`
		}
		out := map[string]upstream{}
		for name, u := range b.Upstreams(r.Context()) {
			out[name] = upstream{u.Healthy, u.Targets}
		}
		writeJSON(w, http.StatusOK, out)
	})

	// Everything under /cache/ is 404 while no route caches, as when
	// the cache's own handler served it.
	cacheMux := http.NewServeMux()
	cacheMux.HandleFunc("GET /cache/stats", func(w http.ResponseWriter, r *http.Request) {
		serveCacheStats(w, r, b)
	})
	cacheMux.HandleFunc("GET /cache/explain", func(w http.ResponseWriter, r *http.Request) {
		code, v, msg := explainCache(r, b)
		if msg != "" {
			proxy.Error(w, code, msg)
			return
		}
		writeJSON(w, code, v)
	})
	cacheMux.HandleFunc("POST /cache/purge", func(w http.ResponseWriter, r *http.Request) {
		servePurge(w, r, b)
	})
	mux.HandleFunc("/cache/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := b.CacheStats(r.Context()); errors.Is(err, ErrDisabled) {
			http.NotFound(w, r)
			return
		}
		cacheMux.ServeHTTP(w, r)
	})

	mux.HandleFunc("GET /compress/stats", func(w http.ResponseWriter, r *http.Request) {
		routes, err := b.CompressStats(r.Context())
		if err != nil {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, sumCompress(routes))
	})
	mux.HandleFunc("GET /websocket/stats", func(w http.ResponseWriter, r *http.Request) {
		routes := b.WebSocketStats(r.Context())
		if name := r.URL.Query().Get("route"); name != "" {
			s, ok := routes[name]
			if !ok {
				proxy.Error(w, http.StatusNotFound, "no route named "+name)
				return
			}
			writeJSON(w, http.StatusOK, s)
			return
		}
		writeJSON(w, http.StatusOK, sumWebSocket(routes))
	})
	// Beside /api/v1/jobs/stats, as the other stats have a short path an
	// operator types.
	mux.HandleFunc("GET /jobs/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.JobStats(r.Context())
		switch {
		case errors.Is(err, ErrDisabled):
			proxy.Error(w, http.StatusNotFound, noAsync)
		case err != nil:
			proxy.Error(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	mux.HandleFunc("GET /certificates", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Certificates(r.Context())
		switch {
		case errors.Is(err, ErrDisabled):
			proxy.Error(w, http.StatusNotFound, noACME)
		case err != nil:
			proxy.Error(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		res, err := b.Reload(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, res.Summary)
	})
}

func serveCacheStats(w http.ResponseWriter, r *http.Request, b Backend) {
	st, err := b.CacheStats(r.Context())
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if name := r.URL.Query().Get("route"); name != "" {
		s, ok := st.Routes[name]
		if !ok {
			proxy.Error(w, http.StatusNotFound, "no cached route named "+name)
			return
		}
		writeJSON(w, http.StatusOK, s)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func servePurge(w http.ResponseWriter, r *http.Request, b Backend) {
	p, err := cache.ParsePurge(r.URL.Query())
	var res cache.PurgeResult
	if err == nil {
		res, err = b.PurgeCache(r.Context(), p)
	}
	switch {
	case errors.Is(err, ErrDisabled):
		http.NotFound(w, r)
	case errors.Is(err, cache.ErrStore):
		writeJSON(w, http.StatusInternalServerError, purgeFailed{failedPurge(res, p), err.Error()})
	case err != nil:
		proxy.Error(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, purged(res, p))
	}
}

// purgeResult is the answer to a purge, on both paths. Reason, only when
// nothing was purged, says why (a field added to the old shape too: it
// tells an operator what a bare 0 hides).
//
// Scope, with a shared cache tier only, is "cluster" (every process that
// shares the tier purged) or "local" (this process only: the tier could
// not be reached), and ScopeReason says why a purge stayed local.
type purgeResult struct {
	Purged      int    `json:"purged"`
	Soft        bool   `json:"soft"`
	Reason      string `json:"reason,omitempty"`
	Scope       string `json:"scope,omitempty"`
	ScopeReason string `json:"scope_reason,omitempty"`
}

// purged is the answer to purge p, which res reports.
func purged(res cache.PurgeResult, p cache.Purge) purgeResult {
	return purgeResult{Purged: res.Purged, Soft: p.Soft, Reason: res.Reason, Scope: res.Scope, ScopeReason: res.ScopeReason}
}

// failedPurge is purged for a purge the store failed: no reason, as
// something was meant to be purged.
func failedPurge(res cache.PurgeResult, p cache.Purge) purgeResult {
	r := purged(res, p)
	r.Reason = ""
	return r
}

// purgeFailed is the answer to a purge the store failed: what was done,
// and why not all of it.
type purgeFailed struct {
	purgeResult
	Error string `json:"error"`
}

// compressStats are the compression counters of every route and their
// sum, by coding.
type compressStats struct {
	Total  map[string]compress.CodingStats            `json:"total"`
	Routes map[string]map[string]compress.CodingStats `json:"routes"`
}

func sumCompress(routes map[string]map[string]compress.CodingStats) compressStats {
	out := compressStats{Total: map[string]compress.CodingStats{}, Routes: routes}
	if out.Routes == nil {
		out.Routes = map[string]map[string]compress.CodingStats{}
	}
	for _, st := range routes {
		for coding, s := range st {
			t := out.Total[coding]
			t.Responses += s.Responses
			t.BytesIn += s.BytesIn
			t.BytesOut += s.BytesOut
			out.Total[coding] = t
		}
	}
	return out
}

// webSocketStats are the WebSocket counters of every route and their
// sum.
type webSocketStats struct {
	Total  proxy.WSStats            `json:"total"`
	Routes map[string]proxy.WSStats `json:"routes"`
}

func sumWebSocket(routes map[string]proxy.WSStats) webSocketStats {
	out := webSocketStats{Routes: routes}
	if out.Routes == nil {
		out.Routes = map[string]proxy.WSStats{}
	}
	for _, s := range routes {
		out.Total.Open += s.Open
		out.Total.Upgraded += s.Upgraded
		out.Total.Rejected += s.Rejected
		out.Total.IdleClosed += s.IdleClosed
		out.Total.BytesToUpstream += s.BytesToUpstream
		out.Total.BytesToClient += s.BytesToClient
	}
	return out
}

// explainCache answers GET /cache/explain?url=URL[&header=Name: value...]
// for both paths: the status, and the explanation or a short reason.
func explainCache(r *http.Request, b Backend) (int, any, string) {
	q := r.URL.Query()
	raw := q.Get("url")
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return http.StatusBadRequest, nil, "url must be an absolute http or https URL"
	}
	hdr := http.Header{}
	for _, line := range q["header"] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(strings.TrimSpace(name)) {
			return http.StatusBadRequest, nil, fmt.Sprintf("header %q must be Name: value", line)
		}
		hdr.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	ex, err := b.ExplainCache(r.Context(), raw, hdr)
	switch {
	case errors.Is(err, ErrDisabled):
		return http.StatusNotFound, nil, "no route caches"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, nil, err.Error()
	case err != nil:
		return http.StatusBadGateway, nil, err.Error()
	}
	return http.StatusOK, ex, ""
}
