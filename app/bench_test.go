package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				delete(req.Header, "X-Request-Id")
				h.ServeHTTP(w, req)
			}
		})
	}
}

type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(c int)           { w.code = c }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
