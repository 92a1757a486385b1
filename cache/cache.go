package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gateway/internal/fielderr"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/sync/singleflight"
)

// Options configure a Cache: the store every cached route shares.
type Options struct {
	// MaxSize bounds the bytes of stored responses (keys, headers and
	// bodies) across all routes.
	MaxSize int64
	// MaxObjectSize is the largest body stored; a larger response streams
	// to its client and is not stored. 0 means MaxSize/8.
	MaxObjectSize int64
	// Name is this cache's name in Cache-Status; "" means "gateway".
	Name string
	// Store is where responses are kept. nil means a MemoryStore of
	// MaxSize, which the cache owns and closes. A Store given here (a
	// TieredStore, say) may outlive the cache: Close leaves it open for
	// its owner to close.
	Store Store
	// Coordinator, when set, coalesces misses with the other processes
	// that share Store's second tier (see Coordinator).
	Coordinator Coordinator
	// Now is the clock; nil means time.Now. Tests inject one so that
	// freshness can be tested without sleeping.
	Now    func() time.Time
	Logger *slog.Logger
}

// Cache is the shared HTTP cache: one bounded store, and per route a
// middleware (Route.Wrap) that answers from it. Create it with New and
// release it with Close.
type Cache struct {
	store  Store
	own    bool // store was built by New, and Close closes it
	name   string
	now    func() time.Time
	maxObj int64
	log    *slog.Logger
	// flights are the fetches of misses and refreshes under way by key;
	// flight those of slices (slice.go), by slice key.
	flights flights
	flight  singleflight.Group
	coord   Coordinator
	// purgeGen advances with every purge this process makes or applies,
	// but for one of a single URL applied from another process, which
	// advances only urlGen's counter of that URL (those come with every
	// invalidating request anywhere in the cluster). A fill that started
	// before a purge does not store what it fetched after it: the store
	// checks both under purgeMu's read lock, a purge advances them under
	// the write lock before removing anything.
	purgeMu  sync.RWMutex
	purgeGen atomic.Uint64
	urlGen   [urlGenShards]atomic.Uint64
	maxSize  int64
	// statusLines are the recent Cache-Status values without a ttl
	// (statusValues).
	statusLines [numStatusLines]atomic.Pointer[statusLine]
	// keys is the current watch of the routes' top keys (WatchKeys), nil
	// while nobody watches.
	keys   atomic.Pointer[keyWatch]
	mu     sync.Mutex // guards routes, closed and bg.Add
	routes []*Route
	closed bool
	bg     sync.WaitGroup // background refreshes and flights
	active *flightCall    // the flights bg counts, which Close cancels
	// closing is cancelled by Close: fetches that outlive their request
	// (background refreshes, flights whose leader left) stop with it.
	closing context.Context
	stop    context.CancelFunc
}

// Validate reports the problems with o's sizes, each a *fielderr.Error
// naming MaxSize or MaxObjectSize.
func (o Options) Validate() error {
	if o.MaxSize <= 0 {
		return fielderr.New("cache", "MaxSize", "must be positive")
	}
	if o.MaxObjectSize < 0 || o.MaxObjectSize > o.MaxSize {
		return fielderr.New("cache", "MaxObjectSize", fmt.Sprintf("%d must be between 0 and MaxSize %d", o.MaxObjectSize, o.MaxSize))
	}
	return nil
}

// New checks o (see Validate) and builds the store.
func New(o Options) (*Cache, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxObjectSize == 0 {
		o.MaxObjectSize = o.MaxSize / 8
	}
	if o.Name == "" {
		o.Name = "gateway"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s, own := o.Store, false
	if s == nil {
		m, err := NewMemoryStore(MemoryConfig{MaxSize: o.MaxSize})
		if err != nil {
			return nil, err
		}
		s, own = m, true
	}
	closing, stop := context.WithCancel(context.Background())
	return &Cache{
		closing: closing,
		stop:    stop,
		store:   s,
		own:     own,
		name:    o.Name,
		now:     o.Now,
		maxObj:  o.MaxObjectSize,
		maxSize: o.MaxSize,
		log:     o.Logger,
		coord:   o.Coordinator,
	}, nil
}

// Close cancels the fetches that outlived their requests, waits for them
// and releases the store it built (see Options.Store). Requests still
// being served afterwards pass through to the origin uncached.
func (c *Cache) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.stop()
	for fc := c.active; fc != nil; fc = fc.next {
		fc.cancel()
	}
	c.mu.Unlock()
	c.bg.Wait()
	if c.own {
		_ = c.store.Close() // a MemoryStore's Close never fails
	}
}

