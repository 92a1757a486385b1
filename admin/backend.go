package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
	"gateway/proxy/balance"
)

// Backend is the running gateway as the admin endpoints see it: what
// they report and what they act on. Each method answers for the config
// current when it is called and returns soon; the admin package turns
// the values into HTTP and JSON, so a Backend knows nothing of either.
// The gateway implements it on its app.App.
type Backend interface {
	// Status reports the process: version, start, drain and config
	// generation. Readiness comes from Ready.
	Status(ctx context.Context) Status
	// Ready reports whether the gateway should get traffic, with a
	// JSON-able detail (/readyz).
	Ready(ctx context.Context) (ready bool, detail any)
	// Config returns the effective config with its secrets redacted, as
	// a value that encodes to JSON.
	Config(ctx context.Context) any
	// Upstreams reports every upstream by name.
	Upstreams(ctx context.Context) map[string]UpstreamStatus
	// CacheStats returns the cache's totals and each cached route's
	// counters; ErrDisabled while no route caches.
	CacheStats(ctx context.Context) (CacheStats, error)
	// PurgeCache purges what p names (cache.ParsePurge checked it) and
	// returns how many entries it touched and, for none, why;
	// ErrDisabled while no route caches. An error wrapping
	// cache.ErrStore is the store's, with the count of what was done;
	// any other is the client's to fix.
	PurgeCache(ctx context.Context, p cache.Purge) (cache.PurgeResult, error)
	// CompressStats returns each compressing route's counters by coding;
	// ErrDisabled when no route compresses.
	CompressStats(ctx context.Context) (map[string]map[string]compress.CodingStats, error)
	// WebSocketStats returns each route's WebSocket counters by route
	// name.
	WebSocketStats(ctx context.Context) map[string]proxy.WSStats
	// JobStats returns the async routes' job queue counters; ErrDisabled
	// while no route is async.
	JobStats(ctx context.Context) (JobStats, error)
	// Certificates reports the certificates of the TLS listeners that
	// obtain them by ACME; ErrDisabled while no listener does.
	Certificates(ctx context.Context) (Certificates, error)
	// ExplainCache sends a GET of rawURL (an absolute http or https URL)
	// with header to the upstream of the caching route that takes it,
	// once, storing nothing, and says what the cache would do with the
	// answer and why. ErrDisabled: nothing caches; ErrNotFound: no
	// caching route takes the URL; another error: the upstream failed.
	ExplainCache(ctx context.Context, rawURL string, header http.Header) (cache.Explanation, error)
	// Health reports the state of what the gateway uses but serves
	// without, by name ("cache.shared": "up", "down" or "connecting"),
	// for /healthz; nil when there is none. None of it makes the
	// gateway unready.
	Health(ctx context.Context) map[string]string
	// Reload reads the config file again and, if it is valid, serves it.
	// On error the config before it keeps serving; the error's lines are
	// its problems.
	Reload(ctx context.Context) (ReloadResult, error)
}

// ErrDisabled is what a Backend returns for a feature the config does
// not turn on (a cache, compression).
var ErrDisabled = errors.New("admin: not enabled by the config")

// ErrNotFound is a Backend's error for something the request names that
// does not exist (a URL no caching route takes).
var ErrNotFound = errors.New("admin: not found")

// Status describes the process.
type Status struct {
	Version   string
	StartedAt time.Time
	// Draining is true from the start of a shutdown.
	Draining bool
	// Generation counts the configs served: 1 for the one the process
	// started with, one more for each successful reload.
	Generation uint64
	// LoadedAt is when the current config began to serve.
	LoadedAt time.Time
	// LastReload is the last reload tried, applied or not, however it
	// was asked for (the admin endpoints, SIGHUP, a watched file); nil
	// before any.
	LastReload *ReloadAttempt
}

// ReloadAttempt is one reload's outcome.
type ReloadAttempt struct {
	At time.Time
	// OK is true when the new config serves; Summary is then its
	// ReloadResult's, and Error, otherwise, why the old one still does.
	OK      bool
	Summary string
	Error   string
}

