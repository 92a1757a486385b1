package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/jobid"
	"gateway/proxy/balance"
)

// Tests of the overload protection: rate limits (429), concurrency
// limits and shedding (503), and circuit breakers, on real sockets.

// result is one client request's outcome.
type result struct {
	status     int
	body       string
	retryAfter string
	cacheState string
}

// do sends a GET with the given headers (pairs) and reads the answer.
func do(t testing.TB, c *http.Client, u string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return result{resp.StatusCode, string(b), resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Status")}
}

// goDo is do in a goroutine; the result arrives on the channel. It
// reports failures with Error, as Fatal must not leave a test's goroutine.
func goDo(t *testing.T, c *http.Client, u string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := c.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			ch <- result{}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- result{resp.StatusCode, string(b), resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Status")}
	}()
	return ch
}

// counting is an origin that counts requests and answers 200 with the
// path, or 500 while failing is set.
type counting struct {
	*backend
	hits    atomic.Int64
	failing atomic.Bool
}

func newCounting(t testing.TB) *counting {
	o := &counting{}
	o.backend = newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		if o.failing.Load() {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "failing")
			return
		}
		io.WriteString(w, r.URL.Path)
	}))
	return o
}

// gated is an origin whose requests announce themselves on arrived and
// then wait for gate to close.
type gated struct {
	*backend
	arrived chan string
	gate    chan struct{}
	hits    atomic.Int64
}

func newGated(t testing.TB) *gated {
	o := &gated{arrived: make(chan string, 16), gate: make(chan struct{})}
	o.backend = newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		send(r, o.arrived, r.URL.Path)
		select {
		case <-o.gate:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	return o
}

// TestRateLimitBurst: with burst 5 and a rate of one per 1000s exactly
// five requests pass; the next get 429 with Retry-After: 1000 and never
// reach the origin. Once the clock moves that far, one more passes.
func TestRateLimitBurst(t *testing.T) {
	checkLeaks(t)
	origin := newCounting(t)
	clk := newClock()
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "api", Upstream: u,
		RateLimit: &RateLimitOptions{Rate: 0.001, Burst: 5, Now: clk.Now}}}})
	gw := serveHandler(t, h)
	c := newClient(t)

	var statuses []int
	for range 8 {
		r := do(t, c, gw.URL+"/x")
		statuses = append(statuses, r.status)
		if r.status == http.StatusTooManyRequests && r.retryAfter != "1000" {
			t.Errorf("429: got Retry-After %q; want 1000", r.retryAfter)
		}
	}
	want := []int{200, 200, 200, 200, 200, 429, 429, 429}
	if !equalInts(statuses, want) {
		t.Fatalf("got statuses %v; want %v", statuses, want)
	}
	if n := origin.hits.Load(); n != 5 {
		t.Errorf("origin got %d requests; want 5", n)
	}
	clk.Advance(999 * time.Second)
	if r := do(t, c, gw.URL+"/x"); r.status != http.StatusTooManyRequests || r.retryAfter != "1" {
		t.Errorf("after 999s: got %d, Retry-After %q; want 429, 1", r.status, r.retryAfter)
	}
	clk.Advance(time.Second)
	if r := do(t, c, gw.URL+"/x"); r.status != http.StatusOK {
		t.Errorf("after 1000s: got %d; want 200", r.status)
	}
	if r := do(t, c, gw.URL+"/x"); r.status != http.StatusTooManyRequests {
		t.Errorf("after the refill was used: got %d; want 429", r.status)
	}
	if s := h.LimitStats()["api"]; s.RateLimited != 5 || s.RateLimitKeys != 1 {
		t.Errorf("got stats %+v; want 5 rate limited, 1 key", s)
	}
}

// TestRateLimitHeaderKey: keyed by a header, each value has its own
// bucket, and requests without the header share their address's.
func TestRateLimitHeaderKey(t *testing.T) {
	checkLeaks(t)
	origin := newCounting(t)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	gw := gatewayTo(t, RouteOptions{Upstream: u,
		RateLimit: &RateLimitOptions{Rate: 0.001, Burst: 2, Key: "header:x-api-key"}}, Options{})
	c := newClient(t)
	for _, key := range []string{"alice", "bob", ""} {
		var statuses []int
		for range 3 {
			var hdr []string
			if key != "" {
				hdr = []string{"X-Api-Key", key}
			}
			statuses = append(statuses, do(t, c, gw.URL+"/", hdr...).status)
		}
		if want := []int{200, 200, 429}; !equalInts(statuses, want) {
			t.Errorf("key %q: got %v; want %v", key, statuses, want)
		}
	}
	if n := origin.hits.Load(); n != 6 {
		t.Errorf("origin got %d requests; want 6", n)
	}
}

