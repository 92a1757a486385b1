package jobs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"gateway/internal/jobid"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxRetryAfter bounds the wait an upstream's Retry-After may ask for.
const maxRetryAfter = time.Hour

// run sends one attempt of j (claimed: running) through the runner and
// records its outcome.
func (q *Queue) run(rt *route, j *Job) {
	o := rt.opts.Load()
	ctx, cancel := context.WithCancelCause(q.hardCtx)
	defer cancel(nil)
	a := &attempt{cancel: cancel, done: make(chan struct{})}
	defer close(a.done)

	jl := q.jobLock(j.ID)
	jl.Lock()
	cur, err := q.store.Get(ctx, j.ID)
	if err != nil || cur.State != StateRunning {
		jl.Unlock() // cancelled (or expired) between the claim and now
		return
	}
	q.mu.Lock()
	q.running[j.ID] = a
	q.mu.Unlock()
	jl.Unlock()

	q.st.attempts.Add(1)
	if j.Attempts == 1 {
		q.st.wait.observe(j.Started.Sub(j.Created))
	}
	watched := make(chan struct{})
	go q.watch(ctx, j, a, watched)
	start := time.Now()
	rec := q.attempt(ctx, o, j)
	close(watched)
	q.st.run.observe(time.Since(start))

	jl.Lock()
	q.mu.Lock()
	delete(q.running, j.ID)
	q.mu.Unlock()
	cause := context.Cause(ctx)
	if cause == nil {
		// Cancelled through another process while the attempt ended:
		// the cancellation, already answered for, stands.
		if cur, err := q.store.Get(context.WithoutCancel(ctx), j.ID); err == nil && cur.State == StateCancelled {
			cause = errCancelledElsewhere
		}
	}
	if errors.Is(cause, errCancelledElsewhere) {
		// The process that took the DELETE ended the job, counted it
		// and called back: nothing is left to record here.
		rec.abort()
		jl.Unlock()
		return
	}
	var final bool
	switch {
	case errors.Is(cause, errCancelled):
		rec.abort()
		q.finish(j, o, StateCancelled)
		j.Error = "cancelled"
		q.st.cancelled.Add(1)
		final = true
	case errors.Is(cause, errShutdown):
		// Left for the next start; the attempt stays counted.
		rec.abort()
		j.State = StateQueued
		j.NotBefore = time.Time{}
	default:
		final = q.outcome(rt, o, j, rec)
	}
	err = q.store.Update(context.Background(), j)
	jl.Unlock()
	if err != nil {
		q.log.Error("jobs: update", "id", j.ID, "err", err)
		return
	}
	if !final && j.State == StateQueued && !j.NotBefore.IsZero() {
		rt.wakeAt(q, j.NotBefore)
	}
	if final {
		q.callback(o, j)
	}
}

// errCancelledElsewhere cancels an attempt whose job was cancelled
// through another process, which recorded the end of the job itself.
var errCancelledElsewhere = errors.New("jobs: cancelled through another process")

// watchEvery is how often a running attempt looks at its job in the
// store: a cancellation made through another replica reaches it this
// late at most.
const watchEvery = time.Second

// watch runs beside an attempt of j until done is closed: it renews the
// job's visibility in the store (a store shared by several processes
// gives a job whose worker went silent to another; this worker is
// alive), and cancels the attempt when the job was cancelled through
// another process, which could not reach the attempt itself.
func (q *Queue) watch(ctx context.Context, j *Job, a *attempt, done <-chan struct{}) {
	renew := max(q.vis/3, watchEvery)
	last := time.Now()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := q.store.Get(ctx, j.ID)
		if err == nil && cur.State == StateCancelled {
			a.cancel(errCancelledElsewhere)
			return
		}
		if time.Since(last) >= renew {
			last = time.Now()
			jl := q.jobLock(j.ID)
			jl.Lock()
			if cur != nil && cur.State == StateRunning {
				_ = q.store.Update(ctx, j) // unchanged: the store renews the claim
			}
			jl.Unlock()
		}
	}
}

// outcome sets j from a finished attempt's rec: a retry, or the end.
func (q *Queue) outcome(rt *route, o *RouteOptions, j *Job, rec *recorder) (final bool) {
	j.Status = rec.status
	j.Error = rec.err
	switch {
	case rec.tooLarge:
		rec.abort()
		j.Error = fmt.Sprintf("result larger than max_result_size %d", o.MaxResultSize)
	case rec.retry:
		rec.abort()
		j.State = StateQueued
		j.NotBefore = q.now().Add(backoff(o, j.Attempts, rec.retryAfter))
		q.st.retries.Add(1)
		return false
	case rec.panicked || rec.storeErr != nil:
		rec.abort()
	default:
		if err := rec.close(); err != nil {
			j.Error = "storing the result: " + err.Error()
			break
		}
		j.ResultStatus = rec.status
		j.ResultHeader = rec.snap
		j.ResultSize = rec.size
		if rec.status < 400 {
			q.finish(j, o, StateSucceeded)
			q.st.succeeded.Add(1)
			return true
		}
	}
	q.finish(j, o, StateFailed)
	q.st.failed.Add(1)
	return true
}

// retryable reports whether a response with status is worth another
// attempt: the upstream was not reached or did not answer (the proxy's
// 502 and 504), or it asked to come back (503, 429).
func retryable(status int) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

