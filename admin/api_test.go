package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

// newAPIServer serves an admin handler over b on a real socket; the
// clock stands ten minutes after the fake start.
func newAPIServer(t *testing.T, b Backend, token string) *httptest.Server {
	t.Helper()
	h, err := New(Options{
		Address: "127.0.0.1:0",
		Token:   token,
		Backend: b,
		Now:     func() time.Time { return fakeStart.Add(10 * time.Minute) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// apiCall sends one request and decodes the JSON answer, checking the
// headers every /api/v1/ answer carries.
func apiCall(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	status, h, body := do(t, srv, method, path, hdr...)
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: got Content-Type %q; want application/json", method, path, ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s %s: got Cache-Control %q; want no-store", method, path, cc)
	}
	var v map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, body, err)
		}
	}
	return status, h, v
}

// field walks a decoded JSON object along keys.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestAPIEndpoints(t *testing.T) {
	b := newFakeBackend()
	srv := newAPIServer(t, b, "")
	tests := []struct {
		name         string
		method, path string
		status       int
		want         map[string]any // "a.b" paths to values
	}{
		{"status", "GET", "/api/v1/status", 200, map[string]any{
			"version": "v1.2.3", "started_at": "2026-01-02T03:04:05Z", "uptime_seconds": 600.0,
			"ready": true, "draining": false, "config_generation": 1.0, "config_loaded_at": "2026-01-02T03:05:05Z",
		}},
		{"upstreams", "GET", "/api/v1/upstreams", 200, map[string]any{
			"upstreams.app.healthy": true, "upstreams.plain.healthy": false,
			"upstreams.plain.breakers": []any{},
		}},
		{"cache stats", "GET", "/api/v1/cache/stats", 200, map[string]any{
			"enabled": true, "hits": 3.0, "misses": 1.0, "entries": 2.0, "routes.cached.hit_ratio": 0.75,
		}},
		{"cache stats of a route", "GET", "/api/v1/cache/stats?route=cached", 200, map[string]any{
			"route": "cached", "hits": 3.0, "hit_ratio": 0.75,
		}},
		{"cache stats of no route", "GET", "/api/v1/cache/stats?route=nope", 404, map[string]any{
			"error": "no cached route named nope",
		}},
		{"purge by path on a route's hosts", "POST", "/api/v1/cache/purge?path=/x%3Fa%3D1&route=api", 200, map[string]any{
			"purged": 2.0, "soft": false, "reason": nil,
		}},
		{"purge by path prefix", "POST", "/api/v1/cache/purge?prefix=/css/", 200, map[string]any{
			"purged": 2.0,
		}},
		{"purge of nothing says why", "POST", "/api/v1/cache/purge?tag=none", 200, map[string]any{
			"purged": 0.0, "soft": false, "reason": "nothing stored is tagged none",
		}},
		{"purge by a route of a URL", "POST", "/api/v1/cache/purge?url=http://h/x&route=api", 400, map[string]any{
			"error": "route: narrows only a purge by path or by a prefix starting with /",
		}},
		{"purge", "POST", "/api/v1/cache/purge?prefix=http://h/a/&soft=1", 200, map[string]any{
			"purged": 2.0, "soft": true,
		}},
		{"purge without a target", "POST", "/api/v1/cache/purge", 400, map[string]any{
			"error": "give exactly one of url, path, prefix, tag or all",
		}},
		{"purge of a relative URL", "POST", "/api/v1/cache/purge?url=/p", 400, map[string]any{
			"error": "want an absolute http or https URL",
		}},
		{"compress stats", "GET", "/api/v1/compress/stats", 200, map[string]any{
			"enabled": true, "total.gzip.responses": 3.0, "total.gzip.bytes_in": 300.0, "routes.b.br.bytes_out": 5.0,
		}},
		{"websocket stats", "GET", "/api/v1/websocket/stats", 200, map[string]any{
			"total.open": 2.0, "total.rejected": 1.0, "routes.ws.upgraded": 5.0,
		}},
		{"websocket stats of a route", "GET", "/api/v1/websocket/stats?route=ws", 200, map[string]any{
			"route": "ws", "open": 2.0,
		}},
		{"websocket stats of no route", "GET", "/api/v1/websocket/stats?route=nope", 404, map[string]any{
			"error": "no route named nope",
		}},
		{"config", "GET", "/api/v1/config", 200, map[string]any{
			"config.admin.token": "REDACTED",
		}},
		{"reload", "POST", "/api/v1/reload", 200, map[string]any{
			"ok": true, "summary": "reloaded test.yaml: 1 routes, 1 upstreams", "config_generation": 2.0,
		}},
		{"status after the reload", "GET", "/api/v1/status", 200, map[string]any{
			"config_generation": 2.0,
		}},
	}
	for _, tt := range tests {
		status, _, v := apiCall(t, srv, tt.method, tt.path)
		if status != tt.status {
			t.Errorf("%s: %s %s: got %d %v; want %d", tt.name, tt.method, tt.path, status, v, tt.status)
		}
		for k, want := range tt.want {
			if got := field(v, strings.Split(k, ".")...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s %s: %s = %#v; want %#v", tt.name, tt.method, tt.path, k, got, want)
			}
		}
	}
	if got, want := b.lastPurge(), (cache.Purge{Prefix: "http://h/a/", Soft: true}); got != want {
		t.Errorf("the backend was asked to purge %+v; want %+v", got, want)
	}
}

