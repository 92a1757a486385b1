package cache_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

// TestNotStoredReason sends one response of each kind the cache refuses
// through a real origin and checks that the client is told why in
// Cache-Status detail and that the route counted it under that reason.
func TestNotStoredReason(t *testing.T) {
	for _, tc := range []struct {
		reason string
		cfg    gwConfig
		method string
		reqHdr []string
		resp   resp
		setup  func(t *testing.T, g *gateway) // run before the request checked
	}{
		{reason: "no-store", resp: resp{hdr: []string{"Cache-Control", "no-store, max-age=60"}}},
		{reason: "request-no-store", reqHdr: []string{"Cache-Control", "no-store"}, resp: resp{hdr: []string{"Cache-Control", "max-age=60"}}},
		{reason: "private", resp: resp{hdr: []string{"Cache-Control", "private, max-age=60"}}},
		{reason: "set-cookie", resp: resp{hdr: []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}}},
		{reason: "authorization", reqHdr: []string{"Authorization", "Bearer x"}, resp: resp{hdr: []string{"Cache-Control", "max-age=60"}}},
		{reason: "vary-star", resp: resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "*"}}},
		{reason: "status", resp: resp{status: http.StatusFound, hdr: []string{"Location", "/elsewhere"}}},
		{reason: "method", method: http.MethodPost, resp: resp{hdr: []string{"Cache-Control", "max-age=60"}}},
		{reason: "too-large", cfg: gwConfig{cache: cache.Options{MaxSize: 1 << 20, MaxObjectSize: 10}},
			resp: resp{hdr: []string{"Cache-Control", "max-age=60"}, body: strings.Repeat("x", 100)}},
		{reason: "trailer", resp: resp{hdr: []string{"Cache-Control", "max-age=60", "Trailer", "X-Sum"}, body: "v"}},
		{reason: "ttl-zero", resp: resp{body: "no freshness, no validator"}},
		{reason: "hit-for-pass", cfg: gwConfig{route: cache.RouteOptions{HitForPass: time.Minute}},
			resp: resp{hdr: []string{"Cache-Control", "no-store"}}, setup: markPass},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			g := newGateway(t, tc.cfg)
			g.origin.handle(g.origin.static(tc.resp))
			if tc.setup != nil {
				tc.setup(t, g)
			}
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			n := g.origin.count("/r")
			r := g.do(t, method, "/r", tc.reqHdr...)
			if g.origin.count("/r") != n+1 {
				t.Fatalf("origin saw %d requests; want %d", g.origin.count("/r"), n+1)
			}
			if d, _ := statusParam(r.header, "detail"); d != tc.reason {
				t.Errorf("Cache-Status %q: detail %q; want %q", r.header.Get("Cache-Status"), d, tc.reason)
			}
			if _, ok := statusParam(r.header, "stored"); ok {
				t.Errorf("Cache-Status %q claims stored", r.header.Get("Cache-Status"))
			}
			st := g.stats(t, "?route=r")
			if got := st.NotStored[tc.reason]; got != 1 {
				t.Errorf("not_stored %v: %s=%d; want 1", st.NotStored, tc.reason, got)
			}
			total := g.stats(t, "")
			if got := total.NotStored[tc.reason]; got != 1 {
				t.Errorf("total not_stored %v: %s=%d; want 1", total.NotStored, tc.reason, got)
			}
		})
	}
}

// markPass has /r remembered as uncacheable: the key is judged by a
// fetch that others waited on, so a leader and a follower are sent while
// the origin is held, and the marker, stored asynchronously, awaited.
func markPass(t *testing.T, g *gateway) {
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}, gate: gt}))
	var leader, follower fanOut
	leader.start(g, t, t.Context(), 1, "/r")
	g.origin.waitCount(t, "/r", 1)
	follower.start(g, t, t.Context(), 1, "/r")
	g.waitEntered(t, 2)
	gt.release()
	leader.wait(t)
	follower.wait(t)
	g.cache.Store().(*cache.MemoryStore).Wait()
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}}))
}

// TestStoredHasNoReason: a stored response keeps its Cache-Status as it
// was, and nothing is counted as not stored.
func TestStoredHasNoReason(t *testing.T) {
	g := newGateway(t, gwConfig{})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v"}))
	checkStatus(t, "miss", g.get(t, "/r").header, "fwd=uri-miss; fwd-status=200; ttl=60; stored")
	if d, ok := statusParam(g.get(t, "/r").header, "detail"); ok {
		t.Errorf("hit: detail %q; want none", d)
	}
	st := g.stats(t, "?route=r")
	for k, v := range st.NotStored {
		if v != 0 {
			t.Errorf("not_stored %s=%d; want 0", k, v)
		}
	}
	if want := (cache.Shares{Hit: 0.5, Miss: 0.5}); st.Shares != want {
		t.Errorf("shares %+v; want %+v", st.Shares, want)
	}
}

// TestNotStoredTokens: every reason has a distinct token, which is what
// the documentation and the metrics labels promise.
func TestNotStoredTokens(t *testing.T) {
	seen := map[string]bool{}
	for _, tok := range cache.NotStoredReasons() {
		if tok == "" || seen[tok] {
			t.Errorf("token %q empty or repeated", tok)
		}
		seen[tok] = true
	}
	if len(seen) != int(cache.NumNotStored)-1 {
		t.Errorf("%d tokens; want %d", len(seen), cache.NumNotStored-1)
	}
}
