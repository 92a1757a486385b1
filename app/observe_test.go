package app

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// scrape reads the admin listener's /metrics into series -> value,
// keyed as the exposition writes them (labels sorted by name).
func scrape(t *testing.T, adm string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// deadAddr is a loopback address that refuses connections.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const zBody = 4096

// observedApp runs a gateway with a caching, a compressing, a dead (its
// breaker opens on the first failure) and a flaky (one dead target of
// two) route, metrics on the admin listener and the access log in a file.
func observedApp(t *testing.T) (a *App, gw, adm, appURL, dead, logPath string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/c/"):
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, "cached body")
		case r.URL.Path == "/z":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(zBody))
			io.WriteString(w, strings.Repeat("compress me ", zBody/12+1)[:zBody])
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(up.Close)
	dead = "http://" + deadAddr(t)
	logPath = filepath.Join(t.TempDir(), "access.log")
	a = startApp(t, fmt.Sprintf(`
trusted_proxies: [127.0.0.1]
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
  dead:
    targets: [%q]
    health_check: {max_fails: 1, cool_down: 1m}
    circuit_breaker: {min_requests: 1, open_timeout: 1m}
  flaky:
    targets: [%q, %q]
    health_check: {max_fails: 0}
routes:
  - name: cached
    path: /c
    upstream: app
    cache: {enabled: true}
  - name: zipped
    path: /z
    upstream: app
    compress: {enabled: true, encodings: [gzip]}
  - name: dead
    path: /dead
    upstream: dead
  - name: flaky
    path: /flaky
    upstream: flaky
`, logPath, up.URL, dead, dead, up.URL))
	return a, "http://" + a.server.Addrs()[0].String(), a.adminLn.Addr().String(), up.URL, dead, logPath
}

