package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is a MemoryStore with the calls the tests make, in the shape
// they had before the Store interface: a background context, and a check
// that no call fails, which a memory store's never do.
type memStore struct {
	*MemoryStore
	t testing.TB
}

func wrapStore(t testing.TB, s *MemoryStore) memStore { return memStore{s, t} }

func newTestStore(t testing.TB, c MemoryConfig) memStore {
	t.Helper()
	s, err := NewMemoryStore(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return wrapStore(t, s)
}

func (s memStore) check(err error) {
	if err != nil {
		s.t.Errorf("memory store: %v", err)
	}
}

func (s memStore) Get(primary string) *Object {
	o, err := s.MemoryStore.Get(context.Background(), primary)
	s.check(err)
	return o
}

// Put stores e under the Vary fields vary.
func (s memStore) Put(primary string, vary []string, e *Entry) bool {
	if e != nil {
		e.Vary = vary
	}
	ok, err := s.MemoryStore.Set(context.Background(), primary, e)
	s.check(err)
	return ok
}

func (s memStore) MarkPass(primary string, until time.Time) {
	s.check(s.MemoryStore.SetPass(context.Background(), primary, until))
}

func (s memStore) Remove(primary string) bool {
	ok, err := s.MemoryStore.Delete(context.Background(), primary)
	s.check(err)
	return ok
}

func (s memStore) RemoveURL(url string) int { return s.PurgeURL(url, false) }

func (s memStore) PurgeURL(url string, soft bool) int {
	return s.count(s.MemoryStore.PurgeURL(context.Background(), url, soft))
}

func (s memStore) PurgePrefix(prefix string, soft bool) int {
	return s.count(s.MemoryStore.PurgePrefix(context.Background(), prefix, soft))
}

func (s memStore) PurgeTag(tag string, soft bool) int {
	return s.count(s.MemoryStore.PurgeTag(context.Background(), tag, soft))
}

func (s memStore) PurgeAll(soft bool) int {
	return s.count(s.MemoryStore.PurgeAll(context.Background(), soft))
}

func (s memStore) count(n int, err error) int {
	s.check(err)
	return n
}

func (s memStore) Close() { s.check(s.MemoryStore.Close()) }

// pkey builds a primary key from its components, as Keyer does.
func pkey(host, path, query string, parts ...string) string {
	k := "http\x00" + host + "\x00" + path + "\x00" + query
	for _, p := range parts {
		k += "\x00" + p
	}
	return k
}

func entry(varyKey string, tags ...string) *Entry {
	e := &Entry{Record: Record{
		Status: 200,
		Header: http.Header{"Content-Type": {"text/plain"}},
		Body:   []byte("body " + varyKey),
		Tags:   tags,
	}}
	if varyKey != "" {
		e.VaryKey = []byte(varyKey)
	}
	return e
}

func mustPut(t *testing.T, s memStore, primary string, vary []string, e *Entry) {
	t.Helper()
	if !s.Put(primary, vary, e) {
		t.Fatalf("Put(%q) = false", primary)
	}
}

// variantsOf returns the stored variants of primary, failing when nothing is stored.
func variantsOf(t *testing.T, s memStore, primary string) []*Entry {
	t.Helper()
	o := s.Get(primary)
	if o == nil {
		t.Fatalf("Get(%q) = nil", primary)
	}
	return o.Variants
}

// checkConsistent checks, on a quiet store, that ristretto and the index
// hold the very same objects and that the gauges and secondary maps match.
func checkConsistent(t *testing.T, s memStore) {
	t.Helper()
	s.rc.Wait()
	var entries, objects, bytes int64
	urls := map[string][]string{}
	tags := map[string][]string{}
	indexed := map[*object]bool{}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, o := range sh.m {
			if v, ok := s.rc.Get(k); !ok || v != o {
				t.Errorf("index holds %q but ristretto has %p, %v", k, v, ok)
			}
			indexed[o] = true
			entries += int64(len(o.pub.Variants))
			objects++
			bytes += o.cost
			urls[o.url] = append(urls[o.url], k)
			for _, tag := range o.tags {
				tags[tag] = append(tags[tag], k)
			}
		}
		sh.mu.RUnlock()
	}
	s.rc.IterValues(func(v *object) bool {
		if !indexed[v] {
			t.Errorf("ristretto holds %q, not indexed", v.pub.Primary)
		}
		return false
	})
	st := s.Stats()
	if st.Entries != entries || st.Objects != objects || st.Bytes != bytes {
		t.Errorf("stats %+v, index has %d entries, %d objects, %d bytes", st, entries, objects, bytes)
	}
	sameSets := func(name string, want map[string][]string, got map[string]map[string]struct{}) {
		if len(want) != len(got) {
			t.Errorf("%s index has %d keys, want %d", name, len(got), len(want))
		}
		for k, ps := range want {
			m := members(got[k])
			slices.Sort(m)
			slices.Sort(ps)
			if !slices.Equal(m, ps) {
				t.Errorf("%s index[%q] = %q, want %q", name, k, m, ps)
			}
		}
	}
	s.secMu.Lock()
	sameSets("url", urls, s.urls)
	sameSets("tag", tags, s.tags)
	paths := map[string][]string{}
	for u := range urls {
		paths[PathPart(u)] = append(paths[PathPart(u)], u)
	}
	if len(paths) != len(s.paths) {
		t.Errorf("path index has %d keys, want %d", len(s.paths), len(paths))
	}
	for p, us := range paths {
		got := slices.Clone(s.paths[p])
		slices.Sort(got)
		slices.Sort(us)
		if !slices.Equal(got, us) {
			t.Errorf("path index[%q] = %q, want %q", p, got, us)
		}
	}
	s.secMu.Unlock()
}

