package jobs

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func benchQueue(b *testing.B) func(http.Handler) http.Handler {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "jobs.db"))
	if err != nil {
		b.Fatal(err)
	}
	q, err := New(Options{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	// No runner: accepted jobs stay queued, so only the 202 path is timed.
	mw, err := q.Route(RouteOptions{Name: "r", QueueDepth: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

func benchServe(b *testing.B, h http.Handler, prefer bool, want int) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "http://gw/work?x=1", strings.NewReader(`{"n":1}`))
		r.Header.Set("Authorization", "Bearer token")
		r.Header.Set("Content-Type", "application/json")
		if prefer {
			r.Header.Set("Prefer", "respond-async")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			b.Fatalf("status %d, want %d", w.Code, want)
		}
	}
}

// BenchmarkAccept is the 202 path: the request read, stored and synced
// to disk, answered.
func BenchmarkAccept(b *testing.B) {
	mw := benchQueue(b)
	benchServe(b, mw(http.NotFoundHandler()), true, http.StatusAccepted)
}

// BenchmarkPassThrough is the same request on a prefer route without
// Prefer: what the middleware costs a synchronous request.
func BenchmarkPassThrough(b *testing.B) {
	mw := benchQueue(b)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	benchServe(b, mw(ok), false, http.StatusOK)
}
