package dashboard

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gateway/admin"
	"gateway/cache"
	"gateway/compress"
	"gateway/internal/leakcheck"
	"gateway/internal/routes"
	"gateway/metrics"
	"gateway/proxy"
	"gateway/proxy/balance"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// stubBackend is a gateway with no cache, no jobs, no tunnels and one
// upstream.
type stubBackend struct {
	targets []balance.TargetStatus
}

func (b *stubBackend) Status(context.Context) admin.Status {
	return admin.Status{Version: "v1", StartedAt: t0, Generation: 1, LoadedAt: t0}
}
func (b *stubBackend) Ready(context.Context) (bool, any) { return true, nil }
func (b *stubBackend) Config(context.Context) any        { return map[string]string{"token": "REDACTED"} }
func (b *stubBackend) Upstreams(context.Context) map[string]admin.UpstreamStatus {
	return map[string]admin.UpstreamStatus{"app": {Healthy: true, Targets: b.targets}}
}
func (b *stubBackend) CacheStats(context.Context) (admin.CacheStats, error) {
	return admin.CacheStats{}, admin.ErrDisabled
}
func (b *stubBackend) PurgeCache(context.Context, cache.Purge) (cache.PurgeResult, error) {
	return cache.PurgeResult{}, admin.ErrDisabled
}
func (b *stubBackend) CompressStats(context.Context) (map[string]map[string]compress.CodingStats, error) {
	return nil, admin.ErrDisabled
}
func (b *stubBackend) WebSocketStats(context.Context) map[string]proxy.WSStats { return nil }
func (b *stubBackend) JobStats(context.Context) (admin.JobStats, error) {
	return admin.JobStats{}, admin.ErrDisabled
}
func (b *stubBackend) Certificates(context.Context) (admin.Certificates, error) {
	return admin.Certificates{}, admin.ErrDisabled
}
func (b *stubBackend) ExplainCache(context.Context, string, http.Header) (cache.Explanation, error) {
	return cache.Explanation{}, admin.ErrDisabled
}
func (b *stubBackend) Health(context.Context) map[string]string { return nil }
func (b *stubBackend) Reload(context.Context) (admin.ReloadResult, error) {
	return admin.ReloadResult{}, admin.ErrDisabled
}

// countingGatherer counts the gathers, to show when the sampler works.
type countingGatherer struct {
	g prometheus.Gatherer
	n atomic.Int64
}

func (c *countingGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.n.Add(1)
	return c.g.Gather()
}

// fakeClock is the samples' clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeTicker records the sampler's starts and stops; its channel fires
// only when the test sends.
type fakeTicker struct {
	c              chan time.Time
	starts, stops  atomic.Int64
	stoppedOnce    chan struct{}
	stoppedOnceSet sync.Once
}

func newFakeTicker() *fakeTicker {
	return &fakeTicker{c: make(chan time.Time), stoppedOnce: make(chan struct{})}
}

func (f *fakeTicker) New(time.Duration) (<-chan time.Time, func()) {
	f.starts.Add(1)
	return f.c, func() {
		f.stops.Add(1)
		f.stoppedOnceSet.Do(func() { close(f.stoppedOnce) })
	}
}

// rig is a Dashboard over a real metrics registry with two routes.
type rig struct {
	d      *Dashboard
	m      *metrics.Metrics
	gen    *metrics.Gen
	gather *countingGatherer
	clock  *fakeClock
	ticker *fakeTicker
}

