package balance

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"gateway/internal/fielderr"

	"github.com/sony/gobreaker/v2"
)

// Defaults for BreakerOptions fields left zero.
const (
	DefaultFailureRatio = 0.5
	DefaultMinRequests  = 20
	DefaultBreakerOpen  = 10 * time.Second
	DefaultWindow       = 10 * time.Second
	// DefaultHalfOpenRequests probes go through a half-open breaker.
	DefaultHalfOpenRequests = 1
)

// BreakerOptions turn on a circuit breaker per target
// (github.com/sony/gobreaker/v2). A target whose requests fail at
// FailureRatio or more, over at least MinRequests requests in the last
// Window, is opened: Pick and Acquire skip it for OpenTimeout. Then it
// is half-open: HalfOpenRequests requests are let through as probes;
// if that many succeed it closes, and one failure opens it again.
//
// A failure is a transport error (refused, reset, timed out) or a 5xx
// response; a request the client canceled counts neither way.
type BreakerOptions struct {
	FailureRatio     float64
	MinRequests      uint32
	Window           time.Duration
	OpenTimeout      time.Duration
	HalfOpenRequests uint32
}

// Outcome is how a request admitted by a target's breaker went.
type Outcome uint8

// Outcomes for Admission.Done.
const (
	Success Outcome = iota
	Failure
	// Ignored is for requests that say nothing about the target, such
	// as those the client canceled; a half-open probe slot is freed.
	Ignored
)

var errIgnored = errors.New("ignored")
var errFailed = errors.New("failed")

// Admission is a request's pass through a target's breaker, and its
// claim on the target's half-open probe if it holds one. The zero value
// (no breaker, no probe) is valid; Done on it does nothing.
type Admission struct {
	done  func(error)
	probe *Target // the target whose half-open probe this request is
}

// Done reports the request's outcome to the breaker. Call it once.
// Ignored also gives up the request's claim on a half-open probe, as
// passive health hears nothing of such a request; ReportSuccess and
// ReportFailure end the claim otherwise.
func (a Admission) Done(o Outcome) {
	if a.probe != nil && o == Ignored {
		a.probe.releaseProbe()
	}
	if a.done == nil {
		return
	}
	switch o {
	case Success:
		a.done(nil)
	case Failure:
		a.done(errFailed)
	default:
		a.done(errIgnored)
	}
}

// Breaker states, as BreakerState.State and TargetStatus.Breaker show
// them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// BreakerState is a snapshot of a target's breaker.
type BreakerState struct {
	Target string `json:"target"`
	// State is BreakerClosed, BreakerHalfOpen or BreakerOpen.
	State string `json:"state"`
	// Opened counts the times the breaker opened, a failed probe
	// included.
	Opened uint64 `json:"opened"`
	// Requests and Failures are the counts in the current window (or
	// of the current half-open round).
	Requests uint32 `json:"requests"`
	Failures uint32 `json:"failures"`
}

// breaker is a target's circuit breaker and a lock-free mirror of its
// state for the pick path: gobreaker's State takes a lock.
type breaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]
	// open holds the wall-clock Unix nanoseconds at which an open
	// breaker lets a probe through; 0 while it is not open.
	open   atomic.Int64
	opened atomic.Uint64
}

