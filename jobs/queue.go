package jobs

import (
	"log/slog"
	"time"
)

// Defaults of RouteOptions' zero fields and of Options.Prefix.
const (
	DefaultPrefix         = "/_jobs/"
	DefaultConcurrency    = 4
	DefaultQueueDepth     = 1000
	DefaultMaxAttempts    = 3
	DefaultAttemptTimeout = 10 * time.Minute
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultResultLifetime = time.Hour
	DefaultMaxResultSize  = 16 << 20
	DefaultVisibility     = 5 * time.Minute
	DefaultMaxBodySize    = 10 << 20
)

// Modes of an async route.
const (
	ModePrefer = "prefer" // only requests with Prefer: respond-async
	ModeAlways = "always" // every request
)

// Options configure a Queue.
type Options struct {
	Store  Store
	Prefix string // where jobs are answered for; "" means DefaultPrefix
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject one (result
	// lifetimes, backoff).
	Now func() time.Time
	// Visibility is how long a claimed job may run without its worker
	// being heard of before another worker claims it again.
	Visibility time.Duration
}

// RouteOptions configure one async route.
type RouteOptions struct {
	Name           string
	Mode           string // ModePrefer or ModeAlways
	Concurrency    int    // attempts running at once
	QueueDepth     int    // jobs queued or running at most; past it 503
	MaxAttempts    int
	AttemptTimeout time.Duration
	Backoff        time.Duration // first retry's wait, doubled each time, with jitter
	MaxBackoff     time.Duration
	// RetryUnsafe retries methods that are not idempotent; otherwise
	// only idempotent methods and requests with an Idempotency-Key are.
	RetryUnsafe    bool
	ResultLifetime time.Duration
	MaxResultSize  int64
	MaxBodySize    int64 // the route's request body limit; 0 means DefaultMaxBodySize
	// The credentials that own a job: the Authorization field, unless
	// CredentialHeader or CredentialCookie names another.
	CredentialHeader string
	CredentialCookie string
	// Callbacks: the hosts a Callback-Url may name (none: callbacks are
	// refused), and the HMAC-SHA256 key that signs them.
	CallbackHosts  []string
	CallbackSecret []byte
}

// Stats are the queue's counters.
type Stats struct {
	Queued, Running                     int // now
	Succeeded, Failed, Cancelled        uint64
	Attempts, Retries, CallbackFailures uint64
	Rejected                            uint64 // 503: queue full
	// Histograms as Prometheus wants them: bounds in seconds, cumulative
	// counts, sum and count.
	WaitBounds, RunBounds []float64
	WaitCounts, RunCounts []uint64
	WaitSum, RunSum       float64
	WaitCount, RunCount   uint64
}
