package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSharedTier: with a shared cache tier, purge answers say their scope
// (local, with the reason, while the tier is down) on both paths, the
// cache stats carry a "shared" object, and /healthz lists the tier's
// state while staying 200; without one, none of that shows.
func TestSharedTier(t *testing.T) {
	b := newFakeBackend()
	h, err := New(Options{Address: "127.0.0.1:0", Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, path string) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return resp.StatusCode, m, string(body)
	}
	for _, shared := range []bool{false, true} {
		b.shared.Store(shared)
		for _, path := range []string{"/cache/purge?all=true", "/api/v1/cache/purge?all=true"} {
			status, m, body := call("POST", path)
			if status != http.StatusOK {
				t.Fatalf("shared %v: POST %s: got %d %s", shared, path, status, body)
			}
			scope, hasScope := m["scope"]
			reason, hasReason := m["scope_reason"]
			switch {
			case !shared && (hasScope || hasReason):
				t.Errorf("no shared tier: POST %s: got scope %v, scope_reason %v; want neither", path, scope, reason)
			case shared && (scope != "local" || reason == "" || !hasReason):
				t.Errorf("shared tier down: POST %s: got scope %v, scope_reason %v; want local with a reason", path, scope, reason)
			}
		}
		for _, path := range []string{"/cache/stats", "/api/v1/cache/stats"} {
			_, m, body := call("GET", path)
			sh, ok := m["shared"].(map[string]any)
			if ok != shared {
				t.Errorf("shared %v: GET %s: got %s", shared, path, body)
				continue
			}
			if shared && (sh["state"] != "down" || sh["latency"] == nil || sh["errors"] == nil) {
				t.Errorf("GET %s: shared is %v; want state down, errors and latency", path, sh)
			}
		}
		status, _, body := call("GET", "/healthz")
		if status != http.StatusOK || !strings.HasPrefix(body, "ok\n") || strings.Contains(body, "cache.shared: down") != shared {
			t.Errorf("shared %v: GET /healthz: got %d %q", shared, status, body)
		}
		if status, _, body := call("GET", "/readyz"); status != http.StatusOK {
			t.Errorf("shared %v: GET /readyz: got %d %s; want 200", shared, status, body)
		}
	}
}