func send(t *testing.T, method, url string, hdr ...string) (status int, body string, h http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestMetricsAfterTraffic scrapes /metrics after known traffic and
// checks the exact request counts by route, status class and cache
// outcome, the histograms' counts, the upstream errors of a refused
// connection, retries, target health, the connection pool, and the
// cache, compression and WebSocket collectors; then the access log's
// lines for the same requests.
func TestMetricsAfterTraffic(t *testing.T) {
	a, gw, adm, appURL, dead, logPath := observedApp(t)

	if st, _, h := send(t, "GET", gw+"/c/x", "X-Request-Id", "trusted-1"); st != 200 || h.Get("X-Request-Id") != "trusted-1" {
		t.Fatalf("miss: %d, id %q", st, h.Get("X-Request-Id"))
	}
	if st, _, h := send(t, "GET", gw+"/c/x"); st != 200 || !strings.Contains(h.Get("Cache-Status"), "hit") {
		t.Fatalf("hit: %d %q", st, h.Get("Cache-Status"))
	}
	st, zbody, zh := send(t, "GET", gw+"/z", "Accept-Encoding", "gzip")
	if st != 200 || zh.Get("Content-Encoding") != "gzip" || len(zbody) >= zBody {
		t.Fatalf("zipped: %d %q, %d bytes", st, zh.Get("Content-Encoding"), len(zbody))
	}
	if st, _, _ := send(t, "GET", gw+"/dead/x"); st != http.StatusBadGateway {
		t.Fatalf("dead: %d; want 502", st)
	}
	if st, _, _ := send(t, "GET", gw+"/dead/x"); st != http.StatusServiceUnavailable {
		t.Fatalf("dead again: %d; want 503 (the target's breaker is open)", st)
	}
	for range 4 {
		if st, _, _ := send(t, "GET", gw+"/flaky/x"); st != 200 {
			t.Fatalf("flaky: %d; want 200 after a retry", st)
		}
	}

	m := scrape(t, adm)
	flakyRetries := m[`gateway_upstream_retries_total{upstream="flaky"}`]
	// -1: the series must not exist.
	want := map[string]float64{
		// Requests by route, method, status class and cache outcome.
		`gateway_requests_total{cache="miss",method="GET",route="cached",status="2xx"}`:  1,
		`gateway_requests_total{cache="hit",method="GET",route="cached",status="2xx"}`:   1,
		`gateway_requests_total{cache="none",method="GET",route="zipped",status="2xx"}`:  1,
		`gateway_requests_total{cache="none",method="GET",route="dead",status="5xx"}`:    2,
		`gateway_requests_total{cache="none",method="GET",route="flaky",status="2xx"}`:   4,
		`gateway_requests_total{cache="none",method="GET",route="(none)",status="4xx"}`:  -1,
		`gateway_requests_total{cache="none",method="GET",route="flaky",status="5xx"}`:   -1,
		`gateway_requests_total{cache="stale",method="GET",route="cached",status="2xx"}`: -1,
		// Histograms.
		`gateway_request_duration_seconds_count{route="cached"}`:               2,
		`gateway_request_duration_seconds_bucket{route="cached",le="+Inf"}`:    2,
		`gateway_request_duration_seconds_count{route="zipped"}`:               1,
		`gateway_request_duration_seconds_count{route="dead"}`:                 2,
		`gateway_request_duration_seconds_count{route="flaky"}`:                4,
		`gateway_request_duration_seconds_count{route="(none)"}`:               0,
		`gateway_request_duration_seconds_count{route="(batch)"}`:              -1, // batch is off
		`gateway_upstream_duration_seconds_count{upstream="app"}`:              2,
		`gateway_upstream_duration_seconds_count{upstream="dead"}`:             1, // the 503 reached no target
		`gateway_upstream_duration_seconds_count{upstream="flaky"}`:            4, // retries included
		`gateway_upstream_duration_seconds_bucket{upstream="flaky",le="+Inf"}`: 4,
		// Upstream errors, retries, health, pools.
		`gateway_upstream_errors_total{kind="refused",target="` + dead + `",upstream="dead"}`:    1,
		`gateway_upstream_errors_total{kind="timeout",target="` + dead + `",upstream="dead"}`:    0,
		`gateway_upstream_errors_total{kind="reset",target="` + dead + `",upstream="dead"}`:      0,
		`gateway_upstream_errors_total{kind="other",target="` + dead + `",upstream="dead"}`:      0,
		`gateway_upstream_errors_total{kind="refused",target="` + appURL + `",upstream="app"}`:   0,
		`gateway_upstream_errors_total{kind="refused",target="` + dead + `",upstream="flaky"}`:   flakyRetries,
		`gateway_upstream_errors_total{kind="refused",target="` + appURL + `",upstream="flaky"}`: 0,
		`gateway_upstream_retries_total{upstream="app"}`:                                         0,
		`gateway_upstream_retries_total{upstream="dead"}`:                                        0,
		`gateway_upstream_target_healthy{target="` + dead + `",upstream="dead"}`:                 0,
		`gateway_upstream_target_healthy{target="` + dead + `",upstream="flaky"}`:                1,
		`gateway_upstream_target_healthy{target="` + appURL + `",upstream="app"}`:                1,
		`gateway_upstream_target_in_flight{target="` + appURL + `",upstream="app"}`:              0,
		`gateway_upstream_connections{state="idle",target="` + appURL + `",upstream="app"}`:      1,
		`gateway_upstream_connections{state="active",target="` + appURL + `",upstream="app"}`:    0,
		`gateway_upstream_connections{state="idle",target="` + appURL + `",upstream="flaky"}`:    1,
		`gateway_upstream_connections{state="idle",target="` + dead + `",upstream="dead"}`:       0,
		// The cache's figures.
		`gateway_cache_hits_total{route="cached"}`:          1,
		`gateway_cache_misses_total{route="cached"}`:        1,
		`gateway_cache_stale_hits_total{route="cached"}`:    0,
		`gateway_cache_revalidations_total{route="cached"}`: 0,
		`gateway_cache_passes_total{route="cached"}`:        0,
		`gateway_cache_stores_total{route="cached"}`:        1,
		`gateway_cache_hits_total{route="zipped"}`:          -1, // not a caching route
		`gateway_cache_entries`:                             1,
		`gateway_cache_max_bytes`:                           256 << 20,
		`gateway_cache_evictions_total`:                     0,
		`gateway_cache_admission_drops_total`:               0,
		// Compression.
		`gateway_compress_responses_total{coding="gzip"}`: 1,
		`gateway_compress_bytes_in_total{coding="gzip"}`:  zBody,
		`gateway_compress_bytes_out_total{coding="gzip"}`: float64(len(zbody)),
		`gateway_compress_responses_total{coding="br"}`:   0,
		// WebSocket and build.
		`gateway_websocket_connections{route="cached"}`:                                       0,
		`gateway_websocket_upgrades_total{route="flaky"}`:                                     0,
		`gateway_websocket_bytes_total{direction="to_client",route="zipped"}`:                 0,
		`gateway_build_info{goversion="` + runtime.Version() + `",version="` + version + `"}`: 1,
	}
	for k, v := range want {
		g, ok := m[k]
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v; want no such series", k, g)
		case v >= 0 && !ok:
			t.Errorf("%s: missing; want %v", k, v)
		case v >= 0 && g != v:
			t.Errorf("%s = %v; want %v", k, g, v)
		}
	}
	if n := m[`gateway_upstream_retries_total{upstream="flaky"}`]; n < 1 {
		t.Errorf("flaky retries %v; want at least one (its dead target is in the rotation)", n)
	}
	if b := m[`gateway_cache_bytes`]; b < float64(len("cached body")) {
		t.Errorf("gateway_cache_bytes %v; want the stored entry's size", b)
	}

	// The access log has one line per request, in order.
	if err := a.gen.Load().obs.out.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := readLog(t, logPath)
	if len(lines) != 9 {
		t.Fatalf("got %d access log lines; want 9", len(lines))
	}
	check := func(i int, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %#v; want %#v (line %v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
	check(0, map[string]any{"request_id": "trusted-1", "route": "cached", "path": "/c/x", "status": 200.0, "cache": "miss", "upstream": "app", "target": appURL, "bytes": 11.0, "client": "127.0.0.1"})
	check(1, map[string]any{"route": "cached", "cache": "hit", "upstream": nil, "target": nil, "upstream_ms": nil})
	check(2, map[string]any{"route": "zipped", "encoding": "gzip", "bytes": float64(len(zbody)), "cache": "none"})
	check(3, map[string]any{"route": "dead", "status": 502.0, "upstream": "dead", "target": dead})
	check(4, map[string]any{"route": "dead", "status": 503.0, "upstream": nil})
	check(5, map[string]any{"route": "flaky", "status": 200.0, "upstream": "flaky"})
	for i := 5; i < 9; i++ {
		if lines[i]["target"] != appURL {
			t.Errorf("flaky line %d: target %v; want %s, which answered", i, lines[i]["target"], appURL)
		}
	}
	if id, _ := lines[1]["request_id"].(string); len(id) != 32 {
		t.Errorf("generated id %q; want 32 hex digits", id)
	}
}

func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestMetricsSeriesBounded: a client sending random paths, methods,
// hosts and headers creates no series after the first of each kind.
func TestMetricsSeriesBounded(t *testing.T) {
	_, gw, adm, _, _, _ := observedApp(t)
	random := func() string { return strconv.FormatUint(rand.Uint64(), 36) }
	round := func() {
		send(t, "GET", gw+"/"+random())                           // no route: 404
		send(t, "M"+strings.ToUpper(random()), gw+"/"+random())   // no route, odd method
		send(t, "M"+strings.ToUpper(random()), gw+"/z/"+random()) // a route, odd method
		send(t, "GET", gw+"/z/"+random()+"?"+random()+"="+random(), "X-Request-Id", random(), "X-"+random(), random())
		req, _ := http.NewRequest("GET", gw+"/z/x", nil)
		req.Host = random() + ".example"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	round()
	before := scrape(t, adm)
	for range 20 {
		round()
	}
	after := scrape(t, adm)
	var added []string
	for k := range after {
		if _, ok := before[k]; !ok {
			added = append(added, k)
		}
	}
	if len(added) > 0 || len(after) != len(before) {
		t.Errorf("random requests added series %v (%d before, %d after)", added, len(before), len(after))
	}
	if v := after[`gateway_requests_total{cache="none",method="other",route="(none)",status="4xx"}`]; v != 21 {
		t.Errorf("odd methods without a route: %v; want 21", v)
	}
	for k := range after {
		if strings.Contains(k, ".example") || strings.Contains(k, "/z/") {
			t.Errorf("series %s carries a client's value", k)
		}
	}
}

// TestBatchAndCompositeObserved: a batch is one request of route
// "(batch)" and a composite route's request names no upstream: their
// items and parts, served in-process and concurrently, are not client
// requests and leave the outer request's record alone.
func TestBatchAndCompositeObserved(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]string{} // upstream request URI -> its X-Request-Id
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[r.URL.RequestURI()] = r.Header.Get("X-Request-Id")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok": true}`)
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
  - name: dash
    path: /dash/{user}
    batchable: true
    composite:
      parts:
        - {key: profile, path: "/api/users/{user}"}
        - {key: orders, path: "/api/orders?user={user}"}
`, logPath, up.URL))
	gw := "http://" + a.server.Addrs()[0].String()
	resp, err := http.Post(gw+"/_batch", "application/json", strings.NewReader(`{"requests": [
		{"id": "a", "path": "/api/x"}, {"id": "b", "path": "/api/y"}, {"id": "c", "path": "/dash/u1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d", resp.StatusCode)
	}
	batchID := resp.Header.Get("X-Request-Id")
	st, _, h := send(t, "GET", gw+"/dash/u2")
	if st != 200 {
		t.Fatalf("composite: %d", st)
	}
	dashID := h.Get("X-Request-Id")
	// Each sub-request has an id of its own, numbered under the client
	// request's: items by position, a composite's parts by position.
	mu.Lock()
	for uri, want := range map[string]string{
		"/api/x":              batchID + ".1",
		"/api/y":              batchID + ".2",
		"/api/users/u1":       batchID + ".3.1",
		"/api/orders?user=u1": batchID + ".3.2",
		"/api/users/u2":       dashID + ".1",
		"/api/orders?user=u2": dashID + ".2",
	} {
		if batchID == "" || dashID == "" || ids[uri] != want {
			t.Errorf("upstream saw %s with X-Request-Id %q; want %q", uri, ids[uri], want)
		}
	}
	mu.Unlock()
	m := scrape(t, a.adminLn.Addr().String())
	for k, v := range map[string]float64{
		`gateway_requests_total{cache="none",method="POST",route="(batch)",status="2xx"}`: 1,
		`gateway_requests_total{cache="none",method="GET",route="dash",status="2xx"}`:     1,
		`gateway_upstream_duration_seconds_count{upstream="app"}`:                         6, // 2 items, 2 parts of the item, 2 parts
	} {
		if m[k] != v {
			t.Errorf("%s = %v; want %v", k, m[k], v)
		}
	}
	for k := range m {
		if strings.Contains(k, `route="api"`) && strings.HasPrefix(k, "gateway_requests_total") {
			t.Errorf("%s: batch items and composite parts counted as client requests", k)
		}
	}
	if err := a.gen.Load().obs.out.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := readLog(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2: %v", len(lines), lines)
	}
	if l := lines[0]; l["route"] != "(batch)" || l["path"] != "/_batch" || l["upstream"] != nil {
		t.Errorf("batch line: %v; want route (batch) and no upstream", l)
	}
	if l := lines[1]; l["route"] != "dash" || l["upstream"] != nil {
		t.Errorf("composite line: %v; want route dash and no upstream", l)
	}
}