// TestRateLimitForwardedFor: from a trusted peer the key is the real
// client, the first untrusted address from the right of
// X-Forwarded-For, whatever the client put further left; from an
// untrusted peer X-Forwarded-For is ignored.
func TestRateLimitForwardedFor(t *testing.T) {
	checkLeaks(t)
	origin := newCounting(t)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	rl := &RateLimitOptions{Rate: 0.001, Burst: 1}
	trusted := gatewayTo(t, RouteOptions{Upstream: u, RateLimit: rl}, Options{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	}})
	untrusted := gatewayTo(t, RouteOptions{Upstream: u, RateLimit: rl}, Options{})
	c := newClient(t)
	for _, tt := range []struct {
		gw, xff string
		want    int
	}{
		{trusted.URL, "203.0.113.7", 200},
		{trusted.URL, "198.51.100.1, 203.0.113.7, 10.1.1.1", 429}, // the same client, through another proxy
		{trusted.URL, "203.0.113.8", 200},
		{trusted.URL, "10.9.9.9", 200}, // all trusted: the leftmost
		{trusted.URL, "", 200},         // the peer itself
		{untrusted.URL, "192.0.2.1", 200},
		{untrusted.URL, "192.0.2.2", 429}, // keyed by the peer, 127.0.0.1
	} {
		var hdr []string
		if tt.xff != "" {
			hdr = []string{"X-Forwarded-For", tt.xff}
		}
		if got := do(t, c, tt.gw+"/", hdr...).status; got != tt.want {
			t.Errorf("X-Forwarded-For %q: got %d; want %d", tt.xff, got, tt.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", []string{"1.1.1.1"}, "192.0.2.1"},
		{"10.0.0.1:1234", nil, "10.0.0.1"},
		{"10.0.0.1:1234", []string{"1.1.1.1"}, "1.1.1.1"},
		{"10.0.0.1:1234", []string{"6.6.6.6, 1.1.1.1, 10.2.2.2"}, "1.1.1.1"},
		{"10.0.0.1:1234", []string{"6.6.6.6", "1.1.1.1", "10.2.2.2 ,10.3.3.3"}, "1.1.1.1"},
		{"10.0.0.1:1234", []string{"10.5.5.5, 10.2.2.2"}, "10.5.5.5"},
		{"10.0.0.1:1234", []string{"6.6.6.6, garbage, 10.2.2.2"}, "10.2.2.2"},
		{"10.0.0.1:1234", []string{"1.1.1.1:5678"}, "1.1.1.1"},
		{"10.0.0.1:1234", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"[::1]:1234", []string{"::ffff:192.0.2.9"}, "192.0.2.9"},
		{"[::ffff:10.0.0.1]:1234", []string{"1.1.1.1"}, "1.1.1.1"},
		{"pipe", []string{"1.1.1.1"}, "invalid IP"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != nil {
			r.Header["X-Forwarded-For"] = tt.xff
		}
		if got := ClientIP(trusted, r).String(); got != tt.want {
			t.Errorf("ClientIP(%s, %q): got %s; want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// TestConcurrencyShed: with two slots and a queue of one, two requests
// are at the origin, a third waits, and a fourth gets 503 with
// Retry-After at once, never reaching the origin; the waiter is served
// when a slot frees.
func TestConcurrencyShed(t *testing.T) {
	checkLeaks(t)
	origin := newGated(t)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "api", Upstream: u,
		Concurrency: ConcurrencyOptions{MaxInFlight: 2, Queue: 1, QueueTimeout: time.Minute}}}})
	gw := serveHandler(t, h)
	c := newClient(t)

	first, second := goDo(t, c, gw.URL+"/1"), goDo(t, c, gw.URL+"/2")
	waitFor(t, origin.arrived, "the first request at the origin")
	waitFor(t, origin.arrived, "the second request at the origin")
	third := goDo(t, c, gw.URL+"/3")
	eventually(t, "the third request to queue", func() bool { return h.LimitStats()["api"].Queued == 1 })

	r := do(t, c, gw.URL+"/4")
	if r.status != http.StatusServiceUnavailable || r.retryAfter != "1" {
		t.Errorf("fourth: got %d, Retry-After %q; want 503, 1", r.status, r.retryAfter)
	}
	if n := origin.hits.Load(); n != 2 {
		t.Errorf("origin got %d requests while full; want 2", n)
	}
	if s := h.LimitStats()["api"]; s.InFlight != 2 || s.Queued != 1 || s.Shed != 1 {
		t.Errorf("got stats %+v; want 2 in flight, 1 queued, 1 shed", s)
	}

	close(origin.gate)
	for i, ch := range []<-chan result{first, second, third} {
		select {
		case r := <-ch:
			if r.status != http.StatusOK {
				t.Errorf("request %d: got %d; want 200", i+1, r.status)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d: no answer", i+1)
		}
	}
	if n := origin.hits.Load(); n != 3 {
		t.Errorf("origin got %d requests; want 3", n)
	}
	eventually(t, "every slot to be free", func() bool { return h.LimitStats()["api"].InFlight == 0 })
	if s := h.LimitStats()["api"]; s.Shed != 1 || s.Waited != 1 || s.QueueTimeouts != 0 {
		t.Errorf("got stats %+v; want 1 shed, 1 waited, no timeouts", s)
	}
}

// TestConcurrencyQueueTimeout: a request that waits its queue timeout
// for a slot gets 503, after the timeout.
func TestConcurrencyQueueTimeout(t *testing.T) {
	checkLeaks(t)
	origin := newGated(t)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	const timeout = 50 * time.Millisecond
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "api", Upstream: u,
		Concurrency: ConcurrencyOptions{MaxInFlight: 1, Queue: 1, QueueTimeout: timeout}}}})
	gw := serveHandler(t, h)
	c := newClient(t)

	first := goDo(t, c, gw.URL+"/1")
	waitFor(t, origin.arrived, "the first request at the origin")
	start := time.Now()
	r := do(t, c, gw.URL+"/2")
	if r.status != http.StatusServiceUnavailable || r.retryAfter != "1" {
		t.Errorf("queued: got %d, Retry-After %q; want 503, 1", r.status, r.retryAfter)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("queued: answered after %v; want at least the queue timeout, %v", d, timeout)
	}
	if s := h.LimitStats()["api"]; s.QueueTimeouts != 1 || s.Waited != 1 || s.Shed != 0 {
		t.Errorf("got stats %+v; want 1 queue timeout, 1 waited, none shed", s)
	}
	close(origin.gate)
	if r := waitFor(t, first, "the first request"); r.status != http.StatusOK {
		t.Errorf("first: got %d; want 200", r.status)
	}
	if n := origin.hits.Load(); n != 1 {
		t.Errorf("origin got %d requests; want 1", n)
	}
}

