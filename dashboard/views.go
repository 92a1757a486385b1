package dashboard

import (
	"cmp"
	"context"
	"slices"
	"time"

	"gateway/admin"
	"gateway/proxy/balance"
)

// The parts of a snapshot that are state, not rates: read from the
// admin Backend, as the admin API reports them.

// topKeys is how many keys each of a route's top lists holds.
const topKeys = 10

func gatewayInfo(ctx context.Context, b admin.Backend, now time.Time) GatewayInfo {
	st := b.Status(ctx)
	ready, _ := b.Ready(ctx)
	g := GatewayInfo{
		Version:       st.Version,
		StartedAt:     st.StartedAt.UTC(),
		UptimeSeconds: now.Sub(st.StartedAt).Seconds(),
		Ready:         ready,
		Draining:      st.Draining,
		Generation:    st.Generation,
		LoadedAt:      st.LoadedAt.UTC(),
	}
	if r := st.LastReload; r != nil {
		g.LastReload = &ReloadView{At: r.At.UTC(), OK: r.OK, Summary: r.Summary, Error: r.Error}
	}
	return g
}

// cacheView is nil while no route caches. routes orders the caching
// routes (configuration order); keys, when set, gives the top keys.
func cacheView(ctx context.Context, b admin.Backend, routes []string, keys KeyTracker) *CacheView {
	st, err := b.CacheStats(ctx)
	if err != nil {
		return nil
	}
	v := &CacheView{
		BytesUsed: st.BytesUsed,
		MaxBytes:  st.MaxBytes,
		Entries:   st.Entries,
		Evictions: st.Evictions,
		Purges:    st.Purges,
		Routes:    []CacheRouteView{},
	}
	for _, name := range ordered(routes, st.Routes) {
		s := st.Routes[name]
		rv := CacheRouteView{
			Route:     name,
			HitRatio:  s.HitRatio,
			Hits:      s.Hits,
			StaleHits: s.StaleHits,
			Misses:    s.Misses + s.Revalidations,
			Passes:    s.Passes,
			Stores:    s.Stores,
			NotStored: []ReasonCount{},
			TopHits:   []KeyCount{},
			TopMisses: []KeyCount{},
		}
		for reason, n := range s.NotStored {
			if n > 0 {
				rv.NotStored = append(rv.NotStored, ReasonCount{reason, n})
			}
		}
		slices.SortFunc(rv.NotStored, func(a, b ReasonCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
		})
		if keys != nil {
			hits, misses := keys.TopKeys(name, topKeys)
			rv.TopHits = append(rv.TopHits, hits...)
			rv.TopMisses = append(rv.TopMisses, misses...)
		}
		v.Routes = append(v.Routes, rv)
	}
	if sh := st.Shared; sh != nil {
		var errs uint64
		for _, n := range sh.Errors {
			errs += n
		}
		v.Shared = &SharedView{State: sh.State, Breaker: sh.Breaker, Hits: sh.Hits, Misses: sh.Misses, Errors: errs}
	}
	return v
}

// ordered lists m's keys: those in order first, as there, then the rest
// by name.
func ordered[V any](order []string, m map[string]V) []string {
	out := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, name := range order {
		if _, ok := m[name]; ok && !seen[name] {
			out = append(out, name)
			seen[name] = true
		}
	}
	var rest []string
	for name := range m {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// upstreamViews lists the upstreams by name. A target's latency is its
// upstream's over the interval (the histogram is by upstream), and its
// connections the pool's, from the reading.
func upstreamViews(ctx context.Context, b admin.Backend, now time.Time, cur, prev *reading) []UpstreamView {
	ups := b.Upstreams(ctx)
	out := make([]UpstreamView, 0, len(ups))
	for _, name := range ordered(nil, ups) {
		u := ups[name]
		var p50, p99 float64
		if prev != nil {
			d := cur.upstreams[name].sub(prev.upstreams[name])
			p50, p99 = d.quantile(0.5)*1000, d.quantile(0.99)*1000
		}
		v := UpstreamView{Name: name, Healthy: u.Healthy, Targets: make([]TargetView, 0, len(u.Targets))}
		for _, t := range u.Targets {
			tv := TargetView{
				URL:         t.URL,
				State:       targetState(t, now),
				Healthy:     t.Healthy,
				ActiveCheck: t.ActiveCheck,
				Breaker:     t.Breaker,
				InFlight:    t.InFlight,
				Connections: int64(cur.conns[[2]string{name, t.URL}]),
				P50Ms:       p50,
				P99Ms:       p99,
			}
			tv.LastCheck, tv.LastError = lastCheck(t)
			v.Targets = append(v.Targets, tv)
		}
		out = append(out, v)
	}
	return out
}

// The values of TargetView.State.
const (
	stateUp      = "up"
	stateDown    = "down"
	stateProbing = "probing"
)

// targetState sums a target's health up: an open breaker, a failing
// active check or a cool-down still running keep it down; a half-open
// breaker, or a cool-down over but not yet passed by a request, is
// probing; a target in rotation is up.
func targetState(t balance.TargetStatus, now time.Time) string {
	switch {
	case t.Breaker == balance.BreakerOpen:
		return stateDown
	case t.ActiveCheck == balance.ActiveFailing:
		return stateDown
	case !t.DownUntil.IsZero() && now.Before(t.DownUntil):
		return stateDown
	case t.Breaker == balance.BreakerHalfOpen:
		return stateProbing
	case !t.DownUntil.IsZero():
		return stateProbing
	case !t.Healthy:
		return stateDown
	}
	return stateUp
}

// lastCheck is when t's last active check ended and the last failure
// seen, for TargetView. balance.TargetStatus does not record them in
// this build, so there is none to show.
func lastCheck(balance.TargetStatus) (time.Time, string) { return time.Time{}, "" }

// jobsView is nil while no route is async.
func jobsView(ctx context.Context, b admin.Backend) *JobsView {
	st, err := b.JobStats(ctx)
	if err != nil {
		return nil
	}
	return &JobsView{
		Queued:    st.Queued,
		Running:   st.Running,
		Succeeded: st.Succeeded,
		Failed:    st.Failed,
		Cancelled: st.Cancelled,
		Retries:   st.Retries,
		Rejected:  st.Rejected,
		WaitP50Ms: st.Wait.P50Seconds * 1000,
		RunP50Ms:  st.Run.P50Seconds * 1000,
	}
}

// webSocketView is nil before any route has carried a tunnel.
func webSocketView(ctx context.Context, b admin.Backend, routes []string) *WebSocketView {
	stats := b.WebSocketStats(ctx)
	v := &WebSocketView{Routes: []WebSocketItem{}}
	for _, name := range ordered(routes, stats) {
		s := stats[name]
		v.Open += s.Open
		v.Upgraded += s.Upgraded
		v.Rejected += s.Rejected
		if s.Open > 0 || s.Upgraded > 0 {
			v.Routes = append(v.Routes, WebSocketItem{Route: name, Open: s.Open, Upgraded: s.Upgraded})
		}
	}
	if v.Upgraded == 0 && v.Open == 0 {
		return nil
	}
	return v
}
