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
// per route and per upstream when a Gen is built. Everything else
// (cache, compression, WebSocket, limits, upstream errors, retries,
// health and connection pools) is read from the packages' own counters
// when Prometheus scrapes, not on each request.
//
// A config reload rebuilds the upstreams, routes and compressors, and
// with them their counters, yet Prometheus counters must never go back.
// So Metrics lives as long as the process, and each config generation
// gets a Gen from it. Route counters and histograms belong to Metrics,
// looked up by name, so a route that keeps its name keeps its series.
// The counters a generation's objects hold are summed over the Gens
// attached (the current one and those still draining); when a drained
// Gen is retired, its final values are folded into a base that later
// scrapes add, so nothing drops when it goes. Gauges are never folded:
// they describe what is attached at the scrape.
package metrics

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gateway/cache"
	"gateway/compress"
	"gateway/internal/routes"
	"gateway/proxy"
	"gateway/proxy/balance"
	"gateway/redistier"
)

// Labels for requests that no configured route took: the names of
// routes.None and of the batching endpoint's ID.
const (
	// NoRoute labels requests that matched no route (404, 405).
	NoRoute = routes.NoneName
	// BatchRoute labels the batching endpoint's requests.
	BatchRoute = routes.BatchName
)

// Metrics holds the registry and everything that must outlive a config
// generation: the request counters by route name, the latency
// histograms, and the counters of retired generations.
type Metrics struct {
	reg         *prometheus.Registry
	requestDur  *prometheus.HistogramVec
	upstreamDur *prometheus.HistogramVec
	cache       atomic.Pointer[cache.Cache]
	shared      atomic.Pointer[redistier.Tier]
	jobs        atomic.Pointer[jobsHolder]
	acme        atomic.Pointer[acmeHolder]
	inFlight    atomic.Pointer[func() int64]
	// byProto counts requests by protocol, indexed as protocols.
	byProto [len(protocols)]prometheus.Counter

	// mu guards what follows. Retire folds and detaches a Gen under it
	// and Collect reads under it, so a scrape sees a Gen's counters
	// either attached or in base, never both nor neither.
	mu          sync.Mutex
	routeByName map[string]*routeMetrics
	routeList   []*routeMetrics // routeByName's values in creation order
	gens        []*Gen          // activated and not retired, oldest first
	base        map[seriesKey]*sample
}

// Request label sets, each a small fixed array index.
var (
	methods = [...]string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace, "other",
	}
	statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	// protocols are the values of http.Request.Proto the servers set.
	protocols = [...]string{"HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0", "other"}
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

var requestsDesc = prometheus.NewDesc("gateway_requests_total",
	"Client requests by route, method, status class and cache outcome.",
	[]string{"route", "method", "status", "cache"}, nil)