// cachedOrigin serves every path with the given Cache-Control and a Date
// from clk, so the cache's clock and the origin's agree; /slow waits for
// the gate. While failing is set it answers 500.
type cachedOrigin struct {
	*backend
	hits    atomic.Int64
	failing atomic.Bool
	arrived chan string
	gate    chan struct{}
}

func newCachedOrigin(t testing.TB, clk *fakeClock) *cachedOrigin {
	o := &cachedOrigin{arrived: make(chan string, 16), gate: make(chan struct{})}
	o.backend = newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		if o.failing.Load() {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/slow" {
			w.Header().Set("Cache-Control", "no-store")
			send(r, o.arrived, r.URL.Path)
			select {
			case <-o.gate:
			case <-r.Context().Done():
				return
			}
		} else {
			w.Header().Set("Cache-Control", "max-age=10")
		}
		io.WriteString(w, "v "+r.URL.Path)
	}))
	return o
}

// newCache is a cache on clk (nil: the real clock), closed at cleanup.
func newCache(t testing.TB, clk *fakeClock) *cache.Cache {
	t.Helper()
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	c, err := cache.New(cache.Options{MaxSize: 1 << 20, Now: now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func cacheRoute(t testing.TB, c *cache.Cache, o cache.RouteOptions) Middleware {
	t.Helper()
	rt, err := c.Route(o)
	if err != nil {
		t.Fatal(err)
	}
	return rt.Wrap
}

// TestConcurrencyCacheHitsTakeNoSlot: with the one slot of a cached
// route taken, hits are still served; a miss is shed with 503, and a
// stale entry under stale-if-error answers for a shed request.
func TestConcurrencyCacheHitsTakeNoSlot(t *testing.T) {
	checkLeaks(t)
	clk := newClock()
	origin := newCachedOrigin(t, clk)
	c := newCache(t, clk)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "api", Upstream: u,
		Middleware:  []Middleware{cacheRoute(t, c, cache.RouteOptions{Name: "api", StaleIfError: time.Minute})},
		Concurrency: ConcurrencyOptions{MaxInFlight: 1}}}})
	gw := serveHandler(t, h)
	cl := newClient(t)

	// /old is stored first and is stale (by 1s) when /hot is still
	// fresh.
	if r := do(t, cl, gw.URL+"/old"); r.status != http.StatusOK {
		t.Fatalf("priming /old: got %d; want 200", r.status)
	}
	clk.Advance(5 * time.Second)
	if r := do(t, cl, gw.URL+"/hot"); r.status != http.StatusOK {
		t.Fatalf("priming /hot: got %d; want 200", r.status)
	}
	clk.Advance(6 * time.Second)

	slow := goDo(t, cl, gw.URL+"/slow")
	waitFor(t, origin.arrived, "the slow request at the origin")
	hits := origin.hits.Load()
	for range 20 {
		r := do(t, cl, gw.URL+"/hot")
		if r.status != http.StatusOK || r.body != "v /hot" {
			t.Fatalf("hit while the slot is taken: got %d %q (%s); want 200 from the cache", r.status, r.body, r.cacheState)
		}
	}
	if r := do(t, cl, gw.URL+"/miss"); r.status != http.StatusServiceUnavailable || r.retryAfter != "1" {
		t.Errorf("miss while the slot is taken: got %d, Retry-After %q; want 503, 1", r.status, r.retryAfter)
	}
	if r := do(t, cl, gw.URL+"/old"); r.status != http.StatusOK || r.body != "v /old" {
		t.Errorf("stale entry while the slot is taken: got %d %q (%s); want the stale 200", r.status, r.body, r.cacheState)
	}
	if n := origin.hits.Load(); n != hits {
		t.Errorf("origin got %d more requests while the slot was taken; want 0", n-hits)
	}
	if s := h.LimitStats()["api"]; s.Shed != 2 || s.InFlight != 1 {
		t.Errorf("got stats %+v; want 2 shed, 1 in flight", s)
	}
	close(origin.gate)
	if r := waitFor(t, slow, "the slow request"); r.status != http.StatusOK {
		t.Errorf("slow: got %d; want 200", r.status)
	}
}

