// Package balance chooses which target of an upstream serves each request
// and keeps track of which targets are fit to serve.
//
// It sits on the proxy's data path: for every request the proxy asks the
// upstream's Pool for a Target, brackets the upstream exchange with
// Target.Begin and Target.Done, and reports the outcome with
// Target.ReportSuccess or Target.ReportFailure (or ReportError, which
// keeps the cause). A retry asks again with the failed target excluded.
// Those outcomes are the passive health signal;
// an optional active check (a GET on every target at an interval) adds a
// second one that also catches targets no traffic is reaching.
//
// A target is in rotation until MaxFails consecutive failures take it out
// for a cool-down. The n-th cool-down in a row lasts
// min(BaseCoolDown<<(n-1), CoolDown), with the base lowered to CoolDown
// when CoolDown is shorter: 1s, 2s, 4s, 8s, then 10s each time with the
// default CoolDown of 10s. When a cool-down ends the target is half-open:
// the next pick that reaches it claims it as the probe, and no other pick
// takes it while the probe is out (a claim never reported lapses after
// CoolDown). The probe's success puts the target back in rotation and
// resets the failure count and the escalation; its failure (or any
// failure while half-open) starts the next, longer cool-down. Failures
// during a cool-down do not extend it. A success during a cool-down comes
// from a request sent before the target went out and changes nothing,
// unless the request was a panic pick (below). A passing active check puts
// a target back in rotation at once, ending any cool-down and resetting
// the count and the escalation; a failing one takes it out until a check
// passes.
//
// When no target may be picked (every one cooling down, failing its
// active check, or half-open with its probe out), a first attempt does not
// fail: Pick and Acquire return the target whose last failure (request or
// check) is the oldest, as Envoy's panic threshold and nginx's rule for a
// single server do, so a lone target that is back serves the first request
// after its restart; targets whose last failures are equally old (those
// that failed at the same instant, or never) take turns. A success of such a panic pick puts the target back
// in rotation. Retries (a non-empty exclusion) never take a panic pick:
// they return nil instead.
//
// With Options.Breaker each target also has a circuit breaker
// (breaker.go): it opens on a failure ratio over a window rather than on
// consecutive failures, and closes only after half-open probes succeed.
// An open breaker is the operator's choice to fail fast, so no pick,
// panic included, takes a target whose breaker is open; Acquire also
// passes the request through the chosen target's breaker and moves on to
// the next target when that breaker refuses. While every breaker refuses
// Acquire returns nil at once, the request fails without a dial, and
// Pool.RetryAfter says when the first breaker lets a probe through.
//
// Pick runs for every request, so its paths take no lock and do not
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

	"gateway/internal/fielderr"

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
	// BaseCoolDown is the first cool-down of a target (CoolDown when
	// that is shorter); each further one in a row doubles, up to
	// CoolDown. Short enough that a target back from a blip is probed
	// within a second.
	BaseCoolDown = time.Second
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

	// MaxFails consecutive failures take a target out for a cool-down;
	// 0 turns passive health off.
	MaxFails int
	// CoolDown is the longest cool-down (DefaultCoolDown when 0): the
	// first lasts BaseCoolDown (or CoolDown, if shorter) and each
	// further one in a row doubles, up to CoolDown.
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

	// Now is the clock for cool-downs and the panic pick's order; nil
	// means time.Now. Breakers run on the wall clock.
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
	// panicRR breaks ties among panic candidates, as among targets
	// whose checks failed in the same round of a clock that stands still.
	panicRR atomic.Uint64

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

