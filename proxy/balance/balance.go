// Package balance chooses which target of an upstream serves each request
// and keeps track of which targets are fit to serve.
//
// It sits on the proxy's data path: for every request the proxy asks the
// upstream's Pool for a Target, brackets the upstream exchange with
// Target.Begin and Target.Done, and reports the outcome with
// Target.ReportSuccess or Target.ReportFailure. A retry asks again with
// the failed target excluded. Those outcomes are the passive health signal;
// an optional active check (a GET on every target at an interval) adds a
// second one that also catches targets no traffic is reaching.
//
// A target is healthy when it is not cooling down after MaxFails
// consecutive failures and, with active checks on, its last check passed.
// When a cool-down ends the target is half-open: the failure count is left
// as it was, so a single further failure takes it out for another
// cool-down, and only a success resets the count. A target that is still
// down thus costs one failed request per cool-down instead of MaxFails.
//
// With Options.Breaker each target also has a circuit breaker
// (breaker.go): it opens on a failure ratio over a window rather than on
// consecutive failures, and closes only after half-open probes succeed.
// Pick skips open targets; Acquire also passes the request through the
// chosen target's breaker and moves on to the next target when that
// breaker refuses, so while every target is open it returns nil at once
// and the request fails without a dial.
//
// Pick runs for every request, so its paths read atomics only and do not
// allocate; everything that can be computed ahead (the hash ring, the
// health-check URLs) is computed in New because a pool's targets are fixed
// for its lifetime. A configuration change builds a new pool.
package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Policy names accepted in Options.Policy.
const (
	PolicyRoundRobin    = "round_robin"
	PolicyLeastRequests = "least_requests"
	PolicyHash          = "hash"
)

// Defaults for durations left zero.
const (
	// DefaultCoolDown applies when MaxFails is set but CoolDown is not:
	// without it a failed target would come straight back.
	DefaultCoolDown = 10 * time.Second
	// DefaultHealthInterval applies when HealthPath is set without an
	// interval.
	DefaultHealthInterval = 10 * time.Second
)

// Options configure a Pool.
type Options struct {
	// Targets are the base URLs of the upstream's servers; at least one.
	Targets []*url.URL
	// Policy is PolicyRoundRobin (when empty), PolicyLeastRequests or
	// PolicyHash.
	Policy string
	// HashOn is the key for PolicyHash: "path", "header:NAME" or
	// "cookie:NAME". Other policies ignore it.
	HashOn string

	// MaxFails consecutive failures take a target out for CoolDown;
	// 0 turns passive health off.
	MaxFails int
	// CoolDown is how long a failed target stays out
	// (DefaultCoolDown when 0).
	CoolDown time.Duration

	// HealthPath, when set, turns on active checks: GET HealthPath
	// (which may carry a query) relative to each target's URL.
	HealthPath string
	// HealthInterval is the time between checks
	// (DefaultHealthInterval when 0).
	HealthInterval time.Duration
	// HealthTimeout bounds one check (HealthInterval when 0).
	HealthTimeout time.Duration
	// HealthClient sends the checks; nil means http.DefaultClient.
	// Passing the upstream's client makes checks use the same TLS and
	// protocol settings as real traffic.
	HealthClient *http.Client

	// Now is the clock for cool-downs; nil means time.Now.
	Now func() time.Time
	// Logger receives health transitions; nil means slog.Default().
	Logger *slog.Logger

	// Breaker, when set, gives every target a circuit breaker; see
	// BreakerOptions and Acquire.
	Breaker *BreakerOptions
}

type policy uint8

const (
	roundRobin policy = iota
	leastRequests
	hashed
)

// Pool is the set of targets of one upstream. Its methods are safe for
// concurrent use.
type Pool struct {
	targets []*Target
	policy  policy
	key     keySource
	ring    ring

	// rr is the rotation shared by round_robin, least_requests' tie
	// break and hash's fallback for requests without a key.
	rr atomic.Uint64

	maxFails int64
	coolDown time.Duration
	breakers bool // every target has a breaker
	now      func() time.Time
	log      *slog.Logger

	healthPath     string
	healthInterval time.Duration
	healthTimeout  time.Duration
	healthClient   *http.Client

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// running counts live health goroutines so tests can prove Close
	// leaves none behind.
	running atomic.Int64
}