func newRig(t testing.TB) *rig {
	t.Helper()
	m := metrics.New("test")
	gen := m.NewGen(metrics.GenOptions{Routes: routes.New([]string{"api", "static"}, false)})
	gen.Activate()
	r := &rig{m: m, gen: gen, gather: &countingGatherer{g: m.Registry()}, clock: &fakeClock{t: t0}, ticker: newFakeTicker()}
	d, err := New(Options{
		Gatherer:  r.gather,
		Backend:   &stubBackend{},
		Routes:    func() []string { return []string{"static", "api"} },
		Now:       r.clock.Now,
		NewTicker: r.ticker.New,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	r.d = d
	return r
}

// serve counts n requests of route (1: api, 2: static) each taking dur.
func (r *rig) serve(route routes.ID, n int, status int, dur time.Duration) {
	for range n {
		r.gen.Request(route, "GET", status, cache.OutcomeNone, dur)
	}
}

func TestNewRequiresGathererAndBackend(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New(Options{}): no error")
	}
}

// TestRatesFromCounterDifferences: totals are the counters as gathered,
// rates their difference over the injected interval, percentiles from
// the interval's buckets only.
func TestRatesFromCounterDifferences(t *testing.T) {
	r := newRig(t)
	r.serve(routes.Of(0), 100, 200, 300*time.Millisecond) // before watching: in totals, never in a rate
	if _, ok := r.d.watchGet(); !ok {
		t.Fatal("watchGet after New: not ok")
	}
	r.serve(routes.Of(0), 30, 200, 2*time.Millisecond)
	r.serve(routes.Of(0), 10, 503, 40*time.Millisecond)
	r.serve(routes.Of(1), 20, 200, 2*time.Millisecond)
	r.clock.Add(2 * time.Second)
	s := r.d.tick()

	now := s.snap.Now
	if now.Totals.Requests != 160 || now.Totals.Errors != 10 {
		t.Errorf("totals: got %d requests, %d errors; want 160, 10", now.Totals.Requests, now.Totals.Errors)
	}
	if now.RPS != 30 || now.Error != 5 {
		t.Errorf("rates over 2s: got rps %v, errors %v; want 30, 5", now.RPS, now.Error)
	}
	if len(s.snap.Routes) != 2 || s.snap.Routes[0].Route != "static" || s.snap.Routes[1].Route != "api" {
		t.Fatalf("routes: got %+v; want static then api, as Options.Routes orders them", s.snap.Routes)
	}
	if api := s.snap.Routes[1].Point; api.RPS != 20 || api.Totals.Requests != 140 {
		t.Errorf("api: got rps %v, total %d; want 20, 140", api.RPS, api.Totals.Requests)
	}
	// 60 requests in the interval: 50 at 2ms (bucket (1ms, 2.5ms]), 10
	// at 40ms ((25ms, 50ms]). p50: rank 30, 30/50 of the first.
	if want := (0.001 + (0.0025-0.001)*30/50) * 1000; math.Abs(now.P50Ms-want) > 1e-9 {
		t.Errorf("p50: got %v ms; want %v", now.P50Ms, want)
	}
	// p95: rank 57, 7/10 of the second (50 below it).
	if want := (0.025 + (0.05-0.025)*7/10) * 1000; math.Abs(now.P95Ms-want) > 1e-9 {
		t.Errorf("p95: got %v ms; want %v", now.P95Ms, want)
	}
	if now.P99Ms <= now.P95Ms || now.P99Ms > 50 {
		t.Errorf("p99: got %v ms; want in (p95, 50]", now.P99Ms)
	}
}

func TestQuantile(t *testing.T) {
	h := hist{bounds: []float64{1, 2, 4}, cum: []float64{10, 10, 30}, total: 40}
	for _, c := range []struct{ q, want float64 }{
		{0.25, 1},   // rank 10: the end of the first bucket
		{0.5, 3},    // rank 20: half of (2,4]
		{0.125, .5}, // rank 5: from 0 in the first bucket
		{0.9, 4},    // rank 36: in +Inf, the largest finite bound
	} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v): got %v; want %v", c.q, got, c.want)
		}
	}
	if got := (hist{}).quantile(0.5); got != 0 {
		t.Errorf("empty: got %v; want 0", got)
	}
}

func TestHistoryBounded(t *testing.T) {
	r := newRig(t)
	r.d.watchGet()
	for range HistoryLength + 25 {
		r.clock.Add(time.Second)
		r.d.tick()
	}
	var full Snapshot
	s, _ := r.d.watchGet()
	if err := json.Unmarshal(r.d.fullJSON(s), &full); err != nil {
		t.Fatal(err)
	}
	h := full.History
	if len(h.Gateway) != HistoryLength || len(h.Routes["api"]) != HistoryLength {
		t.Fatalf("history: got %d gateway, %d api points; want %d", len(h.Gateway), len(h.Routes["api"]), HistoryLength)
	}
	for i := 1; i < len(h.Gateway); i++ {
		if h.Gateway[i].T-h.Gateway[i-1].T != 1000 {
			t.Fatalf("history not oldest first, one a second: %d then %d", h.Gateway[i-1].T, h.Gateway[i].T)
		}
	}
	if last := h.Gateway[len(h.Gateway)-1].T; last != full.Now.T {
		t.Errorf("newest history point %d; want now %d", last, full.Now.T)
	}
	if !full.Full || full.Config == nil || len(full.Routes) != 2 {
		t.Errorf("full snapshot: full %v, config %s, %d routes", full.Full, full.Config, len(full.Routes))
	}
}

