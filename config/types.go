package config

import "time"

// Config is the whole of gateway.yaml after defaults are applied and
// every value is validated. Fields keep the YAML names in their tags; the
// loader reports problems by those names (routes[2].timeout), not by Go's.
type Config struct {
	// ShutdownGrace bounds how long in-flight requests may run after
	// SIGTERM or SIGINT before the gateway exits.
	ShutdownGrace Duration `yaml:"shutdown_grace" json:"shutdown_grace"`
	// TrustedProxies are the peers (CIDRs or single addresses) whose
	// X-Forwarded-* and X-Request-Id headers are kept; from any other
	// peer those headers are dropped and set anew.
	TrustedProxies []string            `yaml:"trusted_proxies" json:"trusted_proxies"`
	Listeners      []Listener          `yaml:"listeners" json:"listeners"`
	Admin          Admin               `yaml:"admin" json:"admin"`
	Upstreams      map[string]Upstream `yaml:"upstreams" json:"upstreams"`
	// Cache is the response store that routes with caching share.
	Cache Cache `yaml:"cache" json:"cache"`
	// Batch is the batching endpoint; it is off unless Batch.Enabled.
	Batch  Batch   `yaml:"batch" json:"batch"`
	Routes []Route `yaml:"routes" json:"routes"`
	// Jobs is the queue of the async routes (see jobs.go).
	Jobs Jobs `yaml:"jobs" json:"jobs"`
	Log  Log  `yaml:"log" json:"log"`
	// AccessLog is the log of client requests, one line each.
	AccessLog AccessLog `yaml:"access_log" json:"access_log"`
	// ServerTiming adds a Server-Timing header to every response with
	// the gateway's and the upstream's time.
	ServerTiming bool `yaml:"server_timing" json:"server_timing"`
	// MemoryProfile says which the process favours when memory and CPU
	// trade against each other: MemorySidecar (a small resident set)
	// or MemoryEdge (less CPU per request). It sets GCHeapFloor's
	// default and how eagerly an idle process returns memory.
	MemoryProfile string `yaml:"memory_profile" json:"memory_profile"`
	// GCHeapFloor is how much the heap may grow before Go's garbage
	// collector runs again, while GOGC alone would allow less (see
	// package gcfloor); 0 leaves Go's pacing as it is. Its default is
	// MemoryProfile's; set, it overrides the profile's.
	GCHeapFloor Size `yaml:"gc_heap_floor" json:"gc_heap_floor"`

	// File is the path the config was loaded from, for messages.
	File string `yaml:"-" json:"-"`
}

// Log configures the gateway's own log (the access log is AccessLog).
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug, info, warn, error
	Format string `yaml:"format" json:"format"` // text or json
}

// AccessLog configures the access log: one line per client request
// (request id, client, method, host, path, status, bytes, duration,
// route, upstream target and time, cache outcome, content encoding).
type AccessLog struct {
	// Enabled defaults to true.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Format is text (one short line per request, for a person at a
	// terminal; the default) or json (every field, for log pipelines).
	Format string `yaml:"format" json:"format"`
	// Output is stdout, stderr or a file path (appended to, created if
	// missing).
	Output string `yaml:"output" json:"output"`
}

