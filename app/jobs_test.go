package app

// These tests run async routes end to end: the real job queue over a
// real bbolt file.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/config"
)

// lockedBuffer is an access log the test reads while the gateway writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAsync serves cfg, its access log to log.
func startAsync(t *testing.T, cfg *config.Config, path string, log io.Writer) *App {
	t.Helper()
	a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Stdout: log, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
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

// asyncOrigin is an upstream that takes 200 ms per request and counts
// them.
func asyncOrigin(t *testing.T, hits *atomic.Int64) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, `{"path":%q,"method":%q}`, r.URL.Path, r.Method)
	}))
	t.Cleanup(s.Close)
	return s
}

// pollJob follows loc until it answers the result, whose body it
// returns.
func pollJob(t *testing.T, loc, want string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), want) {
			return string(b)
		}
	}
	t.Fatalf("polling %s: last got %s; want 200 with %s", loc, last, want)
	return ""
}

// TestAsyncRouteEndToEnd: an async route that also caches answers 202 at
// once with a Location under jobs.prefix, the 202 is not stored, the job
// runs through the cache to the upstream once, its result is served,
// both requests name the job in the access log, and the admin stats,
// the metrics and the effective config (without the callback secret)
// show it.
func TestAsyncRouteEndToEnd(t *testing.T) {
	var hits atomic.Int64
	up := asyncOrigin(t, &hits)
	t.Setenv("GW_TEST_CALLBACK_SECRET", "never-shown-s3cret")
	yaml := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log: {format: text}
upstreams:
  app:
    targets: [%q]
routes:
  - name: work
    path: /work/
    upstream: app
    cache: {enabled: true}
    async:
      mode: always
      callback:
        allowed_hosts: [hooks.example.com]
        secret_env: GW_TEST_CALLBACK_SECRET
jobs:
  data_dir: %s
`, up.URL, filepath.Join(t.TempDir(), "data"))
	cfg, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	a := startAsync(t, cfg, "", &log)
	gw := "http://" + a.Addrs()[0].String()
	adm := "http://" + a.AdminAddr().String()

	start := time.Now()
	resp, err := http.Get(gw + "/work/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(loc, "/_jobs/") {
		t.Fatalf("got %d Location %q in %v; want 202 under /_jobs/", resp.StatusCode, loc, time.Since(start))
	}
	if !strings.HasPrefix(loc, "http") {
		loc = gw + loc
	}
	pollJob(t, loc, `"path":"/work/a"`)
	if n := hits.Load(); n != 1 {
		t.Errorf("the upstream got %d requests; want the job's one", n)
	}
	// A second request is a new job again (the 202 was not stored).
	resp, err = http.Get(gw + "/work/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("second request: got %d; want 202, not a stored answer", resp.StatusCode)
	}
	id := loc[strings.LastIndex(strings.TrimSuffix(loc, "/"), "/")+1:]
	// The attempt's line is written as its response ends, which may be
	// after the job's result is visible.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(log.String(), "job="+id) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(log.String(), "job="+id); n < 2 {
		t.Errorf("access log names job %s %d times; want the 202 and the attempt:\n%s", id, n, log.String())
	}
	st := get200(t, adm+"/api/v1/jobs/stats")
	// The second job may have ended too: at least the first.
	if strings.Contains(st, `"succeeded": 0`) || !strings.Contains(st, `"attempts":`) {
		t.Errorf("jobs stats: got %s; want a job succeeded", st)
	}
	m := get200(t, adm+"/metrics")
	if strings.Contains(m, `gateway_jobs_finished_total{state="succeeded"} 0`) {
		t.Error("metrics count no job succeeded")
	}
	for _, w := range []string{`gateway_jobs_finished_total{state="succeeded"} `, "gateway_jobs_queued", "gateway_jobs_running", "gateway_jobs_wait_seconds_bucket", "gateway_jobs_run_seconds_count"} {
		if !strings.Contains(m, w) {
			t.Errorf("metrics: want %s", w)
		}
	}
	if c := get200(t, adm+"/config"); strings.Contains(c, "never-shown-s3cret") || !strings.Contains(c, "GW_TEST_CALLBACK_SECRET") {
		t.Errorf("/config shows the callback secret, or not its source:\n%s", c)
	}
}

// TestAsyncReloadKeepsQueue: a reload that adds the first async route
// opens the queue, a failed one leaves none, and later reloads keep the
// same queue while its route's options change.
func TestAsyncReloadKeepsQueue(t *testing.T) {
	var hits atomic.Int64
	up := asyncOrigin(t, &hits)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	base := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
jobs:
  data_dir: %s
routes:
  - name: work
    path: /work/
    upstream: app
`, up.URL, filepath.Join(dir, "data"))
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base + "access_log: {enabled: false}\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := startAsync(t, cfg, path, io.Discard)
	if a.shared.Jobs() != nil {
		t.Fatal("a queue without an async route")
	}
	write(base + "    async: {mode: always}\naccess_log:\n  output: /proc/gateway-test-access.log\n")
	if _, err := a.reloadConfig(); err == nil {
		t.Fatal("reload with an access log under /proc: got nil error")
	}
	if a.shared.Jobs() != nil {
		t.Fatal("a failed reload left a queue open")
	}
	write(base + "    async: {mode: always}\naccess_log: {enabled: false}\n")
	if _, err := a.reloadConfig(); err != nil {
		t.Fatal(err)
	}
	q := a.shared.Jobs()
	if q == nil {
		t.Fatal("no queue after a reload with an async route")
	}
	write(base + "    async: {mode: prefer, concurrency: 1}\naccess_log: {enabled: false}\n")
	if _, err := a.reloadConfig(); err != nil {
		t.Fatal(err)
	}
	if a.shared.Jobs() != q {
		t.Error("a reload replaced the queue")
	}
	gw := "http://" + a.Addrs()[0].String()
	// prefer: a plain request is served at once, one that prefers it
	// async is queued.
	if resp, err := http.Get(gw + "/work/sync"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mode prefer, no Prefer: got %v %v; want 200", resp, err)
	}
	req, _ := http.NewRequest("GET", gw+"/work/async", nil)
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("mode prefer, Prefer: respond-async: got %d; want 202", resp.StatusCode)
	}
}

func get200(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
