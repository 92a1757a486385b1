package balance

import (
	"net/url"
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
	// of the pool's clock; 0 when the target is not cooling down.
	downUntil atomic.Int64
	activeOK  atomic.Bool
	breaker   *breaker // nil without Options.Breaker
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
	// Breaker is the circuit breaker's state (BreakerClosed,
	// BreakerHalfOpen, BreakerOpen); empty without breakers.
	Breaker string `json:"breaker,omitempty"`
}

// Index is t's position in Options.Targets (and Pool.Targets), so that
// callers can keep per-target state in a slice instead of a map.
func (t *Target) Index() int { return t.index }

// Begin counts a request as in flight on t; pair it with Done.
func (t *Target) Begin() { t.inFlight.Add(1) }

// Done ends a request begun with Begin.
func (t *Target) Done() { t.inFlight.Add(-1) }

// ReportSuccess records that t served a request. It resets the failure
// count but does not end a cool-down early: a success from a request that
// was already in flight when t was taken out says little about t now,
// though it does mean t needs MaxFails fresh failures to go out again.
func (t *Target) ReportSuccess() {
	// Reading first keeps the common case (no failures) from writing to
	// a cache line every request shares.
	if t.fails.Load() == 0 {
		return
	}
	old := t.fails.Swap(0)
	p := t.pool
	if p.maxFails == 0 || old < p.maxFails {
		return
	}
	if d := t.downUntil.Load(); d == 0 || p.now().UnixNano() >= d {
		p.log.Info("upstream target back in rotation", "target", t.name, "reason", "request succeeded after cool-down")
	}
}

// ReportFailure records that a request to t failed. At MaxFails
// consecutive failures t goes out for CoolDown. Past a cool-down the
// count is still at MaxFails or above, so the first failure takes t out
// again; see the package comment.
func (t *Target) ReportFailure() {
	n := t.fails.Add(1)
	p := t.pool
	if p.maxFails == 0 || n < p.maxFails {
		return
	}
	now := p.now()
	nowNs := now.UnixNano()
	until := now.Add(p.coolDown).UnixNano()
	for {
		cur := t.downUntil.Load()
		// Failures of requests that were in flight when t went out must
		// not stretch its cool-down.
		if cur != 0 && nowNs < cur {
			return
		}
		if t.downUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	p.log.Warn("upstream target out of rotation", "target", t.name,
		"reason", "consecutive failures", "fails", n, "cool_down", p.coolDown)
}

// Healthy reports whether t may be picked now: it is not out after
// failures or a failed active check, and its breaker, if any, is not
// open.
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
	}
	if t.breaker != nil {
		s.Breaker = breakerName(t.breaker.cb.State())
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

// available reports whether t is healthy. *now caches the pool's clock in
// Unix nanoseconds across the targets of one Pick; 0 means not yet read,
// so the clock is only consulted when some target is cooling down.
func (t *Target) available(now *int64) bool {
	if !t.activeOK.Load() || (t.breaker != nil && !t.breaker.mayPass()) {
		return false
	}
	d := t.downUntil.Load()
	if d == 0 {
		return true
	}
	if *now == 0 {
		*now = t.pool.now().UnixNano()
	}
	if *now < d {
		return false
	}
	// Clearing an expired cool-down spares later picks the clock read.
	// If a new failure has set another deadline meanwhile, the swap
	// fails and that deadline stands.
	t.downUntil.CompareAndSwap(d, 0)
	return true
}
