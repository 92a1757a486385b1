package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestCacheOutcomeOfOuterRequests: the access log and the metrics take a
// request's cache outcome from the gateway's cache itself. A batch or a
// composite whose parts are cache hits is not one (the parts run
// in-process, through the same handler and cache, and must not report
// on the outer request), and neither is a response on a route without a
// cache whose upstream, itself a cache, wrote Cache-Status "gateway;
// hit": it is counted as no outcome.
func TestCacheOutcomeOfOuterRequests(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/edge/") {
			w.Header().Set("Cache-Status", "gateway; hit; ttl=30")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, `{"uri": %q}`, r.RequestURI)
	}))
	defer up.Close()
	logPath := filepath.Join(t.TempDir(), "access.log")
	a := startApp(t, fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log:
  format: json
  output: %q
upstreams:
  app:
    targets: [%q]
batch:
  enabled: true
routes:
  - name: api
    path: /api
    upstream: app
    batchable: true
    cache: {enabled: true}
  - name: edge
    path: /edge
    upstream: app
  - name: dash
    path: /dash/{user}
    batchable: true
    composite:
      parts:
        - key: profile
          path: /api/users/{user}
`, logPath, up.URL))
	gw := "http://" + a.server.Addrs()[0].String()
	adm := a.adminLn.Addr().String()

	if st, _, h := send(t, "GET", gw+"/api/users/7"); st != 200 || !strings.Contains(h.Get("Cache-Status"), "stored") {
		t.Fatalf("miss: %d, Cache-Status %q", st, h.Get("Cache-Status"))
	}
	if st, _, h := send(t, "GET", gw+"/api/users/7"); st != 200 || !strings.Contains(h.Get("Cache-Status"), "hit") {
		t.Fatalf("hit: %d, Cache-Status %q", st, h.Get("Cache-Status"))
	}
	// The composite's part is a hit.
	if st, body, _ := send(t, "GET", gw+"/dash/7"); st != 200 || !strings.Contains(body, "/api/users/7") {
		t.Fatalf("composite: %d %s", st, body)
	}
	// So are the batch's items: one directly, one through the composite.
	req, _ := http.NewRequest(http.MethodPost, gw+"/_batch", strings.NewReader(`{"requests": [
		{"id": "a", "path": "/api/users/7"}, {"id": "b", "path": "/dash/7"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(b), `"status":200`) != 2 {
		t.Fatalf("batch: %d %s", resp.StatusCode, b)
	}
	// An upstream's own Cache-Status passes to the client as it is.
	if st, _, h := send(t, "GET", gw+"/edge/x"); st != 200 || h.Get("Cache-Status") != "gateway; hit; ttl=30" {
		t.Fatalf("edge: %d, Cache-Status %q", st, h.Get("Cache-Status"))
	}

	m := scrape(t, adm)
	for series, want := range map[string]float64{
		`gateway_requests_total{cache="miss",method="GET",route="api",status="2xx"}`:      1,
		`gateway_requests_total{cache="hit",method="GET",route="api",status="2xx"}`:       1,
		`gateway_requests_total{cache="none",method="GET",route="dash",status="2xx"}`:     1,
		`gateway_requests_total{cache="none",method="POST",route="(batch)",status="2xx"}`: 1,
		`gateway_requests_total{cache="none",method="GET",route="edge",status="2xx"}`:     1,
		`gateway_requests_total{cache="hit",method="GET",route="dash",status="2xx"}`:      -1,
		`gateway_requests_total{cache="hit",method="POST",route="(batch)",status="2xx"}`:  -1,
		`gateway_requests_total{cache="hit",method="GET",route="edge",status="2xx"}`:      -1,
	} {
		// -1: the series must not count anything.
		if got := m[series]; got != max(want, 0) {
			t.Errorf("%s = %v; want %v", series, got, max(want, 0))
		}
	}

	if err := a.gen.Load().obs.out.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := readLog(t, logPath)
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s %v", l["route"], l["cache"]))
	}
	if want := []string{"api miss", "api hit", "dash none", "(batch) none", "edge none"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("access log (route cache): got %q; want %q", got, want)
	}
}
