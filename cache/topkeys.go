package cache

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The top keys of each route, by hits and by misses, for a person looking
// at a live page: which URLs the cache answers most, and which it keeps
// fetching. Counting every key exactly would take memory without bound,
// so each route keeps two space-saving sketches (Metwally, Agrawal and El
// Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
// Streams", 2005) of keyCapacity keys each. They exist only while someone
// watches (WatchKeys): otherwise the request path pays one atomic load.

// keyCapacity is how many keys each sketch holds. A key counted more
// often than 1/keyCapacity of a route's hits (or misses) is always among
// them, and its count errs by at most that share.
const keyCapacity = 64

// Sampling keeps the sketch's mutex off most requests of a busy route:
// the first sampleAll hits (and misses) of a route are all counted, then
// one in sampleEvery at random, weighted by sampleEvery, so counts stay
// estimates of the real ones. A route that starts being watched under
// load thus shows its first keys exactly within a fraction of a second,
// and a quiet route is counted exactly.
const (
	sampleAll   = 1024
	sampleEvery = 8
)

// KeyCount is a cache key as a person reads it and an approximate count.
type KeyCount struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// keyWatch is one period of watching: from WatchKeys(true) to
// WatchKeys(false). Routes' sketches name the watch they count for, so a
// sketch left from an earlier watch is never read as the current one's.
type keyWatch struct {
	_ byte // a size, so that every watch has an address of its own
}

// routeKeys are one route's sketches during one watch.
type routeKeys struct {
	w            *keyWatch
	hits, misses keySketch
}

// keySketch is a top-k sketch shared by a route's requests.
type keySketch struct {
	seen atomic.Uint64 // requests noted, sampled or not
	mu   sync.Mutex    // guards top
	top  topK
}