// New validates opts and builds a pool. It starts nothing; see Start.
func New(opts Options) (*Pool, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("balance: no targets")
	}
	switch {
	case opts.MaxFails < 0:
		return nil, fmt.Errorf("balance: negative max_fails %d", opts.MaxFails)
	case opts.CoolDown < 0:
		return nil, fmt.Errorf("balance: negative cool_down %s", opts.CoolDown)
	case opts.HealthInterval < 0:
		return nil, fmt.Errorf("balance: negative health interval %s", opts.HealthInterval)
	case opts.HealthTimeout < 0:
		return nil, fmt.Errorf("balance: negative health timeout %s", opts.HealthTimeout)
	}

	p := &Pool{
		maxFails:       int64(opts.MaxFails),
		coolDown:       opts.CoolDown,
		now:            opts.Now,
		log:            opts.Logger,
		healthPath:     opts.HealthPath,
		healthInterval: opts.HealthInterval,
		healthTimeout:  opts.HealthTimeout,
	}
	if p.coolDown == 0 {
		p.coolDown = DefaultCoolDown
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.Default()
	}

	switch opts.Policy {
	case "", PolicyRoundRobin:
		p.policy = roundRobin
	case PolicyLeastRequests:
		p.policy = leastRequests
	case PolicyHash:
		p.policy = hashed
		k, err := parseHashOn(opts.HashOn)
		if err != nil {
			return nil, err
		}
		p.key = k
	default:
		return nil, fmt.Errorf("balance: unknown policy %q (want %s, %s or %s)",
			opts.Policy, PolicyRoundRobin, PolicyLeastRequests, PolicyHash)
	}

	var bo BreakerOptions
	if opts.Breaker != nil {
		var err error
		if bo, err = checkBreaker(opts.Breaker); err != nil {
			return nil, err
		}
		p.breakers = true
	}

	var health *url.URL
	if opts.HealthPath != "" {
		h, err := url.Parse(opts.HealthPath)
		if err != nil || !strings.HasPrefix(opts.HealthPath, "/") || h.Scheme != "" || h.Host != "" {
			return nil, fmt.Errorf("balance: health path %q must be an absolute path", opts.HealthPath)
		}
		health = h
		if p.healthInterval == 0 {
			p.healthInterval = DefaultHealthInterval
		}
		if p.healthTimeout == 0 {
			p.healthTimeout = p.healthInterval
		}
		p.healthClient = checkClient(opts.HealthClient)
	}

	seen := make(map[string]bool, len(opts.Targets))
	p.targets = make([]*Target, len(opts.Targets))
	for i, u := range opts.Targets {
		if u == nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("balance: target %d: want an absolute URL, got %v", i, u)
		}
		s := u.String()
		// A repeated target would skew the rotation and share its ring
		// points with its twin; it is far likelier a typo than a weight.
		if seen[s] {
			return nil, fmt.Errorf("balance: duplicate target %s", s)
		}
		seen[s] = true
		t := &Target{URL: u, pool: p, index: i, name: s}
		t.activeOK.Store(true)
		if health != nil {
			t.healthURL = healthURL(u, health)
		}
		if p.breakers {
			t.breaker = newBreaker(bo, s, p.log)
		}
		p.targets[i] = t
	}

	if p.policy == hashed {
		p.ring = buildRing(p.targets)
	}
	return p, nil
}

// Targets returns the pool's targets in configuration order.
func (p *Pool) Targets() []*Target {
	return append([]*Target(nil), p.targets...)
}

// Healthy reports whether at least one target may be picked.
func (p *Pool) Healthy() bool {
	var now int64
	for _, t := range p.targets {
		if t.available(&now) {
			return true
		}
	}
	return false
}

// Pick returns the target for r, never exclude, or nil when no other
// target is healthy. exclude is the target a retry is moving away from;
// pass nil on a first attempt. Pick skips targets whose breaker is open
// but does not pass the request through the breaker; with breakers,
// use Acquire.
func (p *Pool) Pick(r *http.Request, exclude *Target) *Target {
	var one [1]*Target
	skip := one[:0]
	if exclude != nil {
		one[0] = exclude
		skip = one[:]
	}
	return p.pick(r, skip)
}

// pick is Pick with any number of targets to avoid; a non-empty skip is
// a retry or a re-pick after a breaker refused.
func (p *Pool) pick(r *http.Request, skip []*Target) *Target {
	switch p.policy {
	case leastRequests:
		return p.pickLeast(skip)
	case hashed:
		if k := p.key.value(r); k != "" {
			return p.pickHash(k, skip)
		}
		// Requests without a key have no affinity to keep.
	}
	return p.pickRoundRobin(skip)
}

// skipped reports whether t is in skip; skip holds a few targets at most.
func skipped(skip []*Target, t *Target) bool {
	for _, s := range skip {
		if s == t {
			return true
		}
	}
	return false
}

func (p *Pool) pickRoundRobin(skip []*Target) *Target {
	if len(skip) > 0 {
		// A retry takes the next target without turning the rotation:
		// turning it would line every first attempt up on the target
		// that just failed.
		return p.scan(p.rr.Load(), skip, false)
	}
	return p.scan(p.rr.Add(1)-1, nil, true)
}

func (p *Pool) scan(start uint64, skip []*Target, charge bool) *Target {
	n := uint64(len(p.targets))
	var now int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if skipped(skip, t) || !t.available(&now) {
			continue
		}
		// Charging the skipped slots to the rotation hands an unhealthy
		// target's share to all others evenly rather than all of it to
		// its successor.
		if charge && i > 0 {
			p.rr.Add(i)
		}
		return t
	}
	return nil
}

// pickLeast scans every target for the fewest in-flight requests. Target
// lists are short, so the exact answer costs a handful of atomic loads;
// sampling two at random would only pay off for hundreds of targets. The
// scan starts at a rotating offset so that ties, the norm when traffic is
// light, are spread instead of always going to the first target.
func (p *Pool) pickLeast(skip []*Target) *Target {
	n := uint64(len(p.targets))
	start := p.rr.Add(1) - 1
	var now int64
	var best *Target
	var bestLoad int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if skipped(skip, t) || !t.available(&now) {
			continue
		}
		if load := t.inFlight.Load(); best == nil || load < bestLoad {
			best, bestLoad = t, load
		}
	}
	return best
}

func (p *Pool) pickHash(key string, skip []*Target) *Target {
	return p.ring.pick(p.targets, key, skip)
}

// parseHashOn turns the hash_on setting into a key source.
func parseHashOn(s string) (keySource, error) {
	if s == "path" {
		return keySource{kind: keyPath}, nil
	}
	kind, name, _ := strings.Cut(s, ":")
	switch {
	case kind == "header" && httpguts.ValidHeaderFieldName(name):
		return keySource{kind: keyHeader, name: textproto.CanonicalMIMEHeaderKey(name)}, nil
	case kind == "cookie" && httpguts.ValidHeaderFieldName(name):
		return keySource{kind: keyCookie, name: name}, nil
	}
	return keySource{}, fmt.Errorf(`balance: hash_on %q: want "path", "header:NAME" or "cookie:NAME"`, s)
}
