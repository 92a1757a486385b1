package dashboard

import (
	"encoding/json"
	"time"
)

// The JSON the page reads. GET /api/v1/dashboard answers one Snapshot
// (Full: history and configuration included); GET
// /api/v1/dashboard/events streams Server-Sent Events: first an event
// "snapshot" with a full Snapshot, then at most one event "tick" per
// second whose data is a Snapshot without History and Config (the page
// appends Now to its own history). Every field is only ever added to;
// docs/dashboard.md describes them for people.

// Snapshot is the state of the gateway the page shows at one instant.
type Snapshot struct {
	// Time is when the sample was taken; IntervalSeconds the sampling
	// period (1).
	Time            time.Time `json:"time"`
	IntervalSeconds float64   `json:"interval_seconds"`
	// Full is true when History and Config are filled in.
	Full    bool        `json:"full"`
	Gateway GatewayInfo `json:"gateway"`
	// Now is the newest sample of the whole gateway; Routes the newest
	// per route, by route name, in configuration order.
	Now    Point        `json:"now"`
	Routes []RoutePoint `json:"routes"`
	// History holds the samples kept (at most HistoryLength, oldest
	// first) for the gateway and per route; only in a full snapshot.
	History *History `json:"history,omitempty"`
	// Cache is nil when no route caches.
	Cache     *CacheView     `json:"cache"`
	Upstreams []UpstreamView `json:"upstreams"`
	// Jobs is nil when no route is async; WebSocket nil before any
	// route has carried a tunnel.
	Jobs      *JobsView      `json:"jobs"`
	WebSocket *WebSocketView `json:"websocket"`
	// Config is the running configuration with its secrets redacted, as
	// GET /api/v1/config answers it; only in a full snapshot.
	Config json.RawMessage `json:"config,omitempty"`
}

// HistoryLength is how many one-second samples are kept: ten minutes.
const HistoryLength = 600

// GatewayInfo is the process and its configuration's state.
type GatewayInfo struct {
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Ready         bool      `json:"ready"`
	Draining      bool      `json:"draining"`
	Generation    uint64    `json:"config_generation"`
	LoadedAt      time.Time `json:"config_loaded_at"`
	// LastReload is the last reload tried (nil before any): when, whether
	// it was applied, and its summary or error.
	LastReload *ReloadView `json:"last_reload"`
}