// Validate reports the problems with the targets (each an http or
// https URL with a host), the policy, its hash key, the failure count,
// the health path and the breaker, each a *fielderr.Error naming
// Targets (with the index), Policy, HashOn, MaxFails, HealthPath or
// Breaker.FIELD (see BreakerOptions.Validate),
// joined. New checks the rest.
func (o Options) Validate() error {
	var errs []error
	for i, u := range o.Targets {
		switch {
		case u == nil:
			errs = append(errs, fielderr.At("balance", "Targets", i, "missing (want e.g. http://127.0.0.1:9000)"))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fielderr.At("balance", "Targets", i, "scheme must be http or https (want e.g. http://127.0.0.1:9000)"))
		case u.Hostname() == "":
			errs = append(errs, fielderr.At("balance", "Targets", i, "no host (want e.g. http://127.0.0.1:9000)"))
		}
	}
	switch o.Policy {
	case "", PolicyRoundRobin, PolicyLeastRequests:
	case PolicyHash:
		if o.HashOn == "" {
			errs = append(errs, fielderr.New("balance", "HashOn", "missing (want path, header:NAME or cookie:NAME)"))
		} else if err := checkHashOn(o.HashOn); err != nil {
			errs = append(errs, fielderr.New("balance", "HashOn", err.Error()))
		}
	default:
		errs = append(errs, fielderr.New("balance", "Policy", fmt.Sprintf("invalid value %q (want %s, %s or %s)",
			o.Policy, PolicyRoundRobin, PolicyLeastRequests, PolicyHash)))
	}
	if o.MaxFails < 0 {
		errs = append(errs, fielderr.New("balance", "MaxFails", fmt.Sprintf("%d: must not be negative", o.MaxFails)))
	}
	if h := o.HealthPath; h != "" {
		if !strings.HasPrefix(h, "/") {
			errs = append(errs, fielderr.New("balance", "HealthPath", fmt.Sprintf("%q must start with \"/\"", h)))
		} else if u, err := url.Parse(h); err != nil || u.Host != "" {
			errs = append(errs, fielderr.New("balance", "HealthPath", fmt.Sprintf("%q: want a path with an optional query, e.g. /healthz", h)))
		}
	}
	if o.Breaker != nil {
		fs, others := fielderr.Split(o.Breaker.Validate())
		for _, e := range fs {
			e := *e
			e.Field = "Breaker." + e.Field
			errs = append(errs, &e)
		}
		errs = append(errs, others...)
	}
	return errors.Join(errs...)
}

// checkHashOn checks a hash key: "path", "header:NAME" or "cookie:NAME".
func checkHashOn(s string) error {
	if s == "path" {
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && (kind == "header" || kind == "cookie") {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("invalid %s name %q in hash_on %q", kind, name, s)
		}
		return nil
	}
	return fmt.Errorf("invalid value %q (want path, header:NAME or cookie:NAME)", s)
}