// goBackground runs f on its own goroutine unless the cache is closing;
// Close waits for it.
func (c *Cache) goBackground(f func()) bool {
	if !c.enterBackground() {
		return false
	}
	go func() {
		defer c.bg.Done()
		f()
	}()
	return true
}

// enterBackground counts a fetch among those Close waits for, unless the
// cache is closed. The caller calls c.bg.Done when it returns true.
func (c *Cache) enterBackground() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.bg.Add(1)
	return true
}

// Store exposes the underlying store, for tests and the admin handler.
func (c *Cache) Store() Store { return c.store }

// storeFailed logs a store call that failed. The request goes on as if
// nothing were stored (Get) or as if the response could not be stored.
func (c *Cache) storeFailed(op string, err error) {
	c.log.Warn("cache store failed", "op", op, "err", err)
}

// RouteOptions configure caching on one route.
type RouteOptions struct {
	Name string
	// Hosts are the hosts the route serves, as the router matches them:
	// exact, or "*.example.com" for any subdomain; none is every host.
	// A purge by path narrowed to the route purges under them.
	Hosts []string
	Key   KeyOptions
	// Policy carries the storage choices RFC 9111 leaves open.
	Policy StoreOptions
	// StaleWhileRevalidate and StaleIfError are the windows (RFC 5861)
	// used when the response names none.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// Grace serves a stale response this long past its freshness when
	// the origin cannot be reached or answers 500, 502, 503 or 504, even
	// though the response named no stale-if-error (RFC 9111 4.2.4 lets a
	// cache do so when disconnected): an outage then costs clients
	// slightly old content rather than errors. A response whose own
	// directives forbid serving it stale (must-revalidate,
	// proxy-revalidate, no-cache, s-maxage) or that names its own
	// stale-if-error is never served under it. 0 turns it off.
	Grace time.Duration
	// HitForPass is how long a key whose response could not be stored is
	// remembered as such: its requests then go to the origin side by side
	// instead of queuing behind one fetch. 0 turns it off.
	HitForPass time.Duration
	// LockTimeout bounds how long a request waits for another request's
	// fetch of the same key; then it goes to the origin itself. 0 means
	// five seconds.
	LockTimeout time.Duration
	// Compress, when the route compresses, encodes stored entries: each
	// encoding a client asks for is made once and kept with the entry.
	Compress Encoder
	// TrustedPeer reports whether the request's peer is trusted to send
	// X-Forwarded-Host and X-Forwarded-Proto, which the proxy then
	// forwards; those values join the key so that no other client can
	// receive a response built from them. nil trusts nobody.
	TrustedPeer func(*http.Request) bool
	// TargetedField names a targeted cache-control field (RFC 9213) for
	// this route's cache, such as "Gateway-Cache-Control": when valid it
	// comes before CDN-Cache-Control and Cache-Control in deciding what
	// is stored and for how long. "" means CDN-Cache-Control only.
	TargetedField string
	// StripTargeted removes CDN-Cache-Control and TargetedField from the
	// route's responses. Off, they are passed on: a CDN in front of the
	// gateway may be one they target too.
	StripTargeted bool
	// Slice, when positive, serves GET and HEAD requests by fetching and
	// storing the representation in aligned byte ranges of this size,
	// each its own entry, and assembling what the client asks for from
	// them (see slice.go): large files are cached and served by range
	// without ever being held whole. It must not exceed the cache's
	// MaxObjectSize. 0 turns it off.
	Slice int64
}

// Route is one route's view of the cache.
type Route struct {
	c     *Cache
	name  string
	keyer *Keyer
	o     RouteOptions
	// strip are the fields removed from responses (StripTargeted), nil
	// when none are.
	strip []string
	// stats are shared with the route this one replaced (same name), so
	// a reload keeps the counters.
	stats *routeCounters
}

type routeCounters struct {
	hits, staleHits, misses, revalidations, coalesced, stores, passes, uncacheable atomic.Uint64
	// hitBytes are the body bytes written to clients from stored
	// entries: what the origin did not have to send.
	hitBytes atomic.Uint64
	// keys are the route's top keys while they are watched (topkeys.go).
	keys atomic.Pointer[routeKeys]

	notStored [NumNotStored]atomic.Uint64 // indexed by NotStored
}