// ReloadView is one reload's outcome.
type ReloadView struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Summary string    `json:"summary,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Point is one sample: rates over the last interval and gauges at its
// end, for the whole gateway or one route. Totals are the cumulative
// counters the rates come from, exactly as /metrics has them at that
// instant, so the page and /metrics can be compared.
type Point struct {
	// T is the sample's time in Unix milliseconds.
	T int64 `json:"t"`
	// Requests per second answered, and of them per second by cache
	// outcome (hit, stale, miss: fetched or revalidated, pass: went
	// forward around the cache) and errors (answers with a 5xx status).
	RPS   float64 `json:"rps"`
	Hit   float64 `json:"hit"`
	Stale float64 `json:"stale"`
	Miss  float64 `json:"miss"`
	Pass  float64 `json:"pass"`
	Error float64 `json:"error"`
	// Latency percentiles of the requests answered in the interval, in
	// milliseconds, estimated from gateway_request_duration_seconds'
	// buckets; 0 when none was answered.
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	// InFlight is requests in progress at the sample (gauge,
	// gateway_requests_in_flight); the gateway's only, 0 in a route's
	// point (requests are routed after they are counted in flight).
	InFlight float64 `json:"in_flight"`
	// Shed and RateLimited are per second: refused by concurrency
	// limits (gateway_shed_total) and by rate limits
	// (gateway_rate_limited_total).
	Shed        float64 `json:"shed"`
	RateLimited float64 `json:"rate_limited"`
	// Bytes saved per second: body bytes served from the cache (which
	// the origin did not send), and bytes compression took off responses
	// (bytes in − bytes out).
	CacheSavedBytes    float64 `json:"cache_saved_bytes"`
	CompressSavedBytes float64 `json:"compress_saved_bytes"`
	Totals             Totals  `json:"totals"`
}

// Totals are cumulative counters as /metrics shows them.
type Totals struct {
	Requests           uint64 `json:"requests"`             // gateway_requests_total
	Errors             uint64 `json:"errors"`               // gateway_requests_total, code 5xx
	Hits               uint64 `json:"hits"`                 // gateway_cache_hits_total
	StaleHits          uint64 `json:"stale_hits"`           // gateway_cache_stale_hits_total
	Misses             uint64 `json:"misses"`               // gateway_cache_misses_total + gateway_cache_revalidations_total
	Passes             uint64 `json:"passes"`               // gateway_cache_passes_total
	Shed               uint64 `json:"shed"`                 // gateway_shed_total
	RateLimited        uint64 `json:"rate_limited"`         // gateway_rate_limited_total
	CacheSavedBytes    uint64 `json:"cache_saved_bytes"`    // gateway_cache_hit_bytes_total
	CompressSavedBytes uint64 `json:"compress_saved_bytes"` // gateway_compress_bytes_in_total − _out_total, codings but identity-decoded (decoding saves nothing); the gateway's only
}

// RoutePoint is one route's newest sample.
type RoutePoint struct {
	Route string `json:"route"`
	Point
}

// History is the kept samples, oldest first.
type History struct {
	Gateway []Point            `json:"gateway"`
	Routes  map[string][]Point `json:"routes"`
}

// CacheView is the cache as the page's cache panel shows it.
type CacheView struct {
	BytesUsed int64  `json:"bytes_used"`
	MaxBytes  int64  `json:"max_bytes"`
	Entries   int64  `json:"entries"`
	Evictions uint64 `json:"evictions"`
	Purges    uint64 `json:"purges"`
	// Routes, by route name in configuration order, of the caching
	// routes only.
	Routes []CacheRouteView `json:"routes"`
	// Shared is the shared tier's state, nil without one.
	Shared *SharedView `json:"shared"`
}

// CacheRouteView is one caching route's cache figures.
type CacheRouteView struct {
	Route     string  `json:"route"`
	HitRatio  float64 `json:"hit_ratio"`
	Hits      uint64  `json:"hits"`
	StaleHits uint64  `json:"stale_hits"`
	Misses    uint64  `json:"misses"`
	Passes    uint64  `json:"passes"`
	Stores    uint64  `json:"stores"`
	// NotStored counts responses not stored by reason token, only the
	// reasons seen (count > 0), largest first.
	NotStored []ReasonCount `json:"not_stored"`
	// TopHits and TopMisses are the keys with the most hits and misses
	// since the page began watching (at most 10 each, largest first;
	// approximate counts from a bounded top-k sketch).
	TopHits   []KeyCount `json:"top_hits"`
	TopMisses []KeyCount `json:"top_misses"`
}

// ReasonCount is a not-stored reason and its count.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// KeyCount is a cache key (as a person reads it: method, host, path and
// query) and an approximate count.
type KeyCount struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// SharedView is the shared tier's state.
type SharedView struct {
	State   string `json:"state"`   // up, down or connecting
	Breaker string `json:"breaker"` // closed, open or half-open
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
	Errors  uint64 `json:"errors"`
}

// UpstreamView is one upstream; they are listed by name (the
// configuration's upstreams are a map, without an order).
type UpstreamView struct {
	Name    string       `json:"name"`
	Healthy bool         `json:"healthy"`
	Targets []TargetView `json:"targets"`
}

// TargetView is one target of an upstream.
type TargetView struct {
	URL string `json:"url"`
	// State sums the rest up for the page: "up", "down" (passive
	// cool-down, failing active check or open breaker) or "probing"
	// (half-open breaker, or a cool-down's probe).
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	// ActiveCheck is off, pending, passing or failing; LastCheck is when
	// the last active check ended (zero: none), LastError the last
	// failure seen, by a check or a request ("" none).
	ActiveCheck string    `json:"active_check"`
	LastCheck   time.Time `json:"last_check,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// Breaker is closed, half-open or open; "" without breakers.
	Breaker     string  `json:"breaker"`
	InFlight    int64   `json:"in_flight"`
	Connections int64   `json:"connections"` // pooled connections open
	P50Ms       float64 `json:"p50_ms"`      // upstream latency, last interval (the upstream's: the histogram is by upstream)
	P99Ms       float64 `json:"p99_ms"`
}

// JobsView is the async job queue.
type JobsView struct {
	Queued    int     `json:"queued"`
	Running   int     `json:"running"`
	Succeeded uint64  `json:"succeeded"`
	Failed    uint64  `json:"failed"`
	Cancelled uint64  `json:"cancelled"`
	Retries   uint64  `json:"retries"`
	Rejected  uint64  `json:"rejected"`
	WaitP50Ms float64 `json:"wait_p50_ms"`
	RunP50Ms  float64 `json:"run_p50_ms"`
}

// WebSocketView is the WebSocket tunnels, summed and per route.
type WebSocketView struct {
	Open     int64           `json:"open"`
	Upgraded uint64          `json:"upgraded"`
	Rejected uint64          `json:"rejected"`
	Routes   []WebSocketItem `json:"routes"`
}

// WebSocketItem is one route's tunnels.
type WebSocketItem struct {
	Route    string `json:"route"`
	Open     int64  `json:"open"`
	Upgraded uint64 `json:"upgraded"`
}
