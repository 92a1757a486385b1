package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// asyncConfig is minimal with an async section (lines 7 on) under its
// route and extra sections after it.
func asyncConfig(async, extra string) string {
	return minimal + "    async:\n" + async + extra
}

// TestAsyncDefaults: an async section with a mode alone gets package
// jobs' defaults, shown in the effective config, and the jobs section
// its own.
func TestAsyncDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(asyncConfig("      mode: prefer\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	want := &RouteAsync{
		Mode:           "prefer",
		Concurrency:    4,
		QueueDepth:     1000,
		MaxAttempts:    3,
		AttemptTimeout: Duration(10 * time.Minute),
		Backoff:        Duration(time.Second),
		MaxBackoff:     Duration(time.Minute),
		ResultLifetime: Duration(time.Hour),
		MaxResultSize:  16 << 20,
		Credentials:    AsyncCredentials{Header: "Authorization"},
		Callback:       AsyncCallback{AllowedHosts: []string{}},
	}
	if got := c.Routes[0].Async; !reflect.DeepEqual(got, want) {
		t.Errorf("async: got %+v; want %+v", got, want)
	}
	if c.Jobs != jobsSectionDefaults() || !c.Async() || c.JobsStore() != JobsStoreBolt {
		t.Errorf("jobs: got %+v, async %v, store %s; want the defaults, async, bolt", c.Jobs, c.Async(), c.JobsStore())
	}
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"async":{"mode":"prefer","concurrency":4,"queue_depth":1000,"max_attempts":3,"attempt_timeout":"10m","backoff":"1s","max_backoff":"1m","retry_unsafe":false,"result_lifetime":"1h","max_result_size":"16MiB","credentials":{"header":"Authorization","cookie":""}`, `"jobs":{"prefix":"/_jobs/","data_dir":"./data","store":"auto","visibility":"5m"}`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("effective config: got %s; want it to contain %s", b, w)
		}
	}
	// A cookie given leaves the header empty.
	c, err = Parse("t.yaml", []byte(asyncConfig("      mode: always\n      credentials: {cookie: session}\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	if cr := c.Routes[0].Async.Credentials; cr != (AsyncCredentials{Cookie: "session"}) {
		t.Errorf("credentials: got %+v; want the cookie alone", cr)
	}
}

// TestAsyncErrors: every bad value of an async section or of the jobs
// section is reported at its line and field.
func TestAsyncErrors(t *testing.T) {
	t.Setenv("GW_TEST_EMPTY_SECRET", "")
	for _, tc := range []struct {
		name, async, extra, want string
	}{
		{"no mode", "      concurrency: 2\n", "", "t.yaml:8: routes[0].async.mode: missing (want prefer or always)"},
		{"bad mode", "      mode: sometimes\n", "", `t.yaml:9: routes[0].async.mode: invalid value "sometimes" (want prefer or always)`},
		{"zero concurrency", "      mode: always\n      concurrency: 0\n", "", "t.yaml:10: routes[0].async.concurrency: 0: must be at least 1"},
		{"negative queue_depth", "      mode: always\n      queue_depth: -1\n", "", "t.yaml:10: routes[0].async.queue_depth: -1: must be at least 1"},
		{"zero max_attempts", "      mode: always\n      max_attempts: 0\n", "", "t.yaml:10: routes[0].async.max_attempts: 0: must be at least 1"},
		{"zero attempt_timeout", "      mode: always\n      attempt_timeout: 0s\n", "", "t.yaml:10: routes[0].async.attempt_timeout: 0s: must be positive"},
		{"negative backoff", "      mode: always\n      backoff: -1s\n", "", "t.yaml:10: routes[0].async.backoff"},
		{"max_backoff below backoff", "      mode: always\n      backoff: 10s\n      max_backoff: 5s\n", "", "t.yaml:11: routes[0].async.max_backoff: 5s is shorter than backoff 10s (line 10)"},
		{"zero result_lifetime", "      mode: always\n      result_lifetime: 0s\n", "", "t.yaml:10: routes[0].async.result_lifetime: 0s: must be positive"},
		{"zero max_result_size", "      mode: always\n      max_result_size: 0\n", "", "t.yaml:10: routes[0].async.max_result_size: must be positive"},
		{"header and cookie", "      mode: always\n      credentials:\n        header: X-Key\n        cookie: s\n", "", "t.yaml:12: routes[0].async.credentials.cookie: give header or cookie, not both (header at line 11)"},
		{"bad header", "      mode: always\n      credentials: {header: \"X Key\"}\n", "", `t.yaml:10: routes[0].async.credentials.header: "X Key" is not a header name`},
		{"callback without secret", "      mode: always\n      callback:\n        allowed_hosts: [hooks.example.com]\n", "", "t.yaml:10: routes[0].async.callback.secret_file: missing: callbacks are signed"},
		{"secret without hosts", "      mode: always\n      callback:\n        secret_env: HOME\n", "", "t.yaml:10: routes[0].async.callback.allowed_hosts: missing"},
		{"secret env missing", "      mode: always\n      callback:\n        allowed_hosts: [hooks.example.com]\n        secret_env: GW_TEST_NO_SUCH_SECRET\n", "", "t.yaml:12: routes[0].async.callback.secret_env: environment variable GW_TEST_NO_SUCH_SECRET is not set"},
		{"secret env empty", "      mode: always\n      callback:\n        allowed_hosts: [hooks.example.com]\n        secret_env: GW_TEST_EMPTY_SECRET\n", "", "t.yaml:12: routes[0].async.callback.secret_env: environment variable GW_TEST_EMPTY_SECRET is empty"},
		{"secret file missing", "      mode: always\n      callback:\n        allowed_hosts: [hooks.example.com]\n        secret_file: /nonexistent/secret\n", "", "t.yaml:12: routes[0].async.callback.secret_file"},
		{"wildcard callback host", "      mode: always\n      callback:\n        allowed_hosts: [\"*.example.com\"]\n        secret_env: HOME\n", "", `t.yaml:11: routes[0].async.callback.allowed_hosts[0]: "*.example.com": name each host`},
		{"prefix without trailing slash", "      mode: always\n", "jobs:\n  prefix: /_jobs\n", `t.yaml:11: jobs.prefix: "/_jobs" must start and end with "/"`},
		{"prefix without leading slash", "      mode: always\n", "jobs:\n  prefix: _jobs/\n", `t.yaml:11: jobs.prefix: "_jobs/" must start and end with "/"`},
		{"prefix over the batch path", "      mode: always\n", "jobs:\n  prefix: /_batch/\n", `t.yaml:11: jobs.prefix: "/_batch/" collides with batch.path "/_batch"`},
		{"bad store", "      mode: always\n", "jobs:\n  store: disk\n", `t.yaml:11: jobs.store: invalid value "disk" (want auto, bolt or redis)`},
		{"redis without shared", "      mode: always\n", "jobs:\n  store: redis\n", "t.yaml:11: jobs.store: redis keeps jobs in the shared tier's Redis; it needs cache.shared"},
		{"route under the prefix", "      mode: always\n", "  - path: /_jobs/x\n    upstream: app\n", `t.yaml:10: routes[1].path: "/_jobs/x" is under jobs.prefix "/_jobs/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(asyncConfig(tc.async, tc.extra)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}

// TestAsyncRouteKinds: only a proxied route may be async.
func TestAsyncRouteKinds(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"composite", minimal + `  - path: /dash/{user}
    composite:
      parts: [{key: a, path: /a}]
    async: {mode: always}
`, "t.yaml:11: routes[1].async: a composite route cannot be async"},
		{"websocket", minimal + `    websocket: {max_connections: 10}
    async: {mode: always}
`, "t.yaml:9: routes[0].async: a route for WebSocket tunnels (websocket.max_connections at line 8) cannot be async"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}

// TestCallbackSecret: the callback secret is read from its file or
// variable, and never shown: not in the effective config, not by %v.
func TestCallbackSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("s3cr3t-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GW_TEST_SECRET", "s3cr3t-from-env")
	for _, tc := range []struct{ field, value, want string }{
		{"secret_file", file, "s3cr3t-from-file"},
		{"secret_env", "GW_TEST_SECRET", "s3cr3t-from-env"},
	} {
		c, err := Parse("t.yaml", []byte(asyncConfig("      mode: always\n      callback:\n        allowed_hosts: [Hooks.Example.com]\n        "+tc.field+": "+tc.value+"\n", "")))
		if err != nil {
			t.Fatal(err)
		}
		cb := c.Routes[0].Async.Callback
		if cb.Secret.Reveal() != tc.want || !reflect.DeepEqual(cb.AllowedHosts, []string{"hooks.example.com"}) {
			t.Errorf("%s: got secret %q, hosts %v; want %q, the host lowercased", tc.field, cb.Secret.Reveal(), cb.AllowedHosts, tc.want)
		}
		r := c.Redacted()
		b, _ := json.Marshal(r)
		for _, shown := range []string{string(b), strings.Join([]string{toString(c), toString(r)}, "")} {
			if strings.Contains(shown, tc.want) {
				t.Errorf("%s: the secret shows: %s", tc.field, shown)
			}
		}
		if r.Routes[0].Async.Callback.Secret != "" || c.Routes[0].Async.Callback.Secret == "" {
			t.Errorf("%s: Redacted kept the secret, or took it from the original", tc.field)
		}
	}
}

func toString(c *Config) string {
	b, _ := json.Marshal(c)
	return string(b) + strings.Join([]string{
		formatV(c.Routes[0].Async), formatV(*c.Routes[0].Async),
	}, "")
}

func formatV(v any) string { return strings.TrimSpace(fmt.Sprintf("%v %+v %#v", v, v, v)) }
