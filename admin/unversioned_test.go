package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gateway/cache"
)

// do sends one request to srv and returns the status, the headers and
// the body.
func do(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestUnversionedPaths: the paths served before /api/v1/ answer as they
// did when the root package mounted them: the same bodies, text errors,
// 404 for what the config leaves off.
func TestUnversionedPaths(t *testing.T) {
	b := newFakeBackend()
	h, err := New(Options{
		Address: "127.0.0.1:0",
		Backend: b,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const textType = "text/plain; charset=utf-8"
	tests := []struct {
		name         string
		setup        func()
		method, path string
		status       int
		ctype        string
		body         string // exact when it ends in "\n", else contained
	}{
		{"config", nil, "GET", "/config", 200, "application/json", `"token": "REDACTED"`},
		{"upstreams keep their two fields", nil, "GET", "/upstreams", 200, "application/json", `"app": {
    "healthy": true,
    "targets": [`},
		{"cache stats", nil, "GET", "/cache/stats", 200, "application/json", `"hits": 3,`},
		{"cache stats per route", nil, "GET", "/cache/stats?route=cached", 200, "application/json", "{\n  \"hits\": 3,"},
		{"cache stats, unknown route", nil, "GET", "/cache/stats?route=nope", 404, textType, "no cached route named nope\n"},
		{"purge of nothing says why", nil, "POST", "/cache/purge?tag=none", 200, "application/json", "{\n  \"purged\": 0,\n  \"soft\": false,\n  \"reason\": \"nothing stored is tagged none\"\n}\n"},
		{"purge by path", nil, "POST", "/cache/purge?path=/x&route=api", 200, "application/json", "{\n  \"purged\": 2,\n  \"soft\": false\n}\n"},
		{"purge", nil, "POST", "/cache/purge?tag=t&soft=true", 200, "application/json", "{\n  \"purged\": 2,\n  \"soft\": true\n}\n"},
		{"purge, bad query", nil, "POST", "/cache/purge?tag=", 400, textType, "tag: empty\n"},
		{"purge by GET", nil, "GET", "/cache/purge?all=true", 405, textType, "Method Not Allowed\n"},
		{"unknown under /cache/", nil, "GET", "/cache/nothing", 404, textType, "404 page not found\n"},
		{"compress stats", nil, "GET", "/compress/stats", 200, "application/json", "\"total\": {\n    \"br\""},
		{"websocket stats", nil, "GET", "/websocket/stats", 200, "application/json", "\"total\": {\n    \"open\": 2,"},
		{"websocket stats per route", nil, "GET", "/websocket/stats?route=ws", 200, "application/json", "{\n  \"open\": 2,"},
		{"websocket stats, unknown route", nil, "GET", "/websocket/stats?route=nope", 404, textType, "no route named nope\n"},
		{"metrics", nil, "GET", "/metrics", 200, "", "# metrics\n"},
		{"reload", nil, "POST", "/reload", 200, textType, "reloaded test.yaml: 1 routes, 1 upstreams\n"},
		{"reload by GET", nil, "GET", "/reload", 405, textType, "Method Not Allowed\n"},

		{"reload fails", b.failReloads, "POST", "/reload", 400, textType, "test.yaml:3: routes[0].upstream: no upstream named x\ntest.yaml:9: cache.max_size: want a size\n"},
		{"no cache: stats", func() { b.noCache.Store(true) }, "GET", "/cache/stats", 404, textType, "404 page not found\n"},
		{"no cache: a bad purge is 404 too", nil, "POST", "/cache/purge?tag=", 404, textType, "404 page not found\n"},
		{"no cache: purge by GET is 404 too", nil, "GET", "/cache/purge", 404, textType, "404 page not found\n"},
		{"no compression", func() { b.noCompress.Store(true) }, "GET", "/compress/stats", 404, textType, "404 page not found\n"},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		status, hdr, body := do(t, srv, tt.method, tt.path)
		match := strings.Contains(body, tt.body)
		if strings.HasSuffix(tt.body, "\n") {
			match = body == tt.body
		}
		if status != tt.status || !match {
			t.Errorf("%s: %s %s: got %d %q; want %d with %q", tt.name, tt.method, tt.path, status, body, tt.status, tt.body)
		}
		if tt.ctype != "" && hdr.Get("Content-Type") != tt.ctype {
			t.Errorf("%s: got Content-Type %q; want %q", tt.name, hdr.Get("Content-Type"), tt.ctype)
		}
		if cc := hdr.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: got Cache-Control %q; want no-store", tt.name, cc)
		}
	}
	if got, want := b.lastPurge(), (cache.Purge{Tag: "t", Soft: true}); got != want {
		t.Errorf("the backend was asked to purge %+v; want %+v", got, want)
	}
}
