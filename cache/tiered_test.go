package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mapStore is a Store as another process would hold it: each variant is
// kept as its wire form (Record.MarshalBinary) and decoded into a new
// Entry on every Get, its soft purges are a flag beside the record, its
// index is a scan. fail makes every call fail; onGet runs inside Get
// after the records were read.
type mapStore struct {
	mu    sync.Mutex
	m     map[string]*mapObject
	fail  atomic.Bool
	onGet func(primary string)
	gets  atomic.Int64
}

type mapObject struct {
	vary      []string
	records   [][]byte // newest first
	stale     []bool
	tags      [][]string
	passUntil time.Time
}

var errTier = errors.New("tier unavailable")

func newMapStore() *mapStore { return &mapStore{m: make(map[string]*mapObject)} }

func (s *mapStore) Get(_ context.Context, primary string) (*Object, error) {
	s.gets.Add(1)
	if s.fail.Load() {
		return nil, errTier
	}
	s.mu.Lock()
	mo := s.m[primary]
	var recs [][]byte
	var stale []bool
	var o *Object
	if mo != nil {
		recs, stale = slices.Clone(mo.records), slices.Clone(mo.stale)
		o = &Object{Primary: primary, Vary: mo.vary, PassUntil: mo.passUntil}
	}
	s.mu.Unlock()
	if s.onGet != nil {
		s.onGet(primary)
	}
	if o == nil {
		return nil, nil
	}
	for i, b := range recs {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return nil, err
		}
		e := NewEntry(r)
		e.softPurged.Store(stale[i])
		o.Variants = append(o.Variants, e)
	}
	return o, nil
}

func (s *mapStore) Set(_ context.Context, primary string, e *Entry) (bool, error) {
	if s.fail.Load() {
		return false, errTier
	}
	b, err := e.MarshalBinary()
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mo := s.m[primary]
	if mo == nil || !slices.Equal(mo.vary, e.Vary) {
		mo = &mapObject{vary: e.Vary}
		s.m[primary] = mo
	}
	mo.passUntil = time.Time{}
	n := &mapObject{vary: mo.vary, records: [][]byte{b}, stale: []bool{false}, tags: [][]string{e.Tags}}
	for i, old := range mo.records {
		var r Record
		if err := r.UnmarshalBinary(old); err == nil && string(r.VaryKey) != string(e.VaryKey) {
			n.records = append(n.records, old)
			n.stale = append(n.stale, mo.stale[i])
			n.tags = append(n.tags, mo.tags[i])
		}
	}
	s.m[primary] = n
	return true, nil
}