// testBreaker trips after 3 requests at a failure ratio of one half and
// probes after openTimeout.
func testBreaker(openTimeout time.Duration) *balance.BreakerOptions {
	return &balance.BreakerOptions{FailureRatio: 0.5, MinRequests: 3, Window: time.Minute, OpenTimeout: openTimeout, HalfOpenRequests: 1}
}

func breakerState(u *Upstream, i int) string { return u.BreakerStates()[i].State }

// TestBreakerTripsAndRecovers: a target that fails opens its breaker
// and stops getting requests while the other serves them all; after the
// open timeout one probe goes to it: a failed probe opens it again, a
// successful one closes it and traffic is shared again.
func TestBreakerTripsAndRecovers(t *testing.T) {
	checkLeaks(t)
	bad, good := newCounting(t), newCounting(t)
	bad.failing.Store(true)
	// The open timeout must outlast the ten requests below even on a
	// loaded machine, or one of them would be the probe.
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{bad.target(t), good.target(t)}, Breaker: testBreaker(time.Second)})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})
	c := newClient(t)

	for i := 0; breakerState(u, 0) != balance.BreakerOpen; i++ {
		if i == 20 {
			t.Fatalf("breaker still %s after %d requests; want open", breakerState(u, 0), i)
		}
		do(t, c, gw.URL+"/")
	}
	if n := bad.hits.Load(); n != 3 {
		t.Errorf("failing target got %d requests before its breaker opened; want 3", n)
	}
	for range 10 {
		if r := do(t, c, gw.URL+"/"); r.status != http.StatusOK {
			t.Fatalf("with the bad target open: got %d; want 200 from the good one", r.status)
		}
	}
	if n := bad.hits.Load(); n != 3 {
		t.Errorf("open target got %d requests; want still 3", n)
	}
	if st := u.Status()[0]; st.Healthy || st.Breaker != balance.BreakerOpen {
		t.Errorf("status: got healthy %v, breaker %q; want unhealthy, open", st.Healthy, st.Breaker)
	}

	// A probe that fails opens it again.
	eventually(t, "the breaker to half-open", func() bool { return breakerState(u, 0) == balance.BreakerHalfOpen })
	for i := 0; bad.hits.Load() == 3; i++ {
		if i == 4 {
			t.Fatal("no probe reached the half-open target")
		}
		do(t, c, gw.URL+"/")
	}
	if s := u.BreakerStates()[0]; s.State != balance.BreakerOpen || s.Opened != 2 {
		t.Errorf("after a failed probe: got %+v; want open, opened twice", s)
	}

	// A probe that succeeds closes it.
	bad.failing.Store(false)
	eventually(t, "the breaker to half-open again", func() bool { return breakerState(u, 0) == balance.BreakerHalfOpen })
	for i := 0; bad.hits.Load() == 4; i++ {
		if i == 4 {
			t.Fatal("no probe reached the half-open target")
		}
		if r := do(t, c, gw.URL+"/"); r.status != http.StatusOK {
			t.Fatalf("got %d; want 200", r.status)
		}
	}
	if s := u.BreakerStates()[0]; s.State != balance.BreakerClosed || s.Opened != 2 {
		t.Errorf("after a good probe: got %+v; want closed, opened twice", s)
	}
	if n := u.Unavailable(); n != 0 {
		t.Errorf("got %d requests failed for want of a target; want 0 (the good one was there)", n)
	}
	before := bad.hits.Load()
	for range 4 {
		do(t, c, gw.URL+"/")
	}
	if n := bad.hits.Load() - before; n != 2 {
		t.Errorf("closed target got %d of 4 requests; want its share, 2", n)
	}
}

