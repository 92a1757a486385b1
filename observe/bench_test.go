package observe

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gateway/internal/routes"
	"gateway/metrics"
	"gateway/proxy"
)

// discardWriter is a reusable ResponseWriter.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

var body1K = []byte(strings.Repeat("x", 1024))

// stub answers like a proxied route (headers, 1 KiB) and records its
// route in the Observation as the proxy does.
var stub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if ow, ok := w.(proxy.Observed); ok {
		if o := ow.Observation(); o != nil {
			o.Route = 1
		}
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body1K)
})

// wrapCases are the configurations compared: nothing, request ids only,
// metrics, metrics and the access log (JSON, buffered, to io.Discard),
// and all of it with Server-Timing.
func wrapCases(next http.Handler, m *metrics.Gen) []struct {
	name string
	h    http.Handler
} {
	out := NewOutput(io.Discard, nil)
	routes := routes.New([]string{"api"}, false)
	return []struct {
		name string
		h    http.Handler
	}{
		{"off", next},
		{"ids", Wrap(next, Options{Routes: routes})},
		{"metrics", Wrap(next, Options{Routes: routes, Metrics: m})},
		{"metrics+log", Wrap(next, Options{Routes: routes, Metrics: m, Log: NewHandler("json", out)})},
		{"metrics+log+timing", Wrap(next, Options{Routes: routes, Metrics: m, Log: NewHandler("json", out), ServerTiming: true})},
	}
}

// BenchmarkWrap is the wrapper's own cost per request, around a handler
// that does nearly nothing.
func BenchmarkWrap(b *testing.B) {
	m := metrics.New("").NewGen(metrics.GenOptions{Routes: routes.New([]string{"api"}, false)})
	for _, c := range wrapCases(stub, m) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", "http://example.com/api/items?id=7", nil)
			req.Header.Set("User-Agent", "bench")
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				clear(w.h)
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkWrapProxy is the same around the real proxy, which sends
// every request to an upstream on loopback: the wrapper's cost next to
// a whole proxied request (measured in the same process, so ns/op
// includes the upstream's work too).
func BenchmarkWrapProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body1K)
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	newProxy := func() (*proxy.Upstream, *proxy.Handler) {
		u, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "app", Targets: []*url.URL{target}, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		h, err := proxy.New(proxy.Options{Logger: quiet(), Routes: []proxy.RouteOptions{{Name: "api", Path: "/api", Upstream: u, Timeout: 10 * time.Second}}})
		if err != nil {
			b.Fatal(err)
		}
		return u, h
	}
	plainU, plain := newProxy()
	defer plainU.Close()
	obsU, observed := newProxy()
	defer obsU.Close()
	m := metrics.New("").NewGen(metrics.GenOptions{Routes: routes.New([]string{"api"}, false), Upstreams: []*proxy.Upstream{obsU}})
	cases := wrapCases(observed, m)
	cases[0].h, cases[1].h = plain, Wrap(plain, Options{Routes: routes.New([]string{"api"}, false)})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", "http://example.com/api/items?id=7", nil)
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				clear(w.h)
				c.h.ServeHTTP(w, req)
				if w.code != 200 || w.n == 0 {
					b.Fatalf("got %d, %d bytes", w.code, w.n)
				}
				w.n = 0
			}
		})
	}
}