// TestAPIDisabledFeatures: stats of a feature the config leaves off are
// 200 with "enabled": false and the usual fields, so a page can poll
// them; a purge without a cache is a JSON 404.
func TestAPIDisabledFeatures(t *testing.T) {
	b := newFakeBackend()
	b.noCache.Store(true)
	b.noCompress.Store(true)
	srv := newAPIServer(t, b, "")
	for _, tt := range []struct {
		method, path string
		status       int
		want         map[string]any
	}{
		{"GET", "/api/v1/cache/stats", 200, map[string]any{"enabled": false, "hits": 0.0, "routes": map[string]any{}}},
		{"GET", "/api/v1/compress/stats", 200, map[string]any{"enabled": false, "total": map[string]any{}, "routes": map[string]any{}}},
		{"GET", "/api/v1/cache/stats?route=cached", 404, map[string]any{"error": "no cached route named cached"}},
		{"POST", "/api/v1/cache/purge?all=true", 404, map[string]any{"error": "no route caches"}},
		{"POST", "/api/v1/cache/purge?all=maybe", 400, map[string]any{"error": "all: want true"}},
	} {
		status, _, v := apiCall(t, srv, tt.method, tt.path)
		if status != tt.status {
			t.Errorf("%s %s: got %d %v; want %d", tt.method, tt.path, status, v, tt.status)
		}
		for k, want := range tt.want {
			if got := v[k]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: %s = %#v; want %#v", tt.method, tt.path, k, got, want)
			}
		}
	}
}

// TestAPIReloadFails: a refused config is 400 with ok false, the whole
// message as error and one entry per problem.
func TestAPIReloadFails(t *testing.T) {
	b := newFakeBackend()
	b.failReloads()
	srv := newAPIServer(t, b, "")
	status, _, v := apiCall(t, srv, "POST", "/api/v1/reload")
	want := map[string]any{
		"ok":    false,
		"error": "test.yaml:3: routes[0].upstream: no upstream named x\ntest.yaml:9: cache.max_size: want a size",
		"errors": []any{
			"test.yaml:3: routes[0].upstream: no upstream named x",
			"test.yaml:9: cache.max_size: want a size",
		},
	}
	if status != http.StatusBadRequest || !reflect.DeepEqual(v, want) {
		t.Errorf("POST /api/v1/reload: got %d %#v; want 400 %#v", status, v, want)
	}
}

// TestPurgeStoreFails: a purge the store failed part-way is a 500 on
// both paths, with what was done and why not all of it.
func TestPurgeStoreFails(t *testing.T) {
	b := newFakeBackend()
	b.storeFails.Store(true)
	srv := newAPIServer(t, b, "")
	want := map[string]any{"purged": 1.0, "soft": false, "error": "cache: the store failed: second tier: connection refused"}
	for _, path := range []string{"/api/v1/cache/purge?tag=x", "/cache/purge?tag=x"} {
		status, _, v := apiCall(t, srv, "POST", path)
		if status != http.StatusInternalServerError || !reflect.DeepEqual(v, want) {
			t.Errorf("POST %s: got %d %#v; want 500 %#v", path, status, v, want)
		}
	}
}

