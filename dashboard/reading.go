package dashboard

import (
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// The metric names a reading takes from the registry, as package
// metrics exports them.
const (
	mRequests        = "gateway_requests_total"
	mDuration        = "gateway_request_duration_seconds"
	mInFlight        = "gateway_requests_in_flight"
	mShed            = "gateway_shed_total"
	mRateLimited     = "gateway_rate_limited_total"
	mCacheHits       = "gateway_cache_hits_total"
	mCacheStale      = "gateway_cache_stale_hits_total"
	mCacheMisses     = "gateway_cache_misses_total"
	mCacheRevalidate = "gateway_cache_revalidations_total"
	mCachePasses     = "gateway_cache_passes_total"
	mCacheHitBytes   = "gateway_cache_hit_bytes_total"
	mCompressIn      = "gateway_compress_bytes_in_total"
	mCompressOut     = "gateway_compress_bytes_out_total"
	mUpstreamDur     = "gateway_upstream_duration_seconds"
	mUpstreamConns   = "gateway_upstream_connections"
)

// identityDecoded is the compression "coding" of responses decoded for
// clients that accept none: they grow, so they save nothing.
const identityDecoded = "identity-decoded"

// counts are one scope's cumulative figures (the whole gateway or one
// route) as one gather found them.
type counts struct {
	requests, errors                    float64
	hits, stale, misses, passes         float64
	shed, rateLimited                   float64
	cacheBytes, compressIn, compressOut float64
	inFlight                            float64
	dur                                 hist
}

// hist is a Prometheus histogram as gathered: bucket upper bounds (the
// +Inf bucket left out) with their cumulative counts, and the total.
type hist struct {
	bounds []float64
	cum    []float64
	total  float64
}

// add sums o into h; histograms of one name share their buckets.
func (h *hist) add(o hist) {
	if h.bounds == nil {
		h.bounds = o.bounds
		h.cum = make([]float64, len(o.cum))
	}
	for i := range min(len(h.cum), len(o.cum)) {
		h.cum[i] += o.cum[i]
	}
	h.total += o.total
}

// sub is h's observations since prev (a histogram only grows).
func (h hist) sub(prev hist) hist {
	out := hist{bounds: h.bounds, cum: make([]float64, len(h.cum)), total: math.Max(0, h.total-prev.total)}
	for i := range h.cum {
		p := 0.0
		if i < len(prev.cum) {
			p = prev.cum[i]
		}
		out.cum[i] = math.Max(0, h.cum[i]-p)
	}
	return out
}

// quantile estimates the q quantile as Prometheus's histogram_quantile
// does: linearly within the bucket the rank falls in (from 0 for the
// first), and the largest finite bound when it falls in +Inf. 0 for an
// empty histogram.
func (h hist) quantile(q float64) float64 {
	n := min(len(h.bounds), len(h.cum))
	if h.total <= 0 || n == 0 {
		return 0
	}
	rank := q * h.total
	lower, below := 0.0, 0.0
	for i := range n {
		if h.cum[i] >= rank {
			in := h.cum[i] - below
			if in <= 0 {
				return h.bounds[i]
			}
			return lower + (h.bounds[i]-lower)*(rank-below)/in
		}
		lower, below = h.bounds[i], h.cum[i]
	}
	return h.bounds[n-1]
}

// reading is what one gather of the registry holds for the page.
type reading struct {
	gateway counts
	routes  map[string]*counts
	// upstreams' latency histograms by upstream name; conns the pooled
	// connections by upstream and target URL.
	upstreams map[string]hist
	conns     map[[2]string]float64
}

// read turns gathered families into a reading.
func read(families []*dto.MetricFamily) *reading {
	rd := &reading{routes: map[string]*counts{}, upstreams: map[string]hist{}, conns: map[[2]string]float64{}}
	route := func(m *dto.Metric) *counts {
		name := label(m, "route")
		c := rd.routes[name]
		if c == nil {
			c = &counts{}
			rd.routes[name] = c
		}
		return c
	}
	// each adds v to the route's figure and to the gateway's.
	each := func(m *dto.Metric, v float64, field func(*counts) *float64) {
		*field(route(m)) += v
		*field(&rd.gateway) += v
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case mRequests:
				v := m.GetCounter().GetValue()
				each(m, v, func(c *counts) *float64 { return &c.requests })
				if label(m, "status") == "5xx" {
					each(m, v, func(c *counts) *float64 { return &c.errors })
				}
			case mDuration:
				h := histOf(m.GetHistogram())
				route(m).dur.add(h)
				rd.gateway.dur.add(h)
			case mInFlight:
				rd.gateway.inFlight += m.GetGauge().GetValue()
			case mShed:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.shed })
			case mRateLimited:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.rateLimited })
			case mCacheHits:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.hits })
			case mCacheStale:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.stale })
			case mCacheMisses, mCacheRevalidate:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.misses })
			case mCachePasses:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.passes })
			case mCacheHitBytes:
				each(m, m.GetCounter().GetValue(), func(c *counts) *float64 { return &c.cacheBytes })
			case mCompressIn:
				if label(m, "coding") != identityDecoded {
					rd.gateway.compressIn += m.GetCounter().GetValue()
				}
			case mCompressOut:
				if label(m, "coding") != identityDecoded {
					rd.gateway.compressOut += m.GetCounter().GetValue()
				}
			case mUpstreamDur:
				name := label(m, "upstream")
				h := rd.upstreams[name]
				h.add(histOf(m.GetHistogram()))
				rd.upstreams[name] = h
			case mUpstreamConns:
				rd.conns[[2]string{label(m, "upstream"), label(m, "target")}] += m.GetGauge().GetValue()
			}
		}
	}
	return rd
}

