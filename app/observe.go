package app

import (
	"net/http"
	"net/netip"
	"sort"

	"gateway/metrics"
	"gateway/observe"
	"gateway/proxy"
)

// observability is what a generation keeps of the access log and
// metrics.
type observability struct {
	metrics *metrics.Gen    // nil when the admin listener is off
	out     *observe.Output // the access log's; nil when it is off
}

// observeRoot builds the generation's metrics (when the admin listener
// serves them) and the access log, and wraps root, the whole
// client-facing handler, in request ids, the access log, metrics and
// Server-Timing. With a job queue it also sets g.runner: h, the routed
// handler, behind the same observer, for the queue's attempts.
func (a *App) observeRoot(g *generation, res *resources, root http.Handler, h *proxy.Handler, trusted []netip.Prefix) (http.Handler, error) {
	cfg := g.cfg
	// One table for the access log and the metrics, so that both name
	// and count the route the proxy reports by the same IDs.
	routes := h.RouteTable(cfg.Batch.Enabled)
	o := observe.Options{
		ServerTiming:   cfg.ServerTiming,
		TrustedProxies: trusted,
		Routes:         routes,
	}
	if cfg.Batch.Enabled {
		o.BatchPath = cfg.Batch.Path
	}
	if res.metrics != nil {
		names := make([]string, 0, len(g.upstreams))
		for name := range g.upstreams {
			names = append(names, name)
		}
		sort.Strings(names)
		ups := make([]*proxy.Upstream, len(names))
		for i, name := range names {
			ups[i] = g.upstreams[name]
		}
		mg := res.metrics.NewGen(metrics.GenOptions{
			Routes:      routes,
			Upstreams:   ups,
			Compressors: g.compressors,
			WebSocket:   h.WebSocketStats,
			Limits:      h.LimitStats,
			InFlight:    h.InFlight,
		})
		g.obs.metrics, o.Metrics = mg, mg
	}
	if al := cfg.AccessLog; al.Enabled {
		out, err := observe.OpenOutput(al.Output, a.stdout, a.stderr)
		if err != nil {
			return nil, err
		}
		g.obs.out = out
		o.Log = observe.NewHandler(al.Format, out)
	}
	if res.jobs != nil {
		g.runner = observe.Wrap(h, o)
	}
	return observe.Wrap(root, o), nil
}

// activateObservability has scrapes read g's counters from now on; call
// it as g starts serving. A generation whose build failed never is, so
// its figures never show.
func (g *generation) activateObservability() {
	if g.obs.metrics != nil {
		g.obs.metrics.Activate()
	}
}

// closeObservability writes out the access log's buffer and folds the
// generation's final counts into the metrics' base, which keeps them
// once its objects are gone. g has served its last request (or never
// served).
func (g *generation) closeObservability() {
	if g.obs.metrics != nil {
		g.obs.metrics.Retire()
	}
	if g.obs.out != nil {
		_ = g.obs.out.Close()
	}
}