// UpstreamStatus is one upstream's health and its targets'.
type UpstreamStatus struct {
	// Healthy is true when at least one target can take traffic.
	Healthy bool
	// Targets are in configuration order.
	Targets []balance.TargetStatus
	// Breakers are the targets' circuit breakers in configuration
	// order; nil without breakers.
	Breakers []balance.BreakerState
}

// CacheStats are the cache's totals and each cached route's counters.
// The totals are the memory tier's; Shared is the shared tier's, nil
// without one.
type CacheStats struct {
	cache.Stats
	Routes map[string]cache.RouteStats `json:"routes"`
	Shared *SharedStats                `json:"shared,omitempty"`
}

// SharedStats are the shared cache tier's state and counters.
type SharedStats struct {
	State   string `json:"state"`   // up, down or connecting
	Breaker string `json:"breaker"` // closed, open or half-open
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
	// Errors counts failed operations by kind: timeout, connection,
	// redis, corrupt, breaker-open.
	Errors            map[string]uint64 `json:"errors"`
	BytesRead         uint64            `json:"bytes_read"`
	BytesWritten      uint64            `json:"bytes_written"`
	Writes            uint64            `json:"writes"`
	WritesDropped     uint64            `json:"writes_dropped"`
	LeasesTaken       uint64            `json:"leases_taken"`
	LeaseWaits        uint64            `json:"lease_waits"`
	LeaseTakeovers    uint64            `json:"lease_takeovers"`
	PurgesSent        uint64            `json:"purges_sent"`
	PurgesReceived    uint64            `json:"purges_received"`
	NotificationsLost uint64            `json:"notifications_lost"`
	Latency           SharedLatency     `json:"latency"`
}

// SharedLatency sums up the time of the shared tier's operations. P50
// and P99 are estimated from the histogram's buckets (0 before any
// operation).
type SharedLatency struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
}

// JobStats are the job queue's counters: jobs queued and running now,
// jobs finished by state, attempts, retries, requests refused because a
// queue was full, callbacks not delivered, and the time jobs waited for
// their first attempt and attempts ran.
type JobStats struct {
	Queued           int       `json:"queued"`
	Running          int       `json:"running"`
	Succeeded        uint64    `json:"succeeded"`
	Failed           uint64    `json:"failed"`
	Cancelled        uint64    `json:"cancelled"`
	Attempts         uint64    `json:"attempts"`
	Retries          uint64    `json:"retries"`
	Rejected         uint64    `json:"rejected"`
	CallbackFailures uint64    `json:"callback_failures"`
	Wait             JobTiming `json:"wait"`
	Run              JobTiming `json:"run"`
}

// JobTiming sums up one of the queue's times. P50 and P99 are estimated
// from the histogram's buckets (0 before any job).
type JobTiming struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
}

// ReloadResult describes a successful reload.
type ReloadResult struct {
	// Summary is one line for a person ("reloaded FILE: 3 routes, ...").
	Summary string
	// Generation is the generation now serving (see Status).
	Generation uint64
}

// Certificates are the ACME listeners' certificates and counters.
type Certificates struct {
	// Obtained and Renewed count certificates the CA issued to this
	// process, Failures the attempts that failed (each retry counts),
	// summed over the listeners.
	Obtained uint64 `json:"obtained"`
	Renewed  uint64 `json:"renewed"`
	Failures uint64 `json:"failures"`
	// Certificates has one entry per name of each listener: the
	// configured names, then the on-demand ones this process served.
	Certificates []Certificate `json:"certificates"`
}

// Certificate is the state of one name of one listener.
type Certificate struct {
	Listener string `json:"listener"` // the listener's address
	Name     string `json:"name"`
	OnDemand bool   `json:"on_demand"`
	// NotAfter is when the certificate served expires, and DaysLeft the
	// days until then (negative once expired); both absent while the
	// name has no certificate yet.
	NotAfter    time.Time `json:"not_after,omitzero"`
	DaysLeft    *float64  `json:"days_left,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	OCSPStapled bool      `json:"ocsp_stapled"`
	// Failures counts the name's failed attempts; LastError is the
	// latest's, until one succeeds.
	Failures    uint64    `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}
