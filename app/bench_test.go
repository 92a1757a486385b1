package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gateway/config"
)

// BenchmarkAppHit is a cache hit through everything the gateway runs
// for a request but net/http's server (generations, request ids,
// metrics, the access log, routing, the cache), as bench/observability.sh
// configures it: with metrics and the access log off, metrics only, and
// both, so their cost shows without the noise of sockets.
func BenchmarkAppHit(b *testing.B) {
	body := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	b.Cleanup(up.Close)
	for _, c := range []struct{ name, admin, log string }{
		{"off", "off", "false"},
		{"metrics", "127.0.0.1:0", "false"},
		{"metrics+log", "127.0.0.1:0", "true"},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
admin:
  address: %q
access_log:
  enabled: %s
  output: %q
upstreams:
  origin:
    targets: [%q]
routes:
  - name: bench
    path: /
    upstream: origin
    cache: {enabled: true}
`, c.admin, c.log, filepath.Join(b.TempDir(), "access.log"), up.URL)))
			if err != nil {
				b.Fatal(err)
			}
			a, err := newApp(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(a.close)
			h := http.HandlerFunc(a.serveHTTP)
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/cacheable", nil)
			w := &nopWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			clear(w.h)
			h.ServeHTTP(w, req)
			if !strings.Contains(w.h.Get("Cache-Status"), "hit") {
				b.Fatalf("Cache-Status %q; want a hit", w.h.Get("Cache-Status"))
			}
			serveLoop(b, h, w, req)
		})
	}
}

// BenchmarkAppPass is a pass-through GET (the upstream answers no-store)
// through everything the gateway runs for it but net/http's server, as
// `gateway proxy --access-log off` configures it: metrics on, a route
// that caches and compresses, an HTTP/1.1 upstream on loopback. Its
// allocations are the gateway's own per request plus the upstream
// server's, which stay the same from one build to the next.
func BenchmarkAppPass(b *testing.B) {
	h := noStoreApp(b, true)
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	w := &nopWriter{h: http.Header{}}
	// Under load, requests for the URL collapse while the first is on
	// its way, and its no-store answer marks the key hit-for-pass: from
	// then on every request passes straight through. Concurrent bursts
	// get it there, so that the loop below measures that steady state.
	for i := 0; !strings.Contains(w.h.Get("Cache-Status"), "hit-for-pass"); i++ {
		if i == 100 {
			b.Fatalf("Cache-Status %q after 100 bursts; want hit-for-pass", w.h.Get("Cache-Status"))
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { h.ServeHTTP(&nopWriter{h: http.Header{}}, req.Clone(req.Context())) })
		}
		wg.Wait()
		clear(w.h)
		delete(req.Header, "X-Request-Id")
		h.ServeHTTP(w, req)
	}
	if w.code != http.StatusOK {
		b.Fatalf("got %d; want 200", w.code)
	}
	serveLoop(b, h, w, req)
}

// BenchmarkAppPassPlain is BenchmarkAppPass on a route without the
// cache and compression, as `gateway proxy -no-cache -no-compress`
// serves it: routing, the route's deadline, request ids, metrics and
// the HTTP/1.1 upstream leg, the pass-through path that bench/floor
// bounds.
func BenchmarkAppPassPlain(b *testing.B) {
	h := noStoreApp(b, false)
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		b.Fatalf("got %d; want 200", w.code)
	}
	serveLoop(b, h, w, req)
}

// BenchmarkAppMiss is a miss through a caching route, as BenchmarkAppPass
// configures it, for a new URL each request whose answer is no-store:
// the cache's whole miss path (key, flight, fill, Cache-Status) runs
// every time, with no hit-for-pass to shortcut it. Set against
// BenchmarkAppPass, it is what going through the cache costs a miss.
func BenchmarkAppMiss(b *testing.B) {
	h := noStoreApp(b, true)
	// The URLs are made before the loop, so that making them is not
	// counted; each is requested once.
	const urls = 1 << 16
	reqs := make([]*http.Request, urls)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1/nostore?i=%d", i), nil)
	}
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, reqs[0])
	if cs := w.h.Get("Cache-Status"); w.code != http.StatusOK || !strings.Contains(cs, "fwd=uri-miss") {
		b.Fatalf("got %d, Cache-Status %q; want 200 and a miss", w.code, cs)
	}
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		if i == urls {
			b.StopTimer()
			for j := range reqs {
				reqs[j] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1/nostore?i=%d&r=%d", j, i), nil)
			}
			i = 0
			b.StartTimer()
		}
		clear(w.h)
		h.ServeHTTP(w, reqs[i])
		i++
	}
}

// noStoreApp is the app of the pass and miss benchmarks, as `gateway
// proxy --access-log off` configures it, in front of an upstream that
// answers every request with 1 KiB marked no-store: metrics on, an
// HTTP/1.1 upstream on loopback, and one route that caches and
// compresses (cached) or does neither.
func noStoreApp(b *testing.B, cached bool) http.Handler {
	body := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	b.Cleanup(up.Close)
	route := ""
	if cached {
		route = cachingRoute
	}
	return benchApp(b, up.URL, route)
}

// cachingRoute is the route of `gateway proxy`: it caches and compresses.
const cachingRoute = "    cache: {enabled: true}\n    compress: {enabled: true}\n"

// benchApp is the app of the app benchmarks, as `gateway proxy
// --access-log off` configures it (metrics on), with one route to the
// HTTP/1.1 upstream at upstreamURL; route adds to that route's fields.
func benchApp(b *testing.B, upstreamURL, route string) http.Handler {
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log: {enabled: false}
upstreams:
  origin:
    targets: [%q]
    protocol: http1
routes:
  - name: proxy
    path: /
    upstream: origin
%s`, upstreamURL, route)))
	if err != nil {
		b.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.close)
	return http.HandlerFunc(a.serveHTTP)
}

// serveLoop measures h answering req again and again, as a client that
// sends it afresh each time: without the X-Request-Id the gateway set
// on it, into an emptied header.
func serveLoop(b *testing.B, h http.Handler, w *nopWriter, req *http.Request) {
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		delete(req.Header, "X-Request-Id")
		h.ServeHTTP(w, req)
	}
}

type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(c int)           { w.code = c }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkProxyWith100Watchers is a cache hit through the app while
// no dashboard watches and while 100 event streams are open on the
// admin listener's real socket, sampled by the real one-second ticker:
// the streams share one sampler, so the request path should not see
// them.
func BenchmarkProxyWith100Watchers(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		io.WriteString(w, strings.Repeat("x", 1024))
	}))
	b.Cleanup(up.Close)
	for _, watchers := range []int{0, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log: {enabled: false}
upstreams:
  origin:
    targets: [%q]
routes:
  - name: bench
    path: /
    upstream: origin
    cache: {enabled: true}
`, up.URL)))
			if err != nil {
				b.Fatal(err)
			}
			a := serveApp(b, cfg, "")
			adm := "http://" + a.adminLn.Addr().String()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: watchers}}
			b.Cleanup(client.CloseIdleConnections)
			for range watchers {
				resp, err := client.Get(adm + "/api/v1/dashboard/events")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { resp.Body.Close() })
				go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
			}
			if got := a.dash.Watchers(); got != watchers {
				b.Fatalf("watchers: got %d; want %d", got, watchers)
			}
			h := http.HandlerFunc(a.serveHTTP)
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/cacheable", nil)
			w := &nopWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := req.Clone(req.Context())
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					delete(req.Header, "X-Request-Id")
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkAppHit64K is a cache hit of a 64 KiB JSON document through
// the app as `gateway proxy --access-log off` configures it (metrics
// on, a route that caches and compresses), as bench/compress.sh and
// bench/cache.sh load it: its stored gzip form for a client that
// accepts gzip, and identity for one that sends no Accept-Encoding. The
// writer does with the header what net/http's does (a new map per
// request, copied at WriteHeader), so that what a hit's fields cost the
// server shows.
func BenchmarkAppHit64K(b *testing.B) {
	doc := []byte(`{"items":[` + strings.Repeat(`{"id":1234,"sku":"SKU-000042","name":"blue widget","price":{"amount":1999,"currency":"EUR"}},`, 64<<10/93) + `{}]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"doc-1"`)
		w.Write(doc)
	}))
	b.Cleanup(up.Close)
	h := benchApp(b, up.URL, cachingRoute)
	for _, c := range []struct{ name, ae, coding string }{{"gzip", "gzip", "gzip"}, {"identity", "", ""}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/catalog", nil)
			if c.ae != "" {
				req.Header.Set("Accept-Encoding", c.ae)
			}
			w := &serverWriter{}
			for range 3 { // stored, encoded, served
				w.reset()
				delete(req.Header, "X-Request-Id")
				h.ServeHTTP(w, req)
			}
			if st := w.sent.Get("Cache-Status"); !strings.Contains(st, "hit") || w.sent.Get("Content-Encoding") != c.coding {
				b.Fatalf("Cache-Status %q, Content-Encoding %q; want a hit in %q", st, w.sent.Get("Content-Encoding"), c.coding)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				delete(req.Header, "X-Request-Id")
				h.ServeHTTP(w, req)
			}
		})
	}
}

// serverWriter treats the header as net/http's HTTP/1 writer does: a
// new map for each request, copied when the header is written.
type serverWriter struct {
	h, sent http.Header
	code    int
}

func (w *serverWriter) reset() { w.h, w.sent, w.code = make(http.Header), nil, 0 }

func (w *serverWriter) Header() http.Header { return w.h }

func (w *serverWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code, w.sent = c, w.h.Clone()
	}
}

func (w *serverWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