// TestBreakerAllOpenFailsFast: with every target's breaker open a
// request fails at once with 503, without a connection to the origin.
func TestBreakerAllOpenFailsFast(t *testing.T) {
	checkLeaks(t)
	origin := newCounting(t)
	origin.failing.Store(true)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}, Breaker: testBreaker(time.Minute)})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})
	c := newClient(t)
	for range 3 {
		if r := do(t, c, gw.URL+"/"); r.status != http.StatusInternalServerError {
			t.Fatalf("got %d; want the origin's 500", r.status)
		}
	}
	if st := breakerState(u, 0); st != balance.BreakerOpen || u.Healthy() {
		t.Fatalf("got breaker %s, healthy %v; want open, unhealthy", st, u.Healthy())
	}
	hits, conns := origin.hits.Load(), origin.accepted.Load()
	for range 5 {
		start := time.Now()
		r := do(t, c, gw.URL+"/")
		if r.status != http.StatusServiceUnavailable || r.body != "no healthy upstream\n" {
			t.Errorf("got %d %q; want 503 no healthy upstream", r.status, r.body)
		}
		// The open timeout's remainder, in whole seconds rounded up.
		if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 30 || n > 60 {
			t.Errorf("Retry-After: got %q; want the minute's remainder (30 to 60 seconds)", r.retryAfter)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v; want an answer at once", d)
		}
	}
	if h, n := origin.hits.Load(), origin.accepted.Load(); h != hits || n != conns {
		t.Errorf("origin got %d requests, %d connections more; want none", h-hits, n-conns)
	}
	if n := u.Unavailable(); n != 5 {
		t.Errorf("got %d requests failed for want of a target; want 5", n)
	}
}