// TestAPIErrors: unknown paths are JSON 404s, wrong methods JSON 405s
// with Allow, and a cross-origin POST from a browser is refused.
func TestAPIErrors(t *testing.T) {
	srv := newAPIServer(t, newFakeBackend(), "")
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nothing", 404, ""},
		{"GET", "/api/v1/", 404, ""},
		{"GET", "/api/v1", 404, ""},
		{"GET", "/api/v1/status/", 404, ""},
		{"GET", "/api/v1/cache", 404, ""},
		{"GET", "/api/v2/status", 404, ""}, // not the API: the plain 404
		{"POST", "/api/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/api/v1/upstreams", 405, "GET, HEAD"},
		{"GET", "/api/v1/cache/purge?all=true", 405, "POST"},
		{"HEAD", "/api/v1/reload", 405, "POST"},
		{"PUT", "/api/v1/config", 405, "GET, HEAD"},
	} {
		if !isAPI(tt.path) {
			status, _, _ := do(t, srv, tt.method, tt.path)
			if status != tt.status {
				t.Errorf("%s %s: got %d; want %d", tt.method, tt.path, status, tt.status)
			}
			continue
		}
		status, h, v := apiCall(t, srv, tt.method, tt.path)
		if status != tt.status {
			t.Errorf("%s %s: got %d; want %d", tt.method, tt.path, status, tt.status)
		}
		if got := h.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: got Allow %q; want %q", tt.method, tt.path, got, tt.allow)
		}
		if msg, _ := v["error"].(string); tt.method != "HEAD" && msg == "" {
			t.Errorf("%s %s: got %v; want an error message", tt.method, tt.path, v)
		}
	}

	status, _, _ := apiCall(t, srv, "HEAD", "/api/v1/status")
	if status != http.StatusOK {
		t.Errorf("HEAD /api/v1/status: got %d; want 200", status)
	}

	// A page elsewhere must not purge or reload through an operator's
	// browser, on either path; the admin page itself (same origin) and
	// curl (no Origin) may.
	for _, tt := range []struct {
		hdr    []string
		status int
	}{
		{[]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{[]string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{[]string{"Origin", srv.URL, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{nil, http.StatusOK},
	} {
		status, _, v := apiCall(t, srv, "POST", "/api/v1/cache/purge?all=true", tt.hdr...)
		if status != tt.status {
			t.Errorf("POST purge with %q: got %d %v; want %d", tt.hdr, status, v, tt.status)
		}
		for _, path := range []string{"/cache/purge?all=true", "/reload"} {
			req, err := http.NewRequest("POST", srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("POST %s with %q: got %d; want %d", path, tt.hdr, resp.StatusCode, tt.status)
			}
		}
	}
}

// TestAPIToken: with a token, every /api/v1/ endpoint asks for it and
// says so in JSON; with it, each answers.
func TestAPIToken(t *testing.T) {
	b := newFakeBackend()
	srv := newAPIServer(t, b, "s3cret")
	api := newAPI(b, time.Now)
	for _, e := range api.endpoints() {
		for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
			var hdr []string
			if auth != "" {
				hdr = []string{"Authorization", auth}
			}
			status, h, v := apiCall(t, srv, e.method, e.path, hdr...)
			if status != http.StatusUnauthorized || v["error"] != "unauthorized" || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with Authorization %q: got %d %v; want 401 {\"error\": \"unauthorized\"} with WWW-Authenticate", e.method, e.path, auth, status, v)
			}
		}
		status, _, v := apiCall(t, srv, e.method, e.path, "Authorization", "Bearer s3cret")
		if status == http.StatusUnauthorized || status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			t.Errorf("%s %s with the token: got %d %v", e.method, e.path, status, v)
		}
	}
	// The unversioned paths keep their text refusal.
	status, h, body := do(t, srv, "GET", "/config")
	if status != http.StatusUnauthorized || body != "unauthorized\n" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /config without the token: got %d %q (%s); want 401 \"unauthorized\\n\" as text", status, body, h.Get("Content-Type"))
	}
}