// Listener is one socket that clients connect to.
type Listener struct {
	Address string `yaml:"address" json:"address"`
	// TLS, when cert_file and key_file are set, or acme, serves HTTPS
	// with HTTP/2 negotiated by ALPN.
	TLS TLS `yaml:"tls" json:"tls"`
	// H2C accepts HTTP/2 without TLS, by prior knowledge (an "Upgrade:
	// h2c" request is served as HTTP/1.1, as net/http does).
	H2C bool `yaml:"h2c" json:"h2c"`
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// ReadTimeout is the longest pause between two reads of a request
	// body (like nginx's client_body_timeout), so a slow upload may
	// run long but a stalled one is cut.
	ReadTimeout Duration `yaml:"read_timeout" json:"read_timeout"`
	// WriteTimeout is the longest a write of the response may block
	// (like nginx's send_timeout).
	WriteTimeout Duration `yaml:"write_timeout" json:"write_timeout"`
	// IdleTimeout closes a keep-alive connection that carries no request.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxHeaderBytes limits the request line and headers.
	MaxHeaderBytes Size `yaml:"max_header_bytes" json:"max_header_bytes"`
	// HTTP3, on a TLS listener, also serves HTTP/3 over QUIC on the same
	// port (UDP) and advertises it in Alt-Svc. The timeouts above apply
	// to it too: read_header_timeout bounds the QUIC handshake,
	// idle_timeout a connection without requests.
	HTTP3 bool `yaml:"http3" json:"http3"`
	// HTTP3MaxStreams is how many requests one HTTP/3 connection may have
	// in flight (its concurrent bidirectional streams), as HTTP/2's
	// fixed 250; HTTP3MaxConnections caps the QUIC connections open at
	// once, handshakes included. Both apply with HTTP3 only.
	HTTP3MaxStreams     int `yaml:"http3_max_streams" json:"http3_max_streams"`
	HTTP3MaxConnections int `yaml:"http3_max_connections" json:"http3_max_connections"`
}

// TLS names a certificate and key in PEM files, or has them obtained
// from an ACME CA (ACME); not both.
type TLS struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
	// ACME, when set, obtains and renews the listener's certificates
	// from an ACME CA (see package acme and docs/operations.md).
	ACME *ACME `yaml:"acme" json:"acme,omitempty"`
}

// ACME is where and how a TLS listener's certificates are obtained.
type ACME struct {
	// Email is the ACME account's contact (optional).
	Email string `yaml:"email" json:"email"`
	// Domains get a certificate each, obtained at start and renewed
	// ahead of expiry. A reload may add or remove names.
	Domains []string `yaml:"domains" json:"domains"`
	// CA is the CA's directory URL (default Let's Encrypt's production;
	// "letsencrypt-staging" names its staging one).
	CA string `yaml:"ca" json:"ca"`
	// CARoot is a PEM file of the roots trusted for the CA's directory
	// (HTTPS), for a private or test CA; empty: the system's.
	CARoot string `yaml:"ca_root" json:"ca_root"`
	// Storage is the directory certificates, keys and the account are
	// kept in (0700; files 0600). Replicas may share it.
	Storage string `yaml:"storage" json:"storage"`
	// EAB is the external account binding a CA may require.
	EAB *ACMEEAB `yaml:"eab" json:"eab,omitempty"`
	// Challenges offered to the CA: http-01 (needs http_address) and
	// tls-alpn-01 (on the listener itself). Default: both when
	// http_address is set, else tls-alpn-01.
	Challenges []string `yaml:"challenges" json:"challenges"`
	// HTTPAddress is a cleartext listener (":80") that answers HTTP-01
	// challenges and redirects every other request to HTTPS. Empty: none.
	HTTPAddress string `yaml:"http_address" json:"http_address"`
	// OnDemand, when set, gives a name that arrives by SNI a certificate
	// at its first handshake, if the ask URL approves it. Off by default.
	OnDemand *ACMEOnDemand `yaml:"on_demand" json:"on_demand,omitempty"`
}

// ACMEEAB is an external account binding: the key id and the base64url
// MAC key the CA gave.
type ACMEEAB struct {
	KeyID  string `yaml:"key_id" json:"key_id"`
	MACKey string `yaml:"mac_key" json:"mac_key"`
}

// ACMEOnDemand are the gates before the CA for names not in domains.
type ACMEOnDemand struct {
	// Ask is the operator's URL, asked GET ?domain=NAME; 2xx approves.
	Ask string `yaml:"ask" json:"ask"`
	// AskTimeout bounds the ask (default 10s).
	AskTimeout Duration `yaml:"ask_timeout" json:"ask_timeout"`
	// Rate is how fast new on-demand certificates may be asked for
	// ("10/m", default), and Burst how many at once (default 10).
	Rate  Rate `yaml:"rate" json:"rate"`
	Burst int  `yaml:"burst" json:"burst"`
}

