package cache_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"gateway/cache"
)

// TestStaleWhileRevalidate: a stale entry within its stale-while-revalidate
// window is served at once, and refreshed in the background by exactly one
// request however many arrive while the refresh is under way.
func TestStaleWhileRevalidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   gwConfig
		cc    string
		ttl   string // of the stale hits
		fresh string // Cache-Status of the hit after the refresh
	}{
		{name: "response directive", cc: "max-age=10, stale-while-revalidate=60", ttl: "-10", fresh: "hit; ttl=10"},
		{name: "route default", cc: "max-age=10", ttl: "-10", fresh: "hit; ttl=10",
			cfg: gwConfig{route: cache.RouteOptions{StaleWhileRevalidate: time.Minute}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, tc.cfg)
			g.origin.handle(g.origin.static(cc(tc.cc)))
			r := g.get(t, "/r")
			checkResult(t, g, "miss", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"})

			// From now on the origin holds every request until released.
			gt := newGate(t)
			g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", tc.cc}, body: "v{n}", gate: gt}))
			g.clk.Advance(20 * time.Second)

			const n = 50
			results := make(chan result, n)
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for range n {
				req := g.newRequest(t.Context(), t, http.MethodGet, "/r")
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := g.send(req)
					if err != nil {
						errs <- err
						return
					}
					results <- r
				}()
			}
			// Every request is answered while the refresh is blocked.
			wg.Wait()
			close(results)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			i := 0
			for r := range results {
				i++
				checkResult(t, g, "stale "+strconv.Itoa(i), "/r", r, step{count: -1, body: "v1",
					cs: "hit; ttl=" + tc.ttl + "; detail=stale-while-revalidate", age: "20"})
				if t.Failed() {
					t.FailNow()
				}
			}
			g.origin.waitCount(t, "/r", 2) // the refresh arrived
			if got := g.origin.count("/r"); got != 2 {
				t.Fatalf("origin requests while %d stale hits were served: %d; want 2 (one refresh)", n, got)
			}
			stores := g.route.Stats().Stores
			gt.release()
			eventually(t, "the refreshed entry to be stored", func() bool { return g.route.Stats().Stores > stores })

			r = g.get(t, "/r")
			checkResult(t, g, "fresh after the refresh", "/r", r, step{count: 2, body: "v2", cs: tc.fresh, age: "0"})
			if st := g.route.Stats(); st.StaleHits != n {
				t.Errorf("stale_hits %d; want %d", st.StaleHits, n)
			}
			// Close waits for background refreshes: none may be left to
			// reach the origin afterwards.
			g.cache.Close()
			if got := g.origin.count("/r"); got != 2 {
				t.Errorf("origin requests after Close: %d; want 2", got)
			}
		})
	}
}

