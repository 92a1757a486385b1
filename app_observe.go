package main

import (
	"io"
	"net/http"
	"net/netip"
	"sort"

	"gateway/admin"
	"gateway/metrics"
	"gateway/observe"
	"gateway/proxy"
)

// observability is what app.go keeps of the access log and metrics.
type observability struct {
	stdout, stderr io.Writer        // where access_log.output stdout and stderr go
	metrics        *metrics.Metrics // nil when the admin listener is off
	out            *observe.Output  // the access log's; nil when it is off
}

// observeRoot builds the metrics (when the admin listener serves them)
// and the access log, and wraps root, the whole client-facing handler,
// in request ids, the access log, metrics and Server-Timing.
func (a *app) observeRoot(g *generation, root http.Handler, h *proxy.Handler, trusted []netip.Prefix) (http.Handler, error) {
	cfg := g.cfg
	routes := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = r.Name
	}
	o := observe.Options{
		ServerTiming:   cfg.ServerTiming,
		TrustedProxies: trusted,
		Routes:         routes,
	}
	if cfg.Batch.Enabled {
		o.BatchPath = cfg.Batch.Path
	}
	if cfg.Admin.Enabled() {
		names := make([]string, 0, len(g.upstreams))
		for name := range g.upstreams {
			names = append(names, name)
		}
		sort.Strings(names)
		ups := make([]*proxy.Upstream, len(names))
		for i, name := range names {
			ups[i] = g.upstreams[name]
		}
		m := metrics.New(metrics.Options{Version: version, Routes: routes, Upstreams: ups, Batch: cfg.Batch.Enabled})
		if a.cache != nil {
			m.AddCache(a.cache)
		}
		if g.compressors != nil {
			m.AddCompressors(g.compressors)
		}
		m.AddWebSocket(h.WebSocketStats)
		m.AddLimits(h.LimitStats)
		g.obs.metrics, o.Metrics = m, m
	}
	if al := cfg.AccessLog; al.Enabled {
		stdout, stderr := g.obs.stdout, g.obs.stderr
		out, err := observe.OpenOutput(al.Output, stdout, stderr)
		if err != nil {
			return nil, err
		}
		g.obs.out = out
		o.Log = observe.NewHandler(al.Format, out)
	}
	return observe.Wrap(root, o), nil
}

// mountMetrics serves GET /metrics on the admin listener.
func (a *app) mountMetrics(ah *admin.Handler) {
	// Each generation has its own registry (its counters start at zero
	// after a reload); /metrics serves the current one.
	if a.gen.Load().obs.metrics != nil {
		ah.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.gen.Load().obs.metrics.Handler().ServeHTTP(w, r)
		}))
	}
}

// closeObservability writes out the access log's buffer.
func (g *generation) closeObservability() {
	if g.obs.out != nil {
		_ = g.obs.out.Close()
	}
}
