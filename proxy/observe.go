package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"gateway/internal/clientwatch"
	"gateway/internal/jobid"
	"gateway/internal/outcome"
	"gateway/internal/routes"
	"gateway/proxy/balance"
)

// Observation is what the proxy reports about one client request to an
// observer wrapped around the Handler (the access log and the request
// metrics). The observer makes one per request and offers it through
// its ResponseWriter, which implements Observed; the Handler fills it
// in as it serves that very writer. Requests the Handler serves through
// another writer (batch items, composite parts, which run in-process)
// leave it alone, so the outer request is described, not its parts.
type Observation struct {
	// Route is the ID of the route that took the request (routes.Of
	// its index in Options.Routes), routes.None when none did; the
	// Handler's RouteTable names it.
	Route routes.ID
	// The upstream's fields are written by whichever goroutine runs
	// the upstream exchange: a request collapsed with others by the
	// cache may have its fetch run after the client was answered, so
	// they are atomics and a late write is harmless.
	target     atomic.Pointer[targetObs]
	upstreamNs atomic.Int64
	// cache is the cache's outcome.Outcome, recorded as it writes its
	// Cache-Status; a collapsed request may be answered by the
	// goroutine of another's fetch.
	cache atomic.Uint32
	// job is the id of the job the request created or runs
	// (jobid.Recorder), which the queue may report from its own
	// goroutine; nil when none.
	job atomic.Pointer[string]
	// w is the writer the route's ReverseProxy answers through, set
	// when that is the very writer that offered the observation (a
	// route without middleware, see Handler.ServeHTTP): the proxy then
	// hands the upstream's header fields over to it in place of
	// ReverseProxy's copy (see moveHeader). nil otherwise. Only the
	// request's own goroutine sets and reads it.
	w http.ResponseWriter
	// ctx is the request's context that carries the observation (see
	// context).
	ctx obsContext
	// watch is the client's connection as a clientwatch.Watcher, when
	// the request's context is net/http's own, for a route deadline
	// armed in the middleware (deadline.ArmDeadline); nil otherwise.
	// Only the request's own goroutine sets it, before the middleware
	// runs.
	watch clientwatch.Watcher
}

// obsContext is a request's context carrying its Observation as the
// outcome.Recorder, as outcome.NewContext makes one, but without a
// context allocated per request: it lives in the observation, which its
// observer has allocated already.
type obsContext struct {
	context.Context
	o *Observation
}

func (c *obsContext) Value(key any) any {
	if outcome.IsKey(key) {
		return c.o
	}
	return c.Context.Value(key)
}

// context returns parent carrying o, for the cache and the upstream to
// find with outcome.FromContext.
func (o *Observation) context(parent context.Context) context.Context {
	if o.ctx.o != nil {
		// Already the context of a request in progress, which must keep
		// its parent.
		return outcome.NewContext(parent, o)
	}
	o.ctx = obsContext{Context: parent, o: o}
	return &o.ctx
}

var (
	_ outcome.Recorder = (*Observation)(nil)
	_ jobid.Recorder   = (*Observation)(nil)
)

// RecordJob notes the job the request belongs to (jobid.Recorder).
func (o *Observation) RecordJob(id string) { o.job.Store(&id) }

// Job is the recorded job id; "" when none.
func (o *Observation) Job() string {
	if p := o.job.Load(); p != nil {
		return *p
	}
	return ""
}

// RecordCacheOutcome is how the cache reports what it did for the
// request (outcome.Recorder); the Handler hands the observation to it
// in the request's context.
func (o *Observation) RecordCacheOutcome(c outcome.Outcome) { o.cache.Store(uint32(c)) }

// CacheOutcome is what the cache did for the request: outcome.None
// when the route does not cache, or the request never reached it.
func (o *Observation) CacheOutcome() outcome.Outcome { return outcome.Outcome(o.cache.Load()) }

// Observed is implemented by an observer's ResponseWriter. Observation
// may return nil when the observer wants nothing filled in.
type Observed interface {
	Observation() *Observation
}

// Upstream reports the upstream and the target (its URL as configured)
// that last answered the request, or failed to, and the time until its
// response headers arrived, retries included. ok is false when the
// request reached no upstream (a cache hit, a route with no match).
func (o *Observation) Upstream() (upstream, target string, d time.Duration, ok bool) {
	t := o.target.Load()
	if t == nil {
		return "", "", 0, false
	}
	return t.upstream, t.url, time.Duration(o.upstreamNs.Load()), true
}

// observe records the route in the observation offered by w, if any,
// and returns the observation for the route's upstream and cache to
// fill in (ServeHTTP hands it over in the request's context, see
// Observation.context); nil when there is none, or no upstream: a
// composite route's parts are requests of their own, and as their
// contexts derive from the outer request's, it must carry no
// observation for them to fill in.
func (h *Handler) observe(w http.ResponseWriter, ro *route) *Observation {
	ow, ok := w.(Observed)
	if !ok {
		return nil
	}
	o := ow.Observation()
	if o == nil {
		return nil
	}
	o.Route = ro.id
	if ro.upstream == nil {
		return nil
	}
	return o
}

// LatencyObserver takes upstream latencies in seconds; a Prometheus
// histogram is one.
type LatencyObserver interface{ Observe(float64) }

