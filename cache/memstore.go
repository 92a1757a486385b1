package cache

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// MemoryConfig sizes a MemoryStore.
type MemoryConfig struct {
	MaxSize     int64 // bytes; the ristretto MaxCost. Must be > 0.
	MaxVariants int   // per primary key; 0 means 32. Oldest variant dropped past it.
}

// object is what ristretto holds for one primary key. It is immutable:
// every change installs a new object, so readers never lock it and the
// index can tell by pointer whether ristretto still holds what it indexed.
type object struct {
	pub  Object // handed out by Get
	hash uint64
	url  string   // URLPart(pub.Primary)
	tags []string // union of the variants' tags, sorted
	cost int64
	// replaced is set by ristretto's ShouldUpdate, which it calls only when
	// a Set replaces a value already in its map: that Set is synchronous,
	// any other one is admitted (or not) later by its processItems goroutine.
	replaced atomic.Bool
}

const nShards = 256

// shard is one 256th of the index, selected by the primary key's hash.
type shard struct {
	// mu guards m. Get holds it shared across ristretto.Get and install
	// holds it across ristretto.Set, so ristretto and the index change
	// together as far as Get can see. Nothing that may wait for ristretto's
	// processItems goroutine (Wait, Del) runs under it, because that
	// goroutine takes it in onEvict and onReject.
	mu sync.RWMutex
	m  map[string]*object
	// wmu serializes the writers of the shard's keys, so that a
	// read-modify-write of an object and its admission Wait are atomic.
	wmu sync.Mutex
	_   [64]byte // keep neighbouring shards' locks off one cache line
}

// MemoryStore is the Store of one process: a ristretto cache bounding
// memory, with one item per primary key, plus an index of what ristretto
// holds by primary key, by URL and by purge tag. The index is
// authoritative: Get serves only what the index holds, so whatever is
// served can be purged. It keeps the entries it is given, by pointer, so
// their process-local state (soft purges, encoded forms) is shared by
// every request that finds them. Its methods never return an error.
type MemoryStore struct {
	rc          *ristretto.Cache[string, *object]
	seed        maphash.Seed
	maxVariants int
	shards      [nShards]shard

	secMu sync.Mutex                     // guards urls, paths and tags; taken inside shard.mu
	urls  map[string]map[string]struct{} // URL part -> primary keys
	paths map[string][]string            // path part (PathPart) -> URL parts in urls (few: one per scheme and host)
	tags  map[string]map[string]struct{} // tag -> primary keys

	// closeMu is held shared by every method that writes to ristretto, so
	// Close never closes its channels under a Set, Del or Wait.
	closeMu sync.RWMutex
	closed  atomic.Bool

	entries, objects, bytes                atomic.Int64
	stores, drops, evictions, purgeEntries atomic.Uint64
}

var (
	_ Store    = (*MemoryStore)(nil)
	_ Recoster = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty store; Close releases it.
func NewMemoryStore(c MemoryConfig) (*MemoryStore, error) {
	if c.MaxSize <= 0 {
		return nil, errors.New("cache store: MaxSize must be > 0")
	}
	if c.MaxVariants < 0 {
		return nil, errors.New("cache store: MaxVariants must not be negative")
	}
	if c.MaxVariants == 0 {
		c.MaxVariants = 32
	}
	s := &MemoryStore{
		seed:        maphash.MakeSeed(),
		maxVariants: c.MaxVariants,
		urls:        make(map[string]map[string]struct{}),
		paths:       make(map[string][]string),
		tags:        make(map[string]map[string]struct{}),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*object)
	}
	// Ristretto advises ten counters per item it may hold; 4 KiB is a
	// guess at the typical object.
	counters := min(max(10*(c.MaxSize/4096), 1024), 1<<24)
	rc, err := ristretto.NewCache(&ristretto.Config[string, *object]{
		NumCounters:  counters,
		MaxCost:      c.MaxSize,
		BufferItems:  64,
		OnEvict:      s.onEvict,
		OnReject:     s.onReject,
		ShouldUpdate: func(cur, _ *object) bool { cur.replaced.Store(true); return true },
	})
	if err != nil {
		return nil, err
	}
	s.rc = rc
	return s, nil
}