// TestBreakerOpenServesStale: with every target open, a cached route
// serves its stale entry when stale-if-error allows, through the same
// fast 503, and otherwise answers that 503 at once.
func TestBreakerOpenServesStale(t *testing.T) {
	checkLeaks(t)
	clk := newClock()
	origin := newCachedOrigin(t, clk)
	c := newCache(t, clk)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}, Breaker: testBreaker(time.Minute)})
	h := newHandler(t, Options{Routes: []RouteOptions{
		{Name: "grace", Path: "/a", Upstream: u, Middleware: []Middleware{cacheRoute(t, c, cache.RouteOptions{Name: "grace", StaleIfError: time.Minute})}},
		{Name: "strict", Path: "/b", Upstream: u, Middleware: []Middleware{cacheRoute(t, c, cache.RouteOptions{Name: "strict"})}},
	}})
	gw := serveHandler(t, h)
	cl := newClient(t)

	for _, p := range []string{"/a/page", "/b/page"} {
		if r := do(t, cl, gw.URL+p); r.status != http.StatusOK {
			t.Fatalf("priming %s: got %d; want 200", p, r.status)
		}
	}
	origin.failing.Store(true)
	for i := 0; breakerState(u, 0) != balance.BreakerOpen; i++ {
		if i == 10 {
			t.Fatalf("breaker still %s after %d failures; want open", breakerState(u, 0), i)
		}
		if r := do(t, cl, gw.URL+"/b/fail"+strconv.Itoa(i)); r.status != http.StatusInternalServerError {
			t.Fatalf("got %d; want the origin's 500", r.status)
		}
	}
	clk.Advance(20 * time.Second) // both entries are stale by 10s
	hits, conns := origin.hits.Load(), origin.accepted.Load()

	if r := do(t, cl, gw.URL+"/a/page"); r.status != http.StatusOK || r.body != "v /a/page" {
		t.Errorf("stale-if-error route: got %d %q (%s); want the stale entry", r.status, r.body, r.cacheState)
	}
	for _, p := range []string{"/b/page", "/a/other"} {
		if r := do(t, cl, gw.URL+p); r.status != http.StatusServiceUnavailable || r.body != "no healthy upstream\n" || r.retryAfter == "" {
			t.Errorf("%s: got %d %q, Retry-After %q; want 503 no healthy upstream with a Retry-After", p, r.status, r.body, r.retryAfter)
		}
	}
	if h, n := origin.hits.Load(), origin.accepted.Load(); h != hits || n != conns {
		t.Errorf("origin got %d requests, %d connections more; want none", h-hits, n-conns)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConnectionFieldsNotKeyed: a header field the client names in
// Connection is dropped before the cache sees the request, as it is from
// what reaches the upstream. Otherwise a client could have the response
// made without it stored under the variant of clients that send it.
func TestConnectionFieldsNotKeyed(t *testing.T) {
	checkLeaks(t)
	clk := newClock()
	origin := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		fmt.Fprintf(w, "lang=%s te=%s", r.Header.Get("Accept-Language"), r.Header.Get("Te"))
	}))
	c := newCache(t, clk)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u, Middleware: []Middleware{cacheRoute(t, c, cache.RouteOptions{Name: "r"})}}, Options{})
	addr := gw.Listener.Addr().String()

	resp, body := rawRequest(t, addr, "GET /p HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\nTE: trailers\r\nConnection: Accept-Language, TE\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "lang= te=trailers" {
		t.Fatalf("request naming Accept-Language in Connection: %d %q; want 200 %q (the field dropped, TE kept)", resp.StatusCode, body, "lang= te=trailers")
	}
	c.Store().(*cache.MemoryStore).Wait()
	resp, body = rawRequest(t, addr, "GET /p HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "lang=en te=" {
		t.Errorf("plain request with Accept-Language en: %d %q (Cache-Status %q); want 200 %q, not the response made without the field",
			resp.StatusCode, body, resp.Header.Get("Cache-Status"), "lang=en te=")
	}
	resp, body = rawRequest(t, addr, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "lang= te=trailers" || resp.Header.Get("Age") == "" {
		t.Errorf("request without Accept-Language: %d %q Age %q (Cache-Status %q); want the stored %q", resp.StatusCode, body, resp.Header.Get("Age"), resp.Header.Get("Cache-Status"), "lang= te=trailers")
	}
}

// TestRateLimitSparesJobAttempts: a queued job's attempts (the gateway's
// own requests, whose client was counted when the job was accepted) are
// not rate limited; the route's clients still are.
func TestRateLimitSparesJobAttempts(t *testing.T) {
	checkLeaks(t)
	origin := newCounting(t)
	clk := newClock()
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "api", Upstream: u,
		RateLimit: &RateLimitOptions{Rate: 0.001, Burst: 1, Now: clk.Now}}}})
	for i := range 3 {
		req := httptest.NewRequestWithContext(jobid.WithAttempt(context.Background()), http.MethodGet, "http://gw.test/x", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("attempt %d: got %d; want 200, attempts are not rate limited", i+1, rec.Code)
		}
	}
	gw := serveHandler(t, h)
	c := newClient(t)
	if r := do(t, c, gw.URL+"/x"); r.status != http.StatusOK {
		t.Errorf("first client request: got %d; want 200", r.status)
	}
	if r := do(t, c, gw.URL+"/x"); r.status != http.StatusTooManyRequests {
		t.Errorf("second client request: got %d; want 429", r.status)
	}
}
