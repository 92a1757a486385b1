package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// explainOrigin answers /PATH with the headers the test names by path.
func explainOrigin(t *testing.T) *httptest.Server {
	lm := time.Now().Add(-100 * time.Hour).UTC().Format(http.TimeFormat)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		code := 200
		body := "ok"
		switch r.URL.Path {
		case "/no-store":
			h.Set("Cache-Control", "no-store")
		case "/private":
			h.Set("Cache-Control", "private, max-age=60")
		case "/cookie":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Set-Cookie", "s=1")
		case "/auth":
			if r.Header.Get("Authorization") == "" {
				t.Error("Authorization not sent upstream")
			}
			h.Set("Cache-Control", "max-age=60")
		case "/vary":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "*")
		case "/status":
			code = 500
		case "/ttl-zero":
		case "/large":
			h.Set("Cache-Control", "max-age=60")
			body = strings.Repeat("x", 2048)
		case "/fresh":
			h.Set("Cache-Control", "max-age=120, stale-while-revalidate=30")
			h.Set("CDN-Cache-Control", "max-age=300")
			h.Set("Vary", "Accept-Language")
		case "/heuristic":
			h.Set("Last-Modified", lm)
		default:
			code = 404
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func explainConfig(t *testing.T, upstream string) string {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := `listeners:
  - address: 127.0.0.1:0
admin:
  address: off
cache:
  max_size: 1MiB
  max_object_size: 1KiB
upstreams:
  origin:
    targets: ["` + upstream + `"]
routes:
  - name: site
    path: /site
    strip_prefix: true
    upstream: origin
    cache:
      enabled: true
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runExplain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli(append([]string{"explain"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExplainCommandReasons(t *testing.T) {
	cfg := explainConfig(t, explainOrigin(t).URL)
	for _, tc := range []struct {
		path, reason string
		headers      []string
	}{
		{"/no-store", "no-store", nil},
		{"/private", "private", nil},
		{"/cookie", "set-cookie", nil},
		{"/auth", "authorization", []string{"-H", "Authorization: Bearer x"}},
		{"/vary", "vary-star", nil},
		{"/status", "status", nil},
		{"/ttl-zero", "ttl-zero", nil},
		{"/large", "too-large", nil},
	} {
		args := append([]string{"-config", cfg}, tc.headers...)
		code, out, errs := runExplain(t, append(args, "http://example.com/site"+tc.path)...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", tc.path, code, errs)
			continue
		}
		for _, want := range []string{"route:      site\n", "stored:     no (" + tc.reason + ")\n", "because:    ", "to change:  "} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", tc.path, want, out)
			}
		}
	}
}

func TestExplainCommandStored(t *testing.T) {
	cfg := explainConfig(t, explainOrigin(t).URL)
	code, out, errs := runExplain(t, "-config", cfg, "http://example.com/site/fresh?a=1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"stored:     yes\n",
		"fresh for:  5m0s (given by the origin)\n",
		"directives: Cdn-Cache-Control: max-age=300\n",
		"vary:       Accept-Language\n",
		"grace 10m0s",
		"cache key:  http example.com /site/fresh a=1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runExplain(t, "-config", cfg, "http://example.com/site/heuristic")
	if code != 0 || !strings.Contains(out, "fresh for:  10h0m0s (heuristic, from Last-Modified)") {
		t.Errorf("exit %d: %s%s", code, out, errs)
	}
}

func TestExplainCommandJSON(t *testing.T) {
	cfg := explainConfig(t, explainOrigin(t).URL)
	code, out, errs := runExplain(t, "-config", cfg, "-json", "http://example.com/site/private")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var e struct {
		Route, Reason, Advice string
		Stored                bool
		Status                int
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if e.Route != "site" || e.Reason != "private" || e.Stored || e.Status != 200 || e.Advice == "" {
		t.Errorf("%+v", e)
	}
	code, out, _ = runExplain(t, "-config", cfg, "-json", "http://example.com/site/fresh")
	var s struct {
		Stored   bool
		Lifetime float64 `json:"lifetime_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || !s.Stored || s.Lifetime != 300 {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
}

func TestExplainCommandErrors(t *testing.T) {
	cfg := explainConfig(t, explainOrigin(t).URL)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg, "-H", "no colon", "http://example.com/site/x"}, "-H"},
		{[]string{"-config", cfg, "-X", "", "http://example.com/site/x"}, "-X"},
		{[]string{"-config", cfg, "-nope", "http://example.com/site/x"}, "-nope"},
		{[]string{"-config", cfg}, "URL"},
		{[]string{"-config", cfg, "example.com/x"}, "URL"},
	} {
		code, _, errs := runExplain(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tc.args, code, errs, tc.want)
		}
	}
	code, _, errs := runExplain(t, "-config", cfg, "http://example.com/elsewhere")
	if code == 0 || !strings.Contains(errs, "no route takes this request") || !strings.Contains(errs, "/elsewhere") {
		t.Errorf("unknown route: exit %d, %q", code, errs)
	}
}