// TestStorePathURLs: the path index finds a path under every scheme and
// host, exactly or by prefix, and forgets a URL with its last key.
func TestStorePathURLs(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	keys := []string{
		pkey("a.test", "/x", ""),
		pkey("a.test", "/x", "", "h:Accept=1"), // a second key of one URL
		pkey("b.test:8080", "/x", ""),
		"https\x00a.test\x00/x\x00",
		pkey("a.test", "/x", "q=1"),
		pkey("a.test", "/xy", ""),
	}
	for _, k := range keys {
		mustPut(t, s, k, nil, entry(""))
	}
	checkConsistent(t, s)
	list := func(path string, prefix bool) []string {
		us, err := s.MemoryStore.PathURLs(context.Background(), path, prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(us)
		return us
	}
	want := []string{"http\x00a.test\x00/x\x00", "http\x00b.test:8080\x00/x\x00", "https\x00a.test\x00/x\x00"}
	if got := list("/x\x00", false); !slices.Equal(got, want) {
		t.Errorf("PathURLs(/x) = %q, want %q", got, want)
	}
	if got := list("/x", true); len(got) != 5 {
		t.Errorf("PathURLs(prefix /x) = %q, want 5 URLs", got)
	}
	s.Remove(keys[0])
	if got := list("/x\x00", false); !slices.Equal(got, want) {
		t.Errorf("after removing one key of a URL: PathURLs(/x) = %q, want %q", got, want)
	}
	s.Remove(keys[1])
	if got := list("/x\x00", false); !slices.Equal(got, want[1:]) {
		t.Errorf("after removing its last key: PathURLs(/x) = %q, want %q", got, want[1:])
	}
	checkConsistent(t, s)
}

func TestURLPart(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{pkey("h", "/p", "a=1"), pkey("h", "/p", "a=1")},
		{pkey("h", "/p", ""), pkey("h", "/p", "")},
		{pkey("h", "/p", "a=1", "h:Accept=x"), pkey("h", "/p", "a=1")},
		{pkey("h", "/p", "", "h:A", "c:b=1"), pkey("h", "/p", "")},
		{"http\x00h", "http\x00h"},
	} {
		if got := URLPart(tc.key); got != tc.want {
			t.Errorf("URLPart(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestNewStoreConfig(t *testing.T) {
	for _, c := range []MemoryConfig{{}, {MaxSize: -1}, {MaxSize: 1 << 20, MaxVariants: -1}} {
		if s, err := NewMemoryStore(c); err == nil {
			s.Close()
			t.Errorf("NewStore(%+v) succeeded", c)
		}
	}
}

func TestStorePutGet(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	k := pkey("example.com", "/a", "")
	if s.Get(k) != nil {
		t.Fatal("Get on an empty store returned an object")
	}
	e := entry("")
	mustPut(t, s, k, nil, e)
	o := s.Get(k)
	if o == nil || o.Primary != k || o.Vary != nil || len(o.Variants) != 1 || o.Variants[0] != e || !o.PassUntil.IsZero() {
		t.Fatalf("Get = %+v", o)
	}
	st := s.Stats()
	if st.Entries != 1 || st.Objects != 1 || st.Stores != 1 || st.Bytes <= e.Size() {
		t.Errorf("stats %+v", st)
	}
	if e.SoftPurged() || !e.TryRefresh() || e.TryRefresh() {
		t.Error("fresh entry flags wrong")
	}
	if s.Put(k, nil, nil) {
		t.Error("Put of a nil entry succeeded")
	}
	checkConsistent(t, s)
}

func TestStoreVariants(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	k := pkey("example.com", "/v", "")
	vary := []string{"Accept-Encoding"}
	gz, br := entry("gzip"), entry("br")
	mustPut(t, s, k, vary, gz)
	mustPut(t, s, k, []string{"Accept-Encoding"}, br) // an equal list, not the same slice
	if v := variantsOf(t, s, k); !slices.Equal(v, []*Entry{br, gz}) {
		t.Fatalf("second variant: %v", v)
	}

	gz2 := entry("gzip")
	mustPut(t, s, k, vary, gz2)
	if v := variantsOf(t, s, k); !slices.Equal(v, []*Entry{gz2, br}) {
		t.Fatalf("same VaryKey did not replace: %v", v)
	}

	lang := entry("en")
	mustPut(t, s, k, []string{"Accept-Language"}, lang)
	o := s.Get(k)
	if !slices.Equal(o.Variants, []*Entry{lang}) || !slices.Equal(o.Vary, []string{"Accept-Language"}) {
		t.Fatalf("Vary change kept old variants: %+v", o)
	}
	if st := s.Stats(); st.Entries != 1 || st.Objects != 1 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
}

func TestStoreMaxVariants(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20, MaxVariants: 3})
	k := pkey("example.com", "/m", "")
	var es []*Entry
	for i := range 5 {
		e := entry(fmt.Sprint(i))
		es = append(es, e)
		mustPut(t, s, k, []string{"X"}, e)
	}
	if v := variantsOf(t, s, k); !slices.Equal(v, []*Entry{es[4], es[3], es[2]}) {
		t.Fatalf("variants %v", v)
	}
	if st := s.Stats(); st.Entries != 3 {
		t.Errorf("Entries = %d", st.Entries)
	}
	checkConsistent(t, s)
}

func TestStoreMarkPass(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	k := pkey("example.com", "/p", "")
	mustPut(t, s, k, nil, entry("", "t"))
	until := time.Now().Add(time.Minute)
	s.MarkPass(k, until)
	o := s.Get(k)
	if o == nil || len(o.Variants) != 0 || !o.PassUntil.Equal(until) {
		t.Fatalf("after MarkPass: %+v", o)
	}
	if st := s.Stats(); st.Entries != 0 || st.Objects != 1 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)

	s.MarkPass(pkey("example.com", "/new", ""), until) // a key never stored
	s.Wait()                                           // a marker for a new key is admitted asynchronously
	if o := s.Get(pkey("example.com", "/new", "")); o == nil || !o.PassUntil.Equal(until) {
		t.Fatalf("MarkPass of a new key: %+v", o)
	}

	e := entry("")
	mustPut(t, s, k, nil, e)
	if o := s.Get(k); !o.PassUntil.IsZero() || !slices.Equal(o.Variants, []*Entry{e}) {
		t.Fatalf("Put did not clear the pass marker: %+v", o)
	}
	checkConsistent(t, s)
}

