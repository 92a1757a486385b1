// Package metrics exposes the gateway's figures in the Prometheus text
// format, on a registry of its own (never the global one), for the
// admin listener's GET /metrics.
//
// Label values come from the configuration only: route and upstream
// names, target URLs, and small fixed sets (method, status class, cache
// outcome, error kind, coding). Nothing a client sends becomes a label,
// so no request can create a series: an unknown method is "other", a
// path never appears, and a request no route took is route "(none)".
//
// The request path costs little. Requests are counted in a fixed array
// of atomics per route, indexed by method, status class and cache
// outcome, which a collector turns into series at scrape time (only the
// cells that counted something); the latency histograms are resolved
// per route and per upstream when Metrics is built. Everything else
// (cache, compression, WebSocket, upstream errors, retries, health and
// connection pools) is read from the packages' own counters when
// Prometheus scrapes, not on each request.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
)

// Labels for requests that no configured route took.
const (
	// NoRoute labels requests that matched no route (404, 405).
	NoRoute = "(none)"
	// BatchRoute labels the batching endpoint's requests.
	BatchRoute = "(batch)"
)

// Options describe what is measured.
type Options struct {
	// Version is the gateway's version, for gateway_build_info.
	Version string
	// Routes are the route names in the order of proxy.Options.Routes,
	// so that an Observation's Route indexes them.
	Routes []string
	// Upstreams are measured: latency, errors, retries, targets.
	Upstreams []*proxy.Upstream
	// Batch: the batching endpoint is served; its requests are counted
	// as route BatchRoute, at index len(Routes)+1.
	Batch bool
}

// Metrics holds the registry and the request path's counters.
type Metrics struct {
	reg    *prometheus.Registry
	routes []*routeMetrics // NoRoute, the routes, BatchRoute
	unique []*routeMetrics // routes, one per name (names may repeat)

	requestsDesc *prometheus.Desc
}

// Request label sets, each a small fixed array index.
var (
	methods = [...]string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace, "other",
	}
	statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
)

const (
	numMethods = len(methods)
	numClasses = len(statusClasses)
)

type routeMetrics struct {
	name     string
	duration prometheus.Observer
	requests [numMethods][numClasses][cache.NumOutcomes]atomic.Uint64
}

