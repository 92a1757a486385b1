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
	"testing"
)

// TestAdminIndexAndActiveCheck: on the app's real admin listener, GET /
// lists the endpoints, and both upstream reports say whether each
// target's upstream has an active check.
func TestAdminIndexAndActiveCheck(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := fmt.Sprintf(`
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  plain:
    targets: [%[1]q]
  checked:
    targets: [%[1]q]
    health_check: {path: /healthz, interval: 1h}
routes:
  - path: /
    upstream: plain
  - path: /c/
    upstream: checked
`, origin.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppFile(t, path)
	adm := "http://" + a.adminLn.Addr().String()
	get := func(p string) (int, string) {
		t.Helper()
		resp, err := http.Get(adm + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	st, body := get("/")
	if st != http.StatusOK || !strings.Contains(body, "POST  /api/v1/cache/purge") || !strings.Contains(body, "GET   /upstreams") {
		t.Errorf("GET /: %d\n%s\nwant the endpoints, one a line", st, body)
	}
	if st, _ := get("/api/v1/"); st != http.StatusNotFound {
		t.Errorf("GET /api/v1/: %d; want 404", st)
	}

	target := func(v any) map[string]any {
		ts, _ := v.(map[string]any)["targets"].([]any)
		if len(ts) != 1 {
			t.Fatalf("targets %v", v)
		}
		return ts[0].(map[string]any)
	}
	for _, p := range []string{"/upstreams", "/api/v1/upstreams"} {
		st, body := get(p)
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); st != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d %v %s", p, st, err, body)
		}
		ups := v
		if p != "/upstreams" {
			ups, _ = v["upstreams"].(map[string]any)
		}
		if tg := target(ups["plain"]); tg["active_check"] != "off" || tg["active_ok"] != true {
			t.Errorf("GET %s: plain's target %v; want active_check off, active_ok true", p, tg)
		}
		if tg := target(ups["checked"]); tg["active_check"] == "off" || tg["active_check"] == nil {
			t.Errorf("GET %s: checked's target %v; want active_check not off", p, tg)
		}
	}
}