// ErrorKinds names the kinds of failed upstream exchanges counted in
// TargetStats.Errors, by index.
var ErrorKinds = [NumErrorKinds]string{"timeout", "refused", "reset", "other"}

// NumErrorKinds is the number of ErrorKinds.
const NumErrorKinds = 4

const (
	errTimeout = iota
	errRefused
	errReset
	errOther
)

// targetObs is one target's observed figures, and its names as
// reported, made once so a request only stores a pointer. upstreamObs
// holds them by Target.Index.
type targetObs struct {
	t        *balance.Target
	upstream string
	url      string
	errs     [NumErrorKinds]atomic.Uint64
}

// upstreamObs is what an Upstream counts for metrics and observers.
type upstreamObs struct {
	targets []*targetObs
	retries atomic.Uint64
	latency LatencyObserver
}

func (u *Upstream) initObs() {
	for _, t := range u.pool.Targets() {
		u.obs.targets = append(u.obs.targets, &targetObs{t: t, upstream: u.name, url: t.URL.String()})
	}
}

// ObserveLatency sends the time until every response's headers (or a
// failure), retries included, to o. Call it before the upstream serves.
func (u *Upstream) ObserveLatency(o LatencyObserver) { u.obs.latency = o }

// RoundTrip sends req to a target chosen by the pool (see roundTrip),
// timing the exchange when someone observes it.
func (u *Upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	return u.send(req, nil)
}

// send is RoundTrip, with iw, when not nil, taking the interim
// responses; only an upstream with the HTTP/1.1 transport (u.h1) takes
// one.
func (u *Upstream) send(req *http.Request, iw interimWriter) (*http.Response, error) {
	o, _ := outcome.FromContext(req.Context()).(*Observation)
	if o == nil && u.obs.latency == nil {
		resp, _, err := u.roundTrip(req, iw)
		return resp, err
	}
	start := time.Now()
	resp, t, err := u.roundTrip(req, iw)
	d := time.Since(start)
	if t == nil {
		return resp, err
	}
	if u.obs.latency != nil && !clientGone(req.Context()) {
		u.obs.latency.Observe(d.Seconds())
	}
	if o != nil {
		o.upstreamNs.Store(int64(d))
		o.target.Store(u.obs.targets[t.Index()])
	}
	return resp, err
}

// countError counts a failed exchange of req with t by kind; try calls
// it unless the client went away.
func (u *Upstream) countError(t *balance.Target, req *http.Request, err error) {
	u.obs.targets[t.Index()].errs[errorKind(req.Context(), err)].Add(1)
}

// errorKind sorts a failed exchange, made with ctx. As in classify, a
// cancellation whose cause is a deadline (an upgrade's handshake
// timeout) is a timeout.
func errorKind(ctx context.Context, err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(context.Cause(ctx), context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, syscall.ECONNRESET):
		return errReset
	}
	return errOther
}

// UpstreamStats are an upstream's counters and its targets' state, for
// metrics.
type UpstreamStats struct {
	Name string
	// Retries counts requests sent again to another target.
	Retries uint64
	Targets []TargetStats
}

// TargetStats describe one target.
type TargetStats struct {
	// URL is the target as configured.
	URL      string
	Healthy  bool
	InFlight int64
	// Errors counts failed exchanges by kind, indexed like ErrorKinds.
	Errors [NumErrorKinds]uint64
	// IdleConns and ActiveConns are the target's pooled HTTP/1.1
	// connections; ConnsKnown is false when net/http's transport
	// (HTTP/2, negotiated protocols) holds them and does not tell.
	IdleConns, ActiveConns int
	ConnsKnown             bool
	// Breaker is the target's circuit breaker state (balance.BreakerClosed,
	// BreakerHalfOpen, BreakerOpen), empty when the upstream has no
	// breakers; BreakerOpened counts the times it opened.
	Breaker       string
	BreakerOpened uint64
}

// Stats returns the counters and a snapshot of every target.
func (u *Upstream) Stats() UpstreamStats {
	s := UpstreamStats{Name: u.name, Retries: u.obs.retries.Load()}
	breakers := u.BreakerStates() // in target order; nil without breakers
	for i, to := range u.obs.targets {
		st := to.t.Status()
		ts := TargetStats{URL: to.url, Healthy: st.Healthy, InFlight: st.InFlight}
		for i := range ts.Errors {
			ts.Errors[i] = to.errs[i].Load()
		}
		if u.h1 != nil {
			ts.IdleConns, ts.ActiveConns = u.h1.conns(to.t.URL.Scheme, to.t.URL.Host)
			ts.ConnsKnown = true
		}
		if i < len(breakers) {
			ts.Breaker, ts.BreakerOpened = breakers[i].State, breakers[i].Opened
		}
		s.Targets = append(s.Targets, ts)
	}
	return s
}

// conns counts a target's idle connections and those in use (open or
// being dialed, less the idle).
func (t *h1Transport) conns(scheme, host string) (idle, active int) {
	v, ok := t.hosts.Load(hostKey{scheme, canonicalAddr(scheme, host)})
	if !ok {
		return 0, 0
	}
	p := v.(*hostConns)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle), p.open - len(p.idle)
}