// DurationBuckets are the request and upstream latency histograms'
// buckets, in seconds: sub-millisecond cache hits to minute-long
// exchanges.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// New builds the registry with the request, upstream, build and Go
// runtime metrics. Add the cache, compression and WebSocket collectors
// with the Add methods, before serving.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requestsDesc: prometheus.NewDesc("gateway_requests_total",
			"Client requests by route, method, status class and cache outcome.",
			[]string{"route", "method", "status", "cache"}, nil),
	}
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its response, by route.",
		Buckets: DurationBuckets,
	}, []string{"route"})
	names := append([]string{NoRoute}, o.Routes...)
	if o.Batch {
		names = append(names, BatchRoute)
	}
	byName := map[string]*routeMetrics{}
	for _, name := range names {
		// Routes of the same name share their series.
		rm := byName[name]
		if rm == nil {
			rm = &routeMetrics{name: name, duration: dur.WithLabelValues(name)}
			byName[name] = rm
			m.unique = append(m.unique, rm)
		}
		m.routes = append(m.routes, rm)
	}
	up := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_upstream_duration_seconds",
		Help:    "Time from sending a request upstream to its response headers (or failure), retries included, by upstream.",
		Buckets: DurationBuckets,
	}, []string{"upstream"})
	for _, u := range o.Upstreams {
		u.ObserveLatency(up.WithLabelValues(u.Name()))
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gateway_build_info",
		Help:        "Always 1; the labels name the gateway's version and the Go version that built it.",
		ConstLabels: prometheus.Labels{"version": o.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(
		requestCollector{m}, dur, up, build,
		&upstreamCollector{upstreams: o.Upstreams},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is the registry behind Handler, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request counts one answered request and observes its duration. route
// is an Observation's Route (0: none, 1 to len(Options.Routes) the
// routes), or len(Options.Routes)+1 for the batching endpoint. It takes
// no lock, looks up no map and does not allocate.
func (m *Metrics) Request(route int, method string, status int, outcome cache.Outcome, d time.Duration) {
	if route < 0 || route >= len(m.routes) {
		route = 0
	}
	rm := m.routes[route]
	class := status/100 - 1
	if class < 0 || class >= numClasses {
		class = numClasses - 1 // nothing sane is outside 1xx-5xx; count it as a server error
	}
	if outcome >= cache.NumOutcomes {
		outcome = cache.OutcomeNone
	}
	rm.requests[methodIndex(method)][class][outcome].Add(1)
	rm.duration.Observe(d.Seconds())
}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodPatch:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return numMethods - 1
}

// requestCollector turns the request counters into series, one per
// cell that counted something.
type requestCollector struct{ m *Metrics }

func (c requestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.requestsDesc }

func (c requestCollector) Collect(ch chan<- prometheus.Metric) {
	for _, rm := range c.m.unique {
		for mi := range rm.requests {
			for ci := range rm.requests[mi] {
				for oi := range rm.requests[mi][ci] {
					if n := rm.requests[mi][ci][oi].Load(); n > 0 {
						ch <- prometheus.MustNewConstMetric(c.m.requestsDesc, prometheus.CounterValue, float64(n),
							rm.name, methods[mi], statusClasses[ci], cache.Outcome(oi).String())
					}
				}
			}
		}
	}
}

var (
	upErrorsDesc = prometheus.NewDesc("gateway_upstream_errors_total",
		"Failed exchanges with an upstream target, by kind: timeout, refused, reset, other. Clients that went away are not counted.",
		[]string{"upstream", "target", "kind"}, nil)
	upRetriesDesc = prometheus.NewDesc("gateway_upstream_retries_total",
		"Requests sent again to another target after the first refused the connection.",
		[]string{"upstream"}, nil)
	upHealthyDesc = prometheus.NewDesc("gateway_upstream_target_healthy",
		"1 when the target may be picked, 0 while passive or active health checks keep it out.",
		[]string{"upstream", "target"}, nil)
	upInFlightDesc = prometheus.NewDesc("gateway_upstream_target_in_flight",
		"Requests to the target whose response has not ended.",
		[]string{"upstream", "target"}, nil)
	upConnsDesc = prometheus.NewDesc("gateway_upstream_connections",
		"Pooled HTTP/1.1 connections to the target, idle or active (in use or being dialed); absent for HTTP/2 upstreams.",
		[]string{"upstream", "target", "state"}, nil)
)

type upstreamCollector struct{ upstreams []*proxy.Upstream }

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upErrorsDesc, upRetriesDesc, upHealthyDesc, upInFlightDesc, upConnsDesc} {
		ch <- d
	}
}

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.upstreams {
		s := u.Stats()
		ch <- prometheus.MustNewConstMetric(upRetriesDesc, prometheus.CounterValue, float64(s.Retries), s.Name)
		for _, t := range mergeTargets(s.Targets) {
			for k, n := range t.Errors {
				ch <- prometheus.MustNewConstMetric(upErrorsDesc, prometheus.CounterValue, float64(n), s.Name, t.URL, proxy.ErrorKinds[k])
			}
			healthy := 0.0
			if t.Healthy {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(upHealthyDesc, prometheus.GaugeValue, healthy, s.Name, t.URL)
			ch <- prometheus.MustNewConstMetric(upInFlightDesc, prometheus.GaugeValue, float64(t.InFlight), s.Name, t.URL)
			if t.ConnsKnown {
				ch <- prometheus.MustNewConstMetric(upConnsDesc, prometheus.GaugeValue, float64(t.IdleConns), s.Name, t.URL, "idle")
				ch <- prometheus.MustNewConstMetric(upConnsDesc, prometheus.GaugeValue, float64(t.ActiveConns), s.Name, t.URL, "active")
			}
		}
	}
}

// mergeTargets sums the figures of targets listed twice under the same
// URL (the config allows it), so that no series is collected twice.
func mergeTargets(ts []proxy.TargetStats) []proxy.TargetStats {
	out := make([]proxy.TargetStats, 0, len(ts))
next:
	for _, t := range ts {
		for i := range out {
			if o := &out[i]; o.URL == t.URL {
				o.Healthy = o.Healthy || t.Healthy
				o.InFlight += t.InFlight
				for k := range o.Errors {
					o.Errors[k] += t.Errors[k]
				}
				continue next // one pool per address: its connections are counted once
			}
		}
		out = append(out, t)
	}
	return out
}

