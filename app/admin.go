package app

import (
	"context"
	"maps"
	"time"

	"gateway/admin"
	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
	"gateway/redistier"
)

// The app is the admin listener's Backend: the admin package serves the
// endpoints and their JSON from what these methods return, read from
// the current generation (and the cache, which a reload that first
// enables caching may make).

var _ admin.Backend = (*App)(nil)

// Status reports the version, the start, the drain and the generation.
func (a *App) Status(context.Context) admin.Status {
	g := a.gen.Load()
	return admin.Status{
		Version:    a.version,
		StartedAt:  a.started,
		Draining:   a.draining.Load(),
		Generation: g.seq,
		LoadedAt:   g.loaded,
		LastReload: a.lastReload.Load(),
	}
}

// Ready is true when every upstream has a healthy target, and false
// from the start of a shutdown: the listeners take no new connection
// then, while the admin listener still answers until the drain ends, and
// a load balancer that probes /readyz should stop sending.
func (a *App) Ready(context.Context) (bool, any) {
	if a.draining.Load() {
		return false, "draining"
	}
	ok := true
	detail := map[string]bool{}
	for name, u := range a.gen.Load().upstreams {
		h := u.Healthy()
		detail[name] = h
		ok = ok && h
	}
	return ok, detail
}

// Config returns the current config with its secrets redacted.
func (a *App) Config(context.Context) any {
	return a.gen.Load().cfg.Redacted()
}

// Upstreams reports the current generation's upstreams.
func (a *App) Upstreams(context.Context) map[string]admin.UpstreamStatus {
	out := map[string]admin.UpstreamStatus{}
	for name, u := range a.gen.Load().upstreams {
		out[name] = admin.UpstreamStatus{Healthy: u.Healthy(), Targets: u.Status(), Breakers: u.BreakerStates()}
	}
	return out
}

// CacheStats returns the cache's counters.
func (a *App) CacheStats(context.Context) (admin.CacheStats, error) {
	c := a.shared.Cache()
	if c == nil {
		return admin.CacheStats{}, admin.ErrDisabled
	}
	total, routes := c.Stats()
	st := admin.CacheStats{Stats: total, Routes: routes}
	if t := a.shared.Tier(); t != nil {
		st.Shared = sharedStats(t.TierStats())
	}
	return st, nil
}

// Health reports the shared cache tier's state, when there is one.
func (a *App) Health(context.Context) map[string]string {
	t := a.shared.Tier()
	if t == nil {
		return nil
	}
	return map[string]string{"cache.shared": t.TierStats().State}
}

// sharedStats maps the tier's counters for the admin endpoints.
func sharedStats(s redistier.Stats) *admin.SharedStats {
	errs := maps.Clone(s.Errors)
	if errs == nil {
		errs = map[string]uint64{}
	}
	return &admin.SharedStats{
		State:             s.State,
		Breaker:           s.Breaker,
		Hits:              s.Hits,
		Misses:            s.Misses,
		Errors:            errs,
		BytesRead:         s.BytesRead,
		BytesWritten:      s.BytesWritten,
		Writes:            s.Writes,
		WritesDropped:     s.WritesDropped,
		LeasesTaken:       s.LeasesTaken,
		LeaseWaits:        s.LeaseWaits,
		LeaseTakeovers:    s.LeaseTakeovers,
		PurgesSent:        s.PurgesSent,
		PurgesReceived:    s.PurgesReceived,
		NotificationsLost: s.NotificationsLost,
		Latency: admin.SharedLatency{
			Count:      s.LatencyCount,
			SumSeconds: s.LatencySum,
			P50Seconds: quantile(0.5, s.LatencyBounds, s.LatencyCounts, s.LatencyCount),
			P99Seconds: quantile(0.99, s.LatencyBounds, s.LatencyCounts, s.LatencyCount),
		},
	}
}

// quantile estimates the q quantile of a Prometheus histogram (upper
// bounds, cumulative counts, total count) as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in, and
// the largest bound when it falls past them all.
func quantile(q float64, bounds []float64, counts []uint64, total uint64) float64 {
	n := min(len(bounds), len(counts))
	if total == 0 || n == 0 {
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i := range n {
		if float64(counts[i]) >= rank {
			in := counts[i] - below
			if in == 0 {
				return bounds[i]
			}
			return lower + (bounds[i]-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = bounds[i], counts[i]
	}
	return bounds[n-1]
}

// PurgeCache purges what p names and, when that is nothing, says why.
func (a *App) PurgeCache(ctx context.Context, p cache.Purge) (cache.PurgeResult, error) {
	c := a.shared.Cache()
	if c == nil {
		return cache.PurgeResult{}, admin.ErrDisabled
	}
	return c.PurgeExplained(ctx, p)
}

// CompressStats returns the counters of every compressing route.
func (a *App) CompressStats(context.Context) (map[string]map[string]compress.CodingStats, error) {
	g := a.gen.Load()
	if g.compressors == nil {
		return nil, admin.ErrDisabled
	}
	out := make(map[string]map[string]compress.CodingStats, len(g.compressors))
	for name, c := range g.compressors {
		out[name] = c.Stats()
	}
	return out, nil
}

// WebSocketStats returns every route's WebSocket counters.
func (a *App) WebSocketStats(context.Context) map[string]proxy.WSStats {
	return a.gen.Load().handler.WebSocketStats()
}

// Reload reads the config file again (POST /reload, SIGHUP, a watched
// change); a failure is logged, and the old config keeps serving.
func (a *App) Reload(context.Context) (admin.ReloadResult, error) {
	res, err := a.reloadConfig()
	at := &admin.ReloadAttempt{At: time.Now(), OK: err == nil, Summary: res.Summary}
	if err != nil {
		at.Error = err.Error()
		a.log.Error("config reload failed; the old config keeps serving", "err", err)
	}
	a.lastReload.Store(at)
	return res, err
}

// routeNames are the current config's route names in its order, each
// once (routes may share a name, and then their series), for the
// dashboard.
func (a *App) routeNames() []string {
	rs := a.gen.Load().cfg.Routes
	out := make([]string, 0, len(rs))
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	return out
}
