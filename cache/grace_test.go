package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/cache"
)

// graceCfg is a route with a minute of grace and nothing else that could
// serve stale.
var graceCfg = gwConfig{route: cache.RouteOptions{Grace: time.Minute}}

// TestGrace: with a grace, a stale entry answers for an origin that is
// down or failing, though its response named no stale-if-error, and only
// within the grace.
func TestGrace(t *testing.T) {
	first := step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"}
	for _, code := range []int{500, 502, 503, 504} {
		c := strconv.Itoa(code)
		fail := &resp{status: code, body: "failed"}
		runRows(t, []row{{
			name:   "origin answers " + c,
			cfg:    graceCfg,
			origin: cc("max-age=10"),
			steps: []step{first,
				{label: "within the grace", origin: fail, advance: 20 * time.Second,
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=" + c + "; ttl=-10; detail=grace", age: "20"},
				{label: "at the grace's end", advance: 50 * time.Second,
					count: 3, body: "v1", cs: "fwd=stale; fwd-status=" + c + "; ttl=-60; detail=grace", age: "70"},
				{label: "past the grace", advance: time.Second,
					count: 4, status: code, body: "failed", cs: "fwd=stale; fwd-status=" + c},
				{label: "origin back", origin: &resp{hdr: []string{"Cache-Control", "max-age=10"}, body: "v{n}"},
					count: 5, body: "v5", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
			},
		}})
	}
	closeOrigin := func(t *testing.T, g *gateway) { g.origin.Close() }
	runRows(t, []row{
		{
			name:   "origin killed: the proxy's 502",
			cfg:    graceCfg,
			origin: cc("max-age=10"),
			steps: []step{first,
				{label: "within the grace", before: closeOrigin, advance: 20 * time.Second,
					count: 1, body: "v1", cs: "fwd=stale; fwd-status=502; ttl=-10; detail=grace", age: "20"},
				{label: "past the grace", advance: 51 * time.Second,
					count: 1, status: 502, body: "*", cs: "fwd=stale; fwd-status=502"},
			},
		},
		{
			name:   "a 501 is an answer, not an outage",
			cfg:    graceCfg,
			origin: cc("max-age=10"),
			steps: []step{first,
				{origin: &resp{status: 501, body: "no"}, advance: 20 * time.Second,
					count: 2, status: 501, body: "no", cs: "fwd=stale; fwd-status=501"},
			},
		},
		{
			name:   "a 4xx is not hidden",
			cfg:    graceCfg,
			origin: cc("max-age=10"),
			steps: []step{first,
				{origin: &resp{status: 404, body: "gone"}, advance: 20 * time.Second,
					count: 2, status: 404, body: "gone", cs: "fwd=stale; fwd-status=404"},
			},
		},
		{
			name:   "grace 0 turns it off",
			origin: cc("max-age=10"),
			steps: []step{first,
				{origin: &resp{status: 503, body: "failed"}, advance: 20 * time.Second,
					count: 2, status: 503, body: "failed", cs: "fwd=stale; fwd-status=503"},
			},
		},
		{
			name:   "the response's stale-if-error=0 keeps its meaning",
			cfg:    graceCfg,
			origin: cc("max-age=10, stale-if-error=0"),
			steps: []step{first,
				{origin: &resp{status: 503, body: "failed"}, advance: 20 * time.Second,
					count: 2, status: 503, body: "failed", cs: "fwd=stale; fwd-status=503"},
			},
		},
		{
			name:   "the response's narrower stale-if-error keeps its meaning",
			cfg:    graceCfg,
			origin: cc("max-age=10, stale-if-error=5"),
			steps: []step{first,
				{origin: &resp{status: 503, body: "failed"}, advance: 20 * time.Second,
					count: 2, status: 503, body: "failed", cs: "fwd=stale; fwd-status=503"},
			},
		},
		{
			name:   "the response's wider stale-if-error keeps its meaning",
			cfg:    graceCfg,
			origin: cc("max-age=10, stale-if-error=3600"),
			steps: []step{first,
				{origin: &resp{status: 503, body: "failed"}, advance: 30 * time.Minute,
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=503; ttl; detail=stale-if-error", age: "*"},
			},
		},
		{
			name:   "a request's stale-if-error widens the grace",
			cfg:    graceCfg,
			origin: cc("max-age=10"),
			steps: []step{first,
				{origin: &resp{status: 503, body: "failed"}, advance: 30 * time.Minute, hdr: []string{"Cache-Control", "stale-if-error=3600"},
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=503; ttl; detail=stale-if-error", age: "*"},
			},
		},
	})
	// RFC 9111 4.2.4: never stale against the response's own directives;
	// s-maxage binds a shared cache as proxy-revalidate does (3.2).
	for _, directive := range []string{"must-revalidate", "proxy-revalidate", "no-cache", "s-maxage=10"} {
		runRows(t, []row{{
			name:   directive,
			cfg:    graceCfg,
			origin: resp{hdr: []string{"Cache-Control", "max-age=10, " + directive, "Etag", `"a"`}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl; stored"},
				{origin: &resp{status: 503, body: "failed"}, advance: 20 * time.Second,
					count: 2, status: 503, body: "failed", cs: "fwd; fwd-status=503"},
			},
		}})
	}
}

// TestGraceOriginHung: an origin that stalls past the route's timeout is
// answered with the stale entry; the proxy's 504 shows as fwd-status.
func TestGraceOriginHung(t *testing.T) {
	cfg := graceCfg
	// Long enough for the first, prompt answer on a loaded machine under
	// the race detector; the stalled one is held until past it.
	cfg.timeout = time.Second
	g := newGateway(t, cfg)
	g.origin.handle(g.origin.static(cc("max-age=10")))
	r := g.get(t, "/r")
	checkResult(t, g, "miss", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"})

	// Released only at the end: the origin holds the request until the
	// proxy gives up on it and its connection closes.
	gt := newGate(t)
	t.Cleanup(gt.release)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=10"}, body: "v{n}", gate: gt}))
	g.clk.Advance(20 * time.Second)
	r = g.get(t, "/r")
	checkResult(t, g, "hung", "/r", r, step{count: 2, body: "v1", cs: "fwd=stale; fwd-status=504; ttl=-10; detail=grace", age: "20"})
}

// TestGraceCutShort: a response that replaces a stale entry is held until
// whole, so an origin that breaks it off is answered with the stale entry
// rather than a truncated body; a whole one is sent and stored as usual.
func TestGraceCutShort(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string // what the origin sends before closing the connection
	}{
		{"Content-Length larger than the body",
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nContent-Length: 100\r\nDate: %s\r\n\r\n" + strings.Repeat("x", 50)},
		{"chunked without the last chunk",
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nTransfer-Encoding: chunked\r\nDate: %s\r\n\r\n32\r\n" + strings.Repeat("x", 50) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, graceCfg)
			g.origin.handle(g.origin.static(cc("max-age=10")))
			r := g.get(t, "/r")
			checkResult(t, g, "miss", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"})

			g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				fmt.Fprintf(bw, tc.raw, g.clk.Now().Format(http.TimeFormat))
				_ = bw.Flush()
			})
			g.clk.Advance(20 * time.Second)
			r = g.get(t, "/r")
			checkResult(t, g, "cut short", "/r", r, step{count: 2, body: "v1", cs: "fwd=stale; fwd-status=200; ttl=-10; detail=grace-cut-short", age: "20"})

			g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=10", "Surrogate-Key", "k"}, body: "v{n}"}))
			r = g.get(t, "/r")
			checkResult(t, g, "whole", "/r", r, step{count: 3, body: "v3", cs: "fwd=stale; fwd-status=200; ttl=10; stored", age: "*"})
			if v := r.header.Get("Surrogate-Key"); v != "" {
				t.Errorf("held response sent Surrogate-Key %q; want it kept from clients", v)
			}
			r = g.get(t, "/r")
			checkResult(t, g, "stored", "/r", r, step{count: 3, body: "v3", cs: "hit; ttl=10", age: "0"})
		})
	}
}

// TestGraceFollowers: requests collapsed onto a fetch that failed get the
// stale entry with the same detail as the one that led.
func TestGraceFollowers(t *testing.T) {
	g := newGateway(t, graceCfg)
	g.origin.handle(g.origin.static(cc("max-age=10")))
	g.get(t, "/r")
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{status: 503, body: "failed", gate: gt}))
	g.clk.Advance(20 * time.Second)
	const n = 5
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		req := g.newRequest(t.Context(), t, http.MethodGet, "/r")
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.send(req)
			if err != nil {
				t.Error(err)
				return
			}
			results <- r
		}()
	}
	g.origin.waitCount(t, "/r", 2)
	g.waitEntered(t, 1+n)
	gt.release()
	wg.Wait()
	close(results)
	for r := range results {
		checkResult(t, g, "collapsed", "/r", r, step{count: -1, body: "v1", cs: "fwd=stale; fwd-status=503; ttl=-10; detail=grace; collapsed?", age: "20"})
	}
}