// Validate reports the problems with o, each a *fielderr.Error naming
// FailureRatio, Window or OpenTimeout, joined. Zero fields stand for
// their defaults.
func (o BreakerOptions) Validate() error {
	var errs []error
	if o.FailureRatio != 0 && !(o.FailureRatio > 0 && o.FailureRatio <= 1) {
		errs = append(errs, fielderr.New("balance: breaker", "FailureRatio", fmt.Sprintf("%v: want a fraction of the requests, more than 0 and at most 1 (e.g. 0.5)", o.FailureRatio)))
	}
	if o.Window < 0 {
		errs = append(errs, fielderr.New("balance: breaker", "Window", "must not be negative"))
	}
	if o.OpenTimeout < 0 {
		errs = append(errs, fielderr.New("balance: breaker", "OpenTimeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// breakerDefaults is b, validated, with its defaults filled in.
func breakerDefaults(b BreakerOptions) BreakerOptions {
	if b.FailureRatio == 0 {
		b.FailureRatio = DefaultFailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultMinRequests
	}
	if b.Window == 0 {
		b.Window = DefaultWindow
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = DefaultBreakerOpen
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = DefaultHalfOpenRequests
	}
	return b
}

func newBreaker(o BreakerOptions, name string, log *slog.Logger) *breaker {
	b := &breaker{}
	// Ten buckets make the window roll smoothly: a burst of failures
	// leaves it Window after it happened, not at some fixed boundary.
	bucket := max(o.Window/10, time.Millisecond)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  o.HalfOpenRequests,
		Interval:     o.Window,
		BucketPeriod: bucket,
		Timeout:      o.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			done := c.TotalSuccesses + c.TotalFailures
			return done >= o.MinRequests && float64(c.TotalFailures) >= o.FailureRatio*float64(done)
		},
		IsExcluded: func(err error) bool { return err == errIgnored },
		// Runs under the breaker's lock, as every transition does, so
		// the mirror changes in the same order as the state.
		OnStateChange: func(name string, from, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				b.opened.Add(1)
				b.open.Store(time.Now().Add(o.OpenTimeout).UnixNano())
				log.Warn("upstream target circuit opened", "target", name, "from", from.String(), "open_timeout", o.OpenTimeout)
			case gobreaker.StateHalfOpen:
				b.open.Store(0)
				log.Info("upstream target circuit half-open", "target", name, "probes", o.HalfOpenRequests)
			case gobreaker.StateClosed:
				b.open.Store(0)
				log.Info("upstream target circuit closed", "target", name, "reason", "probes succeeded")
			}
		},
	})
	return b
}

// mayPass is the pick path's test: false while the breaker is open and
// its timeout has not run out. Half-open targets pass; Admit then
// decides whether a probe slot is free.
func (b *breaker) mayPass() bool {
	until := b.open.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// Admit asks t's circuit breaker to let one request through. ok is
// false when the breaker is open or its half-open probes are all out;
// otherwise report the request's outcome with the Admission's Done.
// Without a breaker every request is admitted.
func (t *Target) Admit() (a Admission, ok bool) {
	b := t.breaker
	if b == nil {
		return Admission{}, true
	}
	done, err := b.cb.Allow()
	if err != nil {
		return Admission{}, false
	}
	return Admission{done: done}, true
}

// Acquire picks a target for r that is not in tried and whose breaker
// admits the request, trying the others in the policy's order when the
// pick's breaker refuses. A first attempt (tried empty) falls back on a
// panic pick as Pick does. It returns nil when no target is left; see
// RetryAfter. Report the outcome with the Admission's Done.
func (p *Pool) Acquire(r *http.Request, tried ...*Target) (*Target, Admission) {
	var buf [4]*Target
	skip := append(buf[:0], tried...)
	first := len(tried) == 0
	for {
		t, probe := p.pick(r, skip)
		if t == nil && first {
			t = p.pickPanic(skip)
		}
		if t == nil {
			return nil, Admission{}
		}
		if a, ok := t.Admit(); ok {
			if probe {
				a.probe = t
			}
			return t, a
		}
		if probe {
			t.releaseProbe()
		}
		skip = append(skip, t)
	}
}

// RetryAfter is how long until a target may be tried again when Acquire
// has found none on a first attempt, which happens only when every
// target's breaker refuses: the shortest time left on an open breaker,
// 0 when some breaker is half-open (its probes all out) or the pool has
// no breakers.
func (p *Pool) RetryAfter() time.Duration {
	if !p.breakers {
		return 0
	}
	now := time.Now().UnixNano()
	wait := int64(-1)
	for _, t := range p.targets {
		w := max(t.breaker.open.Load()-now, 0)
		if wait < 0 || w < wait {
			wait = w
		}
	}
	return time.Duration(max(wait, 0))
}

// BreakerStates returns the state of every target's breaker, in
// configuration order; nil when the pool has no breakers.
func (p *Pool) BreakerStates() []BreakerState {
	if !p.breakers {
		return nil
	}
	out := make([]BreakerState, len(p.targets))
	for i, t := range p.targets {
		b := t.breaker
		c := b.cb.Counts()
		if c.TotalExclusions > c.Requests {
			c.TotalExclusions = c.Requests
		}
		out[i] = BreakerState{
			Target:   t.name,
			State:    breakerName(b.cb.State()),
			Opened:   b.opened.Load(),
			Requests: c.Requests - c.TotalExclusions,
			Failures: c.TotalFailures,
		}
	}
	return out
}

func breakerName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}