// AddCache reads c's figures at every scrape.
func (m *Metrics) AddCache(c *cache.Cache) { m.reg.MustRegister(&cacheCollector{c}) }

var (
	cacheRouteDescs = [...]*prometheus.Desc{
		prometheus.NewDesc("gateway_cache_hits_total", "Requests served fresh from the cache, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_stale_hits_total", "Requests served stale from the cache (stale-while-revalidate, max-stale), by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_misses_total", "Requests the cache fetched from the origin with nothing stored to revalidate, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_revalidations_total", "Requests the cache forwarded to revalidate a stored response, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_passes_total", "Requests forwarded around the cache (hit-for-pass, no-store, preconditions), by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_stores_total", "Responses stored, by route.", []string{"route"}, nil),
	}
	cacheBytesDesc     = prometheus.NewDesc("gateway_cache_bytes", "Bytes of stored responses (keys, headers, bodies).", nil, nil)
	cacheMaxBytesDesc  = prometheus.NewDesc("gateway_cache_max_bytes", "The cache's max_size.", nil, nil)
	cacheEntriesDesc   = prometheus.NewDesc("gateway_cache_entries", "Stored objects.", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("gateway_cache_evictions_total", "Objects evicted to make room.", nil, nil)
	cacheDropsDesc     = prometheus.NewDesc("gateway_cache_admission_drops_total", "Responses the store's admission policy refused.", nil, nil)
)

type cacheCollector struct{ c *cache.Cache }

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cacheRouteDescs {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{cacheBytesDesc, cacheMaxBytesDesc, cacheEntriesDesc, cacheEvictionsDesc, cacheDropsDesc} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	total, routes := c.c.Stats()
	for name, s := range routes {
		for i, v := range [...]uint64{s.Hits, s.StaleHits, s.Misses, s.Revalidations, s.Passes, s.Stores} {
			ch <- prometheus.MustNewConstMetric(cacheRouteDescs[i], prometheus.CounterValue, float64(v), name)
		}
	}
	ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(total.BytesUsed))
	ch <- prometheus.MustNewConstMetric(cacheMaxBytesDesc, prometheus.GaugeValue, float64(total.MaxBytes))
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(total.Entries))
	ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(total.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheDropsDesc, prometheus.CounterValue, float64(total.AdmissionDrops))
}

// AddCompressors reads the compressors' counters (by route name) at
// every scrape, summed by coding.
func (m *Metrics) AddCompressors(cs map[string]*compress.Compressor) {
	m.reg.MustRegister(&compressCollector{cs})
}

var (
	compResponsesDesc = prometheus.NewDesc("gateway_compress_responses_total",
		`Responses encoded, by coding (br, zstd, gzip), or decoded for clients that accept no coding ("identity-decoded").`,
		[]string{"coding"}, nil)
	compInDesc = prometheus.NewDesc("gateway_compress_bytes_in_total",
		"Bytes before encoding (or decoding), by coding.", []string{"coding"}, nil)
	compOutDesc = prometheus.NewDesc("gateway_compress_bytes_out_total",
		"Bytes after encoding (or decoding), by coding.", []string{"coding"}, nil)
)

type compressCollector struct {
	cs map[string]*compress.Compressor
}

func (c *compressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- compResponsesDesc
	ch <- compInDesc
	ch <- compOutDesc
}

func (c *compressCollector) Collect(ch chan<- prometheus.Metric) {
	total := map[string]compress.CodingStats{}
	for _, comp := range c.cs {
		for coding, s := range comp.Stats() {
			t := total[coding]
			t.Responses += s.Responses
			t.BytesIn += s.BytesIn
			t.BytesOut += s.BytesOut
			total[coding] = t
		}
	}
	for coding, s := range total {
		ch <- prometheus.MustNewConstMetric(compResponsesDesc, prometheus.CounterValue, float64(s.Responses), coding)
		ch <- prometheus.MustNewConstMetric(compInDesc, prometheus.CounterValue, float64(s.BytesIn), coding)
		ch <- prometheus.MustNewConstMetric(compOutDesc, prometheus.CounterValue, float64(s.BytesOut), coding)
	}
}

