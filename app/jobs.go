package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/redis/rueidis"

	"gateway/admin"
	"gateway/config"
	"gateway/jobs"
	"gateway/redistier"
)

// The job queue of the async routes: opened once, with the first config
// that has an async route, in Shared (as the cache is), kept across
// reloads with its running jobs, and closed when the App ends. Each
// async route's middleware comes from Queue.Route; the queue's own paths
// (jobs.prefix) are served before routing; its attempts go through the
// current generation's routed handler, observed, so they are logged and
// counted like client requests.

// jobsStore is the queue and what it was opened with, which only a
// restart changes.
type jobsStore struct {
	queue *jobs.Queue
	// store is bolt or redis (jobs.store with auto resolved).
	store string
}

// openJobs opens cfg's job store and queue: bbolt under jobs.data_dir,
// or Redis Streams in the shared tier's Redis when jobs.store resolves
// to redis. An error names the field whose value it is about.
func openJobs(cfg *config.Config, log *slog.Logger) (*jobsStore, error) {
	jlog := log.With("component", "jobs")
	kind := cfg.JobsStore()
	var (
		st  any
		err error
	)
	switch kind {
	case config.JobsStoreRedis:
		sh := cfg.Cache.Shared
		tc := sharedOptions(sh)
		if tc.TLS, err = sharedTLS(sh); err != nil {
			return nil, err
		}
		opt := redistier.ClientOption(tc)
		st, err = jobs.OpenRedis(jobs.RedisConfig{
			// Called again after a failure: Redis may be down at start,
			// as it may for the cache's tier.
			Connect: func() (rueidis.Client, error) { return rueidis.NewClient(opt) },
			Prefix:  sh.KeyPrefix + "jobs:",
			Logger:  jlog,
		})
		if err != nil {
			return nil, fmt.Errorf("jobs.store redis (cache.shared): %w", err)
		}
	default:
		dir := cfg.Jobs.DataDir
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("jobs.data_dir: cannot create %q: %w", dir, err)
		}
		path := filepath.Join(dir, "jobs.db")
		if st, err = jobs.OpenBolt(path); err != nil {
			return nil, fmt.Errorf("jobs.data_dir: %s: %w", path, err)
		}
	}
	store, err := asStore(st)
	if err != nil {
		return nil, err
	}
	q, err := jobs.New(jobs.Options{Store: store, Prefix: cfg.Jobs.Prefix, Logger: jlog, Visibility: cfg.Jobs.Visibility.D()})
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &jobsStore{queue: q, store: kind}, nil
}

// asStore is the opened store as the queue takes it. Both stores are
// Stores; a value that is not one is a programming error, reported
// rather than panicking at start.
func asStore(v any) (jobs.Store, error) {
	if s, ok := v.(jobs.Store); ok {
		return s, nil
	}
	if c, ok := v.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	return nil, fmt.Errorf("jobs: %T is not a job store", v)
}

// jobsChange says what of the jobs section changed from old to cur that
// only a restart applies; "" when nothing did. The queue takes its
// prefix and store when it opens, and a running queue's jobs stay where
// they were stored.
func jobsChange(old, cur *config.Config) string {
	switch {
	case old.Jobs.DataDir != cur.Jobs.DataDir:
		return "jobs.data_dir changed"
	case old.Jobs.Store != cur.Jobs.Store:
		return "jobs.store changed"
	case old.Jobs.Prefix != cur.Jobs.Prefix:
		return "jobs.prefix changed"
	case old.Jobs.Visibility != cur.Jobs.Visibility:
		return "jobs.visibility changed"
	}
	return ""
}

// asyncSlot is an async route's place among its middleware, filled by
// register once the rest of the build has succeeded: Queue.Route takes
// effect on the queue at once, which a reload that fails must not do.
type asyncSlot struct {
	route config.Route
	next  http.Handler // what the route's async middleware wraps
	h     http.Handler // the route's async middleware, around next
}

// wrap is the route's middleware: it keeps next for register.
func (s *asyncSlot) wrap(next http.Handler) http.Handler {
	s.next = next
	return s
}

