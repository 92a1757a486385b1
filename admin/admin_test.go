package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:9090", "", true},
		{"[::1]:9090", "", true},
		{"localhost:9090", "", true},
		{"127.0.0.2:9090", "", true},
		{":9090", "", false},
		{"0.0.0.0:9090", "", false},
		{"10.1.2.3:9090", "", false},
		{"[::]:9090", "", false},
		{"0.0.0.0:9090", "secret", true},
		{"nonsense", "", false},
	}
	for _, tt := range tests {
		err := CheckAddress(tt.addr, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAddress(%q, %q): got %v; want ok=%v", tt.addr, tt.token, err, tt.ok)
		}
	}
}

func TestEndpoints(t *testing.T) {
	b := newFakeBackend()
	b.ready.Store(false)
	h, err := New(Options{Address: "127.0.0.1:0", Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	check := func(path string, wantStatus int, wantBody string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus || !strings.Contains(string(b), wantBody) {
			t.Errorf("GET %s: got %d %q; want %d containing %q", path, resp.StatusCode, b, wantStatus, wantBody)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 503, `"ready": false`)
	b.ready.Store(true)
	check("/readyz", 200, `"ready": true`)
	check("/config", 200, "REDACTED")
	check("/upstreams", 200, `"app": {`)
	check("/nothing", 404, "")
}

func TestToken(t *testing.T) {
	if _, err := New(Options{Address: "0.0.0.0:9090"}); err == nil {
		t.Fatal("New on 0.0.0.0 without a token: got nil error; want refusal")
	}
	h, err := New(Options{Address: "0.0.0.0:9090", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tt := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"s3cret", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusOK},
		{"bearer s3cret", http.StatusOK}, // the scheme is case-insensitive
		{"BEARER  s3cret", http.StatusOK},
		{"Bearer s3cre", http.StatusUnauthorized},
		{"Basic s3cret", http.StatusUnauthorized},
		{"Bearers3cret", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Authorization %q: got %d; want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
}

// TestHealth: the probe-only handler answers /healthz and /readyz with no
// token and serves nothing else, the admin endpoints least of all.
func TestHealth(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(Health(func() (bool, any) { return ready.Load(), nil }, nil))
	defer srv.Close()
	check := func(method, path string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: got %d; want %d", method, path, resp.StatusCode, want)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: got Cache-Control %q; want no-store", method, path, cc)
		}
	}
	check("GET", "/healthz", http.StatusOK)
	check("GET", "/readyz", http.StatusServiceUnavailable)
	ready.Store(true)
	check("GET", "/readyz", http.StatusOK)
	check("HEAD", "/healthz", http.StatusOK)
	check("POST", "/healthz", http.StatusMethodNotAllowed)
	for _, p := range []string{"/config", "/upstreams", "/debug/pprof/", "/cache/stats", "/"} {
		check("GET", p, http.StatusNotFound)
	}
}

// TestIndex: GET / lists the listener's endpoints, one a line; every
// endpoint it lists is served, and it lists every API endpoint; other
// unknown paths stay 404, and /api/v1/ stays a JSON 404.
func TestIndex(t *testing.T) {
	h, err := New(Options{Address: "127.0.0.1:0", Backend: newFakeBackend(), Metrics: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	body := string(b)
	listed := map[string]bool{}
	for line := range strings.Lines(body) {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "GET" || f[0] == "POST") {
			listed[f[0]+" "+f[1]] = true
		}
	}
	for _, e := range newAPI(newFakeBackend(), nil).endpoints() {
		if !listed[e.method+" "+e.path] {
			t.Errorf("GET / does not list %s %s:\n%s", e.method, e.path, body)
		}
	}
	for name := range listed {
		method, path, _ := strings.Cut(name, " ")
		if method != "GET" || path == "/metrics" {
			continue // POSTs act; the test's /metrics is a 404 handler
		}
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("GET / lists %s; it answers %d", name, resp.StatusCode)
		}
	}
	for _, name := range []string{"GET /metrics", "POST /cache/purge", "GET /healthz"} {
		if !listed[name] {
			t.Errorf("GET / does not list %s", name)
		}
	}
	for path, want := range map[string]int{"/nothing": 404, "/api/v1/": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d; want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = http.Post(srv.URL+"/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d; want 405", resp.StatusCode)
	}
}
