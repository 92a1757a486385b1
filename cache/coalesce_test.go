package cache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/cache"
)

// fanOut sends n requests concurrently and returns their results once all
// are done; wait blocks for them.
type fanOut struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []result
	errs    []error
}

func (f *fanOut) start(g *gateway, t *testing.T, ctx context.Context, n int, path string, hdr ...string) {
	for range n {
		req := g.newRequest(ctx, t, http.MethodGet, path, hdr...)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			r, err := g.send(req)
			f.mu.Lock()
			defer f.mu.Unlock()
			if err != nil {
				f.errs = append(f.errs, err)
				return
			}
			f.results = append(f.results, r)
		}()
	}
}

func (f *fanOut) wait(t *testing.T) []result {
	t.Helper()
	f.wg.Wait()
	for _, err := range f.errs {
		t.Errorf("request failed: %v", err)
	}
	return f.results
}

// collapsedOrHit checks a follower's response: collapsed into the
// leader's fetch, or (for a request that arrived after the fetch ended) a
// hit. It reports whether it was collapsed.
func collapsedOrHit(t *testing.T, r result, body string) bool {
	t.Helper()
	if r.status != http.StatusOK || r.body != body {
		t.Errorf("follower: %d %q; want 200 %q", r.status, r.body, body)
	}
	if _, hit := statusParam(r.header, "hit"); hit {
		checkStatus(t, "follower (hit)", r.header, "hit; ttl=60")
		return false
	}
	checkStatus(t, "follower", r.header, "fwd=uri-miss; fwd-status=200; ttl=60; collapsed")
	if r.header.Get("Age") != "0" {
		t.Errorf("follower: Age %q; want 0", r.header.Get("Age"))
	}
	return true
}

// TestCoalescing: concurrent requests for a cold key share one fetch.
func TestCoalescing(t *testing.T) {
	const n = 200
	// Followers would give up waiting after LockTimeout; the test must
	// not depend on how fast a loaded machine gets 200 requests in.
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: strings.Repeat("x", 10000), gate: gt}))
	var f fanOut
	f.start(g, t, t.Context(), n, "/r")
	g.waitEntered(t, n)
	g.origin.waitCount(t, "/r", 1)
	gt.release()
	results := f.wait(t)
	if got := g.origin.count("/r"); got != 1 {
		t.Errorf("origin requests: %d; want 1", got)
	}
	leaders, collapsed, hits := 0, 0, 0
	for _, r := range results {
		if _, stored := statusParam(r.header, "stored"); stored {
			leaders++
			checkStatus(t, "leader", r.header, "fwd=uri-miss; fwd-status=200; ttl=60; stored")
			if len(r.body) != 10000 {
				t.Errorf("leader: body of %d bytes; want 10000", len(r.body))
			}
			continue
		}
		if collapsedOrHit(t, r, strings.Repeat("x", 10000)) {
			collapsed++
		} else {
			hits++
		}
	}
	t.Logf("%d leader, %d collapsed, %d hits", leaders, collapsed, hits)
	if leaders != 1 || collapsed == 0 || leaders+collapsed+hits != n {
		t.Errorf("%d leaders, %d collapsed followers, %d hits; want 1 leader and %d collapsed or hits, at least one collapsed", leaders, collapsed, hits, n-1)
	}
	st := g.route.Stats()
	if st.Misses != 1 || st.Coalesced != uint64(collapsed) || st.Hits != uint64(hits) || st.Stores != 1 {
		t.Errorf("stats %+v; want misses 1, coalesced %d, hits %d, stores 1", st, collapsed, hits)
	}
}