// WatchKeys starts (on) or stops counting the top keys of every route.
// It is off until called; stopping drops what was counted, so the next
// watch starts from nothing.
func (c *Cache) WatchKeys(on bool) {
	if on {
		c.keys.CompareAndSwap(nil, &keyWatch{})
		return
	}
	c.keys.Store(nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.routes {
		r.stats.keys.Store(nil)
	}
}

// TopKeys returns the route's n keys with the most hits (fresh and stale)
// and the n with the most misses (fetches and revalidations; passes are
// not counted), largest first, since the watch began. Both are nil when
// keys are not watched or the route has none. Counts are approximate:
// never below the real count, and above it by at most the route's
// requests of that kind over the sketch's capacity (64); n beyond the
// capacity returns the capacity.
func (c *Cache) TopKeys(route string, n int) (hits, misses []KeyCount) {
	w := c.keys.Load()
	if w == nil || n <= 0 {
		return nil, nil
	}
	var s *routeCounters
	c.mu.Lock()
	for _, r := range c.routes {
		if r.name == route {
			s = r.stats
			break
		}
	}
	c.mu.Unlock()
	if s == nil {
		return nil, nil
	}
	rk := s.keys.Load()
	if rk == nil || rk.w != w {
		return nil, nil
	}
	return rk.hits.largest(n), rk.misses.largest(n)
}

// noteHit counts a request for key answered from the cache; key may be a
// view of a pooled buffer (the sketch copies what it keeps). Small enough
// to be inlined: unwatched, it is one atomic load.
func (rt *Route) noteHit(key string) {
	if rt.c.keys.Load() != nil {
		rt.noteKey(key, true)
	}
}

// noteMiss counts a request for key that went forward for the cache.
func (rt *Route) noteMiss(key string) {
	if rt.c.keys.Load() != nil {
		rt.noteKey(key, false)
	}
}

// noteKey counts key in the route's sketches of the current watch.
func (rt *Route) noteKey(key string, hit bool) {
	w := rt.c.keys.Load()
	if w == nil {
		return // the watch stopped since the caller looked
	}
	rk := rt.keysFor(w)
	if hit {
		rk.hits.note(key)
	} else {
		rk.misses.note(key)
	}
}

// keysFor returns the route's sketches of watch w, making them on the
// first request of the watch.
func (rt *Route) keysFor(w *keyWatch) *routeKeys {
	s := rt.stats
	for {
		rk := s.keys.Load()
		if rk != nil && rk.w == w {
			return rk
		}
		nk := &routeKeys{w: w}
		if s.keys.CompareAndSwap(rk, nk) {
			if rt.c.keys.Load() != w {
				// The watch stopped meanwhile, and may have dropped the
				// routes' sketches before this one went in: drop it too.
				s.keys.CompareAndSwap(nk, nil)
			}
			return nk
		}
	}
}

// note counts key, or a sample of it (see sampleAll).
func (ks *keySketch) note(key string) {
	weight := uint64(1)
	if ks.seen.Add(1) > sampleAll {
		if rand.Uint32N(sampleEvery) != 0 {
			return
		}
		weight = sampleEvery
	}
	ks.mu.Lock()
	ks.top.add(key, weight)
	ks.mu.Unlock()
}

// largest returns the n keys counted most, largest first, as people read
// them.
func (ks *keySketch) largest(n int) []KeyCount {
	ks.mu.Lock()
	top := ks.top.largest(n)
	ks.mu.Unlock()
	if len(top) == 0 {
		return nil
	}
	out := make([]KeyCount, len(top))
	for i, e := range top {
		out[i] = KeyCount{Key: displayKey(e.key), Count: e.count}
	}
	return out
}

// topK is a space-saving sketch of keyCapacity keys: a key already held
// has its count raised; a new one takes the place of the key with the
// smallest count and inherits that count as its possible error. Held in
// a min-heap by count, so both are O(log k). Not safe for concurrent
// use. The zero value is ready.
type topK struct {
	slot []topSlot      // a min-heap by count
	at   map[string]int // key → its index in slot
}

type topSlot struct {
	key   string
	count uint64 // an upper bound of the key's real count
	err   uint64 // count inherited from the key it replaced
}

// add counts weight more requests for key, which is only copied when the
// sketch takes it in.
func (t *topK) add(key string, weight uint64) {
	if i, ok := t.at[key]; ok {
		t.slot[i].count += weight
		t.down(i)
		return
	}
	if t.at == nil {
		t.at = make(map[string]int, keyCapacity)
	}
	key = strings.Clone(key)
	if len(t.slot) < keyCapacity {
		t.slot = append(t.slot, topSlot{key: key, count: weight})
		t.at[key] = len(t.slot) - 1
		t.up(len(t.slot) - 1)
		return
	}
	m := &t.slot[0]
	delete(t.at, m.key)
	*m = topSlot{key: key, count: m.count + weight, err: m.count}
	t.at[key] = 0
	t.down(0)
}

// largest returns up to n slots by count, largest first; ties by key, so
// that a page refreshing shows them in a stable order.
func (t *topK) largest(n int) []topSlot {
	out := slices.Clone(t.slot)
	slices.SortFunc(out, func(a, b topSlot) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return out[:min(n, len(out))]
}

func (t *topK) less(i, j int) bool { return t.slot[i].count < t.slot[j].count }

func (t *topK) swap(i, j int) {
	t.slot[i], t.slot[j] = t.slot[j], t.slot[i]
	t.at[t.slot[i].key] = i
	t.at[t.slot[j].key] = j
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.slot)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// displayKey is a primary cache key (see Keyer) as a person reads it:
// host, path and query ("example.com/a?b=1"), "https://" in front when
// the request was made over TLS, then the other parts of the key
// (headers, cookies, forwarded host and scheme) as explain shows them.
// The method is never part of a key: only GET and HEAD are cached.
func displayKey(primary string) string {
	parts := strings.SplitN(primary, "\x00", 5)
	if len(parts) < 4 {
		return readableKey(primary)
	}
	var b strings.Builder
	if parts[0] == "https" {
		b.WriteString("https://")
	}
	b.WriteString(readableKey(parts[1]))
	b.WriteString(readableKey(parts[2]))
	if parts[3] != "" {
		b.WriteByte('?')
		b.WriteString(readableKey(parts[3]))
	}
	if len(parts) == 5 {
		b.WriteByte(' ')
		b.WriteString(readableKey(parts[4]))
	}
	return b.String()
}
