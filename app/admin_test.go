package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAdminAPI: the versioned admin API on the app's real admin
// listener, with its token, reports and acts on the running gateway: the
// status and its config generation, upstreams, the cache's counters and
// a purge that takes effect, a reload that succeeds and one that is
// refused, while the unversioned paths keep answering.
func TestAdminAPI(t *testing.T) {
	var n atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "v%d", n.Add(1))
	}))
	defer origin.Close()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token: s3cret
upstreams:
  app:
    targets: [%q]
routes:
  - name: cached
    path: /
    upstream: app
    cache: {enabled: true}
`
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(yaml, origin.URL))
	a := startAppFile(t, path)
	gw := "http://" + a.server.Addrs()[0].String()
	adm := "http://" + a.adminLn.Addr().String()

	call := func(method, p, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, adm+p, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
			t.Errorf("%s %s: got Content-Type %q, Cache-Control %q; want application/json, no-store", method, p, ct, cc)
		}
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %v", method, p, err)
		}
		return resp.StatusCode, v
	}
	fetch := func() string {
		t.Helper()
		resp, err := http.Get(gw + "/p")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	if st, v := call("GET", "/api/v1/status", ""); st != http.StatusUnauthorized || v["error"] != "unauthorized" {
		t.Errorf("status without the token: got %d %v; want 401 JSON", st, v)
	}
	st, v := call("GET", "/api/v1/status", "s3cret")
	if st != http.StatusOK || v["version"] != version || v["config_generation"] != 1.0 || v["draining"] != false {
		t.Errorf("status: got %d %v; want 200, version %q, generation 1, not draining", st, v, version)
	}
	if _, v := call("GET", "/api/v1/upstreams", "s3cret"); field(v, "upstreams", "app", "targets") == nil {
		t.Errorf("upstreams: got %v; want app with its targets", v)
	}
	if _, v := call("GET", "/api/v1/config", "s3cret"); field(v, "config", "admin", "token") != "REDACTED" {
		t.Errorf("config: got %v; want the token redacted", v)
	}

	fetch()
	if b := fetch(); b != "v1" {
		t.Fatalf("second fetch: %q; want the cached v1", b)
	}
	if _, v := call("GET", "/api/v1/cache/stats?route=cached", "s3cret"); v["hits"] != 1.0 || v["misses"] != 1.0 {
		t.Errorf("cache stats of cached: %v; want 1 hit, 1 miss", v)
	}
	if st, v := call("POST", "/api/v1/cache/purge?url="+gw+"/p", "s3cret"); st != http.StatusOK || v["purged"] != 1.0 {
		t.Errorf("purge: got %d %v; want 200 with 1 purged", st, v)
	}
	if b := fetch(); b != "v2" {
		t.Errorf("after the purge: %q; want a fresh v2", b)
	}
	if _, v := call("GET", "/api/v1/compress/stats", "s3cret"); v["enabled"] != false {
		t.Errorf("compress stats without compression: %v; want enabled false", v)
	}
	if _, v := call("GET", "/api/v1/websocket/stats", "s3cret"); field(v, "routes", "cached") == nil {
		t.Errorf("websocket stats: %v; want the route's counters", v)
	}

	if st, v := call("POST", "/api/v1/reload", "s3cret"); st != http.StatusOK || v["ok"] != true || v["config_generation"] != 2.0 {
		t.Errorf("reload: got %d %v; want 200, ok, generation 2", st, v)
	}
	write(strings.Replace(fmt.Sprintf(yaml, origin.URL), "upstream: app", "upstream: nowhere", 1))
	st, v = call("POST", "/api/v1/reload", "s3cret")
	if errs, _ := v["errors"].([]any); st != http.StatusBadRequest || v["ok"] != false || len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), "nowhere") {
		t.Errorf("reload of a bad config: got %d %v; want 400, ok false, errors naming the upstream", st, v)
	}
	if _, v := call("GET", "/api/v1/status", "s3cret"); v["config_generation"] != 2.0 {
		t.Errorf("status after a refused reload: %v; want generation 2 still", v)
	}

	// The unversioned paths answer beside it, as before.
	req, _ := http.NewRequest("GET", adm+"/cache/stats", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"misses": 2`) || strings.Contains(string(b), `"enabled"`) {
		t.Errorf("GET /cache/stats: got %d %s; want the old shape with 2 misses", resp.StatusCode, b)
	}
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