// TestCoalescingVary: followers that the leader's response does not fit
// (another Vary value) go to the origin themselves, and none of them is
// served the leader's variant.
func TestCoalescingVary(t *testing.T) {
	const k = 5
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{
		hdr:  []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding"},
		body: "{h:Accept-Encoding}", gate: gt,
	}))
	var leader, followers fanOut
	leader.start(g, t, t.Context(), 1, "/r", "Accept-Encoding", "gzip")
	g.origin.waitCount(t, "/r", 1)
	followers.start(g, t, t.Context(), k, "/r", "Accept-Encoding", "br")
	g.waitEntered(t, 1+k)
	gt.release()
	for _, r := range leader.wait(t) {
		checkResult(t, g, "leader", "/r", r, step{count: -1, body: "gzip", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	}
	for _, r := range followers.wait(t) {
		if r.status != 200 || r.body != "br" {
			t.Errorf("follower with Accept-Encoding br: %d %q; want 200 \"br\"", r.status, r.body)
		}
		if _, collapsed := statusParam(r.header, "collapsed"); collapsed {
			t.Errorf("follower with Accept-Encoding br: Cache-Status %q; want not collapsed into the gzip fetch", r.header.Get("Cache-Status"))
		}
	}
	if got := g.origin.count("/r"); got < 2 || got > 1+k {
		t.Errorf("origin requests: %d; want between 2 and %d", got, 1+k)
	}
	r := g.get(t, "/r", "Accept-Encoding", "br")
	checkResult(t, g, "br afterwards", "/r", r, step{count: -1, body: "br", cs: "hit; ttl=60", age: "0"})
	r = g.get(t, "/r", "Accept-Encoding", "gzip")
	checkResult(t, g, "gzip afterwards", "/r", r, step{count: -1, body: "gzip", cs: "hit; ttl=60", age: "0"})
}

// TestCoalescingNoStore: followers of a fetch whose response cannot be
// stored go to the origin themselves, and the key then becomes
// hit-for-pass: its requests are no longer serialized behind one fetch.
func TestCoalescingNoStore(t *testing.T) {
	const k = 5
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour, HitForPass: time.Minute}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}, body: "v{n}", gate: gt}))
	var leader, followers fanOut
	leader.start(g, t, t.Context(), 1, "/r")
	g.origin.waitCount(t, "/r", 1)
	followers.start(g, t, t.Context(), k, "/r")
	g.waitEntered(t, 1+k)
	gt.release()
	leader.wait(t)
	for _, r := range followers.wait(t) {
		if r.status != 200 || r.body == "v1" {
			t.Errorf("follower: %d %q; want 200 and its own response, not the leader's v1", r.status, r.body)
		}
		checkStatus(t, "follower", r.header, "fwd=uri-miss; fwd-status=200")
	}
	if got := g.origin.count("/r"); got != 1+k {
		t.Errorf("origin requests: %d; want %d (each follower fetched for itself)", got, 1+k)
	}

	// Hit-for-pass: with the origin blocking again, N concurrent
	// requests must all reach it before any is released. The marker is
	// stored asynchronously; wait for it.
	g.cache.Store().(*cache.MemoryStore).Wait()
	const m = 8
	gt2 := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}, body: "v{n}", gate: gt2}))
	var passes fanOut
	passes.start(g, t, t.Context(), m, "/r")
	g.origin.waitCount(t, "/r", 1+k+m)
	gt2.release()
	for _, r := range passes.wait(t) {
		checkStatus(t, "pass", r.header, "fwd=uri-miss; fwd-status=200; detail=hit-for-pass")
	}
	// A follower that looked the key up only after the leader marked it
	// counts as a pass too, so passes are at least m.
	if st := g.route.Stats(); st.Passes < m || st.Passes > m+k || st.Uncacheable == 0 {
		t.Errorf("stats %+v; want passes between %d and %d, and uncacheable > 0", st, m, m+k)
	}

	// Once the mark expires the key is coalesced again.
	g.clk.Advance(61 * time.Second)
	gt3 := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}", gate: gt3}))
	before := g.entered.Load()
	var again fanOut
	again.start(g, t, t.Context(), m, "/r")
	g.waitEntered(t, int(before)+m)
	g.origin.waitCount(t, "/r", 1+k+m+1)
	gt3.release()
	again.wait(t)
	if got := g.origin.count("/r"); got != 1+k+m+1 {
		t.Errorf("origin requests after hit-for-pass expired: %d; want %d", got, 1+k+m+1)
	}
}

