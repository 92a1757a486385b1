package limit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gateway/internal/fielderr"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys a Keyed limiter tracks when
// KeyedOptions.MaxKeys is 0. An entry costs about 200 bytes, so the
// default bounds one route's buckets to about 20 MB.
const DefaultMaxKeys = 100_000

// shards spreads the keys over this many maps, each with its own lock,
// so that concurrent requests of different clients rarely contend.
const shards = 64

// sweepEvery is how often a shard that is in use looks for idle buckets
// even when nothing new is inserted, so that memory taken by a burst of
// clients is given back once they are gone.
const sweepEvery = 10 * time.Second

// minSweep is the shard size below which inserting never sweeps: a
// handful of entries costs less than looking at them.
const minSweep = 64

// KeyedOptions configure a Keyed limiter.
type KeyedOptions struct {
	// Rate is the sustained rate each key is allowed, in requests per
	// second; it must be positive.
	Rate float64
	// Burst is the size of each key's bucket: how many requests a key
	// that was idle may send at once. At least 1.
	Burst int
	// MaxKeys bounds the keys tracked at once (DefaultMaxKeys when 0).
	// Idle keys are dropped first; when every tracked key is busy, some
	// are dropped anyway, which only ever lets their clients through
	// sooner, never later.
	MaxKeys int
}

// Keyed is a set of token buckets (golang.org/x/time/rate) indexed by a
// key, such as a client address or an API key. Its memory is bounded:
// a bucket that has refilled completely is indistinguishable from a new
// one, so it is dropped when the shard holding it is swept, and no more
// than MaxKeys buckets are kept in any case. Sweeps happen as part of
// Allow (when a shard grows, and at most every ten seconds otherwise),
// so a Keyed needs no goroutine and no Close.
type Keyed struct {
	limit   rate.Limit
	burst   int
	perCap  int // the most keys one shard holds
	seed    maphash.Seed
	shards  [shards]keyShard
	evicted atomic.Uint64 // busy buckets dropped at the cap
}

type keyShard struct {
	mu        sync.Mutex
	m         map[string]*rate.Limiter
	sweepLen  int      // sweep when an insert finds this many keys
	peak      int      // most keys since the map was last rebuilt
	nextSweep int64    // unix nanoseconds of the next timed sweep
	_         [24]byte // to 64 bytes: shards do not share cache lines
}

// Validate reports the problems with o, each a *fielderr.Error naming
// Rate, Burst or MaxKeys, joined.
func (o KeyedOptions) Validate() error {
	var errs []error
	switch {
	case !(o.Rate > 0):
		errs = append(errs, fielderr.New("limit", "Rate", "must be positive (a route that takes no requests needs no rate limit)"))
	case math.IsInf(o.Rate, 0):
		errs = append(errs, fielderr.New("limit", "Rate", "must be a finite number of requests per second"))
	}
	if o.Burst < 1 {
		errs = append(errs, fielderr.New("limit", "Burst", fmt.Sprintf("%d: must be at least 1", o.Burst)))
	}
	if o.MaxKeys < 0 {
		// 0 takes the default; below it, no client could be tracked.
		errs = append(errs, fielderr.New("limit", "MaxKeys", fmt.Sprintf("%d: must be at least 1", o.MaxKeys)))
	}
	return errors.Join(errs...)
}

// NewKeyed checks o (see Validate) and builds the limiter.
func NewKeyed(o KeyedOptions) (*Keyed, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	k := &Keyed{
		limit:  rate.Limit(o.Rate),
		burst:  o.Burst,
		perCap: max(1, (o.MaxKeys+shards-1)/shards),
		seed:   maphash.MakeSeed(),
	}
	for i := range k.shards {
		s := &k.shards[i]
		s.m = map[string]*rate.Limiter{}
		s.sweepLen = min(minSweep, k.perCap)
	}
	return k, nil
}

// Allow takes a token from key's bucket at now. When the bucket is
// empty it reports false and how long until a token is there, from the
// limiter's reservation (which it cancels).
func (k *Keyed) Allow(key []byte, now time.Time) (ok bool, retryAfter time.Duration) {
	// The key is looked up as a view of the caller's bytes; only an
	// insert copies it.
	return k.AllowString(unsafe.String(unsafe.SliceData(key), len(key)), now)
}

// AllowString is Allow for a key held as a string.
func (k *Keyed) AllowString(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	lim := k.bucket(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, d
}

// bucket finds or makes key's bucket.
func (k *Keyed) bucket(key string, now time.Time) *rate.Limiter {
	s := &k.shards[maphash.String(k.seed, key)%shards]
	ns := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.m[key]
	if ns >= s.nextSweep && len(s.m) > 0 {
		s.nextSweep = ns + int64(sweepEvery)
		k.sweep(s, now)
		if lim != nil && s.m[key] == nil {
			// It was full, so dropping it changed nothing; it
			// is in use again, so it goes back.
			lim = nil
		}
	}
	if lim != nil {
		return lim
	}
	if len(s.m) >= s.sweepLen {
		k.sweep(s, now)
	}
	lim = rate.NewLimiter(k.limit, k.burst)
	s.m[strings.Clone(key)] = lim
	s.peak = max(s.peak, len(s.m))
	return lim
}

// sweep drops the buckets of s that are full, then, if s is still at its
// cap, a sixteenth of its buckets whatever their state; it rebuilds the
// map once it holds a quarter of what it once did, since Go maps do not
// shrink. It sets the size at which the next insert sweeps: twice the
// keys left, so inserts pay for sweeps in constant time on average.
func (k *Keyed) sweep(s *keyShard, now time.Time) {
	burst := float64(k.burst)
	for key, lim := range s.m {
		if lim.TokensAt(now) >= burst {
			delete(s.m, key)
		}
	}
	if len(s.m) >= k.perCap {
		// Every bucket is in use. Dropping some hands their clients a
		// full bucket early; refusing new clients instead would let a
		// flood of addresses lock everyone else out. Map iteration
		// starts at a random place, so the victims are spread.
		n := max(1, k.perCap/16)
		k.evicted.Add(uint64(n))
		for key := range s.m {
			delete(s.m, key)
			if n--; n == 0 {
				break
			}
		}
	}
	if s.peak >= 4*minSweep && len(s.m) <= s.peak/4 {
		m := make(map[string]*rate.Limiter, len(s.m))
		for key, lim := range s.m {
			m[key] = lim
		}
		s.m = m
		s.peak = len(m)
	}
	s.sweepLen = min(k.perCap, max(minSweep, 2*len(s.m)))
}

// Len is the number of keys tracked now.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Evicted counts buckets dropped at the cap while still in use.
func (k *Keyed) Evicted() uint64 { return k.evicted.Load() }

// ParseKey reads what a rate limit is keyed by: "ip" (or empty) for the
// client address, giving header "", or "header:NAME" for a request
// field, giving NAME in canonical form. proxy.RateLimitOptions.Validate
// and the proxy's rate limiter both call it, so what one accepts the
// other serves.
func ParseKey(key string) (header string, err error) {
	if key == "" || key == "ip" {
		return "", nil
	}
	kind, name, _ := strings.Cut(key, ":")
	switch {
	case kind != "header":
		return "", fmt.Errorf("invalid value %q (want ip or header:NAME)", key)
	case !httpguts.ValidHeaderFieldName(name):
		return "", fmt.Errorf("invalid header name %q in %q", name, key)
	}
	return textproto.CanonicalMIMEHeaderKey(name), nil
}
