package metrics

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"gateway/cache"
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
	m := New(Options{Version: "v1.2.3", Routes: []string{"api", "static"}, Batch: true})
	m.Request(1, "GET", 200, cache.OutcomeHit, time.Millisecond)
	m.Request(1, "GET", 204, cache.OutcomeHit, 3*time.Millisecond)
	m.Request(1, "GET", 200, cache.OutcomeMiss, time.Millisecond)
	m.Request(2, "BREW", 418, cache.OutcomeNone, time.Millisecond)
	m.Request(0, "PATCH", 404, cache.OutcomeNone, time.Millisecond)
	m.Request(3, "POST", 200, cache.OutcomeNone, time.Millisecond)
	m.Request(99, "GET", 999, cache.Outcome(200), time.Millisecond)
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
	if a := testing.AllocsPerRun(1000, func() { m.Request(1, "GET", 200, cache.OutcomeHit, time.Millisecond) }); a != 0 {
		t.Errorf("Request allocates %v times", a)
	}
}

// TestRouteNamesRepeat: routes of the same name share their series, so
// the registry never collects one twice.
func TestRouteNamesRepeat(t *testing.T) {
	m := New(Options{Routes: []string{"api", "api", "(none)"}})
	for route := range 4 {
		m.Request(route, "GET", 200, cache.OutcomeNone, time.Millisecond)
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
	m := New(Options{Routes: []string{"api"}})
	m.Request(1, "GET", 200, cache.OutcomeNone, time.Millisecond)
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
	m := New(Options{Routes: []string{"api"}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request(1, "GET", 200, cache.OutcomeHit, 700*time.Microsecond)
		}
	})
}
