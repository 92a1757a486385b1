package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gateway/config"
)

// version is what an App built by newApp reports: Options.Version's
// default.
const version = "dev"

// startApp runs a gateway in-process from YAML and stops it at cleanup.
func startApp(t *testing.T, yaml string) *App {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return serveApp(t, cfg, "")
}

// serveApp builds an app from cfg, serves it until cleanup and, with a
// path, lets it reload from that file.
func serveApp(t testing.TB, cfg *config.Config, path string) *App {
	t.Helper()
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.reload.path = path
	if err := a.listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return a
}

// TestReadyzFollowsUpstreamHealth: /readyz is 503 while an upstream has
// no healthy target and 200 once its active check passes again.
func TestReadyzFollowsUpstreamHealth(t *testing.T) {
	var healthy atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token: "${ADMIN_TOKEN_FOR_TEST:-s3cret}"
upstreams:
  app:
    targets: ["`+up.URL+`"]
    health_check:
      path: /healthz
      interval: 20ms
      timeout: 1s
routes:
  - path: /
    upstream: app
`)
	base := "http://" + a.adminLn.Addr().String()
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	healthy.Store(true)
	waitStatus(t, base+"/readyz", http.StatusOK)

	req, _ := http.NewRequest("GET", base+"/config", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), "REDACTED") {
		t.Errorf("/config: got %d %s; want 200 with the token redacted", resp.StatusCode, b)
	}
}

// waitStatus polls an admin URL (with the test token) until it answers
// want; health changes arrive on the checker's schedule.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: never answered %d", url, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCacheFromConfig: a route with cache.enabled serves hits, and the
// admin listener's purge and stats reach the same cache.
func TestCacheFromConfig(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Surrogate-Key", "product-7 catalog")
		io.WriteString(w, "v"+strings.Repeat("x", int(n.Load())))
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
cache:
  max_size: 1MiB
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - name: cached
    path: /
    upstream: app
    cache:
      enabled: true
      ignore_params: ["utm_*"]
`)
	gw := "http://" + a.server.Addrs()[0].String()
	adm := "http://" + a.adminLn.Addr().String()
	fetch := func(path string) (string, string) {
		t.Helper()
		resp, err := http.Get(gw + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Surrogate-Key") != "" {
			t.Errorf("Surrogate-Key reached the client")
		}
		return string(b), resp.Header.Get("Cache-Status")
	}
	if b, st := fetch("/p?utm_source=x"); b != "vx" || !strings.Contains(st, "stored") {
		t.Fatalf("first: %q %q", b, st)
	}
	if b, st := fetch("/p?utm_medium=y"); b != "vx" || !strings.Contains(st, "hit") {
		t.Fatalf("second (utm_* ignored): %q %q; want the stored body as a hit", b, st)
	}
	purge := func(q string) {
		t.Helper()
		resp, err := http.Post(adm+"/cache/purge?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"purged": 1`) {
			t.Fatalf("purge %s: %d %s", q, resp.StatusCode, b)
		}
	}
	purge("tag=product-7")
	if b, _ := fetch("/p"); b != "vxx" {
		t.Fatalf("after tag purge: %q; want a fresh fetch", b)
	}
	purge("url=" + gw + "/p")
	if b, _ := fetch("/p"); b != "vxxx" {
		t.Fatalf("after URL purge: %q; want a fresh fetch", b)
	}
	resp, err := http.Get(adm + "/cache/stats?route=cached")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"hits": 1`) || !strings.Contains(string(b), `"misses": 3`) {
		t.Errorf("route stats: %s; want 1 hit and 3 misses", b)
	}
}

// TestCacheInvalidatedByUncachedRoute: a write that succeeds on a route
// without a cache invalidates what the cached route on the same path
// stored, also when the writing route comes first in the config; the
// writing route's timeout still bounds its requests.
func TestCacheInvalidatedByUncachedRoute(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/slow":
			<-r.Context().Done() // answers only once the gateway gives up
		case r.Method == http.MethodGet:
			w.Header().Set("Cache-Control", "max-age=300")
			io.WriteString(w, "v"+strings.Repeat("x", int(n.Add(1))))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: off
cache:
  max_size: 1MiB
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - name: writes
    path: /api
    methods: [POST, PUT, PATCH, DELETE]
    upstream: app
    timeout: 200ms
  - name: reads
    path: /api
    methods: [GET, HEAD]
    upstream: app
    cache:
      enabled: true
`)
	gw := "http://" + a.server.Addrs()[0].String()
	do := func(method, path string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, gw+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
	}
	if _, b, st := do("GET", "/api/x"); b != "vx" || !strings.Contains(st, "stored") {
		t.Fatalf("first GET: %q %q", b, st)
	}
	if _, b, st := do("GET", "/api/x"); b != "vx" || !strings.Contains(st, "hit") {
		t.Fatalf("second GET: %q %q; want a hit", b, st)
	}
	if code, _, _ := do("PUT", "/api/x"); code != http.StatusNoContent {
		t.Fatalf("PUT: %d", code)
	}
	if _, b, st := do("GET", "/api/x"); b != "vxx" || !strings.Contains(st, "stored") {
		t.Fatalf("GET after PUT: %q %q; want a fresh fetch", b, st)
	}
	if code, _, _ := do("POST", "/api/slow"); code != http.StatusGatewayTimeout {
		t.Errorf("POST to a slow upstream: %d; want 504 after the route's timeout", code)
	}
}

// TestHealthListener: admin.health_address serves /healthz and /readyz
// without the admin token and keeps the admin endpoints off its socket.
func TestHealthListener(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token: s3cret
  health_address: "127.0.0.1:0"
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - path: /
    upstream: app
`)
	health := "http://" + a.healthLn.Addr().String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/config": 404, "/debug/pprof/": 404} {
		resp, err := http.Get(health + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("health listener GET %s: got %d; want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin listener GET /readyz without the token: got %d; want 401", resp.StatusCode)
	}
}
