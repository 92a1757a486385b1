package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// syncBuffer is a log sink the gateway's goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveAppLog is serveApp with the gateway's log, at debug, in log.
func serveAppLog(t *testing.T, path string, log *syncBuffer) *App {
	t.Helper()
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
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

const sharedSecret = "hunter2-Redis-Pa55"

// sharedConfig is a gateway caching in front of upstream, over a shared
// tier at redisAddr, with timeout as the tier's.
func sharedConfig(upstream, redisAddr, pwFile, timeout string) string {
	return fmt.Sprintf(`listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log: {enabled: false}
cache:
  max_size: 1MiB
  shared:
    addresses: ["redis://%s"]
    password_file: %s
    timeout: %s
upstreams:
  app:
    targets: [%q]
routes:
  - name: cached
    path: /
    upstream: app
    cache: {enabled: true}
`, redisAddr, pwFile, timeout, upstream)
}

// TestSharedTierDown: a gateway whose shared tier's Redis is not there
// starts, serves, and caches in its memory (the second request is a
// hit); it stays ready, /healthz and the stats say the tier is down,
// purges say they stayed local and why, /metrics has the tier's
// families, and neither the config it shows nor its log holds the
// password.
func TestSharedTierDown(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "body")
	}))
	defer up.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(sharedSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(sharedConfig(up.URL, closedAddr(t), pw, "10ms")), 0o600); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	a := serveAppLog(t, path, &log)
	if a.shared.Tier() == nil {
		t.Fatal("no shared tier opened")
	}
	gw := "http://" + a.server.Addrs()[0].String()
	adm := "http://" + a.adminLn.Addr().String()
	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if st, b, h := get(gw + "/p"); st != 200 || b != "body" || !strings.Contains(h.Get("Cache-Status"), "stored") {
		t.Fatalf("first request: %d %q %q; want the body, stored", st, b, h.Get("Cache-Status"))
	}
	if st, b, h := get(gw + "/p"); st != 200 || b != "body" || !strings.Contains(h.Get("Cache-Status"), "hit") {
		t.Fatalf("second request: %d %q %q; want a hit from memory", st, b, h.Get("Cache-Status"))
	}
	if got := n.Load(); got != 1 {
		t.Errorf("upstream saw %d requests; want 1", got)
	}

	if st, b, _ := get(adm + "/readyz"); st != 200 {
		t.Errorf("/readyz with the tier down: %d %s; want 200", st, b)
	}
	if st, b, _ := get(adm + "/healthz"); st != 200 || !strings.Contains(b, "cache.shared: down") && !strings.Contains(b, "cache.shared: connecting") {
		t.Errorf("/healthz: %d %q; want 200 listing cache.shared down or connecting", st, b)
	}
	for _, p := range []string{"/cache/stats", "/api/v1/cache/stats"} {
		if _, b, _ := get(adm + p); !strings.Contains(b, `"shared": {`) || !strings.Contains(b, `"state": "down"`) && !strings.Contains(b, `"state": "connecting"`) {
			t.Errorf("%s: %s; want a shared object, state down or connecting", p, b)
		}
	}
	for _, p := range []string{"/cache/purge?all=true", "/api/v1/cache/purge?all=true"} {
		resp, err := http.Post(adm+p, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"scope": "local"`) || !strings.Contains(string(b), `"scope_reason": "`) {
			t.Errorf("POST %s: %d %s; want 200, scope local with a reason", p, resp.StatusCode, b)
		}
	}
	_, metrics, _ := get(adm + "/metrics")
	for _, f := range []string{"hits_total", "misses_total", "errors_total", "operation_seconds", "bytes_read_total",
		"bytes_written_total", "writes_total", "writes_dropped_total", "up", "breaker_open", "leases_taken_total",
		"lease_waits_total", "lease_takeovers_total", "purges_sent_total", "purges_received_total", "notifications_lost_total"} {
		if !strings.Contains(metrics, "# TYPE gateway_cache_shared_"+f+" ") {
			t.Errorf("/metrics lacks gateway_cache_shared_%s", f)
		}
	}
	if !strings.Contains(metrics, "gateway_cache_shared_up 0") {
		t.Error("/metrics: gateway_cache_shared_up is not 0 with the tier down")
	}
	for _, p := range []string{"/config", "/api/v1/config"} {
		_, b, _ := get(adm + p)
		if strings.Contains(b, sharedSecret) {
			t.Errorf("%s shows the password: %s", p, b)
		}
		if !strings.Contains(b, pw) {
			t.Errorf("%s does not show password_file: %s", p, b)
		}
	}
	if strings.Contains(log.String(), sharedSecret) {
		t.Errorf("the log holds the password:\n%s", log.String())
	}
}

// TestSharedReload: a reload that changes the tier's timeout serves, one
// that changes its address is refused and the old config keeps serving.
func TestSharedReload(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(sharedSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	redis := closedAddr(t)
	write(sharedConfig(up.URL, redis, pw, "10ms"))
	var log syncBuffer
	a := serveAppLog(t, path, &log)
	tier := a.shared.Tier()

	write(sharedConfig(up.URL, redis, pw, "40ms"))
	if _, err := a.reloadConfig(); err != nil {
		t.Fatalf("reload changing the timeout: %v", err)
	}
	if got := a.gen.Load().cfg.Cache.Shared.Timeout.D().String(); got != "40ms" {
		t.Errorf("after the reload the timeout is %s; want 40ms", got)
	}
	if a.shared.Tier() != tier {
		t.Error("the reload opened another tier; want the same, reconfigured")
	}
	if got := a.shared.store.tierCfg.Timeout.String(); got != "40ms" {
		t.Errorf("the tier runs with timeout %s; want 40ms", got)
	}

	write(sharedConfig(up.URL, closedAddr(t), pw, "40ms"))
	_, err := a.reloadConfig()
	if err == nil || !strings.Contains(err.Error(), "cache.shared addresses") || !strings.Contains(err.Error(), errRestart.Error()) {
		t.Fatalf("reload changing the address: got %v; want it refused, restart to apply", err)
	}
	if got := a.gen.Load().cfg.Cache.Shared.Addresses[0]; got != "redis://"+redis {
		t.Errorf("after the refused reload the address is %s; want the old one", got)
	}

	write(strings.Replace(sharedConfig(up.URL, redis, pw, "40ms"), "  shared:", "  unshared:", 1))
	if _, err := a.reloadConfig(); err == nil {
		t.Error("reload with an unknown field: got nil error")
	}
	if strings.Contains(log.String(), sharedSecret) {
		t.Errorf("the log holds the password:\n%s", log.String())
	}
}