func TestStorePurgeURL(t *testing.T) {
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
			s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
			a1 := pkey("example.com", "/a", "x=1", "h:Accept=text/html")
			a2 := pkey("example.com", "/a", "x=1", "h:Accept=image/png")
			other := pkey("example.com", "/a", "x=2", "h:Accept=text/html")
			mustPut(t, s, a1, []string{"V"}, entry("1"))
			mustPut(t, s, a1, []string{"V"}, entry("2"))
			mustPut(t, s, a2, nil, entry(""))
			mustPut(t, s, other, nil, entry(""))

			if n := s.PurgeURL(URLPart(a1), soft); n != 3 {
				t.Errorf("PurgeURL = %d, want 3", n)
			}
			if soft {
				for _, k := range []string{a1, a2} {
					for _, e := range variantsOf(t, s, k) {
						if !e.SoftPurged() {
							t.Errorf("%q: variant not soft-purged", k)
						}
					}
				}
				if st := s.Stats(); st.Entries != 4 {
					t.Errorf("soft purge removed entries: %+v", st)
				}
			} else {
				if s.Get(a1) != nil || s.Get(a2) != nil {
					t.Error("purged keys still served")
				}
				if st := s.Stats(); st.Entries != 1 || st.Objects != 1 {
					t.Errorf("stats %+v", st)
				}
			}
			if e := variantsOf(t, s, other)[0]; e.SoftPurged() {
				t.Error("key with another query purged")
			}
			if st := s.Stats(); st.Purges != 3 {
				t.Errorf("Purges = %d", st.Purges)
			}
			checkConsistent(t, s)
		})
	}
}