// Route validates o and registers a cached route. A route of the same
// name already registered is replaced (a config reload): the new one
// takes over its counters and its place in Stats and purges, and the
// stored entries, keyed by URL, stay.
func (c *Cache) Route(o RouteOptions) (*Route, error) {
	k, err := NewKeyer(o.Key)
	if err != nil {
		return nil, err
	}
	if o.StaleWhileRevalidate < 0 || o.StaleIfError < 0 || o.Grace < 0 || o.HitForPass < 0 || o.LockTimeout < 0 {
		return nil, errors.New("cache: durations must not be negative")
	}
	if o.Slice < 0 || o.Slice > c.maxObj {
		return nil, fmt.Errorf("cache: slice %d must be between 0 and the max object size %d", o.Slice, c.maxObj)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 5 * time.Second
	}
	if f := o.TargetedField; f != "" {
		if !httpguts.ValidHeaderFieldName(f) || http.CanonicalHeaderKey(f) == "Cache-Control" {
			return nil, fmt.Errorf("cache: targeted field %q is not a field name other than Cache-Control", f)
		}
		o.TargetedField = http.CanonicalHeaderKey(f)
	}
	o.Policy.TargetedField = o.TargetedField
	r := &Route{c: c, name: o.Name, keyer: k, o: o}
	if o.StripTargeted {
		r.strip = []string{CDNCacheControl}
		if o.TargetedField != "" && o.TargetedField != CDNCacheControl {
			r.strip = append(r.strip, o.TargetedField)
		}
	}
	c.mu.Lock()
	replaced := false
	for i, old := range c.routes {
		if old.name == o.Name {
			r.stats = old.stats
			c.routes[i] = r
			replaced = true
			break
		}
	}
	if !replaced {
		r.stats = &routeCounters{}
		c.routes = append(c.routes, r)
	}
	c.mu.Unlock()
	return r, nil
}

// Wrap returns next with this route's caching in front of it. When next
// arms the route's deadline (a DeadlineArmer: the proxy's handler for a
// route with a timeout), the cache has it armed as soon as a request
// cannot be answered from what is stored, so that waiting on another
// request's fetch and going to the origin after it share one deadline,
// the client's whole wait; next then arms no second one. A hit arms
// none.
func (rt *Route) Wrap(next http.Handler) http.Handler {
	h := &handler{rt: rt, c: rt.c, next: next}
	h.arm, _ = next.(DeadlineArmer)
	if rt.o.Slice > 0 {
		return &sliceHandler{h: h, size: rt.o.Slice}
	}
	return h
}

// DeadlineArmer is implemented by a handler that bounds the requests it
// serves by a deadline: ArmDeadline returns r with that deadline armed
// (or r as it is, when its context ends no later already) and the
// function that releases its timer. Serving a request it armed arms no
// second deadline.
type DeadlineArmer interface {
	ArmDeadline(r *http.Request) (*http.Request, context.CancelFunc)
}

// RouteStats are one route's counters.
type RouteStats struct {
	Hits          uint64 `json:"hits"`
	StaleHits     uint64 `json:"stale_hits"`
	Misses        uint64 `json:"misses"`
	Revalidations uint64 `json:"revalidations"`
	Coalesced     uint64 `json:"coalesced"`
	Stores        uint64 `json:"stores"`
	Passes        uint64 `json:"passes"`
	Uncacheable   uint64 `json:"uncacheable"`
	// HitBytes are the body bytes sent to clients from stored responses
	// (hits fresh and stale, requests answered from another's fetch,
	// revalidations the origin answered 304): bytes the origin did not
	// send for them. A range counts its length, HEAD nothing, an encoded
	// form its encoded bytes.
	HitBytes uint64  `json:"hit_bytes"`
	HitRatio float64 `json:"hit_ratio"`
	// NotStored counts the responses not stored by reason token (see
	// NotStored), every token present so the shape never changes.
	NotStored map[string]uint64 `json:"not_stored"`
	// Shares split the requests the cache answered or forwarded.
	Shares Shares `json:"shares"`
}

