package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gateway/proxy/balance"
)

// TestAppOverloadConfig: the rate_limit, concurrency and
// circuit_breaker sections of gateway.yaml reach the proxy.
func TestAppOverloadConfig(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: ["`+up.URL+`"]
    health_check: {max_fails: 0}
    circuit_breaker: {min_requests: 2, open_timeout: 1h}
routes:
  - path: /limited
    upstream: app
    rate_limit: {rate: 1/h, burst: 2}
  - path: /
    upstream: app
    concurrency: {max_in_flight: 4, queue: 4}
`)
	gw := "http://" + a.server.Addrs()[0].String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(gw + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i, want := range []int{200, 200, 429} {
		if got, ra := get("/limited"); got != want || (got == 429 && ra != "3600") {
			t.Errorf("/limited #%d: got %d, Retry-After %q; want %d (3600 if 429)", i+1, got, ra, want)
		}
	}
	// The limiter's counters reach /metrics.
	resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gateway_rate_limited_total{route="route0"} 1`, `gateway_shed_total{reason="full",route="route1"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for range 2 {
		if got, _ := get("/fail"); got != http.StatusInternalServerError {
			t.Fatalf("/fail: got %d; want 500", got)
		}
	}
	if s := a.gen.Load().upstreams["app"].BreakerStates(); len(s) != 1 || s[0].State != balance.BreakerOpen {
		t.Fatalf("got breakers %+v; want the one target open", s)
	}
	if got, _ := get("/ok"); got != http.StatusServiceUnavailable {
		t.Errorf("/ok with the breaker open: got %d; want 503", got)
	}
	// The breaker's state reaches /metrics.
	m := scrape(t, a.adminLn.Addr().String())
	target := up.URL
	for k, v := range map[string]float64{
		`gateway_upstream_breaker_state{state="open",target="` + target + `",upstream="app"}`:      1,
		`gateway_upstream_breaker_state{state="closed",target="` + target + `",upstream="app"}`:    0,
		`gateway_upstream_breaker_state{state="half-open",target="` + target + `",upstream="app"}`: 0,
		`gateway_upstream_breaker_opened_total{target="` + target + `",upstream="app"}`:            1,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v); want %v", k, got, ok, v)
		}
	}
}
