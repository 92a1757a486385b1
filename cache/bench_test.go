package cache_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
)

// benchWriter is the smallest ResponseWriter: no socket, no copying of
// the body, a header map reused across requests.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchHit returns a handler with the response to req stored, the request
// and the body size; watch has the cache count its top keys.
func benchHit(b *testing.B, size int, watch bool) (http.Handler, *http.Request) {
	b.Helper()
	c, err := cache.New(cache.Options{MaxSize: 64 << 20, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	c.WatchKeys(watch)
	rt, err := c.Route(cache.RouteOptions{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat("x", size))
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "max-age=3600")
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("ETag", `"bench"`)
		_, _ = w.Write(body)
	})
	h := rt.Wrap(origin)
	req := httptest.NewRequest(http.MethodGet, "http://example.com/object?id=1", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	req.Header.Set("User-Agent", "bench")
	for i, want := range []string{"fwd=uri-miss", "hit"} {
		w := &benchWriter{h: make(http.Header)}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n != size || !strings.Contains(w.h.Get("Cache-Status"), want) {
			b.Fatalf("request %d: %d, %d bytes, Cache-Status %q; want 200, %d bytes, %s", i+1, w.status, w.n, w.h.Get("Cache-Status"), size, want)
		}
	}
	return h, req
}

func benchmarkHit(b *testing.B, size int, watch bool) {
	h, req := benchHit(b, size, watch)
	w := &benchWriter{h: make(http.Header)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
	if w.n != size {
		b.Fatalf("last response: %d bytes; want %d", w.n, size)
	}
}

func BenchmarkHit1K(b *testing.B)  { benchmarkHit(b, 1<<10, false) }
func BenchmarkHit64K(b *testing.B) { benchmarkHit(b, 64<<10, false) }

// BenchmarkHitWatched1K is BenchmarkHit1K while the top keys are
// watched, as while someone has the dashboard open.
func BenchmarkHitWatched1K(b *testing.B) { benchmarkHit(b, 1<<10, true) }

func BenchmarkHitParallel(b *testing.B)        { benchmarkHitParallel(b, false) }
func BenchmarkHitParallelWatched(b *testing.B) { benchmarkHitParallel(b, true) }

func benchmarkHitParallel(b *testing.B, watch bool) {
	const size = 1 << 10
	h, req := benchHit(b, size, watch)
	b.SetBytes(size)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req.Clone(req.Context())
		w := &benchWriter{h: make(http.Header)}
		ran := false
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, r)
			ran = true
		}
		if ran && w.n != size {
			b.Errorf("last response: %d bytes; want %d", w.n, size)
		}
	})
}

// BenchmarkGatewayHit is a hit through the whole route handler as the
// gateway builds it: proxy.Handler (routing, limits, X-Forwarded rules)
// with the cache as route middleware, so the allocations reported are
// everything the gateway adds to net/http's own for a hit.
func BenchmarkGatewayHit(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.Repeat("x", 1024)))
	}))
	b.Cleanup(origin.Close)
	u, _ := url.Parse(origin.URL)
	up, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "o", Targets: []*url.URL{u}, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(up.Close)
	c, err := cache.New(cache.Options{MaxSize: 64 << 20, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	rt, err := c.Route(cache.RouteOptions{Name: "r"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{Logger: quiet(), Routes: []proxy.RouteOptions{{Name: "r", Upstream: up, Middleware: []proxy.Middleware{rt.Wrap}}}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://example.com/object?id=1", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &benchWriter{h: make(http.Header)}
	h.ServeHTTP(w, req) // the miss that stores it
	w.reset()
	h.ServeHTTP(w, req)
	if !strings.Contains(w.h.Get("Cache-Status"), "hit") {
		b.Fatalf("second request: Cache-Status %q; want a hit", w.h.Get("Cache-Status"))
	}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
}

// benchJSON is a JSON array of about size bytes, as compressible as an
// API's answer.
func benchJSON(size int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"user-%d","email":"user%d@example.com","active":%t,"score":%d},`, i, i, i, i%3 == 0, i*7%1000)
	}
	return []byte(b.String()[:size])
}

// benchmarkHitEncoded is a hit of a 64 KiB JSON on a compressing route,
// wired as the app wires it (the compressor in front of the cache, the
// cache keeping encoded forms), for a client sending ae ("" none).
func benchmarkHitEncoded(b *testing.B, ae, want string) {
	comp, err := compress.New(compress.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Options{MaxSize: 64 << 20, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	rt, err := c.Route(cache.RouteOptions{Name: "bench", Compress: testEncoder{comp}})
	if err != nil {
		b.Fatal(err)
	}
	body := benchJSON(64 << 10)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "max-age=3600")
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("ETag", `"bench"`)
		_, _ = w.Write(body)
	})
	h := comp.Wrap(rt.Wrap(origin))
	req := httptest.NewRequest(http.MethodGet, "http://example.com/doc.json", nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	req.Header.Set("User-Agent", "bench")
	w := &benchWriter{h: make(http.Header)}
	for i, st := range []string{"fwd=uri-miss", "hit"} {
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || !strings.Contains(w.h.Get("Cache-Status"), st) || w.h.Get("Content-Encoding") != want {
			b.Fatalf("request %d: %d, Cache-Status %q, Content-Encoding %q; want 200, %s, %q", i+1, w.status, w.h.Get("Cache-Status"), w.h.Get("Content-Encoding"), st, want)
		}
	}
	n := w.n
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
	if w.n != n {
		b.Fatalf("last response: %d bytes; want %d", w.n, n)
	}
	b.ReportMetric(float64(n), "out-bytes")
}

func BenchmarkHitGzip(b *testing.B)     { benchmarkHitEncoded(b, "gzip", "gzip") }
func BenchmarkHitBr(b *testing.B)       { benchmarkHitEncoded(b, "br", "br") }
func BenchmarkHitIdentity(b *testing.B) { benchmarkHitEncoded(b, "", "") }