func histOf(h *dto.Histogram) hist {
	out := hist{total: float64(h.GetSampleCount())}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.cum = append(out.cum, float64(b.GetCumulativeCount()))
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// point is one scope's sample: rates over dt seconds since prev (nil:
// none before, so every rate is 0), gauges and totals as of cur.
func point(tMillis int64, cur, prev *counts, dt float64) Point {
	saved := math.Max(0, cur.compressIn-cur.compressOut)
	p := Point{
		T:        tMillis,
		InFlight: cur.inFlight,
		Totals: Totals{
			Requests:           uint64(cur.requests),
			Errors:             uint64(cur.errors),
			Hits:               uint64(cur.hits),
			StaleHits:          uint64(cur.stale),
			Misses:             uint64(cur.misses),
			Passes:             uint64(cur.passes),
			Shed:               uint64(cur.shed),
			RateLimited:        uint64(cur.rateLimited),
			CacheSavedBytes:    uint64(cur.cacheBytes),
			CompressSavedBytes: uint64(saved),
		},
	}
	if prev == nil || dt <= 0 {
		return p
	}
	rate := func(c, pr float64) float64 { return math.Max(0, c-pr) / dt }
	p.RPS = rate(cur.requests, prev.requests)
	p.Hit = rate(cur.hits, prev.hits)
	p.Stale = rate(cur.stale, prev.stale)
	p.Miss = rate(cur.misses, prev.misses)
	p.Pass = rate(cur.passes, prev.passes)
	p.Error = rate(cur.errors, prev.errors)
	p.Shed = rate(cur.shed, prev.shed)
	p.RateLimited = rate(cur.rateLimited, prev.rateLimited)
	p.CacheSavedBytes = rate(cur.cacheBytes, prev.cacheBytes)
	p.CompressSavedBytes = rate(saved, math.Max(0, prev.compressIn-prev.compressOut))
	d := cur.dur.sub(prev.dur)
	p.P50Ms = d.quantile(0.50) * 1000
	p.P95Ms = d.quantile(0.95) * 1000
	p.P99Ms = d.quantile(0.99) * 1000
	return p
}

// routeName reports whether a route label names a configured route,
// not the requests no route took nor the batch endpoint's.
func routeName(name string) bool {
	return name != "" && !strings.HasPrefix(name, "(")
}
