package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Overload protection: a route's rate_limit and concurrency sections and
// an upstream's circuit_breaker section, with their defaults and checks.

// Defaults of the overload sections, shown in gateway.yaml. Those the
// packages also apply (limit.DefaultMaxKeys, balance's breaker
// defaults) are written out here, as this package imports neither; a
// test in package app keeps them equal.
const (
	defaultQueueTimeout     = time.Second
	defaultRateLimitMaxKeys = 100_000
	defaultFailureRatio     = 0.5
	defaultMinRequests      = 20
	defaultBreakerWindow    = 10 * time.Second
	defaultOpenTimeout      = 10 * time.Second
	defaultHalfOpenRequests = 1
)

// RouteRateLimit limits a route's requests per client with a token
// bucket per key. It is off when the section is absent.
type RouteRateLimit struct {
	// Rate is the sustained rate per key: "100/s", "30/m", "500/h" or a
	// plain number of requests per second.
	Rate Rate `yaml:"rate" json:"rate"`
	// RequestsPerSecond is another way to write Rate; give one of them.
	// Loading moves it into Rate.
	RequestsPerSecond float64 `yaml:"requests_per_second,omitempty" json:"requests_per_second,omitempty"`
	// Burst is how many requests a key that was idle may send at once;
	// it defaults to one second's worth of Rate (at least 1).
	Burst int `yaml:"burst" json:"burst"`
	// Key is "ip" (the client's address, through trusted_proxies) or
	// "header:NAME" (the header's value; the address when it is absent).
	Key string `yaml:"key" json:"key"`
	// MaxKeys bounds the keys tracked at once; idle ones are dropped
	// first.
	MaxKeys int `yaml:"max_keys" json:"max_keys"`
}

// RouteConcurrency bounds the requests of a route that are at its
// upstream at once. Cache hits do not count.
type RouteConcurrency struct {
	// MaxInFlight is how many may be in flight (0: no bound).
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// Queue is how many more may wait for a slot; beyond it, 503.
	Queue int `yaml:"queue" json:"queue"`
	// QueueTimeout is the longest a request waits in the queue (then
	// 503).
	QueueTimeout Duration `yaml:"queue_timeout" json:"queue_timeout"`
}

// CircuitBreaker opens a target after too many of its requests failed
// (transport errors and 5xx responses), so it is skipped until a probe
// succeeds. It is off when the section is absent.
type CircuitBreaker struct {
	// FailureRatio of the requests in Window, once there are at least
	// MinRequests, opens the target.
	FailureRatio float64  `yaml:"failure_ratio" json:"failure_ratio"`
	MinRequests  int      `yaml:"min_requests" json:"min_requests"`
	Window       Duration `yaml:"window" json:"window"`
	// OpenTimeout is how long an open target is skipped before probes
	// are let through.
	OpenTimeout Duration `yaml:"open_timeout" json:"open_timeout"`
	// HalfOpenRequests probes go through at once; that many successes
	// close the breaker, one failure opens it again.
	HalfOpenRequests int `yaml:"half_open_requests" json:"half_open_requests"`
}

// Rate is requests per second.
type Rate float64

// rateUnits are the divisors a rate may be written with.
var rateUnits = []struct {
	name string
	secs float64
}{{"s", 1}, {"m", 60}, {"h", 3600}}

