package cache

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// TieredStore is a Store over two: a first tier that answers fast (a
// MemoryStore) and a second one that is larger or shared with other
// processes. The cache sees one store; it plugs in through Options.Store,
// and nothing in the request path knows the tiers are there.
//
//   - Get asks the first tier, and on a miss the second. What the second
//     holds is copied into the first (oldest variant first, so the order
//     is kept), so that the next Get is a first-tier hit.
//   - Set and SetPass write both tiers; Set reports stored when either
//     tier took the entry.
//   - Delete and the purges go to both tiers. A purge returns the larger
//     of the two counts, the tiers mostly holding the same entries.
//   - A Get that read the second tier while a purge, Delete or SetPass
//     was under way in this process does not fill the first tier and
//     answers a miss: what it read may be what the purge removed, and
//     copying it into the first tier would undo the purge there.
//
// The second tier is an accelerator: its errors never fail a call. A
// second-tier Get that fails is a miss, a write or purge that fails
// leaves the first tier's result as the answer; each error is counted in
// Stats().Errors and passed to the onError hook. The first tier's errors
// are returned as they are, except while filling it from the second
// tier: the Get then still answers with what it read.
type TieredStore struct {
	first, second Store
	reads         singleflight.Group // second-tier reads under way, by key
	onError       func(op string, err error)
	errors        atomic.Uint64
	// purges counts the removals begun (purges, Delete, SetPass) and
	// purging those under way, for Get's check on what it read.
	purges  atomic.Uint64
	purging atomic.Int64
	// urls are the same, for removals of one URL's keys (a URL purge, an
	// invalidation, Delete, SetPass), spread over shards by URL part so
	// that they spoil only the second-tier reads of their shard.
	urls [removalShards]removalCount
}

// removalShards is how many shards TieredStore.urls has.
const removalShards = 64

type removalCount struct {
	purges  atomic.Uint64
	purging atomic.Int64
	_       [48]byte // keep neighbouring shards off one cache line
}

var removalSeed = maphash.MakeSeed()

// urlShard is the shard of the removals of the URL part u.
func (t *TieredStore) urlShard(u string) *removalCount {
	return &t.urls[maphash.String(removalSeed, u)%removalShards]
}

var (
	_ Store    = (*TieredStore)(nil)
	_ Recoster = (*TieredStore)(nil)
)

// NewTieredStore returns a store over first and second, which it closes on
// Close. onError, when not nil, is called with each error of the second
// tier, and with each error of the first tier while it is filled from
// the second (op is "get", "set", "set pass", "delete", "purge" or
// "fill"); it must be safe for concurrent use.
func NewTieredStore(first, second Store, onError func(op string, err error)) *TieredStore {
	return &TieredStore{first: first, second: second, onError: onError}
}

// Get returns the first tier's object, else the second's; see TieredStore.
// Concurrent first-tier misses of one key share one second-tier read
// (and one fill): a burst of requests for a key that only the shared
// tier holds costs it one round trip, not one per request, and one slow
// round trip does not count as a hundred failures against its breaker.
func (t *TieredStore) Get(ctx context.Context, primary string) (*Object, error) {
	if o, err := t.first.Get(ctx, primary); o != nil || err != nil {
		return o, err
	}
	key := strings.Clone(primary) // the first tier keeps it; see Store.Get
	v, _, _ := t.reads.Do(key, func() (any, error) {
		// Not the first caller's cancellation: the others wait on it.
		return t.readSecond(context.WithoutCancel(ctx), key), nil
	})
	return v.(*Object), nil
}

// readSecond reads primary from the second tier and copies what it
// finds into the first; nil is a miss.
func (t *TieredStore) readSecond(ctx context.Context, primary string) *Object {
	sh := t.urlShard(URLPart(primary))
	seq, busy := t.purges.Load(), t.purging.Load() > 0
	useq, ubusy := sh.purges.Load(), sh.purging.Load() > 0
	o, err := t.second.Get(ctx, primary)
	if err != nil {
		t.failed("get", err)
		return nil
	}
	if o == nil {
		return nil
	}
	t.fill(ctx, primary, o)
	if busy || t.purging.Load() > 0 || t.purges.Load() != seq ||
		ubusy || sh.purging.Load() > 0 || sh.purges.Load() != useq {
		// Whatever the fill wrote may predate the purge: take it back.
		// It may take a newer entry with it, which costs a miss.
		if _, err := t.first.Delete(ctx, primary); err != nil {
			t.failed("delete", err)
		}
		return nil
	}
	return o
}

// fill copies o, read from the second tier, into the first.
func (t *TieredStore) fill(ctx context.Context, primary string, o *Object) {
	if len(o.Variants) == 0 {
		if !o.PassUntil.IsZero() {
			if err := t.first.SetPass(ctx, primary, o.PassUntil); err != nil {
				t.failed("fill", err)
			}
		}
		return
	}
	for i := len(o.Variants) - 1; i >= 0; i-- {
		if _, err := t.first.Set(ctx, primary, o.Variants[i]); err != nil {
			t.failed("fill", err)
			return
		}
	}
}

// Set writes e to both tiers.
func (t *TieredStore) Set(ctx context.Context, primary string, e *Entry) (bool, error) {
	ok, err := t.first.Set(ctx, primary, e)
	ok2, err2 := t.second.Set(ctx, primary, e)
	if err2 != nil {
		t.failed("set", err2)
	}
	return ok || ok2 && err2 == nil, err
}

