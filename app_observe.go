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
func (a *app) observeRoot(root http.Handler, h *proxy.Handler, trusted []netip.Prefix) (http.Handler, error) {
	cfg := a.cfg
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
		names := make([]string, 0, len(a.upstreams))
		for name := range a.upstreams {
			names = append(names, name)
		}
		sort.Strings(names)
		ups := make([]*proxy.Upstream, len(names))
		for i, name := range names {
			ups[i] = a.upstreams[name]
		}
		m := metrics.New(metrics.Options{Version: version, Routes: routes, Upstreams: ups, Batch: cfg.Batch.Enabled})
		if a.cache != nil {
			m.AddCache(a.cache)
		}
		if a.compressors != nil {
			m.AddCompressors(a.compressors)
		}
		m.AddWebSocket(h.WebSocketStats)
		a.obs.metrics, o.Metrics = m, m
	}
	if al := cfg.AccessLog; al.Enabled {
		stdout, stderr := a.obs.stdout, a.obs.stderr
		out, err := observe.OpenOutput(al.Output, stdout, stderr)
		if err != nil {
			return nil, err
		}
		a.obs.out = out
		o.Log = observe.NewHandler(al.Format, out)
	}
	return observe.Wrap(root, o), nil
}

// mountMetrics serves GET /metrics on the admin listener.
func (a *app) mountMetrics(ah *admin.Handler) {
	if a.obs.metrics != nil {
		ah.Handle("GET /metrics", a.obs.metrics.Handler())
	}
}

// closeObservability writes out the access log's buffer.
func (a *app) closeObservability() {
	if a.obs.out != nil {
		_ = a.obs.out.Close()
	}
}