// ACME challenge names, as challenges lists them.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// LetsEncryptStaging is the ca value that names Let's Encrypt's staging
// directory.
const LetsEncryptStaging = "letsencrypt-staging"

// Directories of Let's Encrypt, the default CA and its staging.
const (
	LetsEncryptDirectory        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingDirectory = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Admin is the operator's listener: health, readiness, config.
type Admin struct {
	// Address defaults to 127.0.0.1:9090. A non-loopback address is
	// refused unless Token is set. The value "off" disables the admin
	// listener (see Admin.Enabled).
	Address string `yaml:"address" json:"address"`
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string `yaml:"token" json:"token"`
	// HealthAddress, when set, is a second listener that serves only
	// GET /healthz and /readyz, without the token, on any address: for
	// probes from outside the host (a kubelet), which cannot present
	// the admin token without writing it into the pod spec. Nothing it
	// serves is secret or changes state. Empty: no such listener.
	HealthAddress string `yaml:"health_address" json:"health_address"`
	// PathPrefix, when set (e.g. "/ops"), puts every admin endpoint
	// under it (/ops/ui/, /ops/metrics, /ops/api/v1/...), for a front
	// proxy that forwards the prefix unchanged; other paths are 404. It
	// starts with "/" and has no trailing slash. Empty or "/": none.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix"`
}

// Upstream is a named group of backend targets sharing one pooled
// transport.
type Upstream struct {
	// Targets are base URLs: http://host:port or https://host:port.
	Targets []string `yaml:"targets" json:"targets"`
	// Protocol is http1, h2 (over TLS), h2c (prior knowledge) or auto
	// (HTTP/2 when TLS ALPN offers it, else HTTP/1.1).
	Protocol string `yaml:"protocol" json:"protocol"`
	// Balance is round_robin, least_requests or hash.
	Balance string `yaml:"balance" json:"balance"`
	// HashOn is the key for balance: hash: "path", "header:NAME" or
	// "cookie:NAME".
	HashOn string `yaml:"hash_on" json:"hash_on"`

	// MaxConnsPerTarget caps the connections to one target (0: no cap).
	MaxConnsPerTarget int `yaml:"max_conns_per_target" json:"max_conns_per_target"`
	// MaxIdlePerTarget is how many idle keep-alive connections are kept.
	MaxIdlePerTarget int      `yaml:"max_idle_per_target" json:"max_idle_per_target"`
	IdleConnTimeout  Duration `yaml:"idle_conn_timeout" json:"idle_conn_timeout"`
	DialTimeout      Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for the upstream's headers
	// (0: only the route timeout applies).
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout" json:"response_header_timeout"`

	TLS         UpstreamTLS `yaml:"tls" json:"tls"`
	HTTP2       HTTP2       `yaml:"http2" json:"http2"`
	HealthCheck HealthCheck `yaml:"health_check" json:"health_check"`
	// Retry lets an idempotent request that failed before any byte was
	// sent be retried once on another target.
	Retry *bool `yaml:"retry" json:"retry"`
	// CircuitBreaker, when present, opens a failing target so it is
	// skipped until a probe succeeds (see limits.go).
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
}

// UpstreamTLS configures how the gateway talks TLS to the targets.
type UpstreamTLS struct {
	CAFile             string `yaml:"ca_file" json:"ca_file"`
	ServerName         string `yaml:"server_name" json:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// HTTP2 tunes the HTTP/2 client connections.
type HTTP2 struct {
	// ReadIdleTimeout sends a ping when nothing was read for this long.
	ReadIdleTimeout Duration `yaml:"read_idle_timeout" json:"read_idle_timeout"`
	// PingTimeout closes the connection when a ping is not answered.
	PingTimeout Duration `yaml:"ping_timeout" json:"ping_timeout"`
}

// HealthCheck is passive (failures in real traffic) and optionally
// active (a GET at an interval).
type HealthCheck struct {
	// MaxFails consecutive failures take a target out (0 disables).
	MaxFails int `yaml:"max_fails" json:"max_fails"`
	// CoolDown is the longest a failed target stays out: cool-downs in
	// a row last 1s, 2s, 4s, ... up to it (see package balance).
	CoolDown Duration `yaml:"cool_down" json:"cool_down"`
	// Path enables active checks: GET Path on each target every
	// Interval; a 2xx or 3xx within Timeout is healthy and brings a
	// target that failed back at once.
	Path     string   `yaml:"path" json:"path"`
	Interval Duration `yaml:"interval" json:"interval"`
	Timeout  Duration `yaml:"timeout" json:"timeout"`
}

// Route sends matching requests to an upstream.
type Route struct {
	// Name labels the route in logs; it defaults to "route<N>".
	Name string `yaml:"name" json:"name"`
	// Hosts match the request host exactly, or "*.example.com" for any
	// subdomain. Empty matches every host.
	Hosts []string `yaml:"hosts" json:"hosts"`
	// Path is a prefix; "/" matches everything.
	Path string `yaml:"path" json:"path"`
	// Methods, when set, limit the route to these methods.
	Methods  []string `yaml:"methods" json:"methods"`
	Upstream string   `yaml:"upstream" json:"upstream"`
	// StripPrefix removes Path from the request path before proxying.
	StripPrefix bool `yaml:"strip_prefix" json:"strip_prefix"`
	// Timeout bounds the whole upstream exchange.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// MaxBodySize limits the request body; over it gets 413.
	MaxBodySize Size `yaml:"max_body_size" json:"max_body_size"`
	// Batchable lets items of a batch (see Batch) call this route.
	Batchable bool `yaml:"batchable" json:"batchable"`
	// Allow0RTT serves the route's safe requests (GET, HEAD, OPTIONS,
	// TRACE) that arrive over HTTP/3 in 0-RTT early data, which an
	// attacker can replay; without it, and for other methods always,
	// such a request is answered 425 Too Early (RFC 8470) and the client
	// sends it again after the handshake.
	Allow0RTT bool `yaml:"allow_0rtt" json:"allow_0rtt"`
	// Composite, when set, makes the route answer with the JSON bodies
	// of other requests (its parts) instead of proxying to an upstream;
	// Path may then hold {name} segments.
	Composite *RouteComposite `yaml:"composite" json:"composite,omitempty"`
	// Cache configures the shared cache for this route; it is off
	// unless Cache.Enabled is set.
	Cache RouteCache `yaml:"cache" json:"cache"`
	// Compress configures response compression for this route; it is
	// off unless Compress.Enabled is set.
	Compress RouteCompress `yaml:"compress" json:"compress"`
	// WebSocket bounds the route's WebSocket (HTTP/1.1 Upgrade)
	// tunnels, which pass through unless the upstream refuses them.
	WebSocket RouteWebSocket `yaml:"websocket" json:"websocket"`
	// RateLimit, when present, limits requests per client (429 over
	// it); Concurrency bounds the requests at the upstream at once (503
	// beyond its queue). See limits.go.
	RateLimit   *RouteRateLimit  `yaml:"rate_limit" json:"rate_limit,omitempty"`
	Concurrency RouteConcurrency `yaml:"concurrency" json:"concurrency"`
	// Async, when present, queues the route's requests and answers 202
	// Accepted at once (see jobs.go).
	Async *RouteAsync `yaml:"async" json:"async,omitempty"`
}

// RouteWebSocket limits one route's WebSocket tunnels: after the
// upstream's 101 the gateway splices the connections and only counts
// bytes, so these are the knobs there are.
type RouteWebSocket struct {
	// MaxConnections caps the route's concurrent tunnels, handshakes in
	// progress included; over it the handshake gets 503 without
	// reaching the upstream (0: no cap).
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// IdleTimeout closes a tunnel that carried no byte in either
	// direction for this long (0: never).
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
}

// Cache is the store shared by every route that caches.
type Cache struct {
	// MaxSize bounds the bytes of stored responses (key, headers and
	// body) across all routes.
	MaxSize Size `yaml:"max_size" json:"max_size"`
	// MaxObjectSize is the largest response stored; a larger one
	// streams through to the client and is not stored.
	MaxObjectSize Size `yaml:"max_object_size" json:"max_object_size"`
	// Shared, when present, puts a tier on Redis under the memory one,
	// shared by every gateway process that names the same Redis (see
	// shared.go). Absent: this process caches in its memory only.
	Shared *CacheShared `yaml:"shared" json:"shared,omitempty"`
}

// RouteCache is one route's caching: which responses are stored (RFC
// 9111 shared-cache rules) and how requests map to stored entries.
type RouteCache struct {
	// Enabled stores the route's cacheable GET and HEAD responses.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// IgnoreParams are query parameters left out of the key: exact
	// names, or prefixes written with a trailing "*" ("utm_*").
	IgnoreParams []string `yaml:"ignore_params" json:"ignore_params"`
	// KeyHeaders are request headers whose values join the key.
	KeyHeaders []string `yaml:"key_headers" json:"key_headers"`
	// KeyCookies are cookies whose values join the key.
	KeyCookies []string `yaml:"key_cookies" json:"key_cookies"`
	// AllowSetCookie stores responses that carry Set-Cookie, which are
	// otherwise passed through since they are usually per user.
	AllowSetCookie bool `yaml:"allow_set_cookie" json:"allow_set_cookie"`
	// HeuristicMax caps heuristic freshness (10% of the time since
	// Last-Modified) for responses without explicit freshness; 0
	// disables heuristic freshness.
	HeuristicMax Duration `yaml:"heuristic_max" json:"heuristic_max"`
	// StaleWhileRevalidate serves a stale response this long while it
	// is refreshed in the background, when the response names no
	// window of its own (RFC 5861).
	StaleWhileRevalidate Duration `yaml:"stale_while_revalidate" json:"stale_while_revalidate"`
	// StaleIfError serves a stale response this long when the origin
	// fails, when the response names no window of its own (RFC 5861).
	StaleIfError Duration `yaml:"stale_if_error" json:"stale_if_error"`
	// Grace serves a stale response this long past its freshness when
	// the origin is unreachable, times out, cuts a response short or
	// answers 500, 502, 503 or 504, though the response named no
	// stale-if-error; never one whose directives forbid it
	// (must-revalidate, proxy-revalidate, no-cache, s-maxage). Entries
	// are kept this long past their freshness for it. 0 turns it off.
	Grace Duration `yaml:"grace" json:"grace"`
	// HitForPass remembers a key whose response was uncacheable this
	// long, so its requests go straight to the origin instead of
	// queueing behind one another (0: never remembered).
	HitForPass Duration `yaml:"hit_for_pass" json:"hit_for_pass"`
	// LockTimeout is the longest a request waits for a concurrent fetch
	// of the same key before it goes to the origin itself.
	LockTimeout Duration `yaml:"lock_timeout" json:"lock_timeout"`
	// TargetedField names a response field of the RFC 9213 kind
	// ("Gateway-Cache-Control") whose directives, when valid, decide
	// what this route's cache stores and for how long, before
	// CDN-Cache-Control and Cache-Control. Empty: CDN-Cache-Control only.
	TargetedField string `yaml:"targeted_field" json:"targeted_field"`
	// StripTargeted removes CDN-Cache-Control and TargetedField from
	// the route's responses instead of passing them on.
	StripTargeted bool `yaml:"strip_targeted" json:"strip_targeted"`
	// Slice, when set, caches and serves the route's GET and HEAD
	// responses in aligned byte ranges of this size fetched from the
	// origin with Range, each stored on its own: large files are cached
	// and served by range without being held whole. At most
	// cache.max_object_size; 0 (the default) turns it off.
	Slice Size `yaml:"slice" json:"slice"`
}

// RouteCompress is one route's response compression: which responses
// are compressed, with which codings and how hard.
type RouteCompress struct {
	// Enabled compresses eligible responses for clients that accept
	// gzip, br or zstd, and decodes upstream-compressed ones for
	// clients that accept none of them.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Encodings are the codings offered, in preference order: br, zstd
	// and gzip, in any order, each at most once.
	Encodings []string `yaml:"encodings" json:"encodings"`
	// StreamLevel is fastest, default or best, for responses compressed
	// as they stream through.
	StreamLevel string `yaml:"stream_level" json:"stream_level"`
	// CachedLevel is the level for cached objects, compressed once per
	// encoding and served many times.
	CachedLevel string `yaml:"cached_level" json:"cached_level"`
	// MinSize: responses whose Content-Length is smaller are sent as
	// they are; 0 compresses any size. A response of unknown length is
	// compressed.
	MinSize Size `yaml:"min_size" json:"min_size"`
	// Types is the MIME allowlist ("application/json", "text/*",
	// "application/*+json"); empty means the built-in list.
	Types []string `yaml:"types" json:"types"`
}

// Batch is the batching endpoint: a POST of many requests answered in
// one response, each request served as if sent alone.
type Batch struct {
	// Enabled serves the endpoint at Path on every listener and host.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Path takes batches before routing, so no route serves it.
	Path string `yaml:"path" json:"path"`
	// MaxItems is the most requests in one batch (over: 413).
	MaxItems int `yaml:"max_items" json:"max_items"`
	// MaxBodySize bounds the batch request body (over: 413).
	MaxBodySize Size `yaml:"max_body_size" json:"max_body_size"`
	// MaxResponseSize bounds each item's response body; a larger one
	// fails that item with 502.
	MaxResponseSize Size `yaml:"max_response_size" json:"max_response_size"`
	// MaxTotalResponseSize bounds the sum of one batch's item response
	// bodies, which are all held until the batch is answered; an item
	// whose body would take the batch over it fails with 502. At least
	// MaxResponseSize; by default 16MiB, or MaxResponseSize when larger.
	MaxTotalResponseSize Size `yaml:"max_total_response_size" json:"max_total_response_size"`
	// Concurrency is how many items of a batch run at once.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// ItemTimeout bounds each item from its start (0: only the route's
	// timeout); an item past it gets 504.
	ItemTimeout Duration `yaml:"item_timeout" json:"item_timeout"`
	// InheritHeaders are copied from the batch request to every item;
	// the batch request's value wins over an item's.
	InheritHeaders []string `yaml:"inherit_headers" json:"inherit_headers"`
}

// RouteComposite is a route answered from its parts: each is fetched
// concurrently through the gateway (its own route, limits and cache) and
// its JSON body placed under its key in one JSON object.
type RouteComposite struct {
	Parts []CompositePart `yaml:"parts" json:"parts"`
	// OnError is fail (any failed part answers 502 for the whole) or
	// omit (failed parts are left out and listed under "errors").
	OnError string `yaml:"on_error" json:"on_error"`
}

// CompositePart is one request of a composite route.
type CompositePart struct {
	// Key is the part's name in the response object.
	Key string `yaml:"key" json:"key"`
	// Path is the request path and query, with {name} references to the
	// route path's parameters: /orders?user={user}.
	Path string `yaml:"path" json:"path"`
}

// Duration is a time.Duration written as "1.5s", "250ms", "2m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as 512, "64KiB", "10MB", "1GiB".
type Size int64