// New builds the registry with the request, upstream, build, Go runtime
// and process metrics, and the collectors that read the cache (see
// SetCache), the shared cache tier (SetShared), the job queue (SetJobs)
// and the attached
// generations. version labels
// gateway_build_info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers (or failure), retries included, by upstream.",
			Buckets: DurationBuckets,
		}, []string{"upstream"}),
		routeByName: map[string]*routeMetrics{},
		base:        map[seriesKey]*sample{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gateway_build_info",
		Help:        "Always 1; the labels name the gateway's version and the Go version that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_requests_in_flight",
		Help: "Client requests in progress: arrived and not yet answered in full.",
	}, func() float64 {
		if f := m.inFlight.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	byProto := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_requests_by_protocol_total",
		Help: "Client requests by the HTTP version they came in (HTTP/1.0, HTTP/1.1, HTTP/2.0, HTTP/3.0).",
	}, []string{"protocol"})
	for i, p := range protocols {
		m.byProto[i] = byProto.WithLabelValues(p)
	}
	m.reg.MustRegister(
		byProto,
		requestCollector{m}, m.requestDur, m.upstreamDur, build, inFlight,
		cacheCollector{m}, sharedCollector{m}, jobsCollector{m}, acmeCollector{m}, genCollector{m},
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

// SetInFlight has gateway_requests_in_flight read f, the count of client
// requests in progress that the caller keeps (0 before it is set).
func (m *Metrics) SetInFlight(f func() int64) { m.inFlight.Store(&f) }

// SetCache has scrapes read c's figures. The store is the app's, but a
// reload may be the first to make it, so it can come after New.
func (m *Metrics) SetCache(c *cache.Cache) { m.cache.Store(c) }

// GenOptions describe what one config generation measures.
type GenOptions struct {
	// Routes is the generation's route table (proxy.Handler.RouteTable),
	// the one its observer names routes by: requests are counted by its
	// IDs, under its names. nil counts every request as NoRoute.
	Routes *routes.Table
	// Upstreams are measured: latency, errors, retries, targets.
	Upstreams []*proxy.Upstream
	// Compressors by route name; their counters are summed by coding.
	Compressors map[string]*compress.Compressor
	// WebSocket returns the WebSocket counters by route, as
	// proxy.Handler.WebSocketStats does.
	WebSocket func() map[string]proxy.WSStats
	// Limits returns the rate and concurrency limit counters by route,
	// as proxy.Handler.LimitStats does.
	Limits func() map[string]proxy.LimitStats
	// InFlight returns each route's requests in progress, as
	// proxy.Handler.InFlight does.
	InFlight func() map[string]int64
}

// Gen is one config generation's view of Metrics: the request path's
// counters, and the sources read at scrape time once it is activated.
type Gen struct {
	m      *Metrics
	routes []*routeMetrics // by routes.ID
	o      GenOptions
	state  genState // guarded by m.mu
}

type genState int

const (
	genBuilt genState = iota
	genActive
	genRetired
)

// NewGen resolves a generation's routes and upstream latency histograms.
// Its requests count at once (their cells outlive it), but its other
// sources stay out of scrapes until Activate, so a generation whose
// build fails is never seen.
func (m *Metrics) NewGen(o GenOptions) *Gen {
	g := &Gen{m: m, o: o}
	m.mu.Lock()
	for _, name := range o.Routes.Names() {
		// By name, across generations too: a route that keeps its name
		// keeps counting in the same cells, and routes of the same name
		// share their series.
		rm := m.routeByName[name]
		if rm == nil {
			rm = &routeMetrics{name: name, duration: m.requestDur.WithLabelValues(name)}
			m.routeByName[name] = rm
			m.routeList = append(m.routeList, rm)
		}
		g.routes = append(g.routes, rm)
	}
	m.mu.Unlock()
	for _, u := range o.Upstreams {
		u.ObserveLatency(m.upstreamDur.WithLabelValues(u.Name()))
	}
	return g
}

// Activate makes the generation's sources visible to scrapes. Call it
// when the generation starts serving.
func (g *Gen) Activate() {
	g.m.mu.Lock()
	defer g.m.mu.Unlock()
	if g.state != genBuilt {
		return
	}
	g.state = genActive
	g.m.gens = append(g.m.gens, g)
}

// Retire folds the generation's counters into the base that scrapes add
// and detaches it, so its gauges go and its counters stay. Call it once
// the generation has served its last request; counting after that is
// lost. A generation never activated has nothing to fold, and is never
// shown after.
func (g *Gen) Retire() {
	m := g.m
	m.mu.Lock()
	defer m.mu.Unlock()
	was := g.state
	g.state = genRetired
	if was != genActive {
		return
	}
	g.collect(func(d *prometheus.Desc, k kind, v float64, labels ...string) {
		if k == counter {
			add(m.base, d, k, v, labels)
		}
	})
	for i, x := range m.gens {
		if x == g {
			m.gens = append(m.gens[:i], m.gens[i+1:]...)
			break
		}
	}
}

// Request counts one answered request and observes its duration. route
// is its ID in GenOptions.Routes: an Observation's Route, or the
// batching endpoint's; one the table does not hold counts as
// routes.None. It takes no lock, looks up no map and does not allocate.
func (g *Gen) Request(route routes.ID, method string, status int, outcome cache.Outcome, d time.Duration) {
	if route < 0 || int(route) >= len(g.routes) {
		route = routes.None
	}
	rm := g.routes[route]
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

// Protocol counts one request by its HTTP version (r.ProtoMajor and
// r.ProtoMinor). It takes no lock and does not allocate.
func (g *Gen) Protocol(major, minor int) {
	i := len(protocols) - 1
	switch {
	case major == 1 && minor <= 1:
		i = minor
	case major == 2 || major == 3:
		i = major
	}
	g.m.byProto[i].Inc()
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
// cell that counted something, for every route name ever configured.
type requestCollector struct{ m *Metrics }

func (c requestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

func (c requestCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	routes := c.m.routeList[:len(c.m.routeList):len(c.m.routeList)]
	c.m.mu.Unlock()
	for _, rm := range routes {
		for mi := range rm.requests {
			for ci := range rm.requests[mi] {
				for oi := range rm.requests[mi][ci] {
					if n := rm.requests[mi][ci][oi].Load(); n > 0 {
						ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n),
							rm.name, methods[mi], statusClasses[ci], cache.Outcome(oi).String())
					}
				}
			}
		}
	}
}

// kind says how samples of one series from several sources combine.
type kind int

const (
	counter kind = iota // summed, and folded into the base on Retire
	gauge               // summed over the attached generations
	latest              // the newest attached generation's value
)

// seriesKey names one series: its descriptor and label values.
type seriesKey struct {
	desc   *prometheus.Desc
	labels string // the values joined by \xff, which no label holds
}

type sample struct {
	k      kind
	labels []string
	v      float64
}

func add(set map[seriesKey]*sample, d *prometheus.Desc, k kind, v float64, labels []string) {
	key := seriesKey{d, strings.Join(labels, "\xff")}
	s := set[key]
	switch {
	case s == nil:
		set[key] = &sample{k: k, labels: append([]string(nil), labels...), v: v}
	case k == latest:
		s.v = v
	default:
		s.v += v
	}
}

// genCollector emits the generations' series: for counters, the base
// plus every attached generation; for gauges, the attached ones only.
// Merging by series also keeps two sources of the same labels (two
// generations, a target listed twice) from being collected twice.
type genCollector struct{ m *Metrics }

func (c genCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range genDescs {
		ch <- d
	}
}

func (c genCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	set := map[seriesKey]*sample{}
	m.mu.Lock()
	for key, s := range m.base {
		set[key] = &sample{k: s.k, labels: s.labels, v: s.v}
	}
	for _, g := range m.gens { // oldest first, so latest ends on the newest
		g.collect(func(d *prometheus.Desc, k kind, v float64, labels ...string) { add(set, d, k, v, labels) })
	}
	m.mu.Unlock()
	for key, s := range set {
		vt := prometheus.GaugeValue
		if s.k == counter {
			vt = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(key.desc, vt, s.v, s.labels...)
	}
}

// collect reads every scrape-time source of the generation.
func (g *Gen) collect(emit func(d *prometheus.Desc, k kind, v float64, labels ...string)) {
	for _, u := range g.o.Upstreams {
		s := u.Stats()
		emit(upRetriesDesc, counter, float64(s.Retries), s.Name)
		for _, t := range mergeTargets(s.Targets) {
			for k, n := range t.Errors {
				emit(upErrorsDesc, counter, float64(n), s.Name, t.URL, proxy.ErrorKinds[k])
			}
			healthy := 0.0
			if t.Healthy {
				healthy = 1
			}
			emit(upHealthyDesc, latest, healthy, s.Name, t.URL)
			emit(upInFlightDesc, gauge, float64(t.InFlight), s.Name, t.URL)
			if t.ConnsKnown {
				emit(upConnsDesc, gauge, float64(t.IdleConns), s.Name, t.URL, "idle")
				emit(upConnsDesc, gauge, float64(t.ActiveConns), s.Name, t.URL, "active")
			}
			if t.Breaker != "" {
				// One series per state, 1 for the current one, so that
				// sum by (state) counts targets in each.
				for _, st := range breakerStates {
					v := 0.0
					if st == t.Breaker {
						v = 1
					}
					emit(upBreakerDesc, latest, v, s.Name, t.URL, st)
				}
				emit(upBreakerOpenedDesc, counter, float64(t.BreakerOpened), s.Name, t.URL)
			}
		}
	}
	if len(g.o.Compressors) > 0 {
		total := map[string]compress.CodingStats{}
		for _, comp := range g.o.Compressors {
			for coding, s := range comp.Stats() {
				t := total[coding]
				t.Responses += s.Responses
				t.BytesIn += s.BytesIn
				t.BytesOut += s.BytesOut
				total[coding] = t
			}
		}
		for coding, s := range total {
			emit(compResponsesDesc, counter, float64(s.Responses), coding)
			emit(compInDesc, counter, float64(s.BytesIn), coding)
			emit(compOutDesc, counter, float64(s.BytesOut), coding)
		}
	}
	if g.o.WebSocket != nil {
		for route, s := range g.o.WebSocket() {
			emit(wsOpenDesc, gauge, float64(s.Open), route)
			emit(wsUpgradedDesc, counter, float64(s.Upgraded), route)
			emit(wsRejectedDesc, counter, float64(s.Rejected), route)
			emit(wsBytesDesc, counter, float64(s.BytesToUpstream), route, "to_upstream")
			emit(wsBytesDesc, counter, float64(s.BytesToClient), route, "to_client")
		}
	}
	if g.o.InFlight != nil {
		for route, n := range g.o.InFlight() {
			emit(routeInFlightDesc, gauge, float64(n), route)
		}
	}
	if g.o.Limits != nil {
		for route, s := range g.o.Limits() {
			emit(limRateLimitedDesc, counter, float64(s.RateLimited), route)
			emit(limKeysDesc, gauge, float64(s.RateLimitKeys), route)
			emit(limInFlightDesc, gauge, float64(s.InFlight), route)
			emit(limQueuedDesc, gauge, float64(s.Queued), route)
			emit(limShedDesc, counter, float64(s.Shed), route, "full")
			emit(limShedDesc, counter, float64(s.QueueTimeouts), route, "queue_timeout")
		}
	}
}

// mergeTargets makes one upstream's view of each target URL, should it
// list one twice (balance refuses that today, but a series collected
// twice fails the whole scrape): health of either, figures summed. A
// later generation's view then replaces (health) or adds to it.
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
				// The address is as open as its most open breaker.
				if breakerRank[t.Breaker] > breakerRank[o.Breaker] {
					o.Breaker = t.Breaker
				}
				o.BreakerOpened += t.BreakerOpened
				continue next // one pool per address: its connections are counted once
			}
		}
		out = append(out, t)
	}
	return out
}