// mayRetry reports whether j's request may be sent again.
func mayRetry(o *RouteOptions, j *Job) bool {
	if o.RetryUnsafe || j.IdempotencyKey != "" {
		return true
	}
	switch j.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// backoff is the wait before the attempt after attempt n (from 1): the
// route's Backoff doubled per attempt up to MaxBackoff, plus up to half
// again of jitter (within MaxBackoff), or the upstream's Retry-After when
// larger.
func backoff(o *RouteOptions, n int, ra time.Duration) time.Duration {
	d := o.Backoff
	for i := 1; i < n && d < o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.MaxBackoff)
	if d > 0 {
		d = min(d+rand.N(d/2+1), o.MaxBackoff)
	}
	return max(d, min(ra, maxRetryAfter))
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// attempt sends j's request through the runner.
func (q *Queue) attempt(ctx context.Context, o *RouteOptions, j *Job) *recorder {
	rec := &recorder{q: q, o: o, j: j, header: http.Header{}, limit: o.MaxResultSize}
	rec.canRetry = j.Attempts < o.MaxAttempts && mayRetry(o, j)
	actx, cancel := context.WithTimeout(ctx, o.AttemptTimeout)
	defer cancel()
	actx = jobid.WithAttempt(context.WithValue(actx, attemptKey{}, j.ID))
	req, err := buildRequest(actx, j)
	if err != nil {
		rec.err = err.Error()
		rec.panicked = true // a request that cannot be built is not retried into success
		rec.canRetry = false
		return rec
	}
	h := q.runner.Load()
	func() {
		defer func() {
			if p := recover(); p != nil {
				rec.panicked = true
				rec.err = fmt.Sprint("the attempt failed: ", p)
				rec.retry = rec.canRetry
			}
		}()
		(*h).ServeHTTP(rec, req)
	}()
	if !rec.wrote && !rec.panicked {
		rec.WriteHeader(http.StatusOK) // as net/http answers a handler that wrote nothing
	}
	if actx.Err() == context.DeadlineExceeded && ctx.Err() == nil && rec.err == "" {
		rec.err = fmt.Sprintf("attempt timed out after %s", o.AttemptTimeout)
	}
	return rec
}

func buildRequest(ctx context.Context, j *Job) (*http.Request, error) {
	u, err := url.ParseRequestURI(j.URI)
	if err != nil {
		return nil, fmt.Errorf("stored request URI %q: %w", j.URI, err)
	}
	r := &http.Request{
		Method:     j.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     j.Header.Clone(),
		Host:       j.Host,
		RequestURI: j.URI,
		Body:       http.NoBody,
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if len(j.Body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(j.Body))
		r.ContentLength = int64(len(j.Body))
	}
	if j.TLS {
		// Only its presence is read downstream: the forwarded scheme.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	return r.WithContext(ctx), nil
}

// recorder is the ResponseWriter of an attempt: the status and header,
// and the body streamed into the store when the response is the result.
type recorder struct {
	q        *Queue
	o        *RouteOptions
	j        *Job
	header   http.Header
	snap     http.Header // the header when the status was written
	status   int
	wrote    bool
	canRetry bool
	retry    bool // this response is retried, its body discarded

	retryAfter time.Duration
	w          ResultWriter
	size       int64
	limit      int64
	tooLarge   bool
	storeErr   error
	panicked   bool
	err        string
}

var errTooLarge = errors.New("jobs: result over max_result_size")

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.wrote || code < 200 {
		return // informational responses are not the result
	}
	r.wrote = true
	r.status = code
	r.snap = r.header.Clone()
	dropHopByHop(r.snap)
	r.snap.Del("Content-Length") // the replay sets the stored size
	if retryable(code) && r.canRetry {
		r.retry = true
		r.retryAfter = parseRetryAfter(r.header.Get("Retry-After"), r.q.now())
		return
	}
	if n, err := strconv.ParseInt(r.header.Get("Content-Length"), 10, 64); err == nil && n > r.limit {
		r.tooLarge = true // known too large: not a byte is stored
		return
	}
	w, err := r.q.store.ResultWriter(context.Background(), r.j.ID)
	if err != nil {
		r.storeErr = err
		r.err = "storing the result: " + err.Error()
		return
	}
	r.w = w
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	switch {
	case r.retry:
		return len(p), nil
	case r.tooLarge:
		return 0, errTooLarge
	case r.storeErr != nil:
		return 0, r.storeErr
	case r.w == nil:
		return 0, errors.New("jobs: no result writer")
	}
	if r.size+int64(len(p)) > r.limit {
		r.tooLarge = true
		r.abort()
		return 0, errTooLarge
	}
	n, err := r.w.Write(p)
	r.size += int64(n)
	if err != nil {
		r.storeErr = err
		r.err = "storing the result: " + err.Error()
	}
	return n, err
}

// Flush lets a streaming handler flush; the body goes to the store.
func (r *recorder) Flush() {}

func (r *recorder) abort() {
	if r.w != nil {
		r.w.Abort()
		r.w = nil
	}
}

func (r *recorder) close() error {
	if r.w == nil {
		// A response with no body written still has an (empty) result.
		w, err := r.q.store.ResultWriter(context.Background(), r.j.ID)
		if err != nil {
			return err
		}
		r.w = w
	}
	err := r.w.Close()
	r.w = nil
	return err
}