func (s *mapStore) SetPass(_ context.Context, primary string, until time.Time) error {
	if s.fail.Load() {
		return errTier
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[primary] = &mapObject{passUntil: until}
	return nil
}

func (s *mapStore) Delete(_ context.Context, primary string) (bool, error) {
	if s.fail.Load() {
		return false, errTier
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := s.m[primary]
	delete(s.m, primary)
	return found, nil
}

// purge applies a purge to the keys keep selects and their variants
// match selects.
func (s *mapStore) purge(key func(string) bool, match func(tags []string) bool, soft bool) (int, error) {
	if s.fail.Load() {
		return 0, errTier
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, mo := range s.m {
		if !key(p) {
			continue
		}
		for i := 0; i < len(mo.records); i++ {
			if match != nil && !match(mo.tags[i]) {
				continue
			}
			n++
			if soft {
				mo.stale[i] = true
				continue
			}
			mo.records = slices.Delete(mo.records, i, i+1)
			mo.stale = slices.Delete(mo.stale, i, i+1)
			mo.tags = slices.Delete(mo.tags, i, i+1)
			i--
		}
		if len(mo.records) == 0 && !soft {
			delete(s.m, p)
		}
	}
	return n, nil
}

func (s *mapStore) PurgeURL(_ context.Context, url string, soft bool) (int, error) {
	return s.purge(func(p string) bool { return URLPart(p) == url }, nil, soft)
}

func (s *mapStore) PurgePrefix(_ context.Context, prefix string, soft bool) (int, error) {
	return s.purge(func(p string) bool { return strings.HasPrefix(URLPart(p), prefix) }, nil, soft)
}

func (s *mapStore) PurgeTag(_ context.Context, tag string, soft bool) (int, error) {
	return s.purge(func(string) bool { return true }, func(tags []string) bool { return slices.Contains(tags, tag) }, soft)
}

func (s *mapStore) PurgeAll(_ context.Context, soft bool) (int, error) {
	return s.purge(func(string) bool { return true }, nil, soft)
}

func (s *mapStore) PathURLs(_ context.Context, path string, prefix bool) ([]string, error) {
	if s.fail.Load() {
		return nil, errTier
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var urls []string
	for p := range s.m {
		u := URLPart(p)
		pp := PathPart(u)
		if (pp == path || prefix && strings.HasPrefix(pp, path)) && !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return urls, nil
}

func (s *mapStore) Stats() StoreStats { return StoreStats{} }
func (s *mapStore) Close() error      { return nil }

var _ Store = (*mapStore)(nil)

// newTiered returns a tiered store over a memory store and a map store,
// with the second tier's errors collected.
func newTiered(t *testing.T) (*TieredStore, memStore, *mapStore, *[]string) {
	t.Helper()
	first := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	second := newMapStore()
	var mu sync.Mutex
	var errs []string
	ts := NewTieredStore(first.MemoryStore, second, func(op string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, op+": "+err.Error())
	})
	return ts, first, second, &errs
}

// recordEntry is a storable entry, as the handler would build it.
func recordEntry(body string, tags ...string) *Entry {
	return NewEntry(Record{
		Status:       200,
		Header:       http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"max-age=60"}},
		Body:         []byte(body),
		ResponseTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Lifetime:     time.Minute,
		Tags:         tags,
	})
}

func TestTieredGetFillsFirst(t *testing.T) {
	ctx := t.Context()
	ts, first, second, errs := newTiered(t)
	k := pkey("h", "/a", "")
	if ok, err := ts.Set(ctx, k, recordEntry("v1", "t")); !ok || err != nil {
		t.Fatalf("Set = %v, %v; want stored", ok, err)
	}
	if first.Get(k) == nil || len(second.m) != 1 {
		t.Fatal("Set did not write both tiers")
	}

	// Gone from the first tier only (evicted, or another process stored
	// it): the second answers, and fills the first.
	first.Remove(k)
	o, err := ts.Get(ctx, k)
	if err != nil || o == nil || len(o.Variants) != 1 || string(o.Variants[0].Body) != "v1" {
		t.Fatalf("Get after a first-tier miss = %+v, %v; want v1 from the second tier", o, err)
	}
	if e := o.Variants[0]; e.Lifetime != time.Minute || e.CC.MaxAge != 60 || !slices.Equal(e.Tags, []string{"t"}) {
		t.Errorf("entry from the second tier: lifetime %v, max-age %d, tags %q", e.Lifetime, e.CC.MaxAge, e.Tags)
	}
	gets := second.gets.Load()
	o2, _ := ts.Get(ctx, k)
	if o2 == nil || o2.Variants[0] != o.Variants[0] || second.gets.Load() != gets {
		t.Error("the Get after a fill did not hit the first tier with the filled entry")
	}
	checkConsistent(t, first)

	// Variants keep their order through a fill; so does a pass marker.
	kv := pkey("h", "/v", "")
	for _, vk := range []string{"a", "b", "c"} {
		e := recordEntry("v-" + vk)
		e.Vary, e.VaryKey = []string{"X"}, []byte(vk)
		if _, err := second.Set(ctx, kv, e); err != nil {
			t.Fatal(err)
		}
	}
	kp := pkey("h", "/pass", "")
	until := time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)
	if err := second.SetPass(ctx, kp, until); err != nil {
		t.Fatal(err)
	}
	if o, _ := ts.Get(ctx, kv); o == nil || len(o.Variants) != 3 {
		t.Fatalf("Get of three variants = %+v", o)
	}
	var bodies []string
	for _, e := range first.Get(kv).Variants {
		bodies = append(bodies, string(e.Body))
	}
	if want := []string{"v-c", "v-b", "v-a"}; !slices.Equal(bodies, want) {
		t.Errorf("first tier after the fill: %q; want %q, newest first", bodies, want)
	}
	if o, _ := ts.Get(ctx, kp); o == nil || !o.PassUntil.Equal(until) {
		t.Errorf("pass marker from the second tier: %+v", o)
	}
	first.Wait()
	if o := first.Get(kp); o == nil || !o.PassUntil.Equal(until) {
		t.Errorf("pass marker not filled into the first tier: %+v", o)
	}
	if o, err := ts.Get(ctx, pkey("h", "/none", "")); o != nil || err != nil {
		t.Errorf("Get of a key neither tier holds = %+v, %v", o, err)
	}
	if len(*errs) != 0 {
		t.Errorf("errors: %q", *errs)
	}
}

func TestTieredPurge(t *testing.T) {
	k1, k2, k3 := pkey("h", "/a/1", ""), pkey("h", "/a/2", "x=1"), pkey("h", "/b", "")
	for _, tc := range []struct {
		name   string
		purge  func(s Store, soft bool) (int, error)
		purged []string
	}{
		{"url", func(s Store, soft bool) (int, error) { return s.PurgeURL(context.Background(), URLPart(k1), soft) }, []string{k1}},
		{"prefix", func(s Store, soft bool) (int, error) {
			return s.PurgePrefix(context.Background(), "http\x00h\x00/a/", soft)
		}, []string{k1, k2}},
		{"tag", func(s Store, soft bool) (int, error) { return s.PurgeTag(context.Background(), "odd", soft) }, []string{k1, k3}},
		{"all", func(s Store, soft bool) (int, error) { return s.PurgeAll(context.Background(), soft) }, []string{k1, k2, k3}},
		{"delete", func(s Store, soft bool) (int, error) {
			found, err := s.Delete(context.Background(), k2)
			if soft || !found {
				return 0, fmt.Errorf("Delete = %v, %v", found, err)
			}
			return 1, err
		}, []string{k2}},
	} {
		for _, soft := range []bool{false, true} {
			if soft && tc.name == "delete" {
				continue
			}
			t.Run(fmt.Sprintf("%s/soft=%v", tc.name, soft), func(t *testing.T) {
				ctx := t.Context()
				ts, first, second, errs := newTiered(t)
				for i, k := range []string{k1, k2, k3} {
					tag := []string{"odd", "even"}[i%2]
					if _, err := ts.Set(ctx, k, recordEntry(k, tag)); err != nil {
						t.Fatal(err)
					}
				}
				n, err := tc.purge(ts, soft)
				if err != nil || n != len(tc.purged) {
					t.Fatalf("purge = %d, %v; want %d", n, err, len(tc.purged))
				}
				for _, k := range []string{k1, k2, k3} {
					purged := slices.Contains(tc.purged, k)
					for tier, s := range map[string]Store{"first": first.MemoryStore, "second": second} {
						o, _ := s.Get(ctx, k)
						switch {
						case purged && !soft && o != nil:
							t.Errorf("%s tier still holds %q", tier, k)
						case purged && soft && (o == nil || !o.Variants[0].SoftPurged()):
							t.Errorf("%s tier: %q not marked stale", tier, k)
						case !purged && (o == nil || o.Variants[0].SoftPurged()):
							t.Errorf("%s tier: %q purged", tier, k)
						}
					}
				}
				if soft {
					// A stale record filled back from the second tier stays stale.
					first.Remove(k1)
					if o, _ := ts.Get(ctx, k1); o == nil || !o.Variants[0].SoftPurged() {
						t.Errorf("soft-purged entry filled from the second tier: %+v; want it stale", o)
					}
				}
				if len(*errs) != 0 {
					t.Errorf("errors: %q", *errs)
				}
			})
		}
	}
}

// TestTieredSecondTierFails: a failing second tier is a miss, and never
// fails a call; its errors are counted and reported.
func TestTieredSecondTierFails(t *testing.T) {
	ctx := t.Context()
	ts, first, second, errs := newTiered(t)
	k, other := pkey("h", "/a", ""), pkey("h", "/b", "")
	if _, err := second.Set(ctx, other, recordEntry("only in the second tier")); err != nil {
		t.Fatal(err)
	}
	second.fail.Store(true)

	if ok, err := ts.Set(ctx, k, recordEntry("v1", "t")); !ok || err != nil {
		t.Errorf("Set = %v, %v; want stored in the first tier, no error", ok, err)
	}
	if o, err := ts.Get(ctx, k); o == nil || err != nil {
		t.Errorf("Get of a first-tier entry = %+v, %v", o, err)
	}
	if o, err := ts.Get(ctx, other); o != nil || err != nil {
		t.Errorf("Get with a failing second tier = %+v, %v; want a miss", o, err)
	}
	if err := ts.SetPass(ctx, other, time.Now()); err != nil {
		t.Errorf("SetPass: %v", err)
	}
	var st *SecondTierError
	if n, err := ts.PurgeTag(ctx, "t", true); n != 1 || !errors.As(err, &st) {
		t.Errorf("PurgeTag = %d, %v; want the first tier's 1 and a SecondTierError", n, err)
	}
	for _, purge := range []func() (int, error){
		func() (int, error) { return ts.PurgeURL(ctx, URLPart(k), false) },
		func() (int, error) { return ts.PurgePrefix(ctx, "http", false) },
		func() (int, error) { return ts.PurgeAll(ctx, false) },
	} {
		if _, err := purge(); !errors.As(err, &st) {
			t.Errorf("purge: %v; want a SecondTierError", err)
		}
	}
	if found, err := ts.Delete(ctx, k); err != nil || found {
		t.Errorf("Delete = %v, %v; want not found, no error", found, err)
	}
	want := []string{"set", "get", "set pass", "purge", "purge", "purge", "purge", "delete"}
	var ops []string
	for _, e := range *errs {
		op, msg, _ := strings.Cut(e, ": ")
		ops = append(ops, op)
		if msg != errTier.Error() {
			t.Errorf("reported %q", e)
		}
	}
	if !slices.Equal(ops, want) {
		t.Errorf("reported ops %q; want %q", ops, want)
	}
	if st := ts.Stats(); st.Errors != uint64(len(want)) || st.Stores != 1 {
		t.Errorf("stats %+v; want %d errors and the first tier's store", st, len(want))
	}
	checkConsistent(t, first)
}

// TestTieredPurgeDuringFill: a purge that runs while a Get reads the
// second tier wins; the Get does not copy what it read into the first
// tier, where nothing would purge it again.
func TestTieredPurgeDuringFill(t *testing.T) {
	ctx := t.Context()
	ts, first, second, _ := newTiered(t)
	k := pkey("h", "/a", "")
	if _, err := second.Set(ctx, k, recordEntry("old")); err != nil {
		t.Fatal(err)
	}
	second.onGet = func(string) {
		second.onGet = nil
		if _, err := ts.PurgeURL(ctx, URLPart(k), false); err != nil {
			t.Error(err)
		}
	}
	if o, err := ts.Get(ctx, k); o != nil || err != nil {
		t.Errorf("Get racing a purge = %+v, %v; want a miss", o, err)
	}
	if first.Get(k) != nil {
		t.Error("the purged entry was filled into the first tier")
	}
	if o, _ := ts.Get(ctx, k); o != nil {
		t.Errorf("after the purge: %+v", o)
	}
	checkConsistent(t, first)
}

// TestTieredThroughCache: with a tiered store under the cache, a response
// the first tier lost is served from the second without going to the
// origin, and a second tier that fails costs hits, never requests.
func TestTieredThroughCache(t *testing.T) {
	first, err := NewMemoryStore(MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	second := newMapStore()
	ts := NewTieredStore(first, second, nil)
	t.Cleanup(func() { ts.Close() })
	c, err := New(Options{MaxSize: 1 << 20, Store: ts, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rt, err := c.Route(RouteOptions{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "v%d", n)
	}))
	get := func() (string, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
		return w.Body.String(), w.Header().Get("Cache-Status")
	}
	for i, want := range []struct{ body, status string }{
		{"v1", "fwd=uri-miss"}, // stored in both tiers
		{"v1", "hit"},
	} {
		if body, cs := get(); body != want.body || !strings.Contains(cs, want.status) {
			t.Fatalf("request %d: %q, Cache-Status %q; want %q, %s", i+1, body, cs, want.body, want.status)
		}
	}
	if _, err := first.PurgeAll(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if body, cs := get(); body != "v1" || !strings.Contains(cs, "hit") {
		t.Errorf("after the first tier lost it: %q, Cache-Status %q; want v1 from the second tier", body, cs)
	}
	// The key was looked up as a view of a pooled buffer, which the next
	// request overwrites: the first tier must have kept a copy.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.com/b", nil))
	key := rt.keyer.Key(httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
	if o, _ := first.Get(t.Context(), key); o == nil || o.Primary != key {
		t.Errorf("first tier after the fill and another request: %+v; want the object under %q", o, key)
	}
	checkConsistent(t, wrapStore(t, first))

	if _, err := ts.PurgeAll(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	second.fail.Store(true)
	for i, want := range []string{"v3", "v3"} { // a miss, then a first-tier hit
		if body, cs := get(); body != want {
			t.Errorf("request %d with the second tier failing: %q, Cache-Status %q; want %q", i+1, body, cs, want)
		}
	}
	if st, _ := c.Stats(); st.Hits != 3 || st.Misses != 3 {
		t.Errorf("stats %+v; want 3 hits, 3 misses", st)
	}
}

// TestFailingStore: with a store whose every call fails, requests go to
// the origin, and a purge answers 500 with the error.
func TestFailingStore(t *testing.T) {
	s := newMapStore()
	s.fail.Store(true)
	c, err := New(Options{MaxSize: 1 << 20, Store: s, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rt, err := c.Route(RouteOptions{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "v%d", hits.Add(1))
	}))
	for i := range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
		if want := fmt.Sprintf("v%d", i+1); w.Code != 200 || w.Body.String() != want {
			t.Errorf("request %d: %d %q; want 200 %q", i+1, w.Code, w.Body.String(), want)
		}
	}
	w := httptest.NewRecorder()
	c.AdminHandler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/cache/purge?all=true", nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), errTier.Error()) {
		t.Errorf("purge: %d %q; want 500 naming the error", w.Code, w.Body.String())
	}
}

// BenchmarkTieredGet is a first-tier hit through a TieredStore, beside
// BenchmarkStoreGet's hit on the memory store alone.
func BenchmarkTieredGet(b *testing.B) {
	first, err := NewMemoryStore(MemoryConfig{MaxSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ts := NewTieredStore(first, newMapStore(), nil)
	b.Cleanup(func() { ts.Close() })
	k := pkey("example.com", "/bench", "a=1")
	if ok, err := ts.Set(context.Background(), k, recordEntry("body")); !ok || err != nil {
		b.Fatalf("Set = %v, %v", ok, err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if o, _ := ts.Get(ctx, k); o == nil {
				b.Error("miss")
				return
			}
		}
	})
}

// TestTieredPathURLs: a tiered store lists the URLs of a path in both
// tiers, each once, and only the first tier's when the second fails.
func TestTieredPathURLs(t *testing.T) {
	ctx := t.Context()
	ts, _, second, errs := newTiered(t)
	a, b := pkey("a.test", "/x", ""), pkey("b.test", "/x", "")
	if ok, err := ts.Set(ctx, a, recordEntry("in both")); !ok || err != nil {
		t.Fatalf("Set = %v, %v", ok, err)
	}
	if _, err := second.Set(ctx, b, recordEntry("only in the second tier")); err != nil {
		t.Fatal(err)
	}
	got, err := ts.PathURLs(ctx, "/x\x00", false)
	slices.Sort(got)
	if want := []string{URLPart(a), URLPart(b)}; err != nil || !slices.Equal(got, want) {
		t.Errorf("PathURLs = %q, %v; want %q", got, err, want)
	}
	second.fail.Store(true)
	got, err = ts.PathURLs(ctx, "/", true)
	if want := []string{URLPart(a)}; err != nil || !slices.Equal(got, want) {
		t.Errorf("PathURLs with a failing second tier = %q, %v; want %q", got, err, want)
	}
	if len(*errs) != 1 || !strings.HasPrefix((*errs)[0], "path urls: ") {
		t.Errorf("errors %q; want the second tier's one", *errs)
	}
}

// TestTieredConcurrentMissesShareOneRead: a burst of first-tier misses of
// one key costs the second tier one read, whose fill then serves them.
func TestTieredConcurrentMissesShareOneRead(t *testing.T) {
	ts, _, second, _ := newTiered(t)
	ctx := t.Context()
	const k = "http\x00a.test\x00/x\x00\x00"
	if ok, err := second.Set(ctx, k, recordEntry("v1")); !ok || err != nil {
		t.Fatalf("Set = %v, %v", ok, err)
	}
	gate := make(chan struct{})
	second.onGet = func(string) { <-gate }
	const n = 20
	var wg sync.WaitGroup
	got := make([]*Object, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = ts.Get(ctx, k)
		}()
	}
	// Release the one read once every other caller waits for it: their
	// stacks show them inside the singleflight group.
	deadline := time.Now().Add(20 * time.Second)
	for waitingIn("singleflight.(*Group).Do") < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d callers wait for the read", waitingIn("singleflight.(*Group).Do"))
		}
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	if g := second.gets.Load(); g != 1 {
		t.Errorf("%d second-tier reads for %d concurrent misses; want 1", g, n)
	}
	for i, o := range got {
		if o == nil || len(o.Variants) != 1 || string(o.Variants[0].Body) != "v1" {
			t.Fatalf("caller %d got %+v", i, o)
		}
	}
}

// waitingIn counts the goroutines whose stack holds fn.
func waitingIn(fn string) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}
