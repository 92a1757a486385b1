package balance

import (
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one server of an upstream. Its counters are atomics so that
// every request can read and update them without a lock.
type Target struct {
	// URL is the target's base URL as configured; do not modify it.
	URL *url.URL

	pool      *Pool
	index     int    // position in Options.Targets
	name      string // URL.String(), kept for logs and status
	healthURL string

	inFlight atomic.Int64
	fails    atomic.Int64
	// downUntil is the end of the current cool-down in Unix nanoseconds
	// of the pool's clock; 0 while the target is in rotation. It stays
	// set past its end, while the target is half-open, until a success
	// or a passing active check closes the target.
	downUntil atomic.Int64
	// probe is when the claim on the half-open probe lapses (pool's
	// clock, Unix nanoseconds); 0 while no probe is out.
	probe atomic.Int64
	// lastFail is when t last failed a request or an active check
	// (pool's clock, Unix nanoseconds), for the panic pick.
	lastFail atomic.Int64
	// panicked is set when a panic pick sends a request to t while it
	// cools down: that request's success is news of t, not a straggler
	// from before t went out, so it closes t.
	panicked atomic.Bool
	activeOK atomic.Bool
	// checked is set when t's first active check has ended.
	checked atomic.Bool
	// lastCheck is when t's last active check ended (pool's clock, Unix
	// nanoseconds); 0 before any.
	lastCheck atomic.Int64
	// lastErr is the last failure seen of t, by a check or a request;
	// nil before any. Only failures write it: a success costs nothing.
	lastErr atomic.Pointer[failure]
	breaker *breaker // nil without Options.Breaker

	// mu serializes the passive-health transitions (out, back in) so that
	// downUntil and trips move together; picks read the atomics only.
	mu sync.Mutex
	// trips counts the cool-downs since t last served a request or
	// passed an active check; it sets the next cool-down's length.
	trips int
}

// TargetStatus is a snapshot of a target for status pages.
type TargetStatus struct {
	URL              string `json:"url"`
	Healthy          bool   `json:"healthy"`
	InFlight         int64  `json:"in_flight"`
	ConsecutiveFails int    `json:"consecutive_fails"`
	// DownUntil is when the current cool-down ends; zero when the
	// target is not cooling down.
	DownUntil time.Time `json:"down_until,omitzero"`
	// ActiveOK is the result of the last active check; true when
	// active checks are off or none has run yet.
	ActiveOK bool `json:"active_ok"`
	// ActiveCheck tells those cases apart: ActiveOff when the upstream
	// has no active check, ActivePending before the first one ends,
	// ActivePassing or ActiveFailing after it.
	ActiveCheck string `json:"active_check"`
	// Breaker is the circuit breaker's state (BreakerClosed,
	// BreakerHalfOpen, BreakerOpen); empty without breakers.
	Breaker string `json:"breaker,omitempty"`
	// LastCheck is when the last active check ended; zero before any.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastError is the last failure seen of the target, by an active
	// check ("status 503", "connection refused") or a request, in a few
	// words; "" before any. It stays when the target recovers:
	// LastErrorAt tells when it was seen.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// failure is a failure of a target as TargetStatus shows it.
type failure struct {
	msg string
	at  int64 // pool's clock, Unix nanoseconds
}

// noteFailure keeps err, described in a few words, as t's last failure.
func (t *Target) noteFailure(err error, now int64) {
	t.lastErr.Store(&failure{msg: describe(err), at: now})
}

// The values of TargetStatus.ActiveCheck.
const (
	ActiveOff     = "off"
	ActivePending = "pending"
	ActivePassing = "passing"
	ActiveFailing = "failing"
)

// activeCheck reports t's active check as TargetStatus.ActiveCheck.
func (t *Target) activeCheck() string {
	switch {
	case t.healthURL == "":
		return ActiveOff
	case !t.checked.Load():
		return ActivePending
	case t.activeOK.Load():
		return ActivePassing
	}
	return ActiveFailing
}

// Index is t's position in Options.Targets (and Pool.Targets), so that
// callers can keep per-target state in a slice instead of a map.
func (t *Target) Index() int { return t.index }

// Begin counts a request as in flight on t; pair it with Done.
func (t *Target) Begin() { t.inFlight.Add(1) }

// Done ends a request begun with Begin.
func (t *Target) Done() { t.inFlight.Add(-1) }

// ReportSuccess records that t served a request. Once t's cool-down has
// ended (t is half-open), or when the request was a panic pick, the
// success puts t back in rotation: the failure count, the half-open
// probe and the cool-down escalation all reset. A success during the
// cool-down otherwise comes from a request that was already in flight
// when t went out, says little about t now, and changes nothing.
func (t *Target) ReportSuccess() {
	// Reading first keeps the common case (in rotation, no failures)
	// from writing to a cache line every request shares; kept this
	// small, the check is inlined at the call.
	if t.fails.Load()|t.downUntil.Load() == 0 {
		return
	}
	t.reportSuccess()
}

func (t *Target) reportSuccess() {
	if d := t.downUntil.Load(); d != 0 && !t.panicked.Load() && t.pool.now().UnixNano() < d {
		return
	}
	t.restore("request succeeded")
}

// ReportFailure records that a request to t failed. At MaxFails
// consecutive failures t goes out for a cool-down; once the cool-down
// has ended, one failure (the half-open probe's, as a rule) takes it out
// again for a longer one. Failures during a cool-down do not extend it.
// See the package comment for the lengths.
func (t *Target) ReportFailure() { t.reportFailure(t.pool.now().UnixNano()) }

// ReportError is ReportFailure with the failure's cause, which
// TargetStatus shows as LastError.
func (t *Target) ReportError(err error) {
	now := t.pool.now().UnixNano()
	t.noteFailure(err, now)
	t.reportFailure(now)
}

func (t *Target) reportFailure(now int64) {
	p := t.pool
	t.lastFail.Store(now)
	n := t.fails.Add(1)
	if p.maxFails == 0 {
		return
	}
	d := t.downUntil.Load()
	if (d == 0 && n < p.maxFails) || (d != 0 && now < d) {
		return
	}
	t.trip(d, now)
}

// trip takes t out for its next cool-down, unless another failure or a
// success has moved t on since downUntil read seen.
func (t *Target) trip(seen, now int64) {
	p := t.pool
	t.mu.Lock()
	if t.downUntil.Load() != seen {
		t.mu.Unlock()
		return
	}
	t.trips++
	trips := t.trips
	cd := p.coolDownFor(trips)
	t.downUntil.Store(now + int64(cd))
	t.probe.Store(0)
	t.panicked.Store(false)
	t.mu.Unlock()
	reason := "consecutive failures"
	if seen != 0 {
		reason = "failed after cool-down"
	}
	p.log.Warn("upstream target out of rotation", "target", t.name,
		"reason", reason, "fails", t.fails.Load(), "cool_down", cd, "trips", trips)
}

// restore puts t back in rotation and resets its passive-health state.
func (t *Target) restore(reason string) {
	t.mu.Lock()
	was := t.downUntil.Swap(0)
	t.fails.Store(0)
	t.trips = 0
	t.probe.Store(0)
	t.panicked.Store(false)
	t.mu.Unlock()
	if was != 0 {
		t.pool.log.Info("upstream target back in rotation", "target", t.name, "reason", reason)
	}
}

// releaseProbe gives up a claim on t's half-open probe that will not be
// reported, so that the next pick may probe t.
func (t *Target) releaseProbe() { t.probe.Store(0) }

// Healthy reports whether t is in rotation or half-open: it is not
// cooling down after failures, not failing its active check, and its
// breaker, if any, is not open. A half-open target is healthy even while
// its probe is out and picks pass it by.
func (t *Target) Healthy() bool {
	var now int64
	return t.available(&now)
}

// Status returns a snapshot of t.
func (t *Target) Status() TargetStatus {
	var now int64
	s := TargetStatus{
		URL:              t.name,
		Healthy:          t.available(&now),
		InFlight:         t.inFlight.Load(),
		ConsecutiveFails: int(t.fails.Load()),
		ActiveOK:         t.activeOK.Load(),
		ActiveCheck:      t.activeCheck(),
	}
	if t.breaker != nil {
		s.Breaker = breakerName(t.breaker.cb.State())
	}
	if c := t.lastCheck.Load(); c != 0 {
		s.LastCheck = time.Unix(0, c)
	}
	if f := t.lastErr.Load(); f != nil {
		s.LastError, s.LastErrorAt = f.msg, time.Unix(0, f.at)
	}
	if d := t.downUntil.Load(); d != 0 {
		if now == 0 {
			now = t.pool.now().UnixNano()
		}
		if now < d {
			s.DownUntil = time.Unix(0, d)
		}
	}
	return s
}

// Pick states of a target.
type state uint8

const (
	stateOut      state = iota // cooling down, failed its check, or breaker open
	stateIn                    // in rotation
	stateHalfOpen              // cool-down over: one pick at a time may probe it
)

// state reads t's pick state. *now caches the pool's clock in Unix
// nanoseconds across the targets of one Pick; 0 means not yet read, so
// the clock is only consulted when some target is out or half-open.
func (t *Target) state(now *int64) state {
	if !t.activeOK.Load() || (t.breaker != nil && !t.breaker.mayPass()) {
		return stateOut
	}
	d := t.downUntil.Load()
	if d == 0 {
		return stateIn
	}
	if *now == 0 {
		*now = t.pool.now().UnixNano()
	}
	if *now < d {
		return stateOut
	}
	return stateHalfOpen
}

// available reports whether t is in rotation or half-open, claiming
// nothing: a half-open target counts as healthy for status and
// readiness even while its probe is out, as it did before the probe.
func (t *Target) available(now *int64) bool { return t.state(now) != stateOut }

// inRotation is the common case of state, small enough to be inlined
// into the pick loops: no breaker, the check passing (or off), not out.
// The loops test it before calling take.
func (t *Target) inRotation() bool {
	return t.breaker == nil && t.activeOK.Load() && t.downUntil.Load() == 0
}

// take reports whether a pick may have t. When t is half-open it must
// win the claim on t's probe first, and probe is then true: the claim
// ends with the request's report (or releaseProbe). Claims lapse after
// the longest cool-down, in case one is never reported.
func (t *Target) take(now *int64) (ok, probe bool) {
	switch t.state(now) {
	case stateIn:
		return true, false
	case stateHalfOpen:
		p := t.probe.Load()
		if p != 0 && *now < p {
			return false, false
		}
		ok := t.probe.CompareAndSwap(p, *now+int64(t.pool.coolDown))
		return ok, ok
	}
	return false, false
}