func TestStoreRemove(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	k := pkey("example.com", "/r", "")
	k5 := pkey("example.com", "/r", "", "c:id=1")
	mustPut(t, s, k, nil, entry(""))
	mustPut(t, s, k5, []string{"V"}, entry("a"))
	mustPut(t, s, k5, []string{"V"}, entry("b"))
	if !s.Remove(k) || s.Remove(k) || s.Get(k) != nil {
		t.Error("Remove")
	}
	if n := s.RemoveURL(URLPart(k5)); n != 2 || s.Get(k5) != nil {
		t.Errorf("RemoveURL = %d", n)
	}
	s.MarkPass(k, time.Now().Add(time.Minute))
	if !s.Remove(k) || s.Get(k) != nil {
		t.Error("Remove of a pass marker")
	}
	if st := s.Stats(); st.Purges != 3 || st.Objects != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
}

func TestStorePurgePrefix(t *testing.T) {
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
			s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
			in := []string{
				pkey("example.com", "/static/a.css", ""),
				pkey("example.com", "/static/b.js", "v=2", "h:Accept-Encoding=gzip"),
				pkey("example.com", "/static", ""),
			}
			out := []string{pkey("example.com", "/stat", ""), pkey("example.org", "/static/a.css", "")}
			for _, k := range append(slices.Clone(in), out...) {
				mustPut(t, s, k, nil, entry(""))
			}
			if n := s.PurgePrefix("http\x00example.com\x00/static", soft); n != 3 {
				t.Errorf("PurgePrefix = %d, want 3", n)
			}
			for _, k := range in {
				if o := s.Get(k); soft && !o.Variants[0].SoftPurged() || !soft && o != nil {
					t.Errorf("%q not purged", k)
				}
			}
			for _, k := range out {
				if variantsOf(t, s, k)[0].SoftPurged() {
					t.Errorf("%q outside the prefix purged", k)
				}
			}
			checkConsistent(t, s)
		})
	}
}

func TestStorePurgeTag(t *testing.T) {
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
			s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
			ka, kab, kmix := pkey("h", "/a", ""), pkey("h", "/ab", ""), pkey("h", "/mix", "")
			mustPut(t, s, ka, nil, entry("", "a", "x"))
			mustPut(t, s, kab, nil, entry("", "ab"))
			tagged, untagged := entry("1", "a"), entry("2", "b")
			mustPut(t, s, kmix, []string{"V"}, tagged)
			mustPut(t, s, kmix, []string{"V"}, untagged)

			if n := s.PurgeTag("a", soft); n != 2 {
				t.Errorf("PurgeTag = %d, want 2", n)
			}
			if variantsOf(t, s, kab)[0].SoftPurged() {
				t.Error(`tag "a" purged tag "ab"`)
			}
			mix := variantsOf(t, s, kmix)
			if untagged.SoftPurged() || !slices.Contains(mix, untagged) {
				t.Error("variant without the tag purged")
			}
			if soft {
				if !tagged.SoftPurged() || !variantsOf(t, s, ka)[0].SoftPurged() {
					t.Error("tagged variants not soft-purged")
				}
			} else {
				if s.Get(ka) != nil || slices.Contains(mix, tagged) {
					t.Error("tagged variants still served")
				}
				if n := s.PurgeTag("x", false); n != 0 {
					t.Errorf("tag of a removed object purged %d", n)
				}
			}
			if n := s.PurgeTag("nope", soft); n != 0 {
				t.Errorf("unknown tag purged %d", n)
			}
			checkConsistent(t, s)
		})
	}
}