// Get returns what is stored under primary, or nil. It allocates nothing:
// the Object is the one the store holds, and must not be modified.
func (s *MemoryStore) Get(_ context.Context, primary string) (*Object, error) {
	sh := &s.shards[s.hash(primary)%nShards]
	var o *object
	sh.mu.RLock()
	if !s.closed.Load() {
		if v, ok := s.rc.Get(primary); ok && v != nil && v == sh.m[primary] {
			o = v
		}
	}
	sh.mu.RUnlock()
	if o == nil {
		return nil, nil
	}
	return &o.pub, nil
}

// Set stores e as a variant of primary. It reports whether e is stored
// and visible to Get on return: ristretto may refuse a new key.
func (s *MemoryStore) Set(_ context.Context, primary string, e *Entry) (bool, error) {
	if e == nil || !s.enter() {
		return false, nil
	}
	defer s.closeMu.RUnlock()
	h := s.hash(primary)
	sh := &s.shards[h%nShards]
	sh.wmu.Lock()
	defer sh.wmu.Unlock()

	variants := []*Entry{e}
	vary := e.Vary
	if len(vary) == 0 {
		vary = nil
	}
	if old := s.lookup(sh, primary); old != nil && slices.Equal(old.pub.Vary, vary) {
		for _, v := range old.pub.Variants {
			if len(variants) == s.maxVariants {
				break
			}
			if !bytes.Equal(v.VaryKey, e.VaryKey) {
				variants = append(variants, v)
			}
		}
	}
	ok := s.install(sh, s.newObject(h, primary, vary, variants, time.Time{}))
	if ok {
		s.stores.Add(1)
	}
	return ok, nil
}

// Wait blocks until every write queued so far (a pass marker, see
// SetPass) has been admitted or refused. Tests use it; serving never
// needs to.
func (s *MemoryStore) Wait() {
	if !s.enter() {
		return
	}
	defer s.closeMu.RUnlock()
	s.rc.Wait()
}

// Recost re-reads the cost of the object stored under primary, after one
// of its entries grew (an encoded form was added), so that the bound on
// memory keeps counting everything the entries hold. It does nothing when
// e is no longer stored there. primary is only looked up, never kept, so
// it may be a view of a reused buffer.
func (s *MemoryStore) Recost(primary string, e *Entry) {
	if !s.enter() {
		return
	}
	defer s.closeMu.RUnlock()
	h := s.hash(primary)
	sh := &s.shards[h%nShards]
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	old := s.lookup(sh, primary)
	if old == nil || !slices.Contains(old.pub.Variants, e) {
		return
	}
	s.install(sh, s.newObject(h, old.pub.Primary, old.pub.Vary, old.pub.Variants, old.pub.PassUntil))
}

// SetPass replaces whatever is stored under primary with a pass marker
// (no variants). The marker of a key not stored yet is admitted a moment
// later (see Wait).
func (s *MemoryStore) SetPass(_ context.Context, primary string, until time.Time) error {
	if !s.enter() {
		return nil
	}
	defer s.closeMu.RUnlock()
	h := s.hash(primary)
	sh := &s.shards[h%nShards]
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	// Pass markers are not waited for: one is written for every
	// uncacheable miss, and a marker admitted a moment late only lets a
	// few more requests be collapsed. A marker ristretto refuses is
	// unindexed by onReject like any other object.
	if !s.installAsync(sh, s.newObject(h, primary, nil, nil, until)) {
		// Not admitted: still drop the variants, which the caller has
		// just found it must not serve.
		s.removeLocked(sh, primary)
	}
	return nil
}