// lingerStore records the Linger of what is stored.
type lingerStore struct {
	cache.Store
	mu     sync.Mutex
	linger []time.Duration
}

func (s *lingerStore) Set(ctx context.Context, primary string, e *cache.Entry) (bool, error) {
	s.mu.Lock()
	s.linger = append(s.linger, e.Linger)
	s.mu.Unlock()
	return s.Store.Set(ctx, primary, e)
}

// TestGraceLinger: entries are kept for the grace past their freshness
// (so that a shared tier still has them when the origin fails), except
// those the grace can never serve.
func TestGraceLinger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route cache.RouteOptions
		cc    string
		want  time.Duration
	}{
		{"grace", cache.RouteOptions{Grace: time.Hour}, "max-age=10", time.Hour},
		{"grace wider than the windows", cache.RouteOptions{Grace: time.Hour, StaleIfError: time.Minute}, "max-age=10, stale-while-revalidate=30", time.Hour},
		{"windows wider than the grace", cache.RouteOptions{Grace: time.Minute}, "max-age=10, stale-while-revalidate=7200", 2 * time.Hour},
		{"no grace", cache.RouteOptions{}, "max-age=10", 0},
		{"must-revalidate", cache.RouteOptions{Grace: time.Hour}, "max-age=10, must-revalidate", 0},
		{"s-maxage", cache.RouteOptions{Grace: time.Hour}, "s-maxage=10", 0},
		{"the response's own stale-if-error", cache.RouteOptions{Grace: time.Hour}, "max-age=10, stale-if-error=60", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ms.Close() })
			st := &lingerStore{Store: ms}
			g := newGateway(t, gwConfig{cache: cache.Options{Store: st}, route: tc.route})
			g.origin.handle(g.origin.static(cc(tc.cc)))
			r := g.get(t, "/r")
			checkResult(t, g, "miss", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"})
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.linger) != 1 || st.linger[0] != tc.want {
				t.Errorf("stored with Linger %v; want [%v]", st.linger, tc.want)
			}
		})
	}
}

// TestGraceHeldTooLarge: a response of unknown length held for the stale
// entry's sake is let go once it outgrows the object limit, and reaches
// the client whole.
func TestGraceHeldTooLarge(t *testing.T) {
	cfg := graceCfg
	cfg.cache.MaxObjectSize = 1024
	g := newGateway(t, cfg)
	g.origin.handle(g.origin.static(cc("max-age=10")))
	g.get(t, "/r")
	big := strings.Repeat("y", 4096)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		for i := 0; i < len(big); i += 512 {
			_, _ = w.Write([]byte(big[i : i+512]))
			_ = http.NewResponseController(w).Flush() // chunked: no Content-Length
		}
	})
	g.clk.Advance(20 * time.Second)
	r := g.get(t, "/r")
	checkResult(t, g, "too large", "/r", r, step{count: 2, body: big, cs: "*", age: "*"})
	r = g.get(t, "/r")
	if r.body != big {
		t.Errorf("after the large response: %d bytes; want it from the origin again", len(r.body))
	}
}
