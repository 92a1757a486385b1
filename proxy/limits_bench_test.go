package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLimits is the cost the limits add to a request, in process:
// Handler.ServeHTTP on a route served by a handler that writes nothing,
// without limits and with each. The differences to "none" are the
// limits' cost per request.
func BenchmarkLimits(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	huge := &RateLimitOptions{Rate: 1e9, Burst: 1 << 30}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, bc := range []struct {
		name    string
		ro      RouteOptions
		trusted []netip.Prefix
		remote  string
		xff     string
	}{
		{name: "none"},
		{name: "rate_ip", ro: RouteOptions{RateLimit: huge}},
		{name: "rate_ip_forwarded", ro: RouteOptions{RateLimit: huge}, trusted: trusted, remote: "10.1.2.3:4567", xff: "198.51.100.7, 10.9.9.9"},
		{name: "rate_header", ro: RouteOptions{RateLimit: &RateLimitOptions{Rate: 1e9, Burst: 1 << 30, Key: "header:X-Api-Key"}}},
		{name: "concurrency", ro: RouteOptions{Concurrency: ConcurrencyOptions{MaxInFlight: 64, Queue: 64, QueueTimeout: time.Second}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ro := bc.ro
			ro.Handler = noop
			h := newHandler(b, Options{Routes: []RouteOptions{ro}, TrustedProxies: bc.trusted})
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			if bc.remote != "" {
				req.RemoteAddr = bc.remote
			}
			if bc.xff != "" {
				req.Header.Set("X-Forwarded-For", bc.xff)
			}
			req.Header.Set("X-Api-Key", "key-0123456789")
			w := discardWriter{http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
