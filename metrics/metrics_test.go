package metrics

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/cache"
	"gateway/compress"
	"gateway/internal/routes"
	"gateway/proxy"
)

// series flattens the registry into "name{label=value,...}" -> value,
// labels sorted; a histogram gives its _count and _sum.
func series(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var ls []string
			for _, lp := range mt.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(ls)
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch {
			case mt.Counter != nil:
				out[key] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				out[key] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(mt.Histogram.GetSampleCount())
				out[strings.Replace(key, "{", "_sum{", 1)] = mt.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// TestRequest: counts land under bounded labels (unknown method
// "other", odd status "5xx", unknown route "(none)"), cells that
// counted nothing make no series, and the histograms count per route.
func TestRequest(t *testing.T) {
	m := New("v1.2.3")
	g := m.NewGen(GenOptions{Routes: routes.New([]string{"api", "static"}, true)})
	g.Activate()
	g.Request(1, "GET", 200, cache.OutcomeHit, time.Millisecond)
	g.Request(1, "GET", 204, cache.OutcomeHit, 3*time.Millisecond)
	g.Request(1, "GET", 200, cache.OutcomeMiss, time.Millisecond)
	g.Request(2, "BREW", 418, cache.OutcomeNone, time.Millisecond)
	g.Request(0, "PATCH", 404, cache.OutcomeNone, time.Millisecond)
	g.Request(3, "POST", 200, cache.OutcomeNone, time.Millisecond)
	g.Request(99, "GET", 999, cache.Outcome(200), time.Millisecond)
	got := series(t, m)
	want := map[string]float64{
		"gateway_requests_total{cache=hit,method=GET,route=api,status=2xx}":       2,
		"gateway_requests_total{cache=miss,method=GET,route=api,status=2xx}":      1,
		"gateway_requests_total{cache=none,method=other,route=static,status=4xx}": 1,
		"gateway_requests_total{cache=none,method=PATCH,route=(none),status=4xx}": 1,
		"gateway_requests_total{cache=none,method=POST,route=(batch),status=2xx}": 1,
		"gateway_requests_total{cache=none,method=GET,route=(none),status=5xx}":   1,
		"gateway_request_duration_seconds_count{route=api}":                       3,
		"gateway_request_duration_seconds_sum{route=api}":                         0.005,
		"gateway_request_duration_seconds_count{route=static}":                    1,
		"gateway_request_duration_seconds_count{route=(none)}":                    2,
		"gateway_request_duration_seconds_count{route=(batch)}":                   1,
		"gateway_build_info{goversion=" + runtime.Version() + ",version=v1.2.3}":  1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: got %v (present %v); want %v", k, g, ok, v)
		}
	}
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "gateway_requests_total{") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("got %d request series; want 6", n)
	}
	if a := testing.AllocsPerRun(1000, func() { g.Request(1, "GET", 200, cache.OutcomeHit, time.Millisecond) }); a != 0 {
		t.Errorf("Request allocates %v times", a)
	}
}

// TestRouteNamesRepeat: routes of the same name share their series, so
// the registry never collects one twice.
func TestRouteNamesRepeat(t *testing.T) {
	m := New("")
	g := m.NewGen(GenOptions{Routes: routes.New([]string{"api", "api", "(none)"}, false)})
	for route := range routes.ID(4) {
		g.Request(route, "GET", 200, cache.OutcomeNone, time.Millisecond)
	}
	got := series(t, m)
	if v := got["gateway_requests_total{cache=none,method=GET,route=api,status=2xx}"]; v != 2 {
		t.Errorf("api: %v; want 2", v)
	}
	if v := got["gateway_request_duration_seconds_count{route=(none)}"]; v != 2 {
		t.Errorf("(none): %v; want 2", v)
	}
}

// TestHandler: the exposition format over HTTP.
func TestHandler(t *testing.T) {
	m := New("")
	m.NewGen(GenOptions{Routes: routes.New([]string{"api"}, false)}).Request(1, "GET", 200, cache.OutcomeNone, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		"# TYPE gateway_requests_total counter\n",
		`gateway_requests_total{cache="none",method="GET",route="api",status="2xx"} 1` + "\n",
		"# TYPE gateway_request_duration_seconds histogram\n",
		`gateway_request_duration_seconds_bucket{route="api",le="0.001"} 1` + "\n",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

// BenchmarkRequest is the per-request cost of the metrics: one counter
// add and one histogram observation, from all CPUs at once.
func BenchmarkRequest(b *testing.B) {
	g := New("").NewGen(GenOptions{Routes: routes.New([]string{"api"}, false)})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Request(1, "GET", 200, cache.OutcomeHit, 700*time.Microsecond)
		}
	})
}