// Shares are the fractions of a route's requests, among those the cache
// answered or forwarded (coalesced ones neither hit nor fetched, so they
// are left out, as in HitRatio), by what happened to them. They add up to
// 1, or are all 0 before the first request.
type Shares struct {
	Hit          float64 `json:"hit"`          // served fresh
	Stale        float64 `json:"stale"`        // served stale
	Miss         float64 `json:"miss"`         // fetched, nothing stored to revalidate
	Revalidation float64 `json:"revalidation"` // forwarded to revalidate what was stored
	Pass         float64 `json:"pass"`         // forwarded alone (hit-for-pass, no-store, preconditions)
}

// shares computes s.Shares and s.HitRatio from the counters.
func (s *RouteStats) shares() {
	s.HitRatio = hitRatio(*s)
	total := s.Hits + s.StaleHits + s.Misses + s.Revalidations + s.Passes
	if total == 0 {
		s.Shares = Shares{}
		return
	}
	t := float64(total)
	s.Shares = Shares{
		Hit:          float64(s.Hits) / t,
		Stale:        float64(s.StaleHits) / t,
		Miss:         float64(s.Misses) / t,
		Revalidation: float64(s.Revalidations) / t,
		Pass:         float64(s.Passes) / t,
	}
}

// NotStoredReasons are the reason tokens, in a fixed order.
func NotStoredReasons() []string {
	return append([]string(nil), notStoredTokens[NotStoredNone+1:]...)
}

func newNotStoredMap() map[string]uint64 {
	m := make(map[string]uint64, NumNotStored-1)
	for _, t := range notStoredTokens[NotStoredNone+1:] {
		m[t] = 0
	}
	return m
}

// Stats are the totals of every route plus the store's own figures.
type Stats struct {
	RouteStats
	AdmissionDrops uint64 `json:"admission_drops"`
	Evictions      uint64 `json:"evictions"`
	Purges         uint64 `json:"purges"`
	BytesUsed      int64  `json:"bytes_used"`
	MaxBytes       int64  `json:"max_bytes"`
	Entries        int64  `json:"entries"`
}

// Stats returns this route's counters.
func (rt *Route) Stats() RouteStats {
	s := rt.stats
	st := RouteStats{
		Hits:          s.hits.Load(),
		StaleHits:     s.staleHits.Load(),
		Misses:        s.misses.Load(),
		Revalidations: s.revalidations.Load(),
		Coalesced:     s.coalesced.Load(),
		Stores:        s.stores.Load(),
		Passes:        s.passes.Load(),
		Uncacheable:   s.uncacheable.Load(),
		HitBytes:      s.hitBytes.Load(),
		NotStored:     newNotStoredMap(),
	}
	for n := NotStoredNone + 1; n < NumNotStored; n++ {
		st.NotStored[n.String()] = s.notStored[n].Load()
	}
	st.shares()
	return st
}

// hitRatio is the share of requests answered from the cache among those
// it answered or forwarded. Stale hits count: they were answered without
// waiting for the origin. Coalesced requests are left out: they neither
// hit nor caused a fetch.
func hitRatio(s RouteStats) float64 {
	served := s.Hits + s.StaleHits
	total := served + s.Misses + s.Revalidations + s.Passes
	if total == 0 {
		return 0
	}
	return float64(served) / float64(total)
}

// Stats returns the totals over every route plus the store's figures.
func (c *Cache) Stats() (total Stats, routes map[string]RouteStats) {
	c.mu.Lock()
	rs := append([]*Route(nil), c.routes...)
	c.mu.Unlock()
	routes = make(map[string]RouteStats, len(rs))
	total.NotStored = newNotStoredMap()
	for _, r := range rs {
		s := r.Stats()
		routes[r.name] = s
		total.Hits += s.Hits
		total.StaleHits += s.StaleHits
		total.Misses += s.Misses
		total.Revalidations += s.Revalidations
		total.Coalesced += s.Coalesced
		total.Stores += s.Stores
		total.Passes += s.Passes
		total.Uncacheable += s.Uncacheable
		total.HitBytes += s.HitBytes
		for k, v := range s.NotStored {
			total.NotStored[k] += v
		}
	}
	ss := c.store.Stats()
	total.AdmissionDrops = ss.AdmissionDrops
	total.Evictions = ss.Evictions
	total.Purges = ss.Purges
	total.BytesUsed = ss.Bytes
	total.MaxBytes = c.maxSize
	total.Entries = ss.Entries
	total.shares()
	return total, routes
}