// Delete removes everything stored under primary and reports whether there was anything.
func (s *MemoryStore) Delete(_ context.Context, primary string) (bool, error) {
	if !s.enter() {
		return false, nil
	}
	defer s.closeMu.RUnlock()
	n, found := s.hardPurge(primary, nil)
	s.purgeEntries.Add(uint64(n))
	return found, nil
}

// PurgeURL purges every primary key whose URL part equals url.
func (s *MemoryStore) PurgeURL(_ context.Context, url string, soft bool) (int, error) {
	return s.purge(func() []string { return members(s.urls[url]) }, nil, soft), nil
}

// PurgePrefix purges every primary key whose URL part has the byte prefix prefix.
func (s *MemoryStore) PurgePrefix(_ context.Context, prefix string, soft bool) (int, error) {
	return s.purge(func() (keys []string) {
		for u, set := range s.urls {
			if strings.HasPrefix(u, prefix) {
				keys = append(keys, members(set)...)
			}
		}
		return keys
	}, nil, soft), nil
}

// PathURLs lists the URL parts stored whose path part equals path or,
// when prefix, has the byte prefix path.
func (s *MemoryStore) PathURLs(_ context.Context, path string, prefix bool) ([]string, error) {
	if !s.enter() {
		return nil, nil
	}
	defer s.closeMu.RUnlock()
	s.secMu.Lock()
	defer s.secMu.Unlock()
	if !prefix {
		return slices.Clone(s.paths[path]), nil
	}
	var urls []string
	for p, us := range s.paths {
		if strings.HasPrefix(p, path) {
			urls = append(urls, us...)
		}
	}
	return urls, nil
}

// PurgeTag purges the entries carrying tag (exact equality).
func (s *MemoryStore) PurgeTag(_ context.Context, tag string, soft bool) (int, error) {
	return s.purge(func() []string { return members(s.tags[tag]) },
		func(e *Entry) bool { return slices.Contains(e.Tags, tag) }, soft), nil
}

// PurgeAll purges everything.
func (s *MemoryStore) PurgeAll(_ context.Context, soft bool) (int, error) {
	return s.purge(func() (keys []string) {
		for _, set := range s.urls {
			keys = append(keys, members(set)...)
		}
		return keys
	}, nil, soft), nil
}

// Stats returns the store's counters; zero after Close.
func (s *MemoryStore) Stats() StoreStats {
	if s.closed.Load() {
		return StoreStats{}
	}
	return StoreStats{
		Entries:        s.entries.Load(),
		Objects:        s.objects.Load(),
		Bytes:          s.bytes.Load(),
		Stores:         s.stores.Load(),
		AdmissionDrops: s.drops.Load(),
		Evictions:      s.evictions.Load(),
		Purges:         s.purgeEntries.Load(),
	}
}

// Close stops ristretto's goroutines and drops everything. Methods called
// after it, Close included, do nothing and return zero values.
func (s *MemoryStore) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	// Taking every shard lock once waits out the Gets that started before
	// closed was set; later ones see it and stay away from ristretto,
	// whose Get may panic on the channels Close closes.
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
	s.rc.Close() // its onEvict calls see closed and return
	s.secMu.Lock()
	s.urls, s.paths, s.tags = nil, nil, nil
	s.secMu.Unlock()
	return nil
}

func (s *MemoryStore) hash(primary string) uint64 { return maphash.String(s.seed, primary) }

// enter takes closeMu shared unless the store is closed.
func (s *MemoryStore) enter() bool {
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return false
	}
	return true
}

func (s *MemoryStore) lookup(sh *shard, primary string) *object {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[primary]
}

// keyCost is what an object costs besides its entries and tags: the
// object itself, its key (in the index and in ristretto), its URL part
// and its URL part's member of the path index (whose strings are views
// of the key).
func keyCost(primary string) int64 {
	return objectOverhead + 2*int64(len(primary)) + int64(len(URLPart(primary))) + setMemberOverhead
}