// register registers the route with q and places its middleware.
func (s *asyncSlot) register(q *jobs.Queue) error {
	mw, err := q.Route(asyncOptions(s.route))
	if err != nil {
		return fmt.Errorf("route %s: async: %w", s.route.Name, err)
	}
	s.h = mw(s.next)
	return nil
}

func (s *asyncSlot) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// asyncOptions maps route r's async section; r.Async must be set.
func asyncOptions(r config.Route) jobs.RouteOptions {
	a := r.Async
	return jobs.RouteOptions{
		Name:             r.Name,
		Mode:             a.Mode,
		Concurrency:      a.Concurrency,
		QueueDepth:       a.QueueDepth,
		MaxAttempts:      a.MaxAttempts,
		AttemptTimeout:   a.AttemptTimeout.D(),
		Backoff:          a.Backoff.D(),
		MaxBackoff:       a.MaxBackoff.D(),
		RetryUnsafe:      a.RetryUnsafe,
		ResultLifetime:   a.ResultLifetime.D(),
		MaxResultSize:    int64(a.MaxResultSize),
		MaxBodySize:      int64(r.MaxBodySize),
		CredentialHeader: a.Credentials.Header,
		CredentialCookie: a.Credentials.Cookie,
		CallbackHosts:    slices.Clone(a.Callback.AllowedHosts),
		CallbackSecret:   []byte(a.Callback.Secret.Reveal()),
	}
}

// Jobs is the job queue; nil while no config has had an async route.
func (s *Shared) Jobs() *jobs.Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		return nil
	}
	return s.jobs.queue
}

// closeJobs closes the queue and its store, once; the running attempts
// are cut (Shutdown is what lets them end).
func (s *Shared) closeJobs() {
	s.mu.Lock()
	js := s.jobs
	s.jobs = nil
	s.mu.Unlock()
	if js != nil {
		if err := js.queue.Close(); err != nil {
			s.log.Warn("jobs: closing the queue", "err", err)
		}
	}
}

// runAttempt is the queue's runner: an attempt goes through the current
// generation's routed handler behind its observer, counted in flight on
// that generation as a client request is, so that a reload never closes
// the upstreams under a running attempt.
func (a *App) runAttempt(w http.ResponseWriter, r *http.Request) {
	g := a.acquire()
	defer a.release(g)
	g.runner.ServeHTTP(w, r)
}

// startJobs points the queue, if any, at the generation now serving.
func (a *App) startJobs() {
	if q := a.shared.Jobs(); q != nil {
		q.SetRunner(http.HandlerFunc(a.runAttempt))
	}
}

// shutdownJobs stops the queue claiming jobs and waits for the running
// attempts until ctx ends; what is still queued stays stored.
func (a *App) shutdownJobs(ctx context.Context) error {
	q := a.shared.Jobs()
	if q == nil {
		return nil
	}
	return q.Shutdown(ctx)
}

// JobStats returns the job queue's counters; admin.ErrDisabled when no
// route is async.
func (a *App) JobStats(context.Context) (admin.JobStats, error) {
	q := a.shared.Jobs()
	if q == nil || !a.gen.Load().cfg.Async() {
		return admin.JobStats{}, admin.ErrDisabled
	}
	s := q.Stats()
	return admin.JobStats{
		Queued:           s.Queued,
		Running:          s.Running,
		Succeeded:        s.Succeeded,
		Failed:           s.Failed,
		Cancelled:        s.Cancelled,
		Attempts:         s.Attempts,
		Retries:          s.Retries,
		Rejected:         s.Rejected,
		CallbackFailures: s.CallbackFailures,
		Wait:             timing(s.WaitBounds, s.WaitCounts, s.WaitSum, s.WaitCount),
		Run:              timing(s.RunBounds, s.RunCounts, s.RunSum, s.RunCount),
	}, nil
}

// timing sums up one of the queue's histograms.
func timing(bounds []float64, counts []uint64, sum float64, count uint64) admin.JobTiming {
	return admin.JobTiming{
		Count:      count,
		SumSeconds: sum,
		P50Seconds: quantile(0.5, bounds, counts, count),
		P99Seconds: quantile(0.99, bounds, counts, count),
	}
}