// scraper scrapes m and fails when a gateway counter or histogram
// count went back or vanished since the previous scrape.
type scraper struct {
	t    *testing.T
	m    *Metrics
	last map[string]float64
}

func (s *scraper) scrape() map[string]float64 {
	s.t.Helper()
	got := series(s.t, s.m)
	for k, v := range s.last {
		if !strings.HasPrefix(k, "gateway_") || !(strings.Contains(k, "_total{") || strings.Contains(k, "_count{")) {
			continue
		}
		if g, ok := got[k]; !ok || g < v {
			s.t.Errorf("%s went from %v to %v (present %v)", k, v, g, ok)
		}
	}
	s.last = got
	return got
}

func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v; want no such series", k, g)
		case v >= 0 && !ok:
			t.Errorf("%s: missing; want %v", k, v)
		case v >= 0 && g != v:
			t.Errorf("%s = %v; want %v", k, g, v)
		}
	}
}

// TestRequestsSurviveGenerations: a route that keeps its name across a
// reload keeps counting in the same series, whatever its index, while
// the old generation drains and after it retires; a route the reload
// removed keeps its last value.
func TestRequestsSurviveGenerations(t *testing.T) {
	m := New("")
	s := &scraper{t: t, m: m}
	const (
		api     = "gateway_requests_total{cache=none,method=GET,route=api,status=2xx}"
		old     = "gateway_requests_total{cache=none,method=GET,route=old,status=2xx}"
		added   = "gateway_requests_total{cache=none,method=GET,route=new,status=2xx}"
		apiDur  = "gateway_request_duration_seconds_count{route=api}"
		oldDur  = "gateway_request_duration_seconds_count{route=old}"
		noRoute = "gateway_request_duration_seconds_count{route=(none)}"
	)
	count := func(g *Gen, route routes.ID, n int) {
		for range n {
			g.Request(route, "GET", 200, cache.OutcomeNone, time.Millisecond)
		}
	}
	g1 := m.NewGen(GenOptions{Routes: routes.New([]string{"api", "old"}, false)})
	g1.Activate()
	count(g1, 1, 3)
	count(g1, 2, 1)
	expect(t, s.scrape(), map[string]float64{api: 3, apiDur: 3, old: 1, oldDur: 1, added: -1, noRoute: 0})

	g2 := m.NewGen(GenOptions{Routes: routes.New([]string{"new", "api"}, false)})
	expect(t, s.scrape(), map[string]float64{api: 3, added: -1})
	g2.Activate()
	count(g1, 1, 2) // draining
	count(g2, 2, 4)
	count(g2, 1, 1)
	expect(t, s.scrape(), map[string]float64{api: 9, apiDur: 9, old: 1, added: 1})

	g1.Retire()
	expect(t, s.scrape(), map[string]float64{api: 9, apiDur: 9, old: 1, oldDur: 1, added: 1})
	count(g2, 2, 1)
	expect(t, s.scrape(), map[string]float64{api: 10, apiDur: 10, old: 1, added: 1})
}

// deadURL is a loopback address that refuses connections.
func deadURL(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	ln.Close()
	return u
}

// upstream makes upstream "dead"; close closes it once, at the latest
// when the test ends.
func upstream(t *testing.T, o proxy.UpstreamOptions) (u *proxy.Upstream, close func()) {
	t.Helper()
	o.Name, o.Logger = "dead", slog.New(slog.DiscardHandler)
	u, err := proxy.NewUpstream(o)
	if err != nil {
		t.Fatal(err)
	}
	close = sync.OnceFunc(u.Close)
	t.Cleanup(close)
	return u, close
}

// fail sends n requests to u, each refused.
func fail(t *testing.T, u *proxy.Upstream, n int) {
	t.Helper()
	for range n {
		resp, err := u.RoundTrip(httptest.NewRequest("GET", "http://gateway/x", nil))
		if err == nil {
			resp.Body.Close()
			t.Fatal("a dead target answered")
		}
	}
}

func refused(u *proxy.Upstream) (n float64) {
	for _, t := range u.Stats().Targets {
		n += float64(t.Errors[1])
	}
	return n
}