func TestStorePurgeAll(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 1 << 20})
	var es []*Entry
	for i := range 10 {
		e := entry("", "t")
		es = append(es, e)
		mustPut(t, s, pkey("h", fmt.Sprintf("/%d", i), ""), nil, e)
	}
	s.MarkPass(pkey("h", "/pass", ""), time.Now().Add(time.Minute))
	if n := s.PurgeAll(true); n != 10 {
		t.Errorf("PurgeAll(soft) = %d", n)
	}
	for _, e := range es {
		if !e.SoftPurged() {
			t.Error("entry not soft-purged")
		}
	}
	if n := s.PurgeAll(false); n != 10 {
		t.Errorf("PurgeAll = %d", n)
	}
	if st := s.Stats(); st.Entries != 0 || st.Objects != 0 || st.Bytes != 0 || st.Purges != 20 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
}

func TestStoreEviction(t *testing.T) {
	const maxSize = 64 << 10
	s := newTestStore(t, MemoryConfig{MaxSize: maxSize})
	var keys []string
	for i := range 2000 {
		k := pkey("h", fmt.Sprintf("/%d", i), "")
		keys = append(keys, k)
		e := entry("", fmt.Sprintf("t%d", i%7))
		e.Body = make([]byte, 1000)
		s.Put(k, nil, e)
		if i%3 == 0 {
			s.Get(keys[i/2]) // some frequency, so admission has something to weigh
		}
	}
	s.rc.Wait()
	for _, k := range keys {
		if got, idx := s.Get(k) != nil, s.lookup(&s.shards[s.hash(k)%nShards], k) != nil; got != idx {
			t.Errorf("%q: Get found %v, index has %v", k, got, idx)
		}
	}
	st := s.Stats()
	t.Logf("%+v", st)
	if st.Bytes > maxSize || st.Evictions+st.AdmissionDrops == 0 || st.Objects == 0 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
	if n := s.PurgeAll(false); int64(n) != st.Entries {
		t.Errorf("PurgeAll = %d, want %d", n, st.Entries)
	}
	if st := s.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after PurgeAll: %+v", st)
	}
	checkConsistent(t, s)
}

func TestStoreRejectsOversized(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 4096})
	e := entry("")
	e.Body = make([]byte, 8192)
	k := pkey("h", "/big", "")
	if s.Put(k, nil, e) || s.Get(k) != nil {
		t.Error("object larger than the store was stored")
	}
	if st := s.Stats(); st.AdmissionDrops == 0 || st.Stores != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
}

func TestStoreMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 160 MiB")
	}
	const maxSize, objSize, total = 16 << 20, 64 << 10, 160 << 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	s := newTestStore(t, MemoryConfig{MaxSize: maxSize})
	for i := range total / objSize {
		s.Put(pkey("h", fmt.Sprintf("/%d", i), ""), nil, &Entry{Record: Record{Status: 200, Body: make([]byte, objSize), Tags: []string{fmt.Sprint(i)}}})
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("HeapAlloc %d KiB over a baseline of %d KiB; %+v", (ms.HeapAlloc-base)>>10, base>>10, s.Stats())
	if limit := base + maxSize + 16<<20; ms.HeapAlloc > limit {
		t.Errorf("HeapAlloc %d MiB, over %d MiB", ms.HeapAlloc>>20, limit>>20)
	}
	if st := s.Stats(); st.Bytes > maxSize || st.Evictions == 0 {
		t.Errorf("stats %+v", st)
	}
	checkConsistent(t, s)
	runtime.KeepAlive(s)
}

