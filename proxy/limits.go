package proxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gateway/internal/fielderr"
	"gateway/limit"
)

// Overload protection per route. Two limits, at two places:
//
//   - The rate limit runs in ServeHTTP, right after routing and before
//     the route's middleware, so it counts every request of a client,
//     cache hits included: it is about what a client may ask of the
//     gateway. Over it: 429 with Retry-After.
//   - The concurrency limit wraps the route's innermost handler (the
//     proxy), below the cache and compression middleware. Only requests
//     that actually go to the upstream take a slot: hits, and requests
//     waiting for another's fetch of the same key, are served however
//     busy the upstream is. A refused request's 503 also passes back
//     through the cache, which may answer it with a stale entry
//     (stale-if-error), as it does for any upstream 5xx.

// RateLimitOptions limit a route's requests per client key with a token
// bucket each (golang.org/x/time/rate).
type RateLimitOptions struct {
	// Rate is the sustained requests per second per key; positive.
	Rate float64
	// Burst is the bucket size: requests a rested key may send at once.
	Burst int
	// Key is "ip" (or ""): the client's address, as ClientIP finds it;
	// or "header:NAME": the value of that request header, with the
	// client's address for requests without it.
	Key string
	// MaxKeys bounds the keys tracked (limit.DefaultMaxKeys when 0).
	MaxKeys int
	// Now is the clock (time.Now when nil); for tests.
	Now func() time.Time
}

// ConcurrencyOptions bound a route's requests in flight to its upstream
// (or handler). The zero value sets no bound.
type ConcurrencyOptions struct {
	// MaxInFlight is how many may be in flight at once (0: no bound).
	MaxInFlight int
	// Queue is how many more may wait for a slot, for at most
	// QueueTimeout; beyond that, 503 with Retry-After at once.
	Queue        int
	QueueTimeout time.Duration
}

