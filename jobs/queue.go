package jobs

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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
	MaxBodySize    int64 // the route's request body limit
	// The credentials that own a job: the Authorization field, unless
	// CredentialHeader or CredentialCookie names another.
	CredentialHeader string
	CredentialCookie string
	// Callbacks: the hosts a Callback-Url may name (none: callbacks are
	// refused), and the HMAC-SHA256 key that signs them.
	CallbackHosts  []string
	CallbackSecret []byte
}

// Queue accepts jobs for async routes, runs them, and answers for them.
type Queue struct{}

// New returns a queue over o.Store; it runs nothing until a route is
// registered and SetRunner is called.
func New(o Options) (*Queue, error) { return nil, errors.New("jobs: not implemented") }

// Route registers (or, on a reload, updates) an async route and returns
// its middleware: a request the route's mode selects is queued and
// answered 202; others, and a job's own attempts, pass through.
func (q *Queue) Route(o RouteOptions) (func(http.Handler) http.Handler, error) {
	return nil, errors.New("jobs: not implemented")
}

// Wrap serves the jobs prefix (status, result, cancel) before next
// (routing) sees the request.
func (q *Queue) Wrap(next http.Handler) http.Handler { return next }

// SetRunner sets the handler attempts are sent through: the current
// generation's routed handler (a reload sets the new one).
func (q *Queue) SetRunner(h http.Handler) {}

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

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats { return Stats{} }

// Shutdown stops claiming jobs and waits for the running attempts until
// ctx ends; what is still queued stays in the store for the next start
// (or another replica).
func (q *Queue) Shutdown(ctx context.Context) error { return nil }

// Close stops everything at once and closes the store.
func (q *Queue) Close() error { return nil }