func TestStoreConcurrent(t *testing.T) {
	s := newTestStore(t, MemoryConfig{MaxSize: 256 << 10, MaxVariants: 4})
	var keys []string
	for i := range 16 {
		u := fmt.Sprintf("/%d", i%8)
		keys = append(keys, pkey("h", u, ""), pkey("h", u, "", fmt.Sprintf("h:X=%d", i)))
	}
	varies := [][]string{nil, {"A"}, {"B"}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				k := keys[r.IntN(len(keys))]
				switch op := r.IntN(100); {
				case op < 40:
					e := entry(fmt.Sprint(r.IntN(6)), fmt.Sprintf("t%d", r.IntN(4)))
					e.Body = make([]byte, r.IntN(8192))
					s.Put(k, varies[r.IntN(len(varies))], e)
				case op < 80:
					if o := s.Get(k); o != nil {
						if o.Primary != k || len(o.Variants) > 4 {
							t.Errorf("Get(%q) = %+v", k, o)
						}
						for _, e := range o.Variants {
							e.SoftPurged()
						}
					}
				case op < 84:
					s.MarkPass(k, time.Now().Add(time.Second))
				case op < 88:
					s.PurgeURL(URLPart(k), r.IntN(2) == 0)
				case op < 92:
					s.PurgeTag(fmt.Sprintf("t%d", r.IntN(4)), r.IntN(2) == 0)
				case op < 95:
					s.PurgePrefix("http\x00h\x00/1", r.IntN(2) == 0)
				case op < 98:
					s.Remove(k)
				default:
					s.Stats()
					if r.IntN(10) == 0 {
						s.PurgeAll(r.IntN(2) == 0)
					}
				}
			}
		})
	}
	wg.Wait()
	checkConsistent(t, s)
	for _, k := range keys {
		if got, idx := s.Get(k) != nil, s.lookup(&s.shards[s.hash(k)%nShards], k) != nil; got != idx {
			t.Errorf("%q: Get found %v, index has %v", k, got, idx)
		}
	}
}

// settledGoroutines waits, yielding rather than sleeping, for the goroutine
// count to drop to at most n, and returns the last count seen.
func settledGoroutines(n int) int {
	got := runtime.NumGoroutine()
	for i := 0; i < 10000 && got > n; i++ {
		runtime.Gosched()
		got = runtime.NumGoroutine()
	}
	return got
}

func TestStoreClose(t *testing.T) {
	before := runtime.NumGoroutine()
	ms, err := NewMemoryStore(MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := wrapStore(t, ms)
	k := pkey("h", "/c", "")
	mustPut(t, s, k, nil, entry("", "t"))
	s.Close()
	s.Close()
	if got := settledGoroutines(before); got > before {
		t.Errorf("%d goroutines after Close, %d before NewMemoryStore", got, before)
	}
	if s.Get(k) != nil || s.Put(k, nil, entry("")) || s.Remove(k) || s.RemoveURL(URLPart(k)) != 0 ||
		s.PurgeURL(URLPart(k), true) != 0 || s.PurgePrefix("", false) != 0 || s.PurgeTag("t", false) != 0 ||
		s.PurgeAll(false) != 0 || s.Stats() != (StoreStats{}) {
		t.Error("a method did something after Close")
	}
	s.MarkPass(k, time.Now())
}

func TestStoreCloseConcurrent(t *testing.T) {
	ms, err := NewMemoryStore(MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := wrapStore(t, ms)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := pkey("h", fmt.Sprintf("/%d/%d", g, i%20), "")
				s.Put(k, nil, entry(""))
				s.Get(k)
				if i%50 == 0 {
					s.PurgeURL(k, false)
				}
			}
		})
	}
	s.Close()
	wg.Wait()
}

func BenchmarkStoreGet(b *testing.B) {
	s := newTestStore(b, MemoryConfig{MaxSize: 64 << 20})
	k := pkey("example.com", "/bench", "a=1")
	if !s.Put(k, nil, entry("")) {
		b.Fatal("Put failed")
	}
	// Through the Store interface, as the handler calls it, not through
	// the tests' wrapper.
	var st Store = s.MemoryStore
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if o, _ := st.Get(ctx, k); o == nil {
				b.Error("miss")
				return
			}
		}
	})
}
