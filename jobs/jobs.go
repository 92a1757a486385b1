// Package jobs runs long requests off the request path: an async route
// answers 202 Accepted at once, the request waits in a durable queue, a
// worker sends it upstream (retrying what may be retried), and the
// client polls the job's status and reads the result when it is ready
// (the asynchronous request-reply pattern).
//
// The queue is durable and at-least-once: an accepted job survives a
// crash. Its store is a single bbolt file under a data directory
// (BoltStore), or Redis Streams when the shared tier is configured
// (RedisStore), so that any replica may take the 202, run the job, or
// answer for it.
package jobs

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// States of a job.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Job is one accepted request and what became of it: the record a Store
// keeps. The request is kept as sent (hop-by-hop fields excepted) so that
// it is forwarded as a synchronous request would have been.
type Job struct {
	ID    string // 32 hex digits: 128 random bits
	Route string // the async route that accepted it

	// The request.
	Method string
	Host   string
	URI    string // path and query as received
	Header http.Header
	Body   []byte
	TLS    bool // received over TLS (the forwarded scheme)

	// Owner is the SHA-256 of the credentials that created the job (the
	// Authorization field, or the header or cookie the route names);
	// only a request with the same credentials sees the job.
	Owner []byte

	// Idempotency: the Idempotency-Key sent, and the fingerprint of the
	// method, path and body it was accepted with.
	IdempotencyKey string
	Fingerprint    []byte

	CallbackURL string

	State     string
	Attempts  int    // attempts started
	Status    int    // the last upstream status (0: none)
	Error     string // why the last attempt or the job failed
	Created   time.Time
	Started   time.Time // the last attempt's start
	Finished  time.Time
	NotBefore time.Time // a retry waits until then
	Expires   time.Time // after it the job answers 410 Gone

	// Result: the final upstream response's status and header; its body
	// is kept by the Store beside the record (ResultWriter / Result).
	ResultStatus int
	ResultHeader http.Header
	ResultSize   int64
}

// Errors of a Store.
var (
	ErrNotFound  = errors.New("jobs: no such job")
	ErrQueueFull = errors.New("jobs: queue full")
	ErrConflict  = errors.New("jobs: idempotency key used for another request")
)

// Store keeps jobs durably. Implementations: BoltStore, RedisStore.
type Store interface {
	// Enqueue stores j (State queued) unless the route's queue holds
	// depth jobs queued or running (ErrQueueFull). When j has an
	// IdempotencyKey already used on the route by the same Owner, it
	// returns the existing job instead (existing true), or ErrConflict
	// when that job's Fingerprint differs.
	Enqueue(ctx context.Context, j *Job, depth int) (got *Job, existing bool, err error)
	// Claim takes the next job of route that is queued and due (its
	// NotBefore passed), marks it running with Attempts+1, and returns
	// it; nil when there is none. A claimed job whose worker dies is
	// claimed again after visibility (at-least-once).
	Claim(ctx context.Context, route string, visibility time.Duration) (*Job, error)
	// Get returns the job with id, or ErrNotFound.
	Get(ctx context.Context, id string) (*Job, error)
	// Update stores j's new state (the worker's outcome of an attempt, a
	// retry's NotBefore, a cancellation).
	Update(ctx context.Context, j *Job) error
	// ResultWriter returns where the result body of id goes; the job is
	// updated (ResultSize) by the caller once it is closed.
	ResultWriter(ctx context.Context, id string) (ResultWriter, error)
	// Result opens the stored result body of id.
	Result(ctx context.Context, id string) (ResultReader, error)
	// Expire removes the jobs (and results) expired at now.
	Expire(ctx context.Context, now time.Time) (int, error)
	// Stats counts the jobs by state.
	Stats(ctx context.Context) (map[string]int, error)
	Close() error
}

// ResultWriter receives a result body; Abort discards it.
type ResultWriter interface {
	Write(p []byte) (int, error)
	Close() error
	Abort()
}

// ResultReader streams a stored result body.
type ResultReader interface {
	Read(p []byte) (int, error)
	Close() error
}