// TestCoalescingAuthorization: a flight whose response is not stored only
// because its request carries Authorization does not make the key
// hit-for-pass: the variant stored for other clients stays, and their
// misses are still collapsed.
func TestCoalescingAuthorization(t *testing.T) {
	const k = 5
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour, HitForPass: time.Minute}})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Language"}, body: "{h:Accept-Language} {n}"}))
	r := g.get(t, "/r", "Accept-Language", "en")
	checkResult(t, g, "en", "/r", r, step{count: 1, body: "en 1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})

	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Language"}, body: "{h:Accept-Language} {n}", gate: gt}))
	auth := []string{"Accept-Language", "de", "Authorization", "Bearer t"}
	var leader, followers fanOut
	leader.start(g, t, t.Context(), 1, "/r", auth...)
	g.origin.waitCount(t, "/r", 2)
	followers.start(g, t, t.Context(), k, "/r", auth...)
	g.waitEntered(t, 2+k)
	gt.release()
	for _, r := range append(leader.wait(t), followers.wait(t)...) {
		if r.status != 200 || !strings.HasPrefix(r.body, "de ") {
			t.Errorf("authorized request: %d %q; want 200 and a de response", r.status, r.body)
		}
		if _, stored := statusParam(r.header, "stored"); stored {
			t.Errorf("authorized request: Cache-Status %q; want not stored", r.header.Get("Cache-Status"))
		}
	}
	n := g.origin.count("/r")
	g.cache.Store().(*cache.MemoryStore).Wait()

	r = g.get(t, "/r", "Accept-Language", "en")
	checkResult(t, g, "en after the authorized requests", "/r", r, step{count: n, body: "en 1", cs: "hit; ttl=60", age: "0"})
	r = g.get(t, "/r", "Accept-Language", "de")
	checkResult(t, g, "de without Authorization", "/r", r, step{count: n + 1, body: "*", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"})
	if d, ok := statusParam(r.header, "detail"); ok {
		t.Errorf("de without Authorization: detail %q; want the key not marked hit-for-pass", d)
	}
}

// TestCoalescingStaleOnArrival: a response that is stale as soon as it
// arrives (max-age=0, no-cache, an Age past its lifetime) is stored for
// revalidation but shared with no follower: each needs a validation of
// its own (RFC 9111 section 4), and sharing it would hand the leader's
// page, made for its cookie, to every other client waiting.
func TestCoalescingStaleOnArrival(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		// The ETag is the representation's, as from an origin whose page
		// depends on the cookie: a follower that finds the leader's entry
		// already stored revalidates it, and must then get its own page
		// (a 200), not the leader's; with one ETag for both pages the
		// origin itself would say the leader's page is fine (a 304), and
		// which one the follower got would depend on timing.
		{"max-age=0", []string{"Cache-Control", "max-age=0", "ETag", `"{h:Cookie}"`}},
		{"no-cache", []string{"Cache-Control", "no-cache, max-age=60", "ETag", `"{h:Cookie}"`}},
		{"Age past max-age", []string{"Cache-Control", "max-age=60", "Age", "120"}},
		{"must-revalidate without lifetime", []string{"Cache-Control", "must-revalidate", "ETag", `"{h:Cookie}"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const k = 4
			g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
			gt := newGate(t)
			g.origin.handle(g.origin.static(resp{hdr: tc.hdr, body: "{h:Cookie}", gate: gt}))
			var leader, followers fanOut
			leader.start(g, t, t.Context(), 1, "/r", "Cookie", "u=alice")
			g.origin.waitCount(t, "/r", 1)
			followers.start(g, t, t.Context(), k, "/r", "Cookie", "u=bob")
			g.waitEntered(t, 1+k)
			gt.release()
			for _, r := range leader.wait(t) {
				if r.body != "u=alice" {
					t.Errorf("leader: %q; want u=alice", r.body)
				}
			}
			for _, r := range followers.wait(t) {
				if r.status != http.StatusOK || r.body != "u=bob" {
					t.Errorf("follower: %d %q (Cache-Status %q); want 200 \"u=bob\", its own response", r.status, r.body, r.header.Get("Cache-Status"))
				}
			}
			if st := g.route.Stats(); st.Coalesced != 0 {
				t.Errorf("coalesced %d; want 0", st.Coalesced)
			}
		})
	}
}

// TestCoalescingLeaderLeaves: the leader's client going away fails
// neither the fetch nor the followers; the response is still stored.
func TestCoalescingLeaderLeaves(t *testing.T) {
	const k = 10
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "body", gate: gt}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	leaderDone := make(chan error, 1)
	req := g.newRequest(ctx, t, http.MethodGet, "/r")
	go func() {
		_, err := g.send(req)
		leaderDone <- err
	}()
	g.origin.waitCount(t, "/r", 1)
	var followers fanOut
	followers.start(g, t, t.Context(), k, "/r")
	g.waitEntered(t, 1+k)
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v; want context.Canceled", err)
	}
	gt.release()
	for _, r := range followers.wait(t) {
		collapsedOrHit(t, r, "body")
	}
	if got := g.origin.count("/r"); got != 1 {
		t.Errorf("origin requests: %d; want 1", got)
	}
	r := g.get(t, "/r")
	checkResult(t, g, "afterwards", "/r", r, step{count: 1, body: "body", cs: "hit; ttl=60", age: "0"})
}

// TestCoalescingFollowerLeaves: a follower going away does not cancel the
// leader's fetch.
func TestCoalescingFollowerLeaves(t *testing.T) {
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "body", gate: gt}))
	var leader fanOut
	leader.start(g, t, t.Context(), 1, "/r")
	g.origin.waitCount(t, "/r", 1)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	followerDone := make(chan error, 1)
	req := g.newRequest(ctx, t, http.MethodGet, "/r")
	go func() {
		_, err := g.send(req)
		followerDone <- err
	}()
	g.waitEntered(t, 2)
	cancel()
	if err := <-followerDone; !errors.Is(err, context.Canceled) {
		t.Errorf("follower: %v; want context.Canceled", err)
	}
	gt.release()
	for _, r := range leader.wait(t) {
		checkResult(t, g, "leader", "/r", r, step{count: 1, body: "body", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	}
	r := g.get(t, "/r")
	checkResult(t, g, "afterwards", "/r", r, step{count: 1, body: "body", cs: "hit; ttl=60", age: "0"})
}

// TestCoalescingLockTimeout: a follower that waited LockTimeout for the
// leader's fetch goes to the origin itself.
func TestCoalescingLockTimeout(t *testing.T) {
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: 20 * time.Millisecond}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}", gate: gt}))
	var leader, follower fanOut
	leader.start(g, t, t.Context(), 1, "/r")
	g.origin.waitCount(t, "/r", 1)
	follower.start(g, t, t.Context(), 1, "/r")
	// The event: the follower gave up waiting and reached the origin.
	g.origin.waitCount(t, "/r", 2)
	gt.release()
	for _, r := range leader.wait(t) {
		checkResult(t, g, "leader", "/r", r, step{count: 2, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	}
	for _, r := range follower.wait(t) {
		checkResult(t, g, "follower", "/r", r, step{count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored; detail=lock-timeout"})
	}
}

// staleStampede stores first under /r, lets it go stale by advance, and
// sends n concurrent requests for it while the origin answers with then,
// held until all of them are in the gateway and one has gone forward.
func staleStampede(t *testing.T, n int, first, then resp, advance time.Duration) (*gateway, []result) {
	t.Helper()
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	g.origin.handle(g.origin.static(first))
	checkResult(t, g, "miss", "/r", g.get(t, "/r"), step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	gt := newGate(t)
	then.gate = gt
	g.origin.handle(g.origin.static(then))
	g.clk.Advance(advance)
	var f fanOut
	f.start(g, t, t.Context(), n, "/r")
	g.waitEntered(t, 1+n)
	g.origin.waitCount(t, "/r", 2)
	gt.release()
	return g, f.wait(t)
}

// TestCoalescingRevalidation: concurrent requests for a stale entry share
// one conditional request, and all get the refreshed entry.
func TestCoalescingRevalidation(t *testing.T) {
	const n = 20
	g, results := staleStampede(t, n, cc("max-age=60", "ETag", `"e1"`),
		resp{hdr: []string{"Cache-Control", "max-age=60", "ETag", `"e1"`}, body: "v{n}"}, 61*time.Second)
	collapsed := 0
	for _, r := range results {
		if r.status != 200 || r.body != "v1" {
			t.Errorf("%d %q; want 200 \"v1\"", r.status, r.body)
		}
		switch _, c := statusParam(r.header, "collapsed"); {
		case c:
			collapsed++
			checkStatus(t, "follower", r.header, "fwd=stale; fwd-status=304; ttl=60; collapsed")
		default:
			if _, hit := statusParam(r.header, "hit"); !hit {
				checkStatus(t, "leader", r.header, "fwd=stale; fwd-status=304; ttl=60; stored")
			}
		}
	}
	if got := g.origin.count("/r"); got != 2 {
		t.Errorf("origin requests: %d; want 2 (one revalidation)", got)
	}
	if inm := g.origin.last(t, "/r").header.Get("If-None-Match"); inm != `"e1"` {
		t.Errorf("revalidation If-None-Match %q; want \"e1\"", inm)
	}
	t.Logf("%d of %d collapsed", collapsed, n)
}

// TestCoalescingStaleIfError: concurrent requests for a stale entry whose
// origin fails share the failed fetch, and all get the stale entry.
func TestCoalescingStaleIfError(t *testing.T) {
	const n = 20
	g, results := staleStampede(t, n, cc("max-age=60, stale-if-error=600"), resp{status: 503, body: "down"}, 70*time.Second)
	collapsed := 0
	for _, r := range results {
		if strings.Contains(r.header.Get("Cache-Status"), "collapsed") {
			collapsed++
		}
		if r.status != 200 || r.body != "v1" || r.header.Get("Age") != "70" {
			t.Errorf("%d %q Age %q; want 200 \"v1\" Age 70", r.status, r.body, r.header.Get("Age"))
		}
		// RFC 9211 2.3: fwd-status is what the next hop answered the
		// (shared) forward: 503, whatever the stale entry's status.
		fwd, _ := statusParam(r.header, "fwd")
		fwdStatus, _ := statusParam(r.header, "fwd-status")
		if fwd != "stale" || fwdStatus != "503" {
			t.Errorf("Cache-Status %q; want fwd=stale; fwd-status=503", r.header.Get("Cache-Status"))
		}
	}
	// A request that entered the gateway but reached the flight only
	// after it ended finds the entry still stale and leads a flight of its
	// own; that is correct, and rare. Every forward but one per flight is
	// collapsed, whatever the interleaving.
	got := g.origin.count("/r")
	if forwards := got - 1; forwards != n-collapsed || collapsed < n/2 {
		t.Errorf("origin requests %d and %d of %d collapsed; want one forward per uncollapsed request, most collapsed", got, collapsed, n)
	}
}

// TestCoalescingHeadLeader: a HEAD miss leads a fetch of the whole GET
// response, which its GET followers receive with the body.
func TestCoalescingHeadLeader(t *testing.T) {
	const k = 5
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "full body", gate: gt}))
	head := make(chan result, 1)
	go func() {
		r, err := g.send(g.newRequest(t.Context(), t, http.MethodHead, "/r"))
		if err != nil {
			t.Error(err)
		}
		head <- r
	}()
	g.origin.waitCount(t, "/r", 1)
	var followers fanOut
	followers.start(g, t, t.Context(), k, "/r")
	g.waitEntered(t, 1+k)
	gt.release()
	if r := <-head; r.status != 200 || r.body != "" {
		t.Errorf("HEAD: %d %q; want 200 and no body", r.status, r.body)
	}
	for _, r := range followers.wait(t) {
		collapsedOrHit(t, r, "full body")
	}
	if got := g.origin.count("/r"); got != 1 {
		t.Errorf("origin requests: %d; want 1", got)
	}
}

// pauseCtx holds the first call of its Deadline method until resumed.
// The cache calls Deadline when it detaches a fetch from the request's
// cancellation, after looking the key up and before joining the key's
// flight: pausing there places a request exactly in that gap.
type pauseCtx struct {
	context.Context
	once    sync.Once
	reached chan struct{}
	resume  *gate
}

func (c *pauseCtx) Deadline() (time.Time, bool) {
	c.once.Do(func() {
		close(c.reached)
		<-c.resume.ch
	})
	return c.Context.Deadline()
}

// TestCoalescingStraggler: a request that found nothing stored, but joins
// the key's flight only after that flight stored its response and ended,
// must not fetch again: the response it is looking for is stored. Without
// a second look at the store, concurrent bursts occasionally reach the
// origin twice (TestCoalescing, TestCoalescingNoStore); this test places
// a request in that gap deterministically.
func TestCoalescingStraggler(t *testing.T) {
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}})
	gt := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}", gate: gt}))
	pause := &pauseCtx{reached: make(chan struct{}), resume: newGate(t)}
	hook := func(r *http.Request) *http.Request {
		if r.Header.Get("X-Straggler") == "" {
			return r
		}
		pause.Context = r.Context()
		return r.WithContext(pause)
	}
	g.hook.Store(&hook)

	var leader, straggler fanOut
	leader.start(g, t, t.Context(), 1, "/r")
	g.origin.waitCount(t, "/r", 1)
	straggler.start(g, t, t.Context(), 1, "/r", "X-Straggler", "1")
	select {
	case <-pause.reached:
	case <-time.After(waitTimeout):
		t.Skip("the cache no longer calls Context.Deadline between lookup and flight; this test cannot place a request there")
	}
	// The straggler has looked the key up and found nothing. Now the
	// leader's flight completes, stores its response and ends.
	gt.release()
	g.waitExited(t, 1)
	for _, r := range leader.wait(t) {
		checkResult(t, g, "leader", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	}
	pause.resume.release()
	for _, r := range straggler.wait(t) {
		checkResult(t, g, "straggler", "/r", r, step{count: 1, body: "v1", cs: "*", age: "*"})
	}
}

// TestCoalescingRouteTimeout: a request that waited on another
// request's fetch and must then go to the origin itself has what is left
// of the route's deadline, not a fresh one: the deadline bounds the
// client's whole wait. The shared fetch takes most of the deadline and
// brings back a response the cache may not share (no-store).
func TestCoalescingRouteTimeout(t *testing.T) {
	const (
		n       = 5
		timeout = 2 * time.Second
		delay   = 1200 * time.Millisecond // each origin answer: over half the deadline
	)
	g := newGateway(t, gwConfig{route: cache.RouteOptions{LockTimeout: time.Hour}, timeout: timeout})
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		// Once every request is in the cache (waiting or fetching),
		// answer after delay, unless the gateway gives up first.
		for g.entered.Load() < n {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(delay):
		}
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "fresh")
	})
	var f fanOut
	f.start(g, t, t.Context(), n, "/slow")
	results := f.wait(t)
	ok, timedOut := 0, 0
	for i, r := range results {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusGatewayTimeout:
			timedOut++
		default:
			t.Errorf("request %d: got %d %q; want 200 or 504", i, r.status, r.body)
		}
	}
	// The fetch's own client gets its answer; the others, left with
	// less than delay, time out instead of waiting a second deadline.
	if ok != 1 || timedOut != n-1 {
		t.Errorf("%d answered, %d timed out; want 1 and %d", ok, timedOut, n-1)
	}
}