func (s *MemoryStore) newObject(h uint64, primary string, vary []string, variants []*Entry, passUntil time.Time) *object {
	o := &object{
		pub:  Object{Primary: primary, Vary: vary, Variants: variants, PassUntil: passUntil},
		hash: h,
		url:  URLPart(primary),
	}
	o.cost = keyCost(primary)
	for _, v := range variants {
		o.cost += v.Size()
		o.tags = append(o.tags, v.Tags...)
	}
	slices.Sort(o.tags)
	o.tags = slices.Compact(o.tags)
	for _, t := range o.tags {
		o.cost += int64(len(t)) + setMemberOverhead
	}
	return o
}

// install makes o the object stored under its key and reports whether
// ristretto holds it on return. The caller holds sh.wmu.
func (s *MemoryStore) install(sh *shard, o *object) bool {
	if !s.installAsync(sh, o) {
		return false
	}
	if !o.replaced.Load() {
		// A new key, queued for admission. After Wait ristretto has
		// stored it or rejected it, and onReject has unindexed it.
		s.rc.Wait()
	}
	return s.lookup(sh, o.pub.Primary) == o
}

// installAsync is install without waiting for the admission of a new key:
// it reports only whether ristretto took the Set. The caller holds sh.wmu.
func (s *MemoryStore) installAsync(sh *shard, o *object) bool {
	if cur := s.lookup(sh, o.pub.Primary); cur != nil {
		if v, ok := s.rc.Get(o.pub.Primary); !ok || v != cur {
			// The key's last write (an asynchronous pass marker) is still
			// queued for admission. A second Set of a key ristretto does
			// not hold yet would be queued as new too, and rejected as a
			// duplicate, leaving the first one stored but unindexed:
			// let the first settle.
			s.rc.Wait()
		}
	}
	sh.mu.Lock()
	// Replacing a present key is synchronous and never fails; ristretto
	// learns the new cost from a buffered message, which it may drop under
	// load, so its own total can lag behind Bytes until the next update.
	if !s.rc.Set(o.pub.Primary, o, o.cost) {
		sh.mu.Unlock()
		s.drops.Add(1)
		return false
	}
	s.indexPut(sh, o)
	sh.mu.Unlock()
	return true
}

// removeLocked unindexes and deletes primary. The caller holds sh.wmu.
func (s *MemoryStore) removeLocked(sh *shard, primary string) {
	sh.mu.Lock()
	o := sh.m[primary]
	if o != nil {
		s.indexDel(sh, o)
	}
	sh.mu.Unlock()
	if o != nil {
		s.rc.Del(primary) // after unindexing, so Get stops serving it at once
	}
}

// indexPut indexes o in place of what its key held. The caller holds sh.mu.
func (s *MemoryStore) indexPut(sh *shard, o *object) {
	p := o.pub.Primary
	old := sh.m[p]
	sh.m[p] = o
	s.account(old, -1)
	s.account(o, 1)
	s.secMu.Lock()
	if old == nil {
		if s.urls[o.url] == nil {
			pp := PathPart(o.url)
			s.paths[pp] = append(s.paths[pp], o.url)
		}
		addMember(s.urls, o.url, p)
	} else {
		for _, t := range old.tags {
			if _, found := slices.BinarySearch(o.tags, t); !found {
				delMember(s.tags, t, p)
			}
		}
	}
	for _, t := range o.tags {
		addMember(s.tags, t, p) // idempotent
	}
	s.secMu.Unlock()
}