// AddWebSocket reads the WebSocket counters of every route (as
// proxy.Handler.WebSocketStats returns them) at every scrape.
func (m *Metrics) AddWebSocket(stats func() map[string]proxy.WSStats) {
	m.reg.MustRegister(&wsCollector{stats})
}

var (
	wsOpenDesc = prometheus.NewDesc("gateway_websocket_connections",
		"WebSocket tunnels open now, by route.", []string{"route"}, nil)
	wsUpgradedDesc = prometheus.NewDesc("gateway_websocket_upgrades_total",
		"WebSocket tunnels opened, by route.", []string{"route"}, nil)
	wsRejectedDesc = prometheus.NewDesc("gateway_websocket_rejected_total",
		"Upgrade requests refused at the route's max_connections, by route.", []string{"route"}, nil)
	wsBytesDesc = prometheus.NewDesc("gateway_websocket_bytes_total",
		"Bytes carried by WebSocket tunnels after the handshake, by route and direction (to_upstream, to_client).",
		[]string{"route", "direction"}, nil)
)

type wsCollector struct {
	stats func() map[string]proxy.WSStats
}

func (c *wsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- wsOpenDesc
	ch <- wsUpgradedDesc
	ch <- wsRejectedDesc
	ch <- wsBytesDesc
}

func (c *wsCollector) Collect(ch chan<- prometheus.Metric) {
	for route, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(wsOpenDesc, prometheus.GaugeValue, float64(s.Open), route)
		ch <- prometheus.MustNewConstMetric(wsUpgradedDesc, prometheus.CounterValue, float64(s.Upgraded), route)
		ch <- prometheus.MustNewConstMetric(wsRejectedDesc, prometheus.CounterValue, float64(s.Rejected), route)
		ch <- prometheus.MustNewConstMetric(wsBytesDesc, prometheus.CounterValue, float64(s.BytesToUpstream), route, "to_upstream")
		ch <- prometheus.MustNewConstMetric(wsBytesDesc, prometheus.CounterValue, float64(s.BytesToClient), route, "to_client")
	}
}

// AddLimits reads the rate and concurrency limit counters of every route
// that has limits (as proxy.Handler.LimitStats returns them) at every
// scrape.
func (m *Metrics) AddLimits(stats func() map[string]proxy.LimitStats) {
	m.reg.MustRegister(&limitCollector{stats})
}

var (
	limRateLimitedDesc = prometheus.NewDesc("gateway_rate_limited_total",
		"Requests answered 429 by the route's rate limit, by route.", []string{"route"}, nil)
	limKeysDesc = prometheus.NewDesc("gateway_rate_limit_keys",
		"Client keys the route's rate limiter tracks now, by route.", []string{"route"}, nil)
	limInFlightDesc = prometheus.NewDesc("gateway_upstream_in_flight",
		"Requests holding a concurrency slot of the route now, by route.", []string{"route"}, nil)
	limQueuedDesc = prometheus.NewDesc("gateway_upstream_queued",
		"Requests waiting for a concurrency slot of the route now, by route.", []string{"route"}, nil)
	limShedDesc = prometheus.NewDesc("gateway_shed_total",
		"Requests answered 503 by the route's concurrency limit, by route and reason (full, queue_timeout).",
		[]string{"route", "reason"}, nil)
)

type limitCollector struct {
	stats func() map[string]proxy.LimitStats
}

func (c *limitCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{limRateLimitedDesc, limKeysDesc, limInFlightDesc, limQueuedDesc, limShedDesc} {
		ch <- d
	}
}

func (c *limitCollector) Collect(ch chan<- prometheus.Metric) {
	for route, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(limRateLimitedDesc, prometheus.CounterValue, float64(s.RateLimited), route)
		ch <- prometheus.MustNewConstMetric(limKeysDesc, prometheus.GaugeValue, float64(s.RateLimitKeys), route)
		ch <- prometheus.MustNewConstMetric(limInFlightDesc, prometheus.GaugeValue, float64(s.InFlight), route)
		ch <- prometheus.MustNewConstMetric(limQueuedDesc, prometheus.GaugeValue, float64(s.Queued), route)
		ch <- prometheus.MustNewConstMetric(limShedDesc, prometheus.CounterValue, float64(s.Shed), route, "full")
		ch <- prometheus.MustNewConstMetric(limShedDesc, prometheus.CounterValue, float64(s.QueueTimeouts), route, "queue_timeout")
	}
}
