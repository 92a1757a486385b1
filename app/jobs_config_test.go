package app

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gateway/config"
	"gateway/jobs"
)

// asyncYAML is a config with one route whose async section is async
// (indented under the route), and extra top-level sections.
func asyncYAML(async, extra string) string {
	return `listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
access_log: {enabled: false}
upstreams:
  app:
    targets: [http://127.0.0.1:1]
routes:
  - name: work
    path: /work/
    upstream: app
    max_body_size: 1MiB
` + async + extra
}

// TestJobsDefaultsArePackageDefaults: the async section's defaults, which
// package config writes out, are package jobs' own.
func TestJobsDefaultsArePackageDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(asyncYAML("    async: {mode: prefer}\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	o := asyncOptions(c.Routes[0])
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"jobs.prefix", c.Jobs.Prefix, jobs.DefaultPrefix},
		{"jobs.visibility", c.Jobs.Visibility.D(), jobs.DefaultVisibility},
		{"concurrency", o.Concurrency, jobs.DefaultConcurrency},
		{"queue_depth", o.QueueDepth, jobs.DefaultQueueDepth},
		{"max_attempts", o.MaxAttempts, jobs.DefaultMaxAttempts},
		{"attempt_timeout", o.AttemptTimeout, jobs.DefaultAttemptTimeout},
		{"backoff", o.Backoff, jobs.DefaultBackoff},
		{"max_backoff", o.MaxBackoff, jobs.DefaultMaxBackoff},
		{"result_lifetime", o.ResultLifetime, jobs.DefaultResultLifetime},
		{"max_result_size", o.MaxResultSize, int64(jobs.DefaultMaxResultSize)},
		{"mode", o.Mode, jobs.ModePrefer},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: config's default is %v (%T); want the package's %v (%T)", tc.name, tc.got, tc.got, tc.want, tc.want)
		}
	}
	if config.AsyncAlways != jobs.ModeAlways || config.AsyncPrefer != jobs.ModePrefer {
		t.Error("the config's modes are not package jobs' names")
	}
}

// TestAsyncOptions: every field of an async section reaches the route's
// options.
func TestAsyncOptions(t *testing.T) {
	t.Setenv("GW_TEST_CALLBACK_SECRET", "k3y")
	c, err := Parse("t.yaml", []byte(asyncYAML(`    async:
      mode: always
      concurrency: 2
      queue_depth: 10
      max_attempts: 5
      attempt_timeout: 30s
      backoff: 2s
      max_backoff: 20s
      retry_unsafe: true
      result_lifetime: 5m
      max_result_size: 1MiB
      credentials: {cookie: session}
      callback:
        allowed_hosts: [hooks.example.com]
        secret_env: GW_TEST_CALLBACK_SECRET
`, "")))
	if err != nil {
		t.Fatal(err)
	}
	want := jobs.RouteOptions{
		Name: "work", Mode: "always", Concurrency: 2, QueueDepth: 10, MaxAttempts: 5,
		AttemptTimeout: 30 * time.Second, Backoff: 2 * time.Second, MaxBackoff: 20 * time.Second,
		RetryUnsafe: true, ResultLifetime: 5 * time.Minute, MaxResultSize: 1 << 20, MaxBodySize: 1 << 20,
		CredentialCookie: "session", CallbackHosts: []string{"hooks.example.com"}, CallbackSecret: []byte("k3y"),
	}
	if got := asyncOptions(c.Routes[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestJobsReloadRules: where the queue keeps and answers for its jobs
// needs a restart; a reload that changes it is refused and the old
// config keeps serving.
func TestJobsReloadRules(t *testing.T) {
	parse := func(extra string) *config.Config {
		t.Helper()
		c, err := Parse("t.yaml", []byte(asyncYAML("", extra)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := parse("")
	for extra, want := range map[string]string{
		"":                           "",
		"jobs: {data_dir: ./jobs}\n": "jobs.data_dir changed",
		"jobs: {store: bolt}\n":      "jobs.store changed",
		"jobs: {prefix: /jobs/}\n":   "jobs.prefix changed",
	} {
		if got := jobsChange(base, parse(extra)); got != want {
			t.Errorf("%q: got %q; want %q", extra, got, want)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(asyncYAML("", "jobs: {data_dir: "+filepath.Join(dir, "a")+"}\n"))
	a := startAppFile(t, path)
	write(asyncYAML("", "jobs: {data_dir: "+filepath.Join(dir, "b")+"}\n"))
	_, err := a.reloadConfig()
	if err == nil || !strings.Contains(err.Error(), "jobs.data_dir changed: restart to apply") {
		t.Errorf("reload with another data_dir: got %v; want it refused until a restart", err)
	}
	if a.gen.Load().seq != 1 {
		t.Errorf("a refused reload swapped the generation")
	}
}

// TestJobsDataDirError: a data_dir that cannot be made fails the start
// with the field named.
func TestJobsDataDirError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("t.yaml", []byte(asyncYAML("    async: {mode: always}\n", "jobs: {data_dir: "+filepath.Join(file, "data")+"}\n")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newApp(c, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), "jobs.data_dir: cannot create") {
		t.Errorf("got %v; want the start refused at jobs.data_dir", err)
	}
}

// TestJobStatsWithoutAsync: with no async route the job stats are a 404
// that says why, on both paths, and no job metric is exported.
func TestJobStatsWithoutAsync(t *testing.T) {
	a := startApp(t, asyncYAML("", ""))
	adm := "http://" + a.adminLn.Addr().String()
	for path, want := range map[string]string{
		"/jobs/stats":        "no route is async",
		"/api/v1/jobs/stats": `{"error":"no route is async"}`,
	} {
		resp, err := http.Get(adm + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(strings.Join(strings.Fields(string(b)), ""), strings.Join(strings.Fields(want), "")) {
			t.Errorf("GET %s: got %d %s; want 404 %s", path, resp.StatusCode, b, want)
		}
	}
	resp, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "gateway_jobs_") {
		t.Error("job metrics exported with no async route")
	}
	if a.shared.Jobs() != nil {
		t.Error("a queue was opened with no async route")
	}
}