// TestGenCountersSurviveRetire: the counters that a generation's own
// objects hold (upstream errors, compression, WebSocket, limits) add up
// over the generations attached and stay when one retires, while its
// gauges go; health is the newest generation's; a target in two
// generations is collected once.
func TestGenCountersSurviveRetire(t *testing.T) {
	if proxy.ErrorKinds[1] != "refused" {
		t.Fatalf("ErrorKinds %v: refused is not index 1", proxy.ErrorKinds)
	}
	dead := deadURL(t)
	m := New("")
	s := &scraper{t: t, m: m}
	var (
		errs    = "gateway_upstream_errors_total{kind=refused,target=" + dead.String() + ",upstream=dead}"
		healthy = "gateway_upstream_target_healthy{target=" + dead.String() + ",upstream=dead}"
		upDur   = "gateway_upstream_duration_seconds_count{upstream=dead}"
		gzipped = "gateway_compress_responses_total{coding=gzip}"
		gzIn    = "gateway_compress_bytes_in_total{coding=gzip}"
		open    = "gateway_websocket_connections{route=ws}"
		upgr    = "gateway_websocket_upgrades_total{route=ws}"
		limited = "gateway_rate_limited_total{route=api}"
		shed    = "gateway_shed_total{reason=full,route=api}"
		queued  = "gateway_upstream_queued{route=api}"
	)
	newGen := func(u *proxy.Upstream, ws proxy.WSStats, lim proxy.LimitStats) (*Gen, *compress.Compressor) {
		c, err := compress.New(compress.Options{Codings: []string{"gzip"}})
		if err != nil {
			t.Fatal(err)
		}
		return m.NewGen(GenOptions{
			Routes:      routes.New([]string{"api"}, false),
			Upstreams:   []*proxy.Upstream{u},
			Compressors: map[string]*compress.Compressor{"api": c},
			WebSocket:   func() map[string]proxy.WSStats { return map[string]proxy.WSStats{"ws": ws} },
			Limits:      func() map[string]proxy.LimitStats { return map[string]proxy.LimitStats{"api": lim} },
		}), c
	}
	body := []byte(strings.Repeat("squeeze ", 100))

	// One failure puts the first generation's target out (max_fails 1).
	u1, closeU1 := upstream(t, proxy.UpstreamOptions{Targets: []*url.URL{dead}, MaxFails: 1, CoolDown: time.Hour})
	g1, c1 := newGen(u1, proxy.WSStats{Open: 2, Upgraded: 5}, proxy.LimitStats{RateLimited: 3, Shed: 1, Queued: 4})
	g1.Activate()
	fail(t, u1, 1)
	if _, err := c1.Encode(nil, "gzip", body); err != nil {
		t.Fatal(err)
	}
	e1 := refused(u1)
	if e1 == 0 {
		t.Fatal("no refused connection counted")
	}
	expect(t, s.scrape(), map[string]float64{
		errs: e1, healthy: 0, upDur: 1, gzipped: 1, gzIn: float64(len(body)),
		open: 2, upgr: 5, limited: 3, shed: 1, queued: 4,
	})

	// A reload: the same upstream and target, healthy again; the old
	// generation still drains.
	u2, _ := upstream(t, proxy.UpstreamOptions{Targets: []*url.URL{dead}})
	g2, c2 := newGen(u2, proxy.WSStats{Open: 1, Upgraded: 1}, proxy.LimitStats{RateLimited: 10})
	g2.Activate()
	fail(t, u2, 1)
	if _, err := c2.Encode(nil, "gzip", body); err != nil {
		t.Fatal(err)
	}
	e2 := refused(u2)
	if e2 == 0 {
		t.Fatal("no refused connection counted")
	}
	expect(t, s.scrape(), map[string]float64{
		errs: e1 + e2, healthy: 1, upDur: 2, gzipped: 2, gzIn: 2 * float64(len(body)),
		open: 3, upgr: 6, limited: 13, shed: 1, queued: 4,
	})

	// The old generation is done: its counters stay, its gauges go.
	closeU1() // as the app does, before retiring
	g1.Retire()
	g1.Retire() // and only once
	expect(t, s.scrape(), map[string]float64{
		errs: e1 + e2, healthy: 1, upDur: 2, gzipped: 2, gzIn: 2 * float64(len(body)),
		open: 1, upgr: 6, limited: 13, shed: 1, queued: 0,
	})
	fail(t, u2, 1)
	expect(t, s.scrape(), map[string]float64{errs: e1 + refused(u2), upDur: 3})
	if refused(u2) <= e2 {
		t.Error("the second failure was not counted")
	}
}