// TestStaleWhileRevalidateWindow: beyond the window the request waits for
// the origin.
func TestStaleWhileRevalidateWindow(t *testing.T) {
	runRows(t, []row{
		{
			name:   "beyond the response's window",
			origin: cc("max-age=10, stale-while-revalidate=30"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
				{advance: 41 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
			},
		},
		{
			name:   "beyond the route's default window",
			cfg:    gwConfig{route: cache.RouteOptions{StaleWhileRevalidate: 30 * time.Second}},
			origin: cc("max-age=10"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
				{advance: 41 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
			},
		},
		{
			name:   "the response's window overrides the route's",
			cfg:    gwConfig{route: cache.RouteOptions{StaleWhileRevalidate: time.Hour}},
			origin: cc("max-age=10, stale-while-revalidate=5"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
				{advance: 20 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
			},
		},
	})
}

func TestStaleIfError(t *testing.T) {
	first := step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"}
	closeOrigin := func(t *testing.T, g *gateway) { g.origin.Close() }
	for _, code := range []int{500, 503} {
		fail := &resp{status: code, body: "failed"}
		runRows(t, []row{{
			name:   "origin answers " + strconv.Itoa(code),
			origin: cc("max-age=10, stale-if-error=60"),
			steps: []step{first,
				{label: "within the window", origin: fail, advance: 20 * time.Second,
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=" + strconv.Itoa(code) + "; ttl=-10", age: "20"},
				{label: "at the window's end", advance: 50 * time.Second,
					count: 3, body: "v1", cs: "fwd=stale; fwd-status=" + strconv.Itoa(code) + "; ttl=-60", age: "70"},
				{label: "beyond the window", advance: time.Second,
					count: 4, status: code, body: "failed", cs: "fwd=stale; fwd-status=" + strconv.Itoa(code)},
				{label: "origin back", origin: &resp{hdr: []string{"Cache-Control", "max-age=10"}, body: "v{n}"},
					count: 5, body: "v5", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
			},
		}})
	}
	runRows(t, []row{
		{
			name:   "origin down: the proxy's 502",
			origin: cc("max-age=10, stale-if-error=60"),
			steps: []step{first,
				{label: "within the window", before: closeOrigin, advance: 20 * time.Second,
					count: 1, body: "v1", cs: "fwd=stale; fwd-status=502; ttl=-10", age: "20"},
				{label: "beyond the window", advance: 51 * time.Second,
					count: 1, status: 502, body: "*", cs: "fwd=stale; fwd-status=502"},
			},
		},
		{
			name:   "route default window",
			cfg:    gwConfig{route: cache.RouteOptions{StaleIfError: time.Minute}},
			origin: cc("max-age=10"),
			steps: []step{first,
				{label: "within the window", origin: &resp{status: 500, body: "failed"}, advance: 20 * time.Second,
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=500; ttl=-10", age: "20"},
				{label: "beyond the window", advance: 51 * time.Second,
					count: 3, status: 500, body: "failed", cs: "fwd=stale; fwd-status=500"},
			},
		},
		{
			name:   "route default window, origin down",
			cfg:    gwConfig{route: cache.RouteOptions{StaleIfError: time.Minute}},
			origin: cc("max-age=10"),
			steps: []step{first,
				{label: "within the window", before: closeOrigin, advance: 20 * time.Second,
					count: 1, body: "v1", cs: "fwd=stale; fwd-status=502; ttl=-10", age: "20"},
			},
		},
		{
			name:   "no window: the error passes through",
			origin: cc("max-age=10"),
			steps: []step{first,
				{origin: &resp{status: 500, body: "failed"}, advance: 20 * time.Second,
					count: 2, status: 500, body: "failed", cs: "fwd=stale; fwd-status=500"},
			},
		},
		{
			name:   "a 4xx is not an error stale-if-error hides",
			origin: cc("max-age=10, stale-if-error=60"),
			steps: []step{first,
				{origin: &resp{status: 404, body: "gone"}, advance: 20 * time.Second,
					count: 2, status: 404, body: "gone", cs: "fwd=stale; fwd-status=404"},
			},
		},
	})
}

func TestStaleIfErrorRequestDirective(t *testing.T) {
	runRows(t, []row{{
		// RFC 5861 4: a client may say it accepts a stale response on
		// error with its own stale-if-error.
		name:   "request stale-if-error",
		origin: cc("max-age=10"),
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{origin: &resp{status: 500, body: "failed"}, advance: 20 * time.Second, hdr: []string{"Cache-Control", "stale-if-error=60"},
				count: 2, body: "v1", cs: "fwd=stale; fwd-status=500; ttl=-10", age: "20"},
			{label: "without it", count: 3, status: 500, body: "failed", cs: "fwd=stale; fwd-status=500"},
			{label: "beyond it", advance: 60 * time.Second, hdr: []string{"Cache-Control", "stale-if-error=60"},
				count: 4, status: 500, body: "failed", cs: "fwd=stale; fwd-status=500"},
		},
	}})
}

// TestClose: Close cancels a background refresh still waiting on the
// origin rather than waiting for the origin (a slow origin must not hold
// up shutdown), later requests are still answered (uncached), and Close
// may be called again.
func TestClose(t *testing.T) {
	g := newGateway(t, gwConfig{})
	g.origin.handle(g.origin.static(cc("max-age=10, stale-while-revalidate=60")))
	g.get(t, "/r")
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=10"}, body: "v{n}", gate: gt}))
	g.clk.Advance(20 * time.Second)
	r := g.get(t, "/r")
	checkResult(t, g, "stale", "/r", r, step{count: -1, body: "v1", cs: "hit; ttl=-10; detail=stale-while-revalidate", age: "20"})
	g.origin.waitCount(t, "/r", 2)
	closed := make(chan struct{})
	go func() {
		g.cache.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a background refresh waited on the origin")
	}
	gt.release()
	g.cache.Close()
	for i := range 2 {
		r := g.get(t, "/r")
		if r.status != 200 || r.body != "v"+strconv.Itoa(3+i) {
			t.Errorf("after Close: %d %q; want 200 v%d from the origin", r.status, r.body, 3+i)
		}
	}
}
