package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBatchFromConfig: batch and composite routes as gateway.yaml
// declares them, through the app's wiring.
func TestBatchFromConfig(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"uri": %q, "auth": %q}`, r.RequestURI, r.Header.Get("Authorization"))
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "off"
upstreams:
  app:
    targets: ["`+up.URL+`"]
batch:
  enabled: true
routes:
  - name: api
    path: /api
    upstream: app
    batchable: true
    compress: {enabled: true, min_size: 0}
  - name: other
    path: /other
    upstream: app
  - name: dash
    path: /dash/{user}
    batchable: true
    compress: {enabled: true, min_size: 0}
    composite:
      parts:
        - key: profile
          path: /api/users/{user}
        - key: orders
          path: /api/orders?user={user}
`)
	gw := "http://" + a.server.Addrs()[0].String()
	req, _ := http.NewRequest(http.MethodPost, gw+"/_batch", strings.NewReader(`{"requests": [
		{"id": "a", "path": "/api/x"}, {"id": "b", "path": "/other/x"}, {"id": "c", "path": "/dash/a%20b"}]}`))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch: got %d %s", resp.StatusCode, b)
	}
	var res struct {
		Responses []struct {
			ID     string          `json:"id"`
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Responses) != 3 {
		t.Fatalf("got %s (%v)", b, err)
	}
	if r := res.Responses[0]; r.Status != 200 || string(r.Body) != `{"uri":"/api/x","auth":"Bearer t"}` {
		t.Errorf("a: got %d %s; want the origin's JSON, uncompressed, with the inherited Authorization", r.Status, r.Body)
	}
	if r := res.Responses[1]; r.Status != 403 {
		t.Errorf("b: got %d; want 403 (route not batchable)", r.Status)
	}
	want := `{"profile":{"uri":"/api/users/a%20b","auth":"Bearer t"},"orders":{"uri":"/api/orders?user=a+b","auth":"Bearer t"}}`
	if r := res.Responses[2]; r.Status != 200 || string(r.Body) != want {
		t.Errorf("c: got %d %s; want %s", r.Status, r.Body, want)
	}
	// The composite on its own.
	resp, err = http.Get(gw + "/dash/7")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"profile":{"uri":"/api/users/7"`) {
		t.Errorf("GET /dash/7: got %d %s", resp.StatusCode, b)
	}
}