// New validates opts and builds a pool. It starts nothing; see Start.
func New(opts Options) (*Pool, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("balance: no targets")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	switch {
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
	}

	var bo BreakerOptions
	if opts.Breaker != nil {
		bo = breakerDefaults(*opts.Breaker)
		p.breakers = true
	}

	var health *url.URL
	if opts.HealthPath != "" {
		health, _ = url.Parse(opts.HealthPath) // checked by Validate
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

// Healthy reports whether at least one target is in rotation or
// half-open. When none is, Pick still returns a panic pick unless every
// breaker is open.
func (p *Pool) Healthy() bool {
	var now int64
	for _, t := range p.targets {
		if t.available(&now) {
			return true
		}
	}
	return false
}

// coolDownFor is the length of a target's trips-th cool-down in a row.
func (p *Pool) coolDownFor(trips int) time.Duration {
	d := min(BaseCoolDown, p.coolDown)
	for i := 1; i < trips && d < p.coolDown; i++ {
		d *= 2
	}
	return min(d, p.coolDown)
}

// Pick returns the target for r, never exclude. exclude is the target a
// retry is moving away from; pass nil on a first attempt. A first attempt
// gets a panic pick when no target is in rotation (see the package
// comment), and nil only when every target's breaker is open; a retry
// gets nil when no other target is in rotation. Pick skips targets whose
// breaker is open but does not pass the request through the breaker;
// with breakers, use Acquire.
func (p *Pool) Pick(r *http.Request, exclude *Target) *Target {
	if exclude == nil {
		t, _ := p.pick(r, nil)
		if t == nil {
			t = p.pickPanic(nil)
		}
		return t
	}
	one := [1]*Target{exclude}
	t, _ := p.pick(r, one[:])
	return t
}

// pick is Pick without the panic pick, with any number of targets to
// avoid; a non-empty skip is a retry or a re-pick after a breaker
// refused. probe is true when t is half-open and this pick claimed its
// probe.
func (p *Pool) pick(r *http.Request, skip []*Target) (t *Target, probe bool) {
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

// pickPanic is the pick when none is in rotation: of the targets not in
// skip whose breaker is not open, the one whose last failure is the
// oldest. Ties, as among targets that never failed, take turns.
func (p *Pool) pickPanic(skip []*Target) *Target {
	n := uint64(len(p.targets))
	start := p.panicRR.Add(1) - 1
	var best *Target
	var bestAt int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if skipped(skip, t) || (t.breaker != nil && !t.breaker.mayPass()) {
			continue
		}
		if at := t.lastFail.Load(); best == nil || at < bestAt {
			best, bestAt = t, at
		}
	}
	if best != nil && !best.panicked.Load() {
		best.panicked.Store(true)
	}
	return best
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

func (p *Pool) pickRoundRobin(skip []*Target) (*Target, bool) {
	if len(skip) > 0 {
		// A retry takes the next target without turning the rotation:
		// turning it would line every first attempt up on the target
		// that just failed.
		return p.scan(p.rr.Load(), skip, false)
	}
	return p.scan(p.rr.Add(1)-1, nil, true)
}

func (p *Pool) scan(start uint64, skip []*Target, charge bool) (*Target, bool) {
	n := uint64(len(p.targets))
	var now int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if skipped(skip, t) {
			continue
		}
		probe := false
		if !t.inRotation() {
			var ok bool
			if ok, probe = t.take(&now); !ok {
				continue
			}
		}
		// Charging the skipped slots to the rotation hands an unhealthy
		// target's share to all others evenly rather than all of it to
		// its successor.
		if charge && i > 0 {
			p.rr.Add(i)
		}
		return t, probe
	}
	return nil, false
}

// pickLeast scans every target for the fewest in-flight requests. Target
// lists are short, so the exact answer costs a handful of atomic loads;
// sampling two at random would only pay off for hundreds of targets. The
// scan starts at a rotating offset so that ties, the norm when traffic is
// light, are spread instead of always going to the first target. A
// half-open target whose probe this pick claims is taken at once: the
// sooner it is probed, the sooner it is back.
func (p *Pool) pickLeast(skip []*Target) (*Target, bool) {
	n := uint64(len(p.targets))
	start := p.rr.Add(1) - 1
	var now int64
	var best *Target
	var bestLoad int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if skipped(skip, t) {
			continue
		}
		if !t.inRotation() {
			switch t.state(&now) {
			case stateOut:
				continue
			case stateHalfOpen:
				if ok, probe := t.take(&now); ok {
					return t, probe
				}
				continue
			}
		}
		if load := t.inFlight.Load(); best == nil || load < bestLoad {
			best, bestLoad = t, load
		}
	}
	return best, false
}

func (p *Pool) pickHash(key string, skip []*Target) (*Target, bool) {
	return p.ring.pick(p.targets, key, skip)
}

// parseHashOn turns the hash_on setting into a key source.
func parseHashOn(s string) (keySource, error) {
	if s == "path" {
		return keySource{kind: keyPath}, nil
	}
	kind, name, _ := strings.Cut(s, ":")
	switch {
	case kind == "header":
		return keySource{kind: keyHeader, name: textproto.CanonicalMIMEHeaderKey(name)}, nil
	case kind == "cookie":
		return keySource{kind: keyCookie, name: name}, nil
	}
	return keySource{}, fmt.Errorf("balance: %w", checkHashOn(s))
}