// indexDel unindexes o if its key still holds that very object, which it
// may not when a later install replaced it. The caller holds sh.mu.
func (s *MemoryStore) indexDel(sh *shard, o *object) bool {
	p := o.pub.Primary
	if sh.m[p] != o {
		return false
	}
	delete(sh.m, p)
	s.account(o, -1)
	s.secMu.Lock()
	delMember(s.urls, o.url, p)
	if s.urls[o.url] == nil {
		pp := PathPart(o.url)
		if us := slices.DeleteFunc(s.paths[pp], func(u string) bool { return u == o.url }); len(us) > 0 {
			s.paths[pp] = us
		} else {
			delete(s.paths, pp)
		}
	}
	for _, t := range o.tags {
		delMember(s.tags, t, p)
	}
	s.secMu.Unlock()
	return true
}

// account adds sign times o's share to the gauges.
func (s *MemoryStore) account(o *object, sign int64) {
	if o == nil {
		return
	}
	s.entries.Add(sign * int64(len(o.pub.Variants)))
	s.objects.Add(sign)
	s.bytes.Add(sign * o.cost)
}

// onEvict and onReject run on ristretto's processItems goroutine after the
// object left (or never entered) its map.
func (s *MemoryStore) onEvict(it *ristretto.Item[*object]) {
	if s.unindex(it.Value) {
		s.evictions.Add(1)
	}
}

func (s *MemoryStore) onReject(it *ristretto.Item[*object]) {
	s.drops.Add(1)
	s.unindex(it.Value)
}

func (s *MemoryStore) unindex(o *object) bool {
	if o == nil || s.closed.Load() { // nil: a victim already deleted by Del
		return false
	}
	sh := &s.shards[o.hash%nShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return s.indexDel(sh, o)
}

// purge applies a purge to the primary keys that keys lists (called with
// secMu held) and to their variants that match selects (nil: all).
func (s *MemoryStore) purge(keys func() []string, match func(*Entry) bool, soft bool) int {
	if !s.enter() {
		return 0
	}
	defer s.closeMu.RUnlock()
	s.secMu.Lock()
	list := keys()
	s.secMu.Unlock()
	n := 0
	for _, p := range list {
		if soft {
			n += s.softPurge(p, match)
		} else {
			c, _ := s.hardPurge(p, match)
			n += c
		}
	}
	s.purgeEntries.Add(uint64(n))
	return n
}

// softPurge marks the matching variants stale. The flags live on the
// entries, which later objects share, so no write lock is needed.
func (s *MemoryStore) softPurge(primary string, match func(*Entry) bool) int {
	o := s.lookup(&s.shards[s.hash(primary)%nShards], primary)
	if o == nil {
		return 0
	}
	n := 0
	for _, v := range o.pub.Variants {
		if match == nil || match(v) {
			v.softPurged.Store(true)
			n++
		}
	}
	return n
}

// hardPurge removes the matching variants of primary, and the object when
// none is left. It returns the entries removed and whether an object was found.
func (s *MemoryStore) hardPurge(primary string, match func(*Entry) bool) (int, bool) {
	h := s.hash(primary)
	sh := &s.shards[h%nShards]
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	o := s.lookup(sh, primary)
	if o == nil {
		return 0, false
	}
	var keep []*Entry
	if match != nil {
		for _, v := range o.pub.Variants {
			if !match(v) {
				keep = append(keep, v)
			}
		}
		if len(keep) == len(o.pub.Variants) { // replaced since the keys were listed
			return 0, true
		}
	}
	if len(keep) == 0 || !s.install(sh, s.newObject(h, primary, o.pub.Vary, keep, o.pub.PassUntil)) {
		s.removeLocked(sh, primary)
	}
	return len(o.pub.Variants) - len(keep), true
}

func members(set map[string]struct{}) []string { return slices.Collect(maps.Keys(set)) }

func addMember(m map[string]map[string]struct{}, k, primary string) {
	set := m[k]
	if set == nil {
		set = make(map[string]struct{}, 1)
		m[k] = set
	}
	set[primary] = struct{}{}
}

func delMember(m map[string]map[string]struct{}, k, primary string) {
	if set := m[k]; set != nil {
		delete(set, primary)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}