// LimitStats are a route's overload counters, for metrics.
type LimitStats struct {
	// RateLimited counts requests answered 429; RateLimitKeys is the
	// number of client keys tracked now.
	RateLimited   uint64 `json:"rate_limited"`
	RateLimitKeys int    `json:"rate_limit_keys"`
	// InFlight and Queued are the requests holding and awaiting a
	// concurrency slot now.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Shed counts requests refused at once (slots and queue full),
	// QueueTimeouts those refused after waiting QueueTimeout; both get
	// 503. Waited counts requests that had to queue, served or not.
	Shed          uint64 `json:"shed"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
	Waited        uint64 `json:"waited"`
}

func (s LimitStats) add(o LimitStats) LimitStats {
	s.RateLimited += o.RateLimited
	s.RateLimitKeys += o.RateLimitKeys
	s.InFlight += o.InFlight
	s.Queued += o.Queued
	s.Shed += o.Shed
	s.QueueTimeouts += o.QueueTimeouts
	s.Waited += o.Waited
	return s
}

// InFlight returns every route's client requests in progress, from
// routing to the end of the response, by route name (routes with the
// same name are summed).
func (h *Handler) InFlight() map[string]int64 {
	out := make(map[string]int64, len(h.routes))
	for _, r := range h.routes {
		out[r.name] += r.inFlight.Load()
	}
	return out
}

// LimitStats returns the counters of every route with a rate or
// concurrency limit, by route name (routes with the same name are
// summed).
func (h *Handler) LimitStats() map[string]LimitStats {
	out := map[string]LimitStats{}
	for _, r := range h.routes {
		if r.rate == nil && r.conc == nil {
			continue
		}
		var s LimitStats
		if r.rate != nil {
			s.RateLimited = r.rate.limited.Load()
			s.RateLimitKeys = r.rate.keys.Len()
		}
		if r.conc != nil {
			cs := r.conc.Stats()
			s.InFlight, s.Queued = cs.InFlight, cs.Queued
			s.Shed, s.QueueTimeouts, s.Waited = cs.Shed, cs.QueueTimeouts, cs.Waited
		}
		out[r.name] = out[r.name].add(s)
	}
	return out
}

// rateLimiter is a route's rate limit.
type rateLimiter struct {
	keys    *limit.Keyed
	header  string // canonical header name; "" keys by address
	now     func() time.Time
	limited atomic.Uint64
}

// Validate reports the problems with o, each a *fielderr.Error naming
// Key, Rate, Burst or MaxKeys, joined.
func (o RateLimitOptions) Validate() error {
	var errs []error
	if _, err := limit.ParseKey(o.Key); err != nil {
		errs = append(errs, fielderr.New("rate limit", "Key", err.Error()))
	}
	return errors.Join(append(errs, limit.KeyedOptions{Rate: o.Rate, Burst: o.Burst, MaxKeys: o.MaxKeys}.Validate())...)
}

// Validate reports the problems with o, each a *fielderr.Error naming
// MaxInFlight, Queue or QueueTimeout, joined.
func (o ConcurrencyOptions) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fielderr.New("concurrency", field, fmt.Sprintf(format, args...)))
	}
	if o.MaxInFlight < 0 {
		bad("MaxInFlight", "%d: must not be negative", o.MaxInFlight)
	}
	switch {
	case o.Queue < 0:
		bad("Queue", "%d: must not be negative", o.Queue)
	case o.Queue > 0 && o.MaxInFlight == 0:
		bad("Queue", "a queue needs max_in_flight (requests wait for one of its slots)")
	case o.Queue > 0 && o.QueueTimeout <= 0:
		bad("QueueTimeout", "must be positive when queue is set")
	}
	if o.QueueTimeout < 0 {
		bad("QueueTimeout", "%s: must not be negative", o.QueueTimeout)
	}
	return errors.Join(errs...)
}

func newRateLimiter(o *RateLimitOptions) (*rateLimiter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rl := &rateLimiter{now: o.Now}
	if rl.now == nil {
		rl.now = time.Now
	}
	rl.header, _ = limit.ParseKey(o.Key) // checked by Validate
	k, err := limit.NewKeyed(limit.KeyedOptions{Rate: o.Rate, Burst: o.Burst, MaxKeys: o.MaxKeys})
	if err != nil {
		return nil, err
	}
	rl.keys = k
	return rl, nil
}

// allow reports whether r is within its key's rate, and otherwise
// answers it with 429.
func (rl *rateLimiter) allow(w http.ResponseWriter, r *http.Request, trusted []netip.Prefix) bool {
	var buf [64]byte
	key := buf[:0]
	if rl.header != "" {
		if v := r.Header.Get(rl.header); v != "" {
			key = append(append(key, 'h'), v...)
		}
	}
	if len(key) == 0 {
		// The prefix keeps addresses apart from header values.
		a := ClientIP(trusted, r)
		key = append(key, 'i')
		if a.Is4() {
			b := a.As4()
			key = append(key, b[:]...)
		} else if a.Is6() {
			b := a.As16()
			key = append(key, b[:]...)
		}
	}
	ok, wait := rl.keys.Allow(key, rl.now())
	if ok {
		return true
	}
	rl.limited.Add(1)
	w.Header().Set("Retry-After", retryAfter(wait))
	Error(w, http.StatusTooManyRequests, "too many requests")
	return false
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	secs := math.Ceil(d.Seconds())
	if secs < 1 || math.IsNaN(secs) {
		secs = 1
	}
	if secs > math.MaxInt32 {
		secs = math.MaxInt32
	}
	return strconv.FormatInt(int64(secs), 10)
}

// concurrencyLimit holds requests to next to a limit.Concurrency.
type concurrencyLimit struct {
	c    *limit.Concurrency
	next http.Handler
}

func (cl *concurrencyLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isUpgradeRequest(r) {
		// A tunnel would hold a slot for its whole life; the route's
		// websocket.max_connections bounds tunnels instead.
		cl.next.ServeHTTP(w, r)
		return
	}
	if err := cl.c.Acquire(r.Context()); err != nil {
		if errors.Is(err, context.Canceled) {
			// The client left while queued: answer nothing, as for
			// an upstream request it abandons (see upstreamError).
			panic(http.ErrAbortHandler)
		}
		// Full, timed out in the queue, or out of route timeout while
		// waiting: the upstream never saw the request, so it is shed.
		w.Header().Set("Retry-After", "1")
		Error(w, http.StatusServiceUnavailable, "overloaded")
		return
	}
	defer cl.c.Release()
	cl.next.ServeHTTP(w, r)
}

// setLimits builds route r's limits from o.
func (r *route) setLimits(o RouteOptions) error {
	if o.RateLimit != nil {
		rl, err := newRateLimiter(o.RateLimit)
		if err != nil {
			return err
		}
		r.rate = rl
	}
	c := o.Concurrency
	if err := c.Validate(); err != nil {
		return err
	}
	if c.MaxInFlight > 0 {
		lc, err := limit.NewConcurrency(limit.ConcurrencyOptions{MaxInFlight: c.MaxInFlight, Queue: c.Queue, QueueTimeout: c.QueueTimeout})
		if err != nil {
			return err
		}
		r.conc = lc
	}
	return nil
}

// limitConcurrency wraps the route's innermost handler in its
// concurrency limit, if it has one.
func (r *route) limitConcurrency(next http.Handler) http.Handler {
	if r.conc == nil {
		return next
	}
	return &concurrencyLimit{c: r.conc, next: next}
}

// ClientIP is the address of the client that sent r: the peer, or, when
// the peer is one of trusted, the first address in X-Forwarded-For,
// read from the right, that is not trusted (each trusted proxy appends
// the address it received the request from, so the entries to the right
// of that one are vouched for and those to its left are the client's
// own claims). When every entry is trusted, the leftmost. A malformed
// entry ends the walk at the last trusted hop. The zero Addr when the
// peer's address cannot be parsed.
func ClientIP(trusted []netip.Prefix, r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !contains(trusted, addr) {
		return addr
	}
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			var entry string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				entry, list = list, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := parseForwarded(entry)
			if !ok {
				return addr
			}
			if !contains(trusted, a) {
				return a
			}
			addr = a
		}
	}
	return addr
}

// parseForwarded reads an X-Forwarded-For entry: an address, or one
// with a port as some proxies write it.
func parseForwarded(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func contains(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
