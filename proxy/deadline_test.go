package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
)

// TestRouteDeadlineArmedOnce: on a cached route the deadline is armed
// once per request that goes toward the upstream, by the cache through
// the proxy's ArmDeadline, also for a request that waited on another's
// fetch and then went upstream itself; the proxy's own arming inside the
// middleware finds it armed. A hit arms none.
func TestRouteDeadlineArmedOnce(t *testing.T) {
	var arms atomic.Int32
	testHookArmDeadline = func() { arms.Add(1) }
	t.Cleanup(func() { testHookArmDeadline = nil })
	release := make(chan struct{})
	var slow atomic.Int32
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hit" {
			w.Header().Set("Cache-Control", "max-age=600")
		} else {
			if slow.Add(1) == 1 {
				<-release
			}
			// Not shareable: the waiting request goes upstream itself.
			w.Header().Set("Cache-Control", "no-store")
		}
		io.WriteString(w, "body")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	cacheMW := cacheRoute(t, newCache(t, nil), cache.RouteOptions{Name: "r", LockTimeout: time.Hour})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "r", Upstream: u, Timeout: time.Minute, Middleware: []Middleware{cacheMW}}}})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com"+path, nil))
		return rec
	}

	var wg sync.WaitGroup
	wg.Go(func() { get("/slow") }) // leads the flight, held at the upstream
	for slow.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { get("/slow") }) // waits on that flight
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if got := slow.Load(); got != 2 {
		t.Fatalf("upstream saw %d requests for /slow; want 2", got)
	}
	if got := arms.Load(); got != 2 {
		t.Errorf("%d route deadlines armed for two requests that went upstream; want 2, one each", got)
	}

	arms.Store(0)
	get("/hit") // the miss
	if got := arms.Load(); got != 1 {
		t.Errorf("miss: %d route deadlines armed; want 1", got)
	}
	if rec := get("/hit"); rec.Header().Get("Cache-Status") == "" || rec.Body.String() != "body" {
		t.Fatalf("hit: %d %q, Cache-Status %q", rec.Code, rec.Body, rec.Header().Get("Cache-Status"))
	}
	if got := arms.Load(); got != 1 {
		t.Errorf("hit: %d route deadlines armed in all; want the miss's 1 only", got)
	}
}
