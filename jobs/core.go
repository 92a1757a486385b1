package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Causes of an attempt's cancellation.
var (
	errCancelled = errors.New("jobs: job cancelled")
	errShutdown  = errors.New("jobs: queue shutting down")
)

// attemptKey marks the context of a job's own attempt, which the async
// middleware lets through.
type attemptKey struct{}

// AttemptID returns the id of the job whose attempt r is ("" when r is
// not one).
func AttemptID(r *http.Request) string {
	id, _ := r.Context().Value(attemptKey{}).(string)
	return id
}

// Queue accepts jobs for async routes, runs them, and answers for them.
type Queue struct {
	store  Store
	prefix string
	log    *slog.Logger
	now    func() time.Time
	vis    time.Duration

	mu sync.Mutex // routes, workers' places, running
	// jobMu serialises, per job (by a shard of its id), a worker taking
	// up or recording an attempt with a cancellation: a cancelled job is
	// never run, nor its end overwritten. Per job, so that workers
	// finishing different jobs record them side by side (a store may
	// then batch their writes into one sync).
	jobMu   [64]sync.Mutex
	routes  map[string]*route
	running map[string]*attempt // by job id

	runner     atomic.Pointer[http.Handler]
	runnerSet  chan struct{}
	runnerOnce sync.Once

	stopClaim  chan struct{} // closed by Shutdown: workers claim no more
	stopOnce   sync.Once
	hardCtx    context.Context // cancelled (errShutdown) when attempts must end
	hardCancel context.CancelCauseFunc
	workers    sync.WaitGroup
	bg         sync.WaitGroup // the expire loop, callbacks
	bgStop     chan struct{}
	closeOnce  sync.Once
	closeErr   error

	client *http.Client
	st     counters
}

// route is one async route; its options are swapped by a reload.
type route struct {
	name  string
	opts  atomic.Pointer[RouteOptions]
	wake  chan struct{}
	alive []bool // workers running, by index (under Queue.mu)
}