var (
	breakerStates = [...]string{balance.BreakerClosed, balance.BreakerHalfOpen, balance.BreakerOpen}
	breakerRank   = map[string]int{balance.BreakerClosed: 1, balance.BreakerHalfOpen: 2, balance.BreakerOpen: 3}
)

var (
	upBreakerDesc = prometheus.NewDesc("gateway_upstream_breaker_state",
		"1 for the circuit breaker state (closed, half-open, open) the target is in, 0 for the others; absent without circuit_breaker.",
		[]string{"upstream", "target", "state"}, nil)
	upBreakerOpenedDesc = prometheus.NewDesc("gateway_upstream_breaker_opened_total",
		"Times the target's circuit breaker opened, failed half-open probes included.",
		[]string{"upstream", "target"}, nil)
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

	compResponsesDesc = prometheus.NewDesc("gateway_compress_responses_total",
		`Responses encoded, by coding (br, zstd, gzip), or decoded for clients that accept no coding ("identity-decoded").`,
		[]string{"coding"}, nil)
	compInDesc = prometheus.NewDesc("gateway_compress_bytes_in_total",
		"Bytes before encoding (or decoding), by coding.", []string{"coding"}, nil)
	compOutDesc = prometheus.NewDesc("gateway_compress_bytes_out_total",
		"Bytes after encoding (or decoding), by coding.", []string{"coding"}, nil)

	wsOpenDesc = prometheus.NewDesc("gateway_websocket_connections",
		"WebSocket tunnels open now, by route.", []string{"route"}, nil)
	wsUpgradedDesc = prometheus.NewDesc("gateway_websocket_upgrades_total",
		"WebSocket tunnels opened, by route.", []string{"route"}, nil)
	wsRejectedDesc = prometheus.NewDesc("gateway_websocket_rejected_total",
		"Upgrade requests refused at the route's max_connections, by route.", []string{"route"}, nil)
	wsBytesDesc = prometheus.NewDesc("gateway_websocket_bytes_total",
		"Bytes carried by WebSocket tunnels after the handshake, by route and direction (to_upstream, to_client).",
		[]string{"route", "direction"}, nil)

	limRateLimitedDesc = prometheus.NewDesc("gateway_rate_limited_total",
		"Requests answered 429 by the route's rate limit, by route.", []string{"route"}, nil)
	limKeysDesc = prometheus.NewDesc("gateway_rate_limit_keys",
		"Client keys the route's rate limiter tracks now, by route.", []string{"route"}, nil)
	routeInFlightDesc = prometheus.NewDesc("gateway_route_requests_in_flight", "Client requests in progress, by route (from routing to the end of the response).", []string{"route"}, nil)
	limInFlightDesc   = prometheus.NewDesc("gateway_upstream_in_flight",
		"Requests holding a concurrency slot of the route now, by route.", []string{"route"}, nil)
	limQueuedDesc = prometheus.NewDesc("gateway_upstream_queued",
		"Requests waiting for a concurrency slot of the route now, by route.", []string{"route"}, nil)
	limShedDesc = prometheus.NewDesc("gateway_shed_total",
		"Requests answered 503 by the route's concurrency limit, by route and reason (full, queue_timeout).",
		[]string{"route", "reason"}, nil)

	genDescs = []*prometheus.Desc{
		upErrorsDesc, upRetriesDesc, upHealthyDesc, upInFlightDesc, upConnsDesc, upBreakerDesc, upBreakerOpenedDesc,
		compResponsesDesc, compInDesc, compOutDesc,
		wsOpenDesc, wsUpgradedDesc, wsRejectedDesc, wsBytesDesc,
		limRateLimitedDesc, limKeysDesc, routeInFlightDesc, limInFlightDesc, limQueuedDesc, limShedDesc,
	}
)

