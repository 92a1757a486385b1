package app

import (
	"context"

	"gateway/admin"
	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
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
	return admin.CacheStats{Stats: total, Routes: routes}, nil
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
	if err != nil {
		a.log.Error("config reload failed; the old config keeps serving", "err", err)
	}
	return res, err
}