// attempt is a running attempt, for DELETE to cancel.
type attempt struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// New returns a queue over o.Store; it runs nothing until a route is
// registered and SetRunner is called.
func New(o Options) (*Queue, error) {
	if o.Store == nil {
		return nil, errors.New("jobs: no store")
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("jobs: prefix %q must begin and end with /", prefix)
	}
	q := &Queue{
		store:     o.Store,
		prefix:    prefix,
		log:       o.Logger,
		now:       o.Now,
		vis:       o.Visibility,
		routes:    map[string]*route{},
		running:   map[string]*attempt{},
		runnerSet: make(chan struct{}),
		stopClaim: make(chan struct{}),
		bgStop:    make(chan struct{}),
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.vis <= 0 {
		q.vis = DefaultVisibility
	}
	if c, ok := o.Store.(interface{ setClock(func() time.Time) }); ok {
		c.setClock(q.now)
	}
	q.hardCtx, q.hardCancel = context.WithCancelCause(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	q.client = &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		// A callback's receiver is named by the allowlist; a redirect
		// would lead elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	q.bg.Add(1)
	go q.expireLoop()
	return q, nil
}

// withDefaults validates o and fills its zero fields.
func withDefaults(o RouteOptions) (RouteOptions, error) {
	if o.Name == "" {
		return o, errors.New("jobs: route without a name")
	}
	switch o.Mode {
	case "":
		o.Mode = ModePrefer
	case ModePrefer, ModeAlways:
	default:
		return o, fmt.Errorf("jobs: route %s: mode %q is neither %q nor %q", o.Name, o.Mode, ModePrefer, ModeAlways)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = DefaultQueueDepth
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	def(&o.AttemptTimeout, DefaultAttemptTimeout)
	def(&o.Backoff, DefaultBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.ResultLifetime, DefaultResultLifetime)
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.MaxResultSize <= 0 {
		o.MaxResultSize = DefaultMaxResultSize
	}
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if len(o.CallbackHosts) > 0 && len(o.CallbackSecret) == 0 {
		return o, fmt.Errorf("jobs: route %s: callback hosts without a callback secret", o.Name)
	}
	o.CallbackHosts = append([]string(nil), o.CallbackHosts...)
	for i, h := range o.CallbackHosts {
		o.CallbackHosts[i] = strings.ToLower(h)
	}
	return o, nil
}

// Route registers (or, on a reload, updates) an async route and returns
// its middleware: a request the route's mode selects is queued and
// answered 202; others, and a job's own attempts, pass through.
func (q *Queue) Route(o RouteOptions) (func(http.Handler) http.Handler, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	rt := q.routes[o.Name]
	if rt == nil {
		rt = &route{name: o.Name, wake: make(chan struct{}, 1)}
		q.routes[o.Name] = rt
	}
	rt.opts.Store(&o)
	select {
	case <-q.stopClaim:
	default:
		for len(rt.alive) < o.Concurrency {
			rt.alive = append(rt.alive, false)
		}
		for i := 0; i < o.Concurrency; i++ {
			if !rt.alive[i] {
				rt.alive[i] = true
				q.workers.Add(1)
				go q.worker(rt, i)
			}
		}
	}
	q.mu.Unlock()
	rt.signal() // a lowered concurrency lets the extra workers go
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { q.accept(rt, next, w, r) })
	}, nil
}

// SetRunner sets the handler attempts are sent through: the current
// generation's routed handler (a reload sets the new one).
func (q *Queue) SetRunner(h http.Handler) {
	q.runner.Store(&h)
	q.runnerOnce.Do(func() { close(q.runnerSet) })
}

func (rt *route) signal() {
	select {
	case rt.wake <- struct{}{}:
	default:
	}
}

// wakeAt wakes a worker of rt at t (a retry's NotBefore). A pending
// timer holds no goroutine, and a wake-up after Close finds no worker.
func (rt *route) wakeAt(q *Queue, t time.Time) {
	time.AfterFunc(max(t.Sub(q.now()), 0), rt.signal)
}

// pollEvery is how often an idle worker looks at its queue without being
// woken: jobs another replica enqueued, retries a restart left waiting.
const pollEvery = time.Second

func (q *Queue) worker(rt *route, i int) {
	defer q.workers.Done()
	select {
	case <-q.runnerSet:
	case <-q.stopClaim:
		q.workerGone(rt, i)
		return
	}
	poll := time.NewTimer(pollEvery)
	defer poll.Stop()
	for {
		select {
		case <-q.stopClaim:
			q.workerGone(rt, i)
			return
		default:
		}
		if o := rt.opts.Load(); i >= o.Concurrency {
			q.mu.Lock()
			if i >= rt.opts.Load().Concurrency {
				rt.alive[i] = false
				q.mu.Unlock()
				rt.signal() // pass the wake-up on
				return
			}
			q.mu.Unlock()
		}
		j, err := q.store.Claim(q.hardCtx, rt.name, q.vis)
		if err != nil {
			q.log.Error("jobs: claim", "route", rt.name, "err", err)
		}
		if j != nil {
			rt.signal() // another worker may take the next one
			q.run(rt, j)
			continue
		}
		poll.Reset(pollEvery)
		select {
		case <-rt.wake:
		case <-poll.C:
		case <-q.stopClaim:
			q.workerGone(rt, i)
			return
		}
	}
}

func (q *Queue) workerGone(rt *route, i int) {
	q.mu.Lock()
	rt.alive[i] = false
	q.mu.Unlock()
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	s := q.st.snapshot()
	if m, err := q.store.Stats(context.Background()); err == nil {
		s.Queued, s.Running = m[StateQueued], m[StateRunning]
	}
	return s
}

// Expire removes the jobs expired by now (the Options.Now clock), their
// results and idempotency keys; a loop calls it every minute.
func (q *Queue) Expire() (int, error) {
	return q.store.Expire(context.Background(), q.now())
}

func (q *Queue) expireLoop() {
	defer q.bg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-q.bgStop:
			return
		case <-t.C:
			if n, err := q.Expire(); err != nil {
				q.log.Error("jobs: expire", "err", err)
			} else if n > 0 {
				q.log.Debug("jobs: expired", "jobs", n)
			}
		}
	}
}

// Shutdown stops claiming jobs and waits for the running attempts until
// ctx ends; then it cancels them and leaves them queued. What is still
// queued stays in the store for the next start (or another replica).
func (q *Queue) Shutdown(ctx context.Context) error {
	q.stopOnce.Do(func() { close(q.stopClaim) })
	done := make(chan struct{})
	go func() { q.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		q.hardCancel(errShutdown)
		<-done
		return ctx.Err()
	}
}

// Close stops everything at once (running attempts are cancelled and
// queued again) and closes the store.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.stopOnce.Do(func() { close(q.stopClaim) })
		q.hardCancel(errShutdown)
		q.workers.Wait()
		close(q.bgStop)
		q.bg.Wait()
		q.client.CloseIdleConnections()
		q.closeErr = q.store.Close()
	})
	return q.closeErr
}

// newID returns a job id: 128 random bits in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// jobLock is the lock of job id's shard of jobMu.
func (q *Queue) jobLock(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &q.jobMu[h.Sum32()%uint32(len(q.jobMu))]
}

// routeOpts returns the options of the route named name (nil when a
// reload removed it).
func (q *Queue) routeOpts(name string) *RouteOptions {
	q.mu.Lock()
	rt := q.routes[name]
	q.mu.Unlock()
	if rt == nil {
		return nil
	}
	return rt.opts.Load()
}
