package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestAdminCacheExplain: GET /api/v1/cache/explain asks the real
// upstream once, stores nothing, and says why a response would or would
// not be stored; errors are 400, 404 and 502 as documented.
func TestAdminCacheExplain(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fresh":
			w.Header().Set("Cache-Control", "max-age=60")
		case "/cookie":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Set-Cookie", "s=1")
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	a := startApp(t, fmt.Sprintf(`listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - name: site
    path: /
    upstream: app
    cache: {enabled: true}
`, up.URL))
	adm := "http://" + a.AdminAddr().String()
	explain := func(raw string, hdr ...string) (int, map[string]any) {
		q := url.Values{"url": {raw}, "header": hdr}
		resp, err := http.Get(adm + "/api/v1/cache/explain?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if code, v := explain("http://site.test/fresh"); code != 200 || v["stored"] != true || v["lifetime_seconds"] != float64(60) || v["route"] != "site" {
		t.Errorf("fresh: %d %v; want stored for 60 s by route site", code, v)
	}
	if code, v := explain("http://site.test/cookie"); code != 200 || v["stored"] != false || v["reason"] != "set-cookie" || v["advice"] == "" {
		t.Errorf("set-cookie: %d %v; want not stored, reason set-cookie, with advice", code, v)
	}
	if code, v := explain("http://site.test/fresh", "Authorization: Bearer x"); code != 200 || v["reason"] != "authorization" {
		t.Errorf("authorization: %d %v; want reason authorization", code, v)
	}
	if code, _ := explain("/relative"); code != http.StatusBadRequest {
		t.Errorf("relative url: %d; want 400", code)
	}
	if code, _ := explain("http://site.test/x", "no colon"); code != http.StatusBadRequest {
		t.Errorf("malformed header: %d; want 400", code)
	}
	// Nothing was stored: the cache has no entry after the explanations.
	resp, err := http.Get(adm + "/cache/stats")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"entries": 0`) {
		t.Errorf("the cache stored something while explaining:\n%s", b)
	}
}
