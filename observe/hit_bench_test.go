package observe

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gateway/cache"
	"gateway/metrics"
	"gateway/proxy"
)

// BenchmarkWrapHit is the wrapper around a cache hit through the whole
// route handler, the cheapest request the gateway serves and so the one
// where observability costs the most in relative terms.
func BenchmarkWrapHit(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body1K)
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
	rt, err := c.Route(cache.RouteOptions{Name: "api"})
	if err != nil {
		b.Fatal(err)
	}
	// A timeout, as every configured route has one (60 s by default).
	h, err := proxy.New(proxy.Options{Logger: quiet(), Routes: []proxy.RouteOptions{{Name: "api", Upstream: up, Timeout: time.Minute, Middleware: []proxy.Middleware{rt.Wrap}}}})
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New("").NewGen(metrics.GenOptions{Routes: []string{"api"}, Upstreams: []*proxy.Upstream{up}})
	for _, cs := range wrapCases(h, m) {
		b.Run(cs.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "http://example.com/object?id=1", nil)
			req.Header.Set("User-Agent", "bench")
			w := &discardWriter{h: http.Header{}}
			cs.h.ServeHTTP(w, req)
			clear(w.h)
			cs.h.ServeHTTP(w, req)
			if !strings.Contains(w.h.Get("Cache-Status"), "hit") {
				b.Fatalf("Cache-Status %q; want a hit", w.h.Get("Cache-Status"))
			}
			for b.Loop() {
				clear(w.h)
				delete(req.Header, HeaderRequestID)
				cs.h.ServeHTTP(w, req)
			}
		})
	}
}