var (
	cacheRouteDescs = [...]*prometheus.Desc{
		prometheus.NewDesc("gateway_cache_hits_total", "Requests served fresh from the cache, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_stale_hits_total", "Requests served stale from the cache (stale-while-revalidate, max-stale), by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_misses_total", "Requests the cache fetched from the origin with nothing stored to revalidate, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_revalidations_total", "Requests the cache forwarded to revalidate a stored response, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_passes_total", "Requests forwarded around the cache (hit-for-pass, no-store, preconditions), by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_stores_total", "Responses stored, by route.", []string{"route"}, nil),
		prometheus.NewDesc("gateway_cache_hit_bytes_total", "Body bytes sent to clients from stored responses (bytes the origin did not send), by route.", []string{"route"}, nil),
	}
	cacheBytesDesc     = prometheus.NewDesc("gateway_cache_bytes", "Bytes of stored responses (keys, headers, bodies).", nil, nil)
	cacheMaxBytesDesc  = prometheus.NewDesc("gateway_cache_max_bytes", "The cache's max_size.", nil, nil)
	cacheEntriesDesc   = prometheus.NewDesc("gateway_cache_entries", "Stored objects.", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("gateway_cache_evictions_total", "Objects evicted to make room.", nil, nil)
	cacheDropsDesc     = prometheus.NewDesc("gateway_cache_admission_drops_total", "Responses the store's admission policy refused.", nil, nil)
	// Every reason is exported, zeros too, so that a rate over a reason
	// that just started exists from its first response.
	cacheNotStoredDesc = prometheus.NewDesc("gateway_cache_not_stored_total", "Responses of caching routes not stored, by route and reason (the Cache-Status detail token).", []string{"route", "reason"}, nil)
)

// cacheCollector reads the store SetCache gave; nothing before that.
// Its counters are the store's own, which reloads keep.
type cacheCollector struct{ m *Metrics }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cacheRouteDescs {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{cacheBytesDesc, cacheMaxBytesDesc, cacheEntriesDesc, cacheEvictionsDesc, cacheDropsDesc, cacheNotStoredDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	cc := c.m.cache.Load()
	if cc == nil {
		return
	}
	total, routes := cc.Stats()
	for name, s := range routes {
		for i, v := range [...]uint64{s.Hits, s.StaleHits, s.Misses, s.Revalidations, s.Passes, s.Stores, s.HitBytes} {
			ch <- prometheus.MustNewConstMetric(cacheRouteDescs[i], prometheus.CounterValue, float64(v), name)
		}
		for reason, v := range s.NotStored {
			ch <- prometheus.MustNewConstMetric(cacheNotStoredDesc, prometheus.CounterValue, float64(v), name, reason)
		}
	}
	ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(total.BytesUsed))
	ch <- prometheus.MustNewConstMetric(cacheMaxBytesDesc, prometheus.GaugeValue, float64(total.MaxBytes))
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(total.Entries))
	ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(total.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheDropsDesc, prometheus.CounterValue, float64(total.AdmissionDrops))
}