// parseRate reads "N/s", "N/m", "N/h" (also "N/sec", "N/min", "N/hour")
// or a plain N per second; N may have decimals.
func parseRate(s string) (Rate, error) {
	const hint = "want e.g. 100/s, 30/m, 500/h or a number per second"
	num, unit, hasUnit := strings.Cut(strings.TrimSpace(s), "/")
	num, unit = strings.TrimSpace(num), strings.ToLower(strings.TrimSpace(unit))
	secs := 1.0
	if hasUnit {
		switch unit {
		case "s", "sec", "second":
		case "m", "min", "minute":
			secs = 60
		case "h", "hour":
			secs = 3600
		default:
			return 0, fmt.Errorf("invalid rate %q: unknown unit %q (%s)", s, unit, hint)
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("invalid rate %q (%s)", s, hint)
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid rate %q: must not be negative", s)
	}
	return Rate(n / secs), nil
}

// String writes the rate with the smallest unit in which it is a whole
// number of requests, as "100/s" or "30/m", if it reads back the same.
func (r Rate) String() string {
	v := float64(r)
	for _, u := range rateUnits {
		if n := math.Round(v * u.secs); n >= 1 && n/u.secs == v {
			return strconv.FormatFloat(n, 'f', -1, 64) + "/" + u.name
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64) + "/s"
}

// MarshalYAML writes the human form, so a dumped config loads again.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// MarshalJSON writes the human form.
func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// limitDefaults fills in the overload sections that are present.
func limitDefaults(c *Config, d *decoder) {
	for name, u := range c.Upstreams {
		cb := u.CircuitBreaker
		if cb == nil {
			continue
		}
		p := keyPath("upstreams", name) + ".circuit_breaker"
		if !d.set[p+".failure_ratio"] {
			cb.FailureRatio = defaultFailureRatio
		}
		if !d.set[p+".min_requests"] {
			cb.MinRequests = defaultMinRequests
		}
		if !d.set[p+".window"] {
			cb.Window = Duration(defaultBreakerWindow)
		}
		if !d.set[p+".open_timeout"] {
			cb.OpenTimeout = Duration(defaultOpenTimeout)
		}
		if !d.set[p+".half_open_requests"] {
			cb.HalfOpenRequests = defaultHalfOpenRequests
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)
		if !d.set[p+".concurrency.queue_timeout"] {
			r.Concurrency.QueueTimeout = Duration(defaultQueueTimeout)
		}
		rl := r.RateLimit
		if rl == nil {
			continue
		}
		rp := p + ".rate_limit"
		if d.set[rp+".requests_per_second"] && !d.set[rp+".rate"] {
			rl.Rate, rl.RequestsPerSecond = Rate(rl.RequestsPerSecond), 0
		}
		if !d.set[rp+".burst"] {
			rl.Burst = int(min(math.Max(1, math.Ceil(float64(rl.Rate))), math.MaxInt32))
		}
		if rl.Key == "" {
			rl.Key = "ip"
		}
		if !d.set[rp+".max_keys"] {
			rl.MaxKeys = defaultRateLimitMaxKeys
		}
	}
}

// validateLimits checks the overload sections for what the file must
// give. The rate limit's key and burst and the concurrency section are
// the proxy's to check (see Check).
func validateLimits(c *Config, d *decoder) {
	for name, u := range c.Upstreams {
		if u.CircuitBreaker != nil {
			validateBreaker(d, keyPath("upstreams", name)+".circuit_breaker", u.CircuitBreaker)
		}
	}
	for i, r := range c.Routes {
		p := indexPath("routes", i)
		if r.RateLimit != nil {
			validateRateLimit(d, p+".rate_limit", r.RateLimit)
		}
	}
}

func validateBreaker(d *decoder, p string, cb *CircuitBreaker) {
	// 0 is the file's to report: the breaker takes it for its default.
	// The range is package balance's to check (see Check).
	if cb.FailureRatio == 0 {
		d.report(p+".failure_ratio", "%v: want a fraction of the requests, more than 0 and at most 1 (e.g. 0.5)", cb.FailureRatio)
	}
	// The breaker counts in 32 bits; a larger value would wrap around to
	// a small one and open the breaker sooner, not later.
	if cb.MinRequests < 1 || int64(cb.MinRequests) > math.MaxUint32 {
		d.report(p+".min_requests", "%d: must be at least 1 and at most %d", cb.MinRequests, uint32(math.MaxUint32))
	}
	if cb.Window <= 0 {
		d.report(p+".window", "must be positive (failures are counted over this long)")
	}
	if cb.OpenTimeout <= 0 {
		d.report(p+".open_timeout", "must be positive (an open target is skipped this long before a probe)")
	}
	if cb.HalfOpenRequests < 1 || int64(cb.HalfOpenRequests) > math.MaxUint32 {
		d.report(p+".half_open_requests", "%d: must be at least 1 and at most %d", cb.HalfOpenRequests, uint32(math.MaxUint32))
	}
}

func validateRateLimit(d *decoder, p string, rl *RouteRateLimit) {
	rp, qp := p+".rate", p+".requests_per_second"
	switch {
	case d.set[rp] && d.set[qp]:
		d.report(qp, "give rate or requests_per_second, not both (rate at line %d)", d.line(rp))
	case !d.set[rp] && !d.set[qp]:
		if !d.bad[rp] && !d.bad[qp] {
			d.report(rp, "missing (want e.g. rate: 100/s)")
		}
	}
	// That the rate is positive is package limit's to check (see app).
	// 0 would be package limit's default; negatives are its to refuse.
	if rl.MaxKeys == 0 {
		d.report(p+".max_keys", "%d: must be at least 1", rl.MaxKeys)
	}
}
