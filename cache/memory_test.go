package cache

import (
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps nothing, so the test
// measures what the cache holds, not what a recorder would.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestMemoryBoundThroughHandler writes ten times max_size of distinct
// cacheable responses through a cached route and checks that the live
// heap stays within max_size plus ristretto's and the index's fixed
// part: the cost charged per entry covers what the entry really holds,
// including a body's rounding up to its size class (a 33 KiB body takes
// 40 KiB) and the unused capacity that appending a body of unknown
// length leaves (48 KiB of it).
func TestMemoryBoundThroughHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MiB per case")
	}
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool // no Content-Length, written 1 KiB at a time
	}{
		{"16KiB", 16 << 10, false},
		{"33KiB", 33 << 10, false},
		{"33KiB chunked", 33 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxSize = 8 << 20
			body := make([]byte, tc.size)
			c, err := New(Options{MaxSize: maxSize})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rt, err := c.Route(RouteOptions{Name: "mem"})
			if err != nil {
				t.Fatal(err)
			}
			origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
					_, _ = w.Write(body)
					return
				}
				for p := body; len(p) > 0; p = p[min(1024, len(p)):] {
					_, _ = w.Write(p[:min(1024, len(p))])
				}
			})
			h := rt.Wrap(origin)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n := 10 * maxSize / tc.size
			for i := range n {
				r, _ := http.NewRequest(http.MethodGet, "http://example.test/obj/"+strconv.Itoa(i), nil)
				h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			total, _ := c.Stats()
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%d objects of %d B written; stored %d entries, %d B; evictions %d, drops %d; heap grew %d B",
				n, tc.size, total.Entries, total.BytesUsed, total.Evictions, total.AdmissionDrops, grown)
			if total.BytesUsed > maxSize {
				t.Errorf("bytes used %d over max size %d", total.BytesUsed, maxSize)
			}
			// ristretto's counters and buffers plus the index: well
			// under a MiB at this size.
			if limit := int64(maxSize + 1<<20); grown > limit {
				t.Errorf("heap grew by %d B; want at most max size plus 1 MiB (%d B)", grown, limit)
			}
			if total.Stores == 0 || total.Evictions+total.AdmissionDrops == 0 {
				t.Errorf("stores %d, evictions %d, drops %d: want the cache filled past its size", total.Stores, total.Evictions, total.AdmissionDrops)
			}
		})
	}
}

// TestChargedCostFollowsHeap: the cost the store charges for small
// objects (pass markers, entries with tiny bodies) is close to the heap
// they hold, so that max_size bounds memory even when most of what is
// stored is overhead rather than body.
func TestChargedCostFollowsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k objects")
	}
	for _, tc := range []struct {
		name string
		put  func(s memStore, i int)
	}{
		{"pass markers", func(s memStore, i int) {
			s.MarkPass("http\x00example.com\x00/nostore\x00i="+strconv.Itoa(i), time.Unix(1e9, 0))
		}},
		{"small entries", func(s memStore, i int) {
			h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=60"},
				"Date": {"Thu, 26 Nov 2026 22:39:56 GMT"}, "Content-Length": {"100"}, "Etag": {`"abcdef0123"`}}
			e := &Entry{Record: Record{Status: 200, Header: h, Body: make([]byte, 100)}, CC: ParseCacheControlValue("max-age=60")}
			s.Put("http\x00example.com\x00/obj\x00i="+strconv.Itoa(i), nil, e)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := NewMemoryStore(MemoryConfig{MaxSize: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			s := wrapStore(t, ms)
			defer s.Close()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const n = 50000
			for i := range n {
				tc.put(s, i)
			}
			s.Wait()
			runtime.GC()
			runtime.ReadMemStats(&after)
			st := s.Stats()
			if st.Objects != n {
				t.Fatalf("%d objects stored; want %d", st.Objects, n)
			}
			heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
			charged := st.Bytes / n
			t.Logf("charged %d B, heap %d B per object", charged, heap)
			if float64(heap) > 1.25*float64(charged) {
				t.Errorf("heap %d B per object, charged %d B: the cost undercounts what objects hold", heap, charged)
			}
		})
	}
}