// SetPass writes the marker to both tiers.
func (t *TieredStore) SetPass(ctx context.Context, primary string, until time.Time) error {
	defer t.removingURL(URLPart(primary))()
	err := t.first.SetPass(ctx, primary, until)
	if err2 := t.second.SetPass(ctx, primary, until); err2 != nil {
		t.failed("set pass", err2)
	}
	return err
}

// Delete deletes from both tiers.
func (t *TieredStore) Delete(ctx context.Context, primary string) (bool, error) {
	defer t.removingURL(URLPart(primary))()
	found, err := t.first.Delete(ctx, primary)
	found2, err2 := t.second.Delete(ctx, primary)
	if err2 != nil {
		t.failed("delete", err2)
	}
	return found || found2 && err2 == nil, err
}

// PurgeURL purges both tiers.
func (t *TieredStore) PurgeURL(ctx context.Context, url string, soft bool) (int, error) {
	defer t.removingURL(url)()
	return t.purge(func(s Store) (int, error) { return s.PurgeURL(ctx, url, soft) })
}

// PurgePrefix purges both tiers.
func (t *TieredStore) PurgePrefix(ctx context.Context, prefix string, soft bool) (int, error) {
	defer t.removing()()
	return t.purge(func(s Store) (int, error) { return s.PurgePrefix(ctx, prefix, soft) })
}

// PurgeTag purges both tiers.
func (t *TieredStore) PurgeTag(ctx context.Context, tag string, soft bool) (int, error) {
	defer t.removing()()
	return t.purge(func(s Store) (int, error) { return s.PurgeTag(ctx, tag, soft) })
}

// PurgeAll purges both tiers.
func (t *TieredStore) PurgeAll(ctx context.Context, soft bool) (int, error) {
	defer t.removing()()
	return t.purge(func(s Store) (int, error) { return s.PurgeAll(ctx, soft) })
}

// PathURLs lists the URL parts of both tiers, each once. The second
// tier's failure is counted and leaves its part out.
func (t *TieredStore) PathURLs(ctx context.Context, path string, prefix bool) ([]string, error) {
	urls, err := t.first.PathURLs(ctx, path, prefix)
	if err != nil {
		return nil, err
	}
	more, err := t.second.PathURLs(ctx, path, prefix)
	if err != nil {
		t.failed("path urls", err)
	}
	for _, u := range more {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return urls, nil
}

// purge runs f on both tiers; the caller marks the removal (removing or
// removingURL).
func (t *TieredStore) purge(f func(Store) (int, error)) (int, error) {
	n, err := f(t.first)
	n2, err2 := f(t.second)
	if err2 != nil {
		t.failed("purge", err2)
		return n, errors.Join(err, &SecondTierError{Err: err2})
	}
	return max(n, n2), err
}

// InvalidateURL purges url from the first tier at once and hands the
// second tier's part to it to do in the background when it can (an
// InvalidateURL(url string) method), since an unsafe request's response
// waits for it; otherwise it purges both tiers like PurgeURL.
func (t *TieredStore) InvalidateURL(ctx context.Context, url string) error {
	bg, ok := t.second.(interface{ InvalidateURL(url string) })
	if !ok {
		_, err := t.PurgeURL(ctx, url, false)
		return err
	}
	defer t.removingURL(url)()
	bg.InvalidateURL(url)
	_, err := t.first.PurgeURL(ctx, url, false)
	return err
}

// PurgeFirst applies a purge to the first tier only: one that another
// process made in the second tier, which is shared. A Get reading the
// second tier meanwhile does not copy what it read into the first.
func (t *TieredStore) PurgeFirst(ctx context.Context, kind PurgeKind, value string, soft bool) (int, error) {
	if kind == PurgeKindURL {
		defer t.removingURL(value)()
	} else {
		defer t.removing()()
	}
	return PurgeStore(ctx, t.first, kind, value, soft)
}

// SharesPurges reports that a purge of this store reaches its second
// tier, which other processes may share: the cache reports its scope.
func (t *TieredStore) SharesPurges() bool { return true }

// removing marks a removal under way until the returned func is called.
// purges is counted before the removal touches a tier, so a Get that read
// the second tier before this removal reached it sees the count change.
func (t *TieredStore) removing() func() {
	t.purging.Add(1)
	t.purges.Add(1)
	return func() { t.purging.Add(-1) }
}

// removingURL is removing for the keys of one URL part.
func (t *TieredStore) removingURL(u string) func() {
	sh := t.urlShard(u)
	sh.purging.Add(1)
	sh.purges.Add(1)
	return func() { sh.purging.Add(-1) }
}

// Recost passes the call on to the first tier, which holds what is
// served, and to the second when it takes it: the encoded form just made
// then travels to the processes that share it.
func (t *TieredStore) Recost(primary string, e *Entry) {
	if rc, ok := t.first.(Recoster); ok {
		rc.Recost(primary, e)
	}
	if rc, ok := t.second.(Recoster); ok {
		rc.Recost(primary, e)
	}
}

// Wait waits for the first tier's queued writes (see MemoryStore.Wait),
// for tests.
func (t *TieredStore) Wait() {
	if w, ok := t.first.(interface{ Wait() }); ok {
		w.Wait()
	}
}

// Stats are the first tier's counters, which bound this process's memory,
// with the second tier's errors in Errors.
func (t *TieredStore) Stats() StoreStats {
	st := t.first.Stats()
	st.Errors += t.errors.Load()
	return st
}

// Close closes both tiers.
func (t *TieredStore) Close() error {
	return errors.Join(t.first.Close(), t.second.Close())
}

func (t *TieredStore) failed(op string, err error) {
	t.errors.Add(1)
	if t.onError != nil {
		t.onError(op, err)
	}
}