// TestIdleSamplesNothing: no ticker and no gather until a page
// watches; the ticker stops once the last GET is Idle old; a new GET
// starts it again, its first sample without rates.
func TestIdleSamplesNothing(t *testing.T) {
	leakcheck.Check(t, "dashboard.(*Dashboard).run")
	r := newRig(t)
	if n, s := r.gather.n.Load(), r.ticker.starts.Load(); n != 0 || s != 0 {
		t.Fatalf("before any watcher: %d gathers, %d ticker starts; want 0, 0", n, s)
	}
	r.d.watchGet()
	if n, s := r.gather.n.Load(), r.ticker.starts.Load(); n != 1 || s != 1 {
		t.Fatalf("after a GET: %d gathers, %d ticker starts; want 1, 1", n, s)
	}
	r.clock.Add(6 * time.Second)
	r.ticker.c <- r.clock.Now() // the goroutine sees nobody watches and stops
	<-r.ticker.stoppedOnce
	if n := r.gather.n.Load(); n != 1 {
		t.Errorf("after the idle tick: %d gathers; want 1 (no sample for nobody)", n)
	}
	r.d.mu.Lock()
	running := r.d.running
	r.d.mu.Unlock()
	if running {
		t.Error("the sampler still runs with nobody watching")
	}
	r.d.sampling.Lock()
	h := r.d.history.until(math.MaxInt64)
	r.d.sampling.Unlock()
	if len(h.Gateway) != 0 || len(h.Routes) != 0 {
		t.Errorf("after the idle tick: %d gateway points, %d routes kept; want none", len(h.Gateway), len(h.Routes))
	}
	r.serve(routes.Of(0), 5, 200, time.Millisecond)
	s, _ := r.d.watchGet()
	if r.ticker.starts.Load() != 2 || s.snap.Now.RPS != 0 || s.snap.Now.Totals.Requests != 5 {
		t.Errorf("GET after idle: %d starts, rps %v, total %d; want 2 starts, rps 0 (no interval), total 5",
			r.ticker.starts.Load(), s.snap.Now.RPS, s.snap.Now.Totals.Requests)
	}
}

// keysSpy records WatchKeys.
type keysSpy struct {
	mu    sync.Mutex
	calls []bool
}

func (k *keysSpy) WatchKeys(on bool) {
	k.mu.Lock()
	k.calls = append(k.calls, on)
	k.mu.Unlock()
}

func (k *keysSpy) TopKeys(string, int) (hits, misses []KeyCount) {
	return []KeyCount{{Key: "example.com/a", Count: 3}}, nil
}

func TestKeyTrackingFollowsWatchers(t *testing.T) {
	r := newRig(t)
	k := &keysSpy{}
	r.d.o.Keys = k
	w, _ := r.d.subscribe()
	r.d.unsubscribe(w)
	r.clock.Add(time.Minute)
	r.ticker.c <- r.clock.Now()
	<-r.ticker.stoppedOnce
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.calls) != 2 || !k.calls[0] || k.calls[1] {
		t.Errorf("WatchKeys calls: got %v; want [true false]", k.calls)
	}
}

func TestTargetState(t *testing.T) {
	now := t0
	for _, c := range []struct {
		name string
		t    balance.TargetStatus
		want string
	}{
		{"up", balance.TargetStatus{Healthy: true, ActiveCheck: balance.ActivePassing, Breaker: balance.BreakerClosed}, "up"},
		{"breaker open", balance.TargetStatus{Breaker: balance.BreakerOpen}, "down"},
		{"breaker half-open", balance.TargetStatus{Healthy: true, Breaker: balance.BreakerHalfOpen}, "probing"},
		{"failing check", balance.TargetStatus{ActiveCheck: balance.ActiveFailing}, "down"},
		{"cooling down", balance.TargetStatus{DownUntil: now.Add(time.Second)}, "down"},
		{"cool-down over", balance.TargetStatus{DownUntil: now.Add(-time.Second)}, "probing"},
		{"pending check", balance.TargetStatus{Healthy: true, ActiveCheck: balance.ActivePending}, "up"},
	} {
		if got := targetState(c.t, now); got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
}

// BenchmarkTick is one sample: a gather of a real registry, the
// rates, the Backend's state and the tick's encoding, the work done
// once a second while any number of pages watch.
func BenchmarkTick(b *testing.B) {
	r := newRig(b)
	r.serve(routes.Of(0), 100, 200, time.Millisecond)
	r.serve(routes.Of(1), 100, 503, 20*time.Millisecond)
	r.d.watchGet()
	b.ReportAllocs()
	for b.Loop() {
		r.clock.Add(time.Second)
		r.d.tick()
	}
}