// TestGenNotActivated: a generation whose build failed (never
// activated) shows none of its sources, even when it is closed.
func TestGenNotActivated(t *testing.T) {
	dead := deadURL(t)
	m := New("")
	u, _ := upstream(t, proxy.UpstreamOptions{Targets: []*url.URL{dead}})
	c, err := compress.New(compress.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := m.NewGen(GenOptions{
		Routes:      routes.New([]string{"api"}, false),
		Upstreams:   []*proxy.Upstream{u},
		Compressors: map[string]*compress.Compressor{"api": c},
		WebSocket:   func() map[string]proxy.WSStats { return map[string]proxy.WSStats{"api": {Open: 1}} },
		Limits:      func() map[string]proxy.LimitStats { return map[string]proxy.LimitStats{"api": {Shed: 1}} },
	})
	check := func() {
		t.Helper()
		for k := range series(t, m) {
			for _, p := range []string{"gateway_upstream_errors", "gateway_upstream_retries", "gateway_upstream_target", "gateway_upstream_connections", "gateway_compress_", "gateway_websocket_", "gateway_shed_", "gateway_rate_limit", "gateway_upstream_queued", "gateway_upstream_in_flight"} {
				if strings.HasPrefix(k, p) {
					t.Errorf("series %s of a generation never activated", k)
				}
			}
		}
	}
	check()
	g.Retire()
	check()
	g.Activate() // retired: stays out
	check()
}

// TestCacheSetLater: the cache's series appear once a store is set,
// as after the reload that first enables caching.
func TestCacheSetLater(t *testing.T) {
	m := New("")
	if _, ok := series(t, m)["gateway_cache_entries{}"]; ok {
		t.Fatal("cache series without a cache")
	}
	c, err := cache.New(cache.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m.SetCache(c)
	if v, ok := series(t, m)["gateway_cache_max_bytes{}"]; !ok || v != 1<<20 {
		t.Errorf("gateway_cache_max_bytes %v (present %v); want %d", v, ok, 1<<20)
	}
}

// TestCacheNotStored: a route's responses not stored are counted by
// reason, every reason present from the start.
func TestCacheNotStored(t *testing.T) {
	m := New("")
	c, err := cache.New(cache.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rt, err := c.Route(cache.RouteOptions{Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	m.SetCache(c)
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Set-Cookie", "s=1")
		_, _ = w.Write([]byte("per user"))
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://x/a", nil))
	got := series(t, m)
	if v := got["gateway_cache_not_stored_total{reason=set-cookie,route=api}"]; v != 1 {
		t.Errorf("set-cookie: %v; want 1", v)
	}
	for _, reason := range cache.NotStoredReasons() {
		if _, ok := got["gateway_cache_not_stored_total{reason="+reason+",route=api}"]; !ok {
			t.Errorf("no series for reason %s", reason)
		}
	}
}

// TestCacheHitBytes: the body bytes hits send are exported per route,
// in a scrape of /metrics as in the registry.
func TestCacheHitBytes(t *testing.T) {
	m := New("")
	c, err := cache.New(cache.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rt, err := c.Route(cache.RouteOptions{Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	m.SetCache(c)
	const body = "a stored body"
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(body))
	}))
	const hits = 3
	for range 1 + hits {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://x/a", nil))
	}
	if v := series(t, m)["gateway_cache_hit_bytes_total{route=api}"]; v != float64(hits*len(body)) {
		t.Errorf("gateway_cache_hit_bytes_total %v; want %d", v, hits*len(body))
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `gateway_cache_hit_bytes_total{route="api"} ` + strconv.Itoa(hits*len(body)); !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics has no line %q", want)
	}
}

// TestProtocol: requests count by HTTP version, anything unknown as
// "other", without allocating.
func TestProtocol(t *testing.T) {
	m := New("")
	g := m.NewGen(GenOptions{Routes: routes.New(nil, false)})
	for _, v := range [][2]int{{1, 0}, {1, 1}, {1, 1}, {2, 0}, {3, 0}, {3, 0}, {3, 0}, {0, 9}} {
		g.Protocol(v[0], v[1])
	}
	expect(t, series(t, m), map[string]float64{
		"gateway_requests_by_protocol_total{protocol=HTTP/1.0}": 1,
		"gateway_requests_by_protocol_total{protocol=HTTP/1.1}": 2,
		"gateway_requests_by_protocol_total{protocol=HTTP/2.0}": 1,
		"gateway_requests_by_protocol_total{protocol=HTTP/3.0}": 3,
		"gateway_requests_by_protocol_total{protocol=other}":    1,
	})
	if a := testing.AllocsPerRun(1000, func() { g.Protocol(3, 0) }); a != 0 {
		t.Errorf("Protocol allocates %v times", a)
	}
}
